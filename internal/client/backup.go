package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"tresor/internal/wire"
)

// BackupAPIVersion is the api-version of full backup and restore calls.
const BackupAPIVersion = "7.5"

// JobStatus is the status body of a backup or restore job: a
// [wire.FullBackupOperation], of which a restore's [wire.RestoreOperation]
// fills all but AzureStorageBlobContainerURI.
type JobStatus = wire.FullBackupOperation

// Kinds of [JobOperation].
const (
	JobBackup  = "backup"
	JobRestore = "restore"
)

// backupURL returns the URL of a backup or restore route of the HSM at
// hsmURL, with the api-version.
func backupURL(hsmURL, path string) string {
	return strings.TrimRight(hsmURL, "/") + "/" + path + "?api-version=" + BackupAPIVersion
}

// BeginBackup starts a full backup of the HSM at hsmURL into the container
// that p names (POST /backup). The SAS token is sent as given.
func (c *Client) BeginBackup(ctx context.Context, hsmURL string, p wire.SASTokenParameter) (*JobOperation, error) {
	return c.beginJob(ctx, http.MethodPost, backupURL(hsmURL, "backup"), p, hsmURL, JobBackup)
}

// PreBackup asks the HSM at hsmURL whether a full backup into the container
// that p names could run (POST /prebackup), without backing anything up;
// the answer is a job like [Client.BeginBackup]'s.
func (c *Client) PreBackup(ctx context.Context, hsmURL string, p wire.SASTokenParameter) (*JobOperation, error) {
	return c.beginJob(ctx, http.MethodPost, backupURL(hsmURL, "prebackup"), p, hsmURL, JobBackup)
}

// BeginRestore starts a full restore of the HSM at hsmURL from the backup
// folder that p names (PUT /restore). A full restore replaces all of the
// HSM's keys.
func (c *Client) BeginRestore(ctx context.Context, hsmURL string, p wire.RestoreOperationParameters) (*JobOperation, error) {
	return c.beginJob(ctx, http.MethodPut, backupURL(hsmURL, "restore"), p, hsmURL, JobRestore)
}

// PreRestore asks the HSM at hsmURL whether a full restore from the folder
// that p names could run (PUT /prerestore), without restoring anything.
func (c *Client) PreRestore(ctx context.Context, hsmURL string, p wire.RestoreOperationParameters) (*JobOperation, error) {
	return c.beginJob(ctx, http.MethodPut, backupURL(hsmURL, "prerestore"), p, hsmURL, JobRestore)
}

// BeginSelectiveKeyRestore starts the restore of one key, keyName, from
// the backup folder that p names into the HSM at hsmURL
// (PUT /keys/{name}/restore). Its status is a restore job's.
func (c *Client) BeginSelectiveKeyRestore(ctx context.Context, hsmURL, keyName string, p wire.SelectiveKeyRestoreParameters) (*JobOperation, error) {
	if keyName == "" || strings.ContainsAny(keyName, "/?#") {
		return nil, fmt.Errorf("client: invalid key name %q", keyName)
	}
	return c.beginJob(ctx, http.MethodPut, backupURL(hsmURL, "keys/"+url.PathEscape(keyName)+"/restore"), p, hsmURL, JobRestore)
}

// beginJob sends the request that starts a job and makes its operation.
func (c *Client) beginJob(ctx context.Context, method, u string, in any, hsmURL, kind string) (*JobOperation, error) {
	var st JobStatus
	resp, err := c.DoJSON(ctx, method, u, in, &st)
	if err != nil {
		return nil, err
	}
	op := &JobOperation{c: c, kind: kind, status: st, wait: retryAfter(resp, c.poll)}
	switch {
	case resp.Header.Get("Azure-AsyncOperation") != "":
		op.statusURL = resp.Header.Get("Azure-AsyncOperation")
	case st.JobID != "":
		op.statusURL = strings.TrimRight(hsmURL, "/") + "/" + kind + "/" + url.PathEscape(st.JobID) + "/pending"
	}
	if op.status.Status == "" {
		op.status.Status = wire.JobInProgress
	}
	op.settle(resp.StatusCode)
	if !op.done && op.statusURL == "" {
		return nil, fmt.Errorf("client: the %s answer has neither an Azure-AsyncOperation header nor a jobId", kind)
	}
	return op, nil
}

// JobOperation is a full backup, full restore or selective key restore in
// progress. The client polls the Azure-AsyncOperation URL of the first
// answer, exactly as given (else {hsm}/{backup|restore}/{jobId}/pending),
// until the status is Succeeded, Failed or Canceled. It is not safe for
// concurrent use.
type JobOperation struct {
	c         *Client
	kind      string
	statusURL string
	status    JobStatus
	wait      time.Duration // before the next poll
	done      bool
	err       error
}

