package wire

// SASTokenParameter names a blob container and the SAS token that grants
// access to it (spec §3.2). The token may start with "?".
type SASTokenParameter struct {
	StorageResourceURI string `json:"storageResourceUri"`
	Token              string `json:"token,omitempty"`
	UseManagedIdentity bool   `json:"useManagedIdentity,omitempty"`
}

// RestoreOperationParameters is the body of PUT /restore and PUT /prerestore.
type RestoreOperationParameters struct {
	SASTokenParameters SASTokenParameter `json:"sasTokenParameters"`
	FolderToRestore    string            `json:"folderToRestore"`
}

// SelectiveKeyRestoreParameters is the body of PUT /keys/{name}/restore
// (note "folder", not "folderToRestore").
type SelectiveKeyRestoreParameters struct {
	SASTokenParameters SASTokenParameter `json:"sasTokenParameters"`
	Folder             string            `json:"folder"`
}

// Job statuses of backup and restore operations.
const (
	JobInProgress = "InProgress"
	JobSucceeded  = "Succeeded"
	JobFailed     = "Failed"
	JobCanceled   = "Canceled"
)

// FullBackupOperation is the status of a full backup (POST /backup,
// GET /backup/{jobId}/pending). Times are unix seconds; EndTime is null
// while the job runs; AzureStorageBlobContainerURI is the container URI
// and "/" and the folder once the backup succeeded.
type FullBackupOperation struct {
	Status                       string       `json:"status"`
	StatusDetails                *string      `json:"statusDetails"`
	Error                        *ErrorDetail `json:"error"`
	StartTime                    *int64       `json:"startTime"`
	EndTime                      *int64       `json:"endTime"`
	JobID                        string       `json:"jobId"`
	AzureStorageBlobContainerURI *string      `json:"azureStorageBlobContainerUri"`
	// Progress is Tresor's extension (Azure's clients ignore it).
	Progress *JobProgress `json:"progress,omitempty"`
}

// RestoreOperation is the status of a full or selective key restore
// (PUT /restore, PUT /keys/{name}/restore, GET /restore/{jobId}/pending).
type RestoreOperation struct {
	Status        string       `json:"status"`
	StatusDetails *string      `json:"statusDetails"`
	Error         *ErrorDetail `json:"error"`
	StartTime     *int64       `json:"startTime"`
	EndTime       *int64       `json:"endTime"`
	JobID         string       `json:"jobId"`
	// Progress is Tresor's extension (Azure's clients ignore it).
	Progress *JobProgress `json:"progress,omitempty"`
}

// JobProgress counts the keys a running job has done out of its total
// (0 while the total is not known yet).
type JobProgress struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

// BackupPolicyParameters is the body of PUT /backup/policy, Tresor's
// extension: scheduled full backups into a container, keeping the newest
// Keep complete folders. Every is a Go duration ("6h") or an ISO 8601
// duration ("PT6H"); Enabled defaults to true.
type BackupPolicyParameters struct {
	StorageResourceURI string `json:"storageResourceUri"`
	Token              string `json:"token,omitempty"`
	Every              string `json:"every"`
	Keep               int    `json:"keep"`
	Enabled            *bool  `json:"enabled,omitempty"`
}

// BackupPolicy is a backup policy as GET /backup/policy answers it: never
// with its SAS token (TokenSet says one is kept; TokenExpiry is its se=
// field, if it has one). Every is ISO 8601; times are RFC 3339 in UTC.
// NextRun is null while the policy is disabled; LastSuccess and
// LastFailure are null until a run left one (a successful run clears
// LastFailure). DeletedFolders counts the folders the last retention pass
// deleted.
type BackupPolicy struct {
	StorageResourceURI string     `json:"storageResourceUri"`
	Every              string     `json:"every"`
	Keep               int        `json:"keep"`
	Enabled            bool       `json:"enabled"`
	TokenSet           bool       `json:"tokenSet"`
	TokenExpiry        *string    `json:"tokenExpiry,omitempty"`
	Updated            string     `json:"updated"`
	NextRun            *string    `json:"nextRun"`
	LastSuccess        *BackupRun `json:"lastSuccess"`
	LastFailure        *BackupRun `json:"lastFailure"`
	DeletedFolders     int        `json:"deletedFolders"`
}

// BackupRun is one scheduled backup: a success names its folder, a
// failure its error (JobID is empty when no job could start).
type BackupRun struct {
	Time   string       `json:"time"`
	JobID  string       `json:"jobId,omitempty"`
	Folder string       `json:"folder,omitempty"`
	Error  *ErrorDetail `json:"error,omitempty"`
}
