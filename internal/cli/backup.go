package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"tresor/internal/blob"
	"tresor/internal/blob/container"
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
domain; 'tresor restore start' restores it. 'list' (Tresor's own) lists the
backup folders of a container; 'policy' (Tresor's own) schedules backups
with retention.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.backupStartCommand(), a.backupListCommand(), a.backupPolicyCommand())
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
			// The URI is not echoed whole: it may carry a SAS token.
			shown, _, _ := strings.Cut(s.uri, "?")
			return usagef(cmd, "--storage-resource-uri %q is not a container URI: want https://{account}.%s/{container} (without the SAS token, which goes in --storage-container-SAS-token)", shown, storageSuffix)
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

// Limits and names of the backup format that backup list reads. They mirror
// internal/backup (Format, ManifestName, MaxManifestSize, ValidFolder),
// which the CLI may not import: it is a server package.
const (
	backupFormat       = "tresor.backup/v1"
	backupManifestName = "manifest"
	maxManifestSize    = 64 << 20
)

// backupFolderName is Managed HSM's folder name, mhsm-{name}-{yyyyMMddHHmmssff}
// (internal/backup's ValidFolder).
var backupFolderName = regexp.MustCompile(`^mhsm-[a-z0-9-]{3,24}-[0-9]{16}$`)

// manifestHeader is the part of a backup manifest that backup list reads:
// it mirrors internal/backup's Header, the manifest's clear part. Nothing
// in it is authenticated (the sealed copy beside it, which a restore
// checks, is); it only describes the folder.
type manifestHeader struct {
	Format          string               `json:"format"`
	Folder          string               `json:"folder"`
	SourceHSM       string               `json:"sourceHsm"`
	Created         time.Time            `json:"created"`
	Keys            int                  `json:"keys"`
	DeletedKeys     int                  `json:"deletedKeys"`
	Versions        int                  `json:"versions"`
	RoleAssignments int                  `json:"roleAssignments"`
	RoleDefinitions int                  `json:"roleDefinitions"`
	Settings        int                  `json:"settings"`
	Objects         []manifestObjectInfo `json:"objects"`
}

// manifestObjectInfo mirrors internal/backup's ObjectInfo: one sealed
// object of a folder, named relative to the folder.
type manifestObjectInfo struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Keys   int    `json:"keys,omitempty"`
}

// backupFolderOutput is one line of backup list.
type backupFolderOutput struct {
	Folder    string  `json:"folder"`
	SourceHSM *string `json:"sourceHsm"` // null without a readable manifest
	Keys      *int    `json:"keys"`      // null without a readable manifest
	Size      int64   `json:"size"`      // bytes, all of the folder's objects
	Created   *string `json:"created"`
	Complete  bool    `json:"complete"`
}