// Kind returns JobBackup or JobRestore.
func (op *JobOperation) Kind() string { return op.kind }

// Done reports whether the job has ended (successfully or not).
func (op *JobOperation) Done() bool { return op.done }

// Status returns the last status body seen (the first answer's until a
// poll).
func (op *JobOperation) Status() JobStatus { return op.status }

// Err returns the error of a job that ended other than Succeeded, or nil.
func (op *JobOperation) Err() error { return op.err }

// Poll asks the status URL once, unless the job has ended. Once the job
// has failed (or was canceled) it returns an [*Error] whose Code and
// Message are the job's error's (else "{Backup,Restore}{Failed,Canceled}"
// and the status details).
func (op *JobOperation) Poll(ctx context.Context) error {
	if op.done {
		return op.err
	}
	var st JobStatus
	resp, err := op.c.DoJSON(ctx, http.MethodGet, op.statusURL, nil, &st)
	if err != nil {
		return err
	}
	if st.Status == "" {
		return fmt.Errorf("client: the %s job status has no status", op.kind)
	}
	op.status = st
	op.wait = retryAfter(resp, op.c.poll)
	op.settle(resp.StatusCode)
	return op.err
}

// settle records a terminal status.
func (op *JobOperation) settle(httpStatus int) {
	st := op.status
	switch strings.ToLower(st.Status) {
	case "succeeded", "success":
		op.done = true
	case "failed", "canceled", "cancelled":
		op.done = true
		kind := strings.ToUpper(op.kind[:1]) + op.kind[1:]
		outcome := "Failed"
		if !strings.EqualFold(st.Status, wire.JobFailed) {
			outcome = "Canceled"
		}
		e := &Error{Status: httpStatus, Code: kind + outcome, Message: "the " + op.kind + " job ended " + strings.ToLower(st.Status)}
		if st.StatusDetails != nil && *st.StatusDetails != "" {
			e.Message = *st.StatusDetails
		}
		if d := st.Error; d != nil {
			if d.Code != "" {
				e.Code = d.Code
			}
			if d.Message != "" {
				e.Message = d.Message
			}
			if d.InnerError != nil {
				e.InnerCode = d.InnerError.Code
			}
		}
		op.err = e
	}
}

// Wait polls until the job ends and returns its error, if any (see
// [JobOperation.Poll]); [JobOperation.Status] then holds the last status.
// Each poll waits first as long as the last answer's Retry-After asked
// (between 20 ms and 30 s), else [Config.PollInterval]. progress, if not
// nil, is called with the keys done, their total (0 while unknown) and the
// status, for each status seen, the final one included.
func (op *JobOperation) Wait(ctx context.Context, progress func(done, total int, status string)) error {
	report := func() {
		if progress == nil {
			return
		}
		var done, total int
		if p := op.status.Progress; p != nil {
			done, total = p.Done, p.Total
		}
		progress(done, total, op.status.Status)
	}
	report()
	for !op.done {
		t := time.NewTimer(op.wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		err := op.Poll(ctx)
		if err != nil && !op.done {
			return err
		}
		report()
	}
	return op.err
}

// SetBackupPolicy sets the scheduled backup policy of the HSM at hsmURL
// (PUT /backup/policy, Tresor's extension) and returns it as the HSM keeps
// it (without the SAS token).
func (c *Client) SetBackupPolicy(ctx context.Context, hsmURL string, p wire.BackupPolicyParameters) (wire.BackupPolicy, error) {
	var out wire.BackupPolicy
	_, err := c.DoJSON(ctx, http.MethodPut, backupURL(hsmURL, "backup/policy"), p, &out)
	return out, err
}

// GetBackupPolicy returns the backup policy of the HSM at hsmURL with the
// status of its runs (GET /backup/policy); an HSM without one answers 404
// BackupPolicyNotFound.
func (c *Client) GetBackupPolicy(ctx context.Context, hsmURL string) (wire.BackupPolicy, error) {
	var out wire.BackupPolicy
	_, err := c.DoJSON(ctx, http.MethodGet, backupURL(hsmURL, "backup/policy"), nil, &out)
	return out, err
}

// DeleteBackupPolicy removes the backup policy of the HSM at hsmURL
// (DELETE /backup/policy); its backup folders stay.
func (c *Client) DeleteBackupPolicy(ctx context.Context, hsmURL string) error {
	_, err := c.DoJSON(ctx, http.MethodDelete, backupURL(hsmURL, "backup/policy"), nil, nil)
	return err
}
