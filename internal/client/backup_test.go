package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tresor/internal/client"
	"tresor/internal/client/clienttest"
	"tresor/internal/wire"
)

// fakeJobs is a fake HSM's backup and restore routes: each job answers
// InProgress (with progress) pendingLeft times, then final.
type fakeJobs struct {
	mu          sync.Mutex
	pendingLeft int
	final       wire.FullBackupOperation
	retryAfter  string // Retry-After of every answer; none if empty
	statusPath  string // overrides the Azure-AsyncOperation path; none if "-"
	starts      []startedJob
	polls       []polled
}

type startedJob struct {
	method, path string
	query        string
	body         map[string]any
}

type polled struct {
	path, rawQuery string
	at             time.Time
}

func (f *fakeJobs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	write := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	start := int64(1668020571)
	if strings.HasSuffix(r.URL.Path, "/pending") {
		f.polls = append(f.polls, polled{path: r.URL.Path, rawQuery: r.URL.RawQuery, at: time.Now()})
		if f.pendingLeft > 0 {
			f.pendingLeft--
			write(200, wire.FullBackupOperation{Status: "InProgress", JobID: "j1", StartTime: &start,
				Progress: &wire.JobProgress{Done: 3 - f.pendingLeft, Total: 3}})
			return
		}
		write(200, f.final)
		return
	}
	if r.URL.Query().Get("api-version") != client.BackupAPIVersion {
		write(400, wire.Error{Error: wire.ErrorDetail{Code: "BadParameter", Message: "api-version " + r.URL.Query().Get("api-version")}})
		return
	}
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.starts = append(f.starts, startedJob{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, body: body})
	if u, ok := body["storageResourceUri"].(string); ok && u == "bad" {
		write(400, wire.Error{Error: wire.ErrorDetail{Code: "InvalidStorageUri", Message: "bad storage URI"}})
		return
	}
	kind := "restore"
	if strings.HasSuffix(r.URL.Path, "backup") {
		kind = "backup"
	}
	switch f.statusPath {
	case "":
		w.Header().Set("Azure-AsyncOperation", "https://"+r.Host+"/"+kind+"/j1/pending")
	case "-":
	default:
		w.Header().Set("Azure-AsyncOperation", "https://"+r.Host+f.statusPath)
	}
	write(http.StatusAccepted, wire.FullBackupOperation{Status: "InProgress", JobID: "j1", StartTime: &start})
}

func jobRegion(t *testing.T) (*fakeJobs, *client.Client, string) {
	t.Helper()
	r := clienttest.New(t)
	end := int64(1668020579)
	uri := "https://acct.blob.core.windows.net/c/mhsm-hsm1-2022110919025126"
	f := &fakeJobs{final: wire.FullBackupOperation{Status: "Succeeded", JobID: "j1", EndTime: &end, AzureStorageBlobContainerURI: &uri}}
	r.HSM = f
	c := newClient(t, r)
	u, err := c.HSMURL(context.Background(), "hsm1")
	if err != nil {
		t.Fatal(err)
	}
	return f, c, u
}

