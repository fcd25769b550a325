package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// restoreCommand returns the twin of `az keyvault restore`.
func (a *app) restoreCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Manage full HSM restore",
		Long: `Manage full HSM restore, like 'az keyvault restore': 'start' restores a backup
folder that 'tresor backup start' wrote, all of it or one key. 'drill'
(Tresor's own) restores a folder into a scratch HSM, checks it and purges
the scratch HSM.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.restoreStartCommand(), a.restoreDrillCommand())
	return cmd
}

func (a *app) restoreStartCommand() *cobra.Command {
	var (
		target  hsmTarget
		storage storageFlags
		folder  string
		keyName string
		noWait  bool
	)
	cmd := a.onHSM(&cobra.Command{
		Use:   "start",
		Short: "Restore a full backup of a HSM, or one key of it",
		Long: `Restore the backup folder --backup-folder of the blob container into the HSM.
A full restore replaces all of the HSM's keys and role assignments with the
backup's, and needs the security domain the backup was made under; with
--key-name only that key (all its versions) is restored, and the rest of the
HSM is left as it is. Waits until it ends (showing the progress on a
terminal) and prints the job; with --no-wait, prints the job as it started.
A failed restore exits with code 2.`,
		Example: `  tresor restore start --hsm-name ContosoMHSM --storage-account-name contosostorage \
    --blob-container-name backups --storage-container-SAS-token "$SAS" \
    --backup-folder mhsm-contosomhsm-2026041915243012
  tresor restore start --hsm-name ContosoMHSM --storage-resource-uri file:///var/backups/tresor -t x \
    --backup-folder mhsm-contosomhsm-2026041915243012 --key-name rsa1`,
	}, &target, nil,
		func(cmd *cobra.Command) error {
			if err := storage.check(cmd); err != nil {
				return err
			}
			folder = strings.Trim(folder, "/")
			if folder == "" {
				return usagef(cmd, "the following arguments are required: --backup-folder")
			}
			if cmd.Flags().Changed("key-name") && (keyName == "" || strings.ContainsAny(keyName, "/?#")) {
				return usagef(cmd, "--key-name %q is not a key name", keyName)
			}
			return nil
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			sas := storage.sasParameter()
			var (
				op   *client.JobOperation
				err  error
				what string
			)
			if keyName != "" {
				what = "Restore of key " + keyName + " into " + target.label()
				op, err = c.BeginSelectiveKeyRestore(ctx, hsmURL, keyName, wire.SelectiveKeyRestoreParameters{SASTokenParameters: sas, Folder: folder})
			} else {
				what = "Restore of " + target.label()
				op, err = c.BeginRestore(ctx, hsmURL, wire.RestoreOperationParameters{SASTokenParameters: sas, FolderToRestore: folder})
			}
			if err != nil {
				return nil, err
			}
			if !noWait {
				if err := a.waitJob(ctx, op, what); err != nil {
					return nil, err
				}
			}
			return restoreOutput(op.Status()), nil
		})
	storage.addFlags(cmd, true)
	f := cmd.Flags()
	f.StringVar(&folder, "backup-folder", "", "Name of the blob container which contains the backup (the folder: the last segment of the folderUrl 'backup start' printed)")
	f.StringVar(&keyName, "key-name", "", "Name of a single key in the backup to restore (selective key restore)")
	noWaitFlag(cmd, &noWait)
	return cmd
}
