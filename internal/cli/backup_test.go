package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"tresor/internal/cli"
	"tresor/internal/wire"
)

// jobFakeHSM serves the backup and restore routes of HSM hosts: a job
// answers InProgress once, then final (Succeeded with a folder by default).
type jobFakeHSM struct {
	mu     sync.Mutex
	final  wire.FullBackupOperation
	starts []jobStart // start requests, in order
	polls  []string   // polled paths with their query
}

type jobStart struct {
	route string // "POST /backup", …
	body  map[string]any
}

func (f *jobFakeHSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	write := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	start := int64(1668020571)
	if strings.HasSuffix(r.URL.Path, "/pending") {
		p := r.URL.Path
		if r.URL.RawQuery != "" {
			p += "?" + r.URL.RawQuery
		}
		f.polls = append(f.polls, p)
		write(http.StatusOK, f.final)
		return
	}
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	route := r.Method + " " + r.URL.Path
	f.starts = append(f.starts, jobStart{route: route, body: body})
	kind := "restore"
	if route == "POST /backup" {
		kind = "backup"
	}
	w.Header().Set("Azure-AsyncOperation", "https://"+r.Host+"/"+kind+"/j1/pending")
	w.Header().Set("Retry-After", "0")
	write(http.StatusAccepted, map[string]any{"status": "InProgress", "statusDetails": nil, "error": nil,
		"startTime": start, "endTime": nil, "jobId": "j1", "azureStorageBlobContainerUri": nil})
}

func jobRegion(t *testing.T) (*jobFakeHSM, map[string]string) {
	t.Helper()
	r, env := region(t)
	end := int64(1668020579)
	folder := "https://acct.blob.core.windows.net/backups/mhsm-hsm1-2022110919025126"
	f := &jobFakeHSM{final: wire.FullBackupOperation{Status: "Succeeded", JobID: "j1",
		StartTime: i64(1668020571), EndTime: &end, AzureStorageBlobContainerURI: &folder}}
	r.HSM = f
	return f, env
}

func TestBackupStart(t *testing.T) {
	f, env := jobRegion(t)
	out := ok(t, env, "backup", "start", "--hsm-name", "hsm1", "--storage-account-name", "acct",
		"--blob-container-name", "backups", "--storage-container-SAS-token", "?sv=2022&sig=abc")
	want := `{
  "endTime": "2022-11-09T19:02:59+00:00",
  "error": null,
  "folderUrl": "https://acct.blob.core.windows.net/backups/mhsm-hsm1-2022110919025126",
  "jobId": "j1",
  "startTime": "2022-11-09T19:02:51+00:00",
  "status": "Succeeded",
  "statusDetails": null
}
`
	if out != want {
		t.Errorf("output\n%s\nwant\n%s", out, want)
	}
	if len(f.starts) != 1 || f.starts[0].route != "POST /backup" {
		t.Fatalf("starts %+v", f.starts)
	}
	body := f.starts[0].body
	// The token goes as the user gave it; the URI is built from the account.
	if body["storageResourceUri"] != "https://acct.blob.core.windows.net/backups" || body["token"] != "?sv=2022&sig=abc" || len(body) != 2 {
		t.Errorf("request body %v", body)
	}
	if len(f.polls) != 1 || f.polls[0] != "/backup/j1/pending" {
		t.Errorf("polls %v", f.polls)
	}

	// --no-wait prints the job as it started, and does not poll.
	out = ok(t, env, "backup", "start", "--id", "https://hsm1."+"managedhsm.invalid:"+port(t, env), "--storage-resource-uri", "file:///srv/backups/",
		"-t", "x", "--no-wait")
	if got := decode[map[string]any](t, out); got["status"] != "InProgress" || got["folderUrl"] != nil || got["endTime"] != nil ||
		got["startTime"] != "2022-11-09T19:02:51+00:00" || got["jobId"] != "j1" || len(got) != 7 {
		t.Errorf("--no-wait output %q", out)
	}
	if len(f.polls) != 1 {
		t.Errorf("--no-wait polled")
	}
	if body := f.starts[1].body; body["storageResourceUri"] != "file:///srv/backups" {
		t.Errorf("trailing slash kept: %v", body)
	}

	// With a managed identity, no token is sent.
	ok(t, env, "backup", "start", "--hsm-name", "hsm1", "--storage-resource-uri", "https://acct.blob.core.windows.net/backups",
		"--use-managed-identity", "true", "-o", "none")
	if body := f.starts[2].body; body["useManagedIdentity"] != true || body["token"] != nil {
		t.Errorf("managed identity body %v", body)
	}
}

func TestBackupStartFailed(t *testing.T) {
	f, env := jobRegion(t)
	f.final = wire.FullBackupOperation{Status: "Failed", JobID: "j1",
		Error: &wire.ErrorDetail{Code: "StorageAuthenticationFailed", Message: "the SAS token was refused"}}
	res := tresor(t, env, "backup", "start", "--hsm-name", "hsm1", "--storage-resource-uri", "https://acct.blob.core.windows.net/backups", "-t", "bad")
	if res.code != 2 || res.stdout != "" || res.stderr != "tresor: error: StorageAuthenticationFailed: the SAS token was refused\n" {
		t.Errorf("failed backup: %+v", res)
	}
}