func TestBackupJob(t *testing.T) {
	f, c, hsmURL := jobRegion(t)
	f.pendingLeft = 2
	ctx := context.Background()
	op, err := c.BeginBackup(ctx, hsmURL, wire.SASTokenParameter{StorageResourceURI: "https://acct.blob.core.windows.net/c", Token: "?sv=1&sig=x"})
	if err != nil {
		t.Fatal(err)
	}
	if op.Done() || op.Kind() != client.JobBackup || op.Status().Status != "InProgress" || op.Status().JobID != "j1" {
		t.Fatalf("before polling: done %v, %s, %+v", op.Done(), op.Kind(), op.Status())
	}
	s := f.starts[0]
	if s.method != "POST" || s.path != "/backup" || s.body["token"] != "?sv=1&sig=x" || s.body["storageResourceUri"] != "https://acct.blob.core.windows.net/c" {
		t.Errorf("start request %+v", s)
	}
	if _, ok := s.body["useManagedIdentity"]; ok {
		t.Errorf("useManagedIdentity sent when false: %v", s.body)
	}
	var seen []string
	if err := op.Wait(ctx, func(done, total int, status string) {
		seen = append(seen, status+":"+itoa(done)+"/"+itoa(total))
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seen, ","); got != "InProgress:0/0,InProgress:2/3,InProgress:3/3,Succeeded:0/0" {
		t.Errorf("progress %s", got)
	}
	st := op.Status()
	if !op.Done() || st.Status != "Succeeded" || st.AzureStorageBlobContainerURI == nil || !strings.HasSuffix(*st.AzureStorageBlobContainerURI, "/mhsm-hsm1-2022110919025126") {
		t.Fatalf("final %+v", st)
	}
	// The status URL is polled exactly as given: no api-version added.
	for _, p := range f.polls {
		if p.path != "/backup/j1/pending" || p.rawQuery != "" {
			t.Errorf("polled %s?%s", p.path, p.rawQuery)
		}
	}
	if len(f.polls) != 3 {
		t.Errorf("%d polls, want 3", len(f.polls))
	}
	// Once done, Poll does not ask again.
	if err := op.Poll(ctx); err != nil || len(f.polls) != 3 {
		t.Errorf("Poll after the end: %v, %d polls", err, len(f.polls))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestJobRetryAfter(t *testing.T) {
	f, c, hsmURL := jobRegion(t)
	f.pendingLeft = 1
	f.retryAfter = "1"
	ctx := context.Background()
	start := time.Now()
	op, err := c.BeginRestore(ctx, hsmURL, wire.RestoreOperationParameters{
		SASTokenParameters: wire.SASTokenParameter{StorageResourceURI: "https://acct.blob.core.windows.net/c", Token: "sv=1"},
		FolderToRestore:    "mhsm-hsm1-2022110919025126",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// Retry-After: 1 before each of the two polls.
	if len(f.polls) != 2 {
		t.Fatalf("%d polls", len(f.polls))
	}
	if d := f.polls[0].at.Sub(start); d < 900*time.Millisecond {
		t.Errorf("first poll after %v, want the 202's Retry-After (1s)", d)
	}
	if d := f.polls[1].at.Sub(f.polls[0].at); d < 900*time.Millisecond {
		t.Errorf("second poll %v after the first, want Retry-After (1s)", d)
	}
	if f.polls[0].path != "/restore/j1/pending" {
		t.Errorf("polled %s", f.polls[0].path)
	}
	s := f.starts[0]
	if s.method != "PUT" || s.path != "/restore" || s.body["folderToRestore"] != "mhsm-hsm1-2022110919025126" {
		t.Errorf("start %+v", s)
	}

	// Without Retry-After, the client's poll interval (1 ms here) is used;
	// a huge Retry-After is bounded, which a context deadline shows.
	f.retryAfter = "100000"
	f.pendingLeft = 1
	op, err = c.BeginSelectiveKeyRestore(ctx, hsmURL, "rsa1", wire.SelectiveKeyRestoreParameters{
		SASTokenParameters: wire.SASTokenParameter{StorageResourceURI: "https://acct.blob.core.windows.net/c", UseManagedIdentity: true},
		Folder:             "mhsm-hsm1-2022110919025126",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := f.starts[1]; s.path != "/keys/rsa1/restore" || s.body["folder"] != "mhsm-hsm1-2022110919025126" {
		t.Errorf("selective start %+v", s)
	} else if sas := s.body["sasTokenParameters"].(map[string]any); sas["useManagedIdentity"] != true || sas["token"] != nil {
		t.Errorf("selective SAS parameters %v", sas)
	}
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := op.Wait(dctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with Retry-After 100000: %v", err)
	}
}

func TestJobFailed(t *testing.T) {
	f, c, hsmURL := jobRegion(t)
	details := "Invalid backup provided"
	f.final = wire.FullBackupOperation{Status: "Failed", JobID: "j1", StatusDetails: &details,
		Error: &wire.ErrorDetail{Code: "BackupNotFound", Message: "no backup in folder mhsm-x"}}
	ctx := context.Background()
	op, err := c.BeginRestore(ctx, hsmURL, wire.RestoreOperationParameters{FolderToRestore: "mhsm-x"})
	if err != nil {
		t.Fatal(err)
	}
	err = op.Wait(ctx, nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != "BackupNotFound" || ce.Message != "no backup in folder mhsm-x" {
		t.Fatalf("error %v, want the job's code and message", err)
	}
	if !op.Done() || op.Status().Status != "Failed" || op.Err() != err {
		t.Errorf("after failure: done %v, %+v", op.Done(), op.Status())
	}
	n := len(f.polls)
	if err := op.Poll(ctx); !errors.As(err, &ce) || len(f.polls) != n {
		t.Errorf("Poll again: %v, %d more polls", err, len(f.polls)-n)
	}

	// An error of null (or all empty) falls back on the status details.
	f.final.Error = &wire.ErrorDetail{}
	op, _ = c.BeginRestore(ctx, hsmURL, wire.RestoreOperationParameters{FolderToRestore: "mhsm-x"})
	if err := op.Wait(ctx, nil); !errors.As(err, &ce) || ce.Code != "RestoreFailed" || ce.Message != details {
		t.Fatalf("error %v, want RestoreFailed: %s", err, details)
	}
}

func TestJobStartErrors(t *testing.T) {
	f, c, hsmURL := jobRegion(t)
	ctx := context.Background()
	_, err := c.BeginBackup(ctx, hsmURL, wire.SASTokenParameter{StorageResourceURI: "bad", Token: "t"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || ce.Code != "InvalidStorageUri" {
		t.Fatalf("start error %v", err)
	}
	if _, err := c.BeginSelectiveKeyRestore(ctx, hsmURL, "a/b", wire.SelectiveKeyRestoreParameters{}); err == nil {
		t.Error("key name with a slash accepted")
	}
	// Without Azure-AsyncOperation, the job's pending route is polled.
	f.statusPath = "-"
	op, err := c.PreBackup(ctx, hsmURL, wire.SASTokenParameter{StorageResourceURI: "https://a.blob.core.windows.net/c", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if f.starts[len(f.starts)-1].path != "/prebackup" || f.polls[len(f.polls)-1].path != "/backup/j1/pending" {
		t.Errorf("prebackup %+v, polled %+v", f.starts[len(f.starts)-1], f.polls[len(f.polls)-1])
	}
	if _, err := c.PreRestore(ctx, hsmURL, wire.RestoreOperationParameters{FolderToRestore: "f"}); err != nil {
		t.Fatal(err)
	}
	if p := f.starts[len(f.starts)-1]; p.method != "PUT" || p.path != "/prerestore" {
		t.Errorf("prerestore %+v", p)
	}
}
