package cli

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// storageSuffix is the blob endpoint suffix that --storage-account-name
// builds a container URI with. az takes its cloud's; Tresor knows only
// Azure's public cloud.
const storageSuffix = "blob.core.windows.net"

// backupCommand returns the twin of `az keyvault backup`.
func (a *app) backupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Manage full HSM backup",
		Long: `Manage full HSM backup, like 'az keyvault backup': 'start' backs up all of an
HSM's keys, their versions and role assignments into a new folder
mhsm-{name}-{time} of a blob container, sealed under the HSM's security
domain; 'tresor restore start' restores it.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.backupStartCommand())
	return cmd
}

// storageFlags are the flags that name a blob container and the
// credential for it, as az keyvault backup and restore take them.
type storageFlags struct {
	uri, account, container string
	token                   string
	managedIdentity         bool
}

// addFlags adds the storage flags; withIdentity adds --use-managed-identity.
func (s *storageFlags) addFlags(cmd *cobra.Command, withIdentity bool) {
	f := cmd.Flags()
	f.StringVar(&s.uri, "storage-resource-uri", "",
		"Azure Blob storage container Uri. If specified all other 'Storage Id' arguments should be omitted. "+
			"Tresor also takes file:///path, a directory of the server's machine")
	f.StringVar(&s.account, "storage-account-name", "",
		"Name of Azure Storage Account (the container URI is then https://{account}."+storageSuffix+"/{container}: Tresor knows only Azure's public cloud)")
	f.StringVar(&s.container, "blob-container-name", "", "Name of Blob Container")
	f.StringVarP(&s.token, "storage-container-SAS-token", "t", "", "The SAS token pointing to an Azure Blob storage container")
	if withIdentity {
		optBoolVar(f, &s.managedIdentity, "use-managed-identity",
			"If true, Managed HSM will use the configured user-assigned managed identity to authenticate with Azure Storage. "+
				"Otherwise, a SAS token has to be specified")
	}
}

var (
	storageAccountName = regexp.MustCompile(`^[a-z0-9]{3,24}$`)
	blobContainerName  = regexp.MustCompile(`^[a-z0-9](?:-?[a-z0-9]){2,62}$`)
)

// check validates the storage flags with az's messages.
func (s *storageFlags) check(cmd *cobra.Command) error {
	switch {
	case s.uri != "" && (s.account != "" || s.container != ""):
		return usagef(cmd, "Please do not specify --storage-account-name or --blob-container-name if --storage-resource-uri is specified.")
	case s.uri == "" && s.account == "" && s.container == "":
		return usagef(cmd, "Please specify --storage-resource-uri or --storage-account-name & --blob-container-name")
	case s.uri == "" && s.account == "":
		return usagef(cmd, "Please specify --storage-account-name")
	case s.uri == "" && s.container == "":
		return usagef(cmd, "Please specify --blob-container-name")
	case s.managedIdentity && s.token != "":
		return usagef(cmd, "--storage-container-SAS-token and --use-managed-identity true are mutually exclusive: give one way for the HSM to reach the storage")
	case !s.managedIdentity && strings.TrimSpace(s.token) == "":
		if cmd.Flags().Lookup("use-managed-identity") == nil {
			return usagef(cmd, "Please specify --storage-container-SAS-token")
		}
		return usagef(cmd, "Please specify --storage-container-SAS-token, or --use-managed-identity true")
	}
	if s.uri != "" {
		u, err := url.Parse(s.uri)
		if err != nil || u.Scheme == "" || u.RawQuery != "" || u.Fragment != "" || (u.Host == "" && u.Scheme != "file") {
			return usagef(cmd, "--storage-resource-uri %q is not a container URI: want https://{account}.%s/{container} (without the SAS token)", s.uri, storageSuffix)
		}
		return nil
	}
	if !storageAccountName.MatchString(s.account) {
		return usagef(cmd, "--storage-account-name %q: a storage account name has 3 to 24 lowercase letters and digits", s.account)
	}
	if !blobContainerName.MatchString(s.container) {
		return usagef(cmd, "--blob-container-name %q: a container name has 3 to 63 lowercase letters, digits and single hyphens", s.container)
	}
	return nil
}

// containerURI returns the URI of the container that the flags name.
func (s *storageFlags) containerURI() string {
	if s.uri != "" {
		return strings.TrimRight(s.uri, "/")
	}
	return "https://" + s.account + "." + storageSuffix + "/" + s.container
}

// sasParameter returns what the HSM needs to reach the container.
func (s *storageFlags) sasParameter() wire.SASTokenParameter {
	p := wire.SASTokenParameter{StorageResourceURI: s.containerURI(), UseManagedIdentity: s.managedIdentity}
	if !s.managedIdentity {
		p.Token = s.token
	}
	return p
}

func (a *app) backupStartCommand() *cobra.Command {
	var (
		target  hsmTarget
		storage storageFlags
		noWait  bool
	)
	cmd := a.onHSM(&cobra.Command{
		Use:   "start",
		Short: "Begin a full backup of the HSM",
		Long: `Begin a full backup of the HSM: all keys, with their versions, attributes
