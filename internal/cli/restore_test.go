package cli_test

import (
	"strings"
	"testing"

	"tresor/internal/wire"
)

func TestRestoreStart(t *testing.T) {
	f, env := jobRegion(t)
	details := "Number of successful key versions restored: 2, Number of key versions could not overwrite: 0"
	f.final = wire.FullBackupOperation{Status: "Succeeded", JobID: "j1", StartTime: i64(1668020585), EndTime: i64(1668020591), StatusDetails: &details}
	storage := []string{"--storage-resource-uri", "https://acct.blob.core.windows.net/backups", "-t", "?sv=1&sig=s"}
	folder := "mhsm-hsm1-2022110919025126"

	// Full restore: folderToRestore is the folder, the URI the container's.
	out := ok(t, env, append([]string{"restore", "start", "--hsm-name", "hsm1", "--backup-folder", folder}, storage...)...)
	want := `{
  "endTime": "2022-11-09T19:03:11+00:00",
  "error": null,
  "jobId": "j1",
  "startTime": "2022-11-09T19:03:05+00:00",
  "status": "Succeeded",
  "statusDetails": "` + details + `"
}
`
	if out != want {
		t.Errorf("output\n%s\nwant\n%s", out, want)
	}
	s := f.starts[0]
	sas, _ := s.body["sasTokenParameters"].(map[string]any)
	if s.route != "PUT /restore" || s.body["folderToRestore"] != folder || len(s.body) != 2 ||
		sas["storageResourceUri"] != "https://acct.blob.core.windows.net/backups" || sas["token"] != "?sv=1&sig=s" {
		t.Errorf("full restore request %s %v", s.route, s.body)
	}

	// --key-name: the selective route, with "folder".
	ok(t, env, append([]string{"restore", "start", "--hsm-name", "hsm1", "--backup-folder", folder, "--key-name", "rsa1", "-o", "none"}, storage...)...)
	s = f.starts[1]
	if s.route != "PUT /keys/rsa1/restore" || s.body["folder"] != folder || s.body["folderToRestore"] != nil {
		t.Errorf("selective restore request %s %v", s.route, s.body)
	}
	for _, p := range f.polls {
		if p != "/restore/j1/pending" {
			t.Errorf("polled %s", p)
		}
	}

	// --no-wait: the job as it started.
	n := len(f.polls)
	out = ok(t, env, append([]string{"restore", "start", "--hsm-name", "hsm1", "--backup-folder", folder, "--no-wait", "--query", "join(' ', [status, jobId])", "-o", "tsv"}, storage...)...)
	if out != "InProgress j1\n" || len(f.polls) != n {
		t.Errorf("--no-wait: %q, %d polls", out, len(f.polls)-n)
	}
}

func TestRestoreStartFailed(t *testing.T) {
	f, env := jobRegion(t)
	details := "Invalid backup provided"
	f.final = wire.FullBackupOperation{Status: "Failed", JobID: "j1", StatusDetails: &details}
	res := tresor(t, env, "restore", "start", "--hsm-name", "hsm1", "--backup-folder", "bad_folder",
		"--storage-account-name", "acct", "--blob-container-name", "backups", "-t", "sv=1")
	if res.code != 2 || res.stdout != "" || res.stderr != "tresor: error: RestoreFailed: Invalid backup provided\n" {
		t.Errorf("failed restore: %+v", res)
	}
}

func TestRestoreFlagErrors(t *testing.T) {
	f, env := jobRegion(t)
	base := []string{"restore", "start", "--hsm-name", "hsm1", "--storage-resource-uri", "https://acct.blob.core.windows.net/backups", "-t", "sv=1"}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no folder":      {nil, "the following arguments are required: --backup-folder"},
		"slash folder":   {[]string{"--backup-folder", "/"}, "the following arguments are required: --backup-folder"},
		"empty key":      {[]string{"--backup-folder", "mhsm-x", "--key-name", ""}, "--key-name \"\" is not a key name"},
		"key with slash": {[]string{"--backup-folder", "mhsm-x", "--key-name", "a/b"}, "--key-name \"a/b\" is not a key name"},
	} {
		t.Run(name, func(t *testing.T) {
			res := tresor(t, env, append(append([]string{}, base...), tc.args...)...)
			if res.code != 1 || !strings.Contains(res.stderr, "tresor: error: "+tc.want) {
				t.Fatalf("exit %d, stderr %q; want %q", res.code, res.stderr, tc.want)
			}
		})
	}
	if len(f.starts) != 0 {
		t.Errorf("a refused restore reached the server")
	}
}