func (a *app) backupListCommand() *cobra.Command {
	var storage storageFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the backup folders of a blob container (Tresor's own, az has none)",
		Long: `List the backup folders (mhsm-{name}-{time}) that 'tresor backup start' wrote
into a blob container, sorted by name: for each its source HSM, number of
keys, size in bytes (of all its objects), creation time and whether it is
complete. The CLI reads the storage itself, from this machine, with the SAS
token (which needs list and read permission); no server is involved and no
sign-in is needed. A file:///path container is a directory of this machine.

A folder is complete when its manifest exists and every object the manifest
lists is there with the listed size; an interrupted backup has no manifest.
The listing reads only the manifest's clear, unauthenticated header: it needs
no security domain, and proves nothing about the backup's integrity or
authenticity. 'tresor restore start' verifies the folder before it restores.`,
		Example: `  tresor backup list --storage-account-name contosostorage --blob-container-name backups \
    --storage-container-SAS-token "$SAS" -o table
  tresor backup list --storage-resource-uri file:///var/backups/tresor -t x \
    --query "[?complete].folder" -o tsv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := storage.check(cmd); err != nil {
				return err
			}
			out, err := listBackups(cmd.Context(), storage.containerURI(), storage.token)
			if err != nil {
				return blobHint(err)
			}
			return a.print(out, backupListTable)
		},
	}
	storage.addFlags(cmd, false)
	cmd.Flags().Lookup("storage-resource-uri").Usage = "Azure Blob storage container Uri. If specified all other 'Storage Id' arguments should be omitted. " +
		"Tresor also takes file:///path, a directory of this machine"
	return cmd
}

// blobHint adds a hint to the storage errors a user can fix.
func blobHint(err error) error {
	switch {
	case errors.Is(err, blob.ErrAuth):
		return withHint(err, "check the SAS token: is it expired, or for another storage account?")
	case errors.Is(err, blob.ErrPermission):
		return withHint(err, "listing backups needs a SAS token with list and read permission")
	case errors.Is(err, blob.ErrNoContainer):
		return withHint(err, "check --storage-resource-uri or --blob-container-name")
	}
	return err
}

// listBackups lists the backup folders of the container at storageURI (a
// container, or a prefix inside one).
func listBackups(ctx context.Context, storageURI, token string) ([]backupFolderOutput, error) {
	containerURI, base, err := container.Resolve(storageURI, "")
	if err != nil {
		return nil, err
	}
	store, err := container.Open(ctx, containerURI, token)
	if err != nil {
		return nil, err
	}
	prefix := ""
	if base != "" {
		prefix = base + "/"
	}
	objs, err := store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	folders := map[string][]blob.Object{}
	for _, o := range objs {
		folder, rest, ok := strings.Cut(strings.TrimPrefix(o.Name, prefix), "/")
		if !ok || rest == "" || !backupFolderName.MatchString(folder) {
			continue
		}
		folders[folder] = append(folders[folder], o)
	}
	out := make([]backupFolderOutput, 0, len(folders))
	for folder, objs := range folders {
		f, err := describeFolder(ctx, store, prefix+folder, folder, objs)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(x, y backupFolderOutput) int { return cmp.Compare(x.Folder, y.Folder) })
	return out, nil
}

// describeFolder describes one folder, at path in the store, from its
// objects and its manifest's header.
func describeFolder(ctx context.Context, store blob.Store, path, folder string, objs []blob.Object) (backupFolderOutput, error) {
	out := backupFolderOutput{Folder: folder}
	sizes := map[string]int64{} // object name relative to the folder → size
	var newest time.Time
	for _, o := range objs {
		out.Size += o.Size
		sizes[strings.TrimPrefix(o.Name, path+"/")] = o.Size
		if o.Modified.After(newest) {
			newest = o.Modified
		}
	}
	created := newest
	if _, ok := sizes[backupManifestName]; ok {
		data, err := store.Get(ctx, path+"/"+backupManifestName, maxManifestSize)
		switch {
		case errors.Is(err, blob.ErrNotFound), errors.Is(err, blob.ErrTooLarge):
			// deleted since the listing, or not a manifest of ours: incomplete
		case err != nil:
			return out, err
		default:
			var h manifestHeader
			if json.Unmarshal(data, &h) == nil && h.Format == backupFormat {
				out.SourceHSM, out.Keys = &h.SourceHSM, &h.Keys
				if !h.Created.IsZero() {
					created = h.Created
				}
				out.Complete = h.Folder == folder
				for _, o := range h.Objects {
					if size, ok := sizes[o.Name]; !ok || size != o.Size || o.Name == backupManifestName {
						out.Complete = false
					}
				}
			}
		}
	}
	if !created.IsZero() {
		s := created.UTC().Format("2006-01-02T15:04:05+00:00")
		out.Created = &s
	}
	return out, nil
}

// backupListTable is the -o table view of backup list.
func backupListTable(v any) any {
	return mapRows(v, func(m map[string]any) row {
		return row{{"Folder", m["folder"]}, {"SourceHsm", m["sourceHsm"]}, {"Keys", m["keys"]},
			{"Size", m["size"]}, {"Created", m["created"]}, {"Complete", m["complete"]}}
	})
}
