package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// backupPolicyCommand is Tresor's own `backup policy`: scheduled full
// backups with retention, which Managed HSM leaves to scripts.
func (a *app) backupPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Manage the HSM's scheduled backups (Tresor's own, az has none)",
		Long: `Manage the HSM's backup policy: the server backs the HSM up into a blob
container every interval, as 'tresor backup start' does, and keeps the newest
--keep complete folders mhsm-{name}-{time} of the HSM in that container,
deleting older ones (manual backups into the same container count too).
'show' tells the last success, the last failure and the next run.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.backupPolicySetCommand(), a.backupPolicyShowCommand(), a.backupPolicyDeleteCommand())
	return cmd
}

func (a *app) backupPolicySetCommand() *cobra.Command {
	var (
		target    hsmTarget
		storage   storageFlags
		tokenFile string
		every     string
		keep      int
		disabled  bool
	)
	check := func(cmd *cobra.Command) error {
		if tokenFile != "" {
			if storage.token != "" {
				return usagef(cmd, "give --sas-token-file or --storage-container-SAS-token, not both")
			}
			data, err := os.ReadFile(tokenFile)
			if err != nil {
				return usagef(cmd, "--sas-token-file: %v", err)
			}
			storage.token = strings.TrimSpace(string(data))
			if storage.token == "" {
				return usagef(cmd, "--sas-token-file %s is empty", tokenFile)
			}
		}
		if every == "" {
			return usagef(cmd, "Please specify --every, such as 6h or PT6H")
		}
		if !cmd.Flags().Changed("keep") {
			return usagef(cmd, "Please specify --keep, the number of complete backup folders to keep")
		}
		return storage.check(cmd)
	}
	cmd := a.onHSM(&cobra.Command{
		Use:   "set",
		Short: "Set the HSM's backup policy: a full backup every interval, keeping the newest --keep",
		Long: `Set (or replace) the HSM's backup policy. The first backup runs at once, then
one every --every (a Go duration such as 6h or 90m, or ISO 8601 such as PT6H;
at least 1s, at most 366 days). After each backup the server deletes the
HSM's folders older than the newest --keep complete ones in the container
(incomplete folders older than those too). The SAS token needs the
permissions c, r, w, d and l; the server keeps it sealed and never shows it.
Prefer --sas-token-file to keep the token out of the shell's history.`,
		Example: `  tresor backup policy set --hsm-name ContosoMHSM --storage-resource-uri https://contosostorage.blob.core.windows.net/backups \
    --sas-token-file sas.txt --every 6h --keep 28
  tresor backup policy set --hsm-name ContosoMHSM --storage-resource-uri file:///var/backups/tresor -t x --every PT1H --keep 48`,
	}, &target, backupPolicyTable, check,
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			enabled := !disabled
			p := storage.sasParameter()
			return c.SetBackupPolicy(ctx, hsmURL, wire.BackupPolicyParameters{
				StorageResourceURI: p.StorageResourceURI, Token: p.Token, Every: every, Keep: keep, Enabled: &enabled})
		})
	storage.addFlags(cmd, false)
	f := cmd.Flags()
	f.StringVar(&tokenFile, "sas-token-file", "", "a file that holds the container's SAS token (instead of --storage-container-SAS-token)")
	f.StringVar(&every, "every", "", "how often to back up: 6h, 90m, PT6H, P1D")
	f.IntVar(&keep, "keep", 0, "how many complete backup folders of the HSM to keep in the container (1 to 1000)")
	f.BoolVar(&disabled, "disabled", false, "keep the policy but run no backups")
	// The token may come from --sas-token-file: storage.check runs after it.
	return cmd
}

func (a *app) backupPolicyShowCommand() *cobra.Command {
	var target hsmTarget
	return a.onHSM(&cobra.Command{
		Use:   "show",
		Short: "Show the HSM's backup policy and the outcome of its runs",
		Long: `Show the HSM's backup policy (without its SAS token: tokenSet says one is
kept, tokenExpiry is its se= field), its next run, its last success (time,
folder, job) and its last failure (time, job, error), which a successful run
clears, and how many folders the last retention pass deleted.`,
		Example: `  tresor backup policy show --hsm-name ContosoMHSM -o table`,
	}, &target, backupPolicyTable, nil,
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			return c.GetBackupPolicy(ctx, hsmURL)
		})
}

func (a *app) backupPolicyDeleteCommand() *cobra.Command {
	var target hsmTarget
	return a.onHSM(&cobra.Command{
		Use:   "delete",
		Short: "Delete the HSM's backup policy (its backup folders stay)",
	}, &target, nil, nil,
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			return nil, c.DeleteBackupPolicy(ctx, hsmURL)
		})
}

// backupPolicyTable is the -o table view of a backup policy.
func backupPolicyTable(v any) any {
	return mapRows(v, func(m map[string]any) row {
		last := func(k, field string) any {
			if r, ok := m[k].(map[string]any); ok {
				if field == "error" {
					if e, ok := r["error"].(map[string]any); ok {
						return fmt.Sprint(e["code"]) + ": " + fmt.Sprint(e["message"])
					}
					return nil
				}
				return r[field]
			}
			return nil
		}
		return row{{"StorageResourceUri", m["storageResourceUri"]}, {"Every", m["every"]}, {"Keep", m["keep"]},
			{"Enabled", m["enabled"]}, {"NextRun", m["nextRun"]}, {"LastSuccess", last("lastSuccess", "time")},
			{"LastFolder", last("lastSuccess", "folder")}, {"LastFailure", last("lastFailure", "time")},
			{"FailureError", last("lastFailure", "error")}, {"DeletedFolders", m["deletedFolders"]}}
	})
}