// TestStorageFlagErrors checks the flags of backup start and restore start
// without a server: every refusal is a usage error (exit 1) that names the
// problem, and nothing is sent.
func TestStorageFlagErrors(t *testing.T) {
	f, env := jobRegion(t)
	uri := []string{"--storage-resource-uri", "https://acct.blob.core.windows.net/backups"}
	tok := []string{"-t", "sv=1"}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := map[string]struct {
		args []string
		want string
	}{
		"no hsm":            {cat(uri, tok), "--hsm-name (or --id) is required"},
		"hsm and id":        {cat([]string{"--id", "https://hsm1.managedhsm.invalid"}, uri, tok), "give --hsm-name or --id, not both"},
		"no storage":        {tok, "Please specify --storage-resource-uri or --storage-account-name & --blob-container-name"},
		"uri and account":   {cat(uri, tok, []string{"--storage-account-name", "acct"}), "Please do not specify --storage-account-name or --blob-container-name if --storage-resource-uri is specified."},
		"uri and container": {cat(uri, tok, []string{"--blob-container-name", "c1"}), "Please do not specify --storage-account-name"},
		"account only":      {cat(tok, []string{"--storage-account-name", "acct"}), "Please specify --blob-container-name"},
		"container only":    {cat(tok, []string{"--blob-container-name", "backups"}), "Please specify --storage-account-name"},
		"no token":          {uri, "Please specify --storage-container-SAS-token, or --use-managed-identity true"},
		"blank token":       {cat(uri, []string{"-t", " "}), "Please specify --storage-container-SAS-token"},
		"identity false":    {cat(uri, []string{"--use-managed-identity", "false"}), "Please specify --storage-container-SAS-token"},
		"token and identity": {cat(uri, tok, []string{"--use-managed-identity"}),
			"--storage-container-SAS-token and --use-managed-identity true are mutually exclusive"},
		"uri with SAS":  {cat([]string{"--storage-resource-uri", "https://acct.blob.core.windows.net/backups?sv=1"}, tok), "is not a container URI"},
		"relative uri":  {cat([]string{"--storage-resource-uri", "backups"}, tok), "is not a container URI"},
		"bad account":   {cat([]string{"--storage-account-name", "Acct_1", "--blob-container-name", "backups"}, tok), "--storage-account-name \"Acct_1\": a storage account name has 3 to 24"},
		"bad container": {cat([]string{"--storage-account-name", "acct", "--blob-container-name", "Backups--x"}, tok), "--blob-container-name \"Backups--x\""},
		"extra arg":     {cat(uri, tok, []string{"oops"}), "unknown command \"oops\""},
	}
	for _, command := range [][]string{{"backup", "start"}, {"restore", "start", "--backup-folder", "mhsm-x"}} {
		for name, tc := range tests {
			t.Run(command[0]+"/"+name, func(t *testing.T) {
				args := append(append([]string{}, command...), tc.args...)
				if name != "no hsm" {
					args = append(args, "--hsm-name", "hsm1")
				}
				res := tresor(t, env, args...)
				if res.code != 1 || !strings.HasPrefix(res.stderr, "tresor: error: ") || !strings.Contains(res.stderr, tc.want) {
					t.Fatalf("exit %d, stderr %q; want exit 1 and %q", res.code, res.stderr, tc.want)
				}
				if !strings.Contains(res.stderr, "tresor: hint: see 'tresor "+command[0]+" start --help'") && name != "extra arg" {
					t.Errorf("no usage hint: %q", res.stderr)
				}
			})
		}
	}
	if len(f.starts) != 0 {
		t.Errorf("a refused command reached the server: %+v", f.starts)
	}
}

func TestBackupHelp(t *testing.T) {
	out := ok(t, nil, "backup", "start", "--help")
	for _, want := range []string{
		"--hsm-name", "--id", "--storage-resource-uri", "--storage-account-name", "--blob-container-name",
		"-t, --storage-container-SAS-token", "--use-managed-identity", "--no-wait",
		"The SAS token pointing to an Azure Blob storage container", "Name of Blob Container",
		"blob.core.windows.net",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("backup start --help lacks %q", want)
		}
	}
	out = ok(t, nil, "restore", "start", "--help")
	for _, want := range []string{"--backup-folder", "--key-name", "--storage-container-SAS-token", "--use-managed-identity", "--no-wait"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore start --help lacks %q", want)
		}
	}
	out = ok(t, nil, "--help")
	for _, cmd := range []string{"backup", "restore"} {
		if !strings.Contains(out, "  "+cmd+" ") {
			t.Errorf("help lacks %s", cmd)
		}
	}
}

// TestBackupProgressOnTerminal runs the wait with stderr on a character
// device (/dev/null), so that the progress bar is drawn: from a spinner (no
// total) to a bar (the fake's progress), then cleared.
func TestBackupProgressOnTerminal(t *testing.T) {
	f, env := jobRegion(t)
	f.final.Progress = &wire.JobProgress{Done: 3, Total: 3}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer devnull.Close()
	var out bytes.Buffer
	code := cli.Run(context.Background(), cli.Env{Stdout: &out, Stderr: devnull, Getenv: func(k string) string { return env[k] }},
		[]string{"restore", "start", "--hsm-name", "hsm1", "--storage-resource-uri", "https://acct.blob.core.windows.net/backups", "-t", "x",
			"--backup-folder", "mhsm-x", "--query", "status", "-o", "tsv"})
	if code != 0 || out.String() != "Succeeded\n" {
		t.Fatalf("exit %d, output %q", code, out.String())
	}
}
