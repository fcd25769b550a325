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