and tags, and the role assignments, sealed under the security domain, into a
new folder mhsm-{name}-{time} of the blob container. Waits until it ends
(showing the progress on a terminal) and prints the job, whose folderUrl is
the folder to give 'tresor restore start --backup-folder' (its last segment).
With --no-wait, prints the job as it started.`,
		Example: `  tresor backup start --hsm-name ContosoMHSM --storage-account-name contosostorage \
    --blob-container-name backups --storage-container-SAS-token "$SAS"
  tresor backup start --hsm-name ContosoMHSM --storage-resource-uri file:///var/backups/tresor -t x`,
	}, &target, nil, storage.check,
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			op, err := c.BeginBackup(ctx, hsmURL, storage.sasParameter())
			if err != nil {
				return nil, err
			}
			if !noWait {
				if err := a.waitJob(ctx, op, "Backup of "+target.label()); err != nil {
					return nil, err
				}
			}
			return backupOutput(op.Status()), nil
		})
	storage.addFlags(cmd, true)
	noWaitFlag(cmd, &noWait)
	return cmd
}

// waitJob waits for a backup or restore job; on a terminal (stderr) it
// shows a bar of the keys done, a spinner while their number is unknown.
func (a *app) waitJob(ctx context.Context, op *client.JobOperation, what string) error {
	if !isTerminal(a.env.Stderr) {
		return op.Wait(ctx, nil)
	}
	bar := progressbar.NewOptions(-1,
		progressbar.OptionSetWriter(a.env.Stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
	)
	total := -1
	err := op.Wait(ctx, func(done, n int, status string) {
		if n > 0 && n != total {
			total = n
			bar.ChangeMax(n)
		}
		if total > 0 {
			_ = bar.Set(min(done, total))
		} else {
			_ = bar.Add(0)
		}
	})
	_ = bar.Exit()
	_ = bar.Clear()
	fmt.Fprint(a.env.Stderr, "\r\033[K")
	return err
}

// jobOutput is what az prints of a restore job (the SDK's restore
// operation): times as ISO 8601 with the UTC offset.
type jobOutput struct {
	EndTime       *string           `json:"endTime"`
	Error         *wire.ErrorDetail `json:"error"`
	JobID         string            `json:"jobId"`
	StartTime     *string           `json:"startTime"`
	Status        string            `json:"status"`
	StatusDetails *string           `json:"statusDetails"`
}

// backupJobOutput is what az prints of a full backup: the job, with the
// folder's URL as folderUrl.
type backupJobOutput struct {
	jobOutput
	FolderURL *string `json:"folderUrl"`
}

func restoreOutput(st client.JobStatus) jobOutput {
	out := jobOutput{
		EndTime:       keyISODate(st.EndTime),
		Error:         st.Error,
		JobID:         st.JobID,
		StartTime:     keyISODate(st.StartTime),
		Status:        st.Status,
		StatusDetails: st.StatusDetails,
	}
	if out.Error != nil && out.Error.Code == "" && out.Error.Message == "" {
		out.Error = nil // an older service build's all-null error
	}
	return out
}

func backupOutput(st client.JobStatus) backupJobOutput {
	return backupJobOutput{jobOutput: restoreOutput(st), FolderURL: st.AzureStorageBlobContainerURI}
}
