package api

import (
	"net/http"
	"strings"
	"time"

	"tresor/internal/backup"
	"tresor/internal/fault"
	"tresor/internal/wire"
)

// Full backup, full restore and selective key restore (spec §3). Jobs run
// in the background: the start routes answer 202 with the job's status
// URL, which clients poll exactly as given (without an api-version).

// jobRetryAfter is the Retry-After of job answers, in seconds: jobs of a
// few thousand keys take seconds.
const jobRetryAfter = "1"

func jobAccepted(w http.ResponseWriter, r *http.Request, route string, j backup.Job) {
	w.Header().Set("Azure-AsyncOperation", hsmBase(r)+"/"+route+"/"+j.ID+"/pending")
	w.Header().Set("Retry-After", jobRetryAfter)
}

func destination(p wire.SASTokenParameter) backup.Destination {
	return backup.Destination{StorageURI: p.StorageResourceURI, Token: p.Token, UseManagedIdentity: p.UseManagedIdentity}
}

func (a *API) startBackup(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var p wire.SASTokenParameter
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	j, err := a.deps.Backups.StartBackup(r.Context(), rc.instance, destination(p))
	if err != nil {
		return err
	}
	jobAccepted(w, r, "backup", j)
	writeJSON(w, http.StatusAccepted, backupOperation(j))
	return nil
}

func (a *API) preBackup(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var p wire.SASTokenParameter
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	j, err := a.deps.Backups.StartPreBackup(r.Context(), rc.instance, destination(p))
	if err != nil {
		return err
	}
	jobAccepted(w, r, "backup", j)
	writeJSON(w, http.StatusAccepted, backupOperation(j))
	return nil
}

func (a *API) backupStatus(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	j, err := a.deps.Backups.Job(r.Context(), rc.instance, r.PathValue("job"), backup.BackupKinds)
	if err != nil {
		return err
	}
	if j.Status == wire.JobInProgress {
		w.Header().Set("Retry-After", jobRetryAfter)
	}
	writeJSON(w, http.StatusOK, backupOperation(j))
	return nil
}

func (a *API) startRestore(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var p wire.RestoreOperationParameters
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	j, err := a.deps.Backups.StartRestore(r.Context(), rc.instance, destination(p.SASTokenParameters), p.FolderToRestore)
	if err != nil {
		return err
	}
	jobAccepted(w, r, "restore", j)
	writeJSON(w, http.StatusAccepted, restoreOperation(j))
	return nil
}

func (a *API) preRestore(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var p wire.RestoreOperationParameters
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	j, err := a.deps.Backups.StartPreRestore(r.Context(), rc.instance, destination(p.SASTokenParameters), p.FolderToRestore)
	if err != nil {
		return err
	}
	jobAccepted(w, r, "restore", j)
	writeJSON(w, http.StatusAccepted, restoreOperation(j))
	return nil
}

func (a *API) startKeyRestore(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var p wire.SelectiveKeyRestoreParameters
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	j, err := a.deps.Backups.StartKeyRestore(r.Context(), rc.instance, destination(p.SASTokenParameters), p.Folder, r.PathValue("name"))
	if err != nil {
		return err
	}
	jobAccepted(w, r, "restore", j)
	writeJSON(w, http.StatusAccepted, restoreOperation(j))
	return nil
}

func (a *API) restoreStatus(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	j, err := a.deps.Backups.Job(r.Context(), rc.instance, r.PathValue("job"), backup.RestoreKinds)
	if err != nil {
		return err
	}
	if j.Status == wire.JobInProgress {
		w.Header().Set("Retry-After", jobRetryAfter)
	}
	writeJSON(w, http.StatusOK, restoreOperation(j))
	return nil
}

// jobFields are the fields both job shapes share.
func jobFields(j backup.Job, failCode string) (details *string, e *wire.ErrorDetail, start, end *int64, progress *wire.JobProgress) {
	st := j.Start.Unix()
	start = &st
	if !j.End.IsZero() {
		en := j.End.Unix()
		end = &en
	}
	switch {
	case j.Status == wire.JobFailed:
		msg := j.Error
		details = &msg
		e = &wire.ErrorDetail{Code: failCode, Message: j.Error}
	case j.Details != "":
		d := j.Details
		details = &d
	}
	if j.Total > 0 || j.Done > 0 {
		progress = &wire.JobProgress{Done: j.Done, Total: j.Total}
	}
	return details, e, start, end, progress
}

func backupOperation(j backup.Job) wire.FullBackupOperation {
	op := wire.FullBackupOperation{Status: j.Status, JobID: j.ID}
	op.StatusDetails, op.Error, op.StartTime, op.EndTime, op.Progress = jobFields(j, "BackupFailed")
	if j.Status == wire.JobSucceeded && j.Result != "" {
		uri := j.Result
		op.AzureStorageBlobContainerURI = &uri
	}
	return op
}

func restoreOperation(j backup.Job) wire.RestoreOperation {
	op := wire.RestoreOperation{Status: j.Status, JobID: j.ID}
	op.StatusDetails, op.Error, op.StartTime, op.EndTime, op.Progress = jobFields(j, "RestoreFailed")
	return op
}

// Scheduled backups (Tresor's extension): PUT, GET and DELETE
// /backup/policy. The SAS token is never answered.

func (a *API) putBackupPolicy(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var p wire.BackupPolicyParameters
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	if strings.TrimSpace(p.Every) == "" {
		return fault.New(fault.BadParameter, "BadParameter", "every is required: how often to back up, such as 6h or PT6H")
	}
	every, err := backup.ParseInterval(p.Every)
	if err != nil {
		return fault.New(fault.BadParameter, "BadParameter", "every: %s", err)
	}
	enabled := p.Enabled == nil || *p.Enabled
	st, err := a.deps.Backups.SetPolicy(r.Context(), rc.instance, backup.Policy{
		StorageURI: p.StorageResourceURI, Token: p.Token, Every: every, Keep: p.Keep, Enabled: enabled})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, backupPolicy(st))
	return nil
}

func (a *API) getBackupPolicy(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	st, err := a.deps.Backups.GetPolicy(r.Context(), rc.instance)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, backupPolicy(st))
	return nil
}

func (a *API) deleteBackupPolicy(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := a.deps.Backups.DeletePolicy(r.Context(), rc.instance); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func rfc3339(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func backupRun(run *backup.Run) *wire.BackupRun {
	if run == nil {
		return nil
	}
	out := &wire.BackupRun{Time: *rfc3339(run.Time), JobID: run.JobID, Folder: run.Folder}
	if run.Code != "" {
		out.Error = &wire.ErrorDetail{Code: run.Code, Message: run.Message}
	}
	return out
}

func backupPolicy(st backup.PolicyStatus) wire.BackupPolicy {
	out := wire.BackupPolicy{
		StorageResourceURI: st.StorageURI, Every: backup.FormatInterval(st.Every), Keep: st.Keep, Enabled: st.Enabled,
		TokenSet: true, TokenExpiry: rfc3339(st.TokenExpiry), Updated: *rfc3339(st.Set),
		LastSuccess: backupRun(st.LastSuccess), LastFailure: backupRun(st.LastFailure), DeletedFolders: st.DeletedFolders,
	}
	if st.Enabled {
		out.NextRun = rfc3339(st.NextRun)
	}
	return out
}
