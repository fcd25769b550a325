package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// manifestObject is an object entry of a test manifest.
type manifestObject struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Keys   int    `json:"keys,omitempty"`
}

// writeObject writes a container object of size bytes, modified at mod.
func writeObject(t *testing.T, dir, name string, data []byte, mod time.Time) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// writeManifest writes folder's manifest as the backup service does (with
// the sealed part, which backup list ignores) and returns its size.
func writeManifest(t *testing.T, dir, folder, source string, created time.Time, keys int, objs []manifestObject) int64 {
	t.Helper()
	data, err := json.Marshal(map[string]any{
		"format": "tresor.backup/v1", "folder": folder, "sourceHsm": source, "created": created,
		"rootKeyId": "0123abcd", "keys": keys, "deletedKeys": 0, "versions": keys + 1, "roleAssignments": 2,
		"roleDefinitions": 0, "settings": 1, "objects": objs, "sealed": []byte("not really sealed"),
	})
	if err != nil {
		t.Fatal(err)
	}
	writeObject(t, dir, folder+"/manifest", data, created.Add(time.Minute))
	return int64(len(data))
}

// backupContainer makes a container directory with: a complete folder, an
// interrupted one (objects, no manifest), one whose manifest lists a
// missing object, one with an object of the wrong size, and objects that
// are no backup folders. It returns the directory and the sizes of the
// folders with a manifest (which include the manifest's).
func backupContainer(t *testing.T) (dir string, sizes map[string]int64) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "backups")
	sizes = map[string]int64{}
	at := time.Date(2026, 4, 19, 15, 24, 30, 0, time.UTC)

	complete := "mhsm-hsm1-2026041915243012"
	writeObject(t, dir, complete+"/keys-000001", make([]byte, 100), at)
	writeObject(t, dir, complete+"/policy-000002", make([]byte, 50), at)
	sizes[complete] = 150 + writeManifest(t, dir, complete, "hsm1", at.Add(120*time.Millisecond), 3, []manifestObject{
		{Name: "keys-000001", Kind: "keys", Size: 100, SHA256: strings.Repeat("a", 64), Keys: 3},
		{Name: "policy-000002", Kind: "policy", Size: 50, SHA256: strings.Repeat("b", 64)},
	})

	interrupted := "mhsm-hsm1-2026041915250000"
	writeObject(t, dir, interrupted+"/keys-000001", make([]byte, 30), at.Add(30*time.Second))
	writeObject(t, dir, interrupted+"/keys-000002", make([]byte, 20), at.Add(31*time.Second))

	missing := "mhsm-hsm2-2026041915260000"
	writeObject(t, dir, missing+"/keys-000001", make([]byte, 10), at)
	sizes[missing] = 10 + writeManifest(t, dir, missing, "HSM2", at.Add(time.Hour), 2, []manifestObject{
		{Name: "keys-000001", Kind: "keys", Size: 10, SHA256: strings.Repeat("c", 64), Keys: 1},
		{Name: "keys-000002", Kind: "keys", Size: 10, SHA256: strings.Repeat("d", 64), Keys: 1},
	})

	wrongSize := "mhsm-hsm3-2026041915270000"
	writeObject(t, dir, wrongSize+"/keys-000001", make([]byte, 11), at)
	sizes[wrongSize] = 11 + writeManifest(t, dir, wrongSize, "hsm3", at.Add(2*time.Hour), 1, []manifestObject{
		{Name: "keys-000001", Kind: "keys", Size: 10, SHA256: strings.Repeat("e", 64), Keys: 1},
	})

	// Not backup folders: another directory (even one holding a folder-like
	// name), an object at the top, a folder name of the wrong shape.
	writeObject(t, dir, "other/mhsm-hsm1-2026041915243012/manifest", []byte("{}"), at)
	writeObject(t, dir, "other/notes.txt", []byte("hello"), at)
	writeObject(t, dir, "mhsm-hsm1-2026041915243099", []byte("an object, not a folder"), at)
	writeObject(t, dir, "mhsm-HSM1-2026041915243012/keys-000001", []byte("x"), at)
	return dir, sizes
}

func TestBackupList(t *testing.T) {
	dir, sizes := backupContainer(t)
	size := func(folder string) string { return strconv.FormatInt(sizes[folder], 10) }
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	list := func(dir string, args ...string) []string {
		return append([]string{"backup", "list", "--storage-resource-uri", "file://" + dir, "--storage-container-SAS-token", "x"}, args...)
	}
	wantJSON := `[
  {
    "complete": true,
    "created": "2026-04-19T15:24:30+00:00",
    "folder": "mhsm-hsm1-2026041915243012",
    "keys": 3,
    "size": ` + size("mhsm-hsm1-2026041915243012") + `,
    "sourceHsm": "hsm1"
  },
  {
    "complete": false,
    "created": "2026-04-19T15:25:01+00:00",
    "folder": "mhsm-hsm1-2026041915250000",
    "keys": null,
    "size": 50,
    "sourceHsm": null
  },
  {
    "complete": false,
    "created": "2026-04-19T16:24:30+00:00",
    "folder": "mhsm-hsm2-2026041915260000",
    "keys": 2,
    "size": ` + size("mhsm-hsm2-2026041915260000") + `,
    "sourceHsm": "HSM2"
  },
  {
    "complete": false,
    "created": "2026-04-19T17:24:30+00:00",
    "folder": "mhsm-hsm3-2026041915270000",
    "keys": 1,
    "size": ` + size("mhsm-hsm3-2026041915270000") + `,
    "sourceHsm": "hsm3"
  }
]
`
	for _, tc := range []struct {
		name   string
		args   []string
		stdout string // exact
	}{
		{name: "json", args: list(dir), stdout: wantJSON},
		{name: "empty container", args: list(empty), stdout: "[]\n"},
		{name: "empty container table", args: list(empty, "-o", "table"), stdout: ""},
		{name: "table", args: list(dir, "-o", "table"), stdout: fmt.Sprintf(`Folder                      SourceHsm  Keys  Size  Created                    Complete
--------------------------  ---------  ----  ----  -------------------------  --------
mhsm-hsm1-2026041915243012  hsm1          3  %4s  2026-04-19T15:24:30+00:00  True
mhsm-hsm1-2026041915250000                     50  2026-04-19T15:25:01+00:00  False
mhsm-hsm2-2026041915260000  HSM2          2  %4s  2026-04-19T16:24:30+00:00  False
mhsm-hsm3-2026041915270000  hsm3          1  %4s  2026-04-19T17:24:30+00:00  False
`, size("mhsm-hsm1-2026041915243012"), size("mhsm-hsm2-2026041915260000"), size("mhsm-hsm3-2026041915270000"))},
		{name: "query", args: list(dir, "--query", "[?complete].folder", "-o", "tsv"), stdout: "mhsm-hsm1-2026041915243012\n"},
		// tsv prints the booleans of a row as az does, Python's True/False.
		{name: "query fields", args: list(dir, "--query", "[].[folder, sourceHsm, keys, complete]", "-o", "tsv"), stdout: `mhsm-hsm1-2026041915243012	hsm1	3	True
mhsm-hsm1-2026041915250000	None	None	False
mhsm-hsm2-2026041915260000	HSM2	2	False
mhsm-hsm3-2026041915270000	hsm3	1	False
`},
		{name: "trailing slash", args: list(dir+"/", "--query", "length(@)"), stdout: "4\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// No environment: listing needs neither a server nor a sign-in.
			r := tresor(t, nil, tc.args...)
			if r.code != 0 {
				t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
			}
			if r.stdout != tc.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tc.stdout)
			}
		})
	}
}

func TestBackupListErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		args   []string
		stderr []string // lines stderr must contain
	}{
		{
			name:   "missing container",
			args:   []string{"--storage-resource-uri", "file://" + dir + "/nowhere", "-t", "x"},
			stderr: []string{"tresor: error: blob: container directory " + dir + "/nowhere does not exist", "tresor: hint: check --storage-resource-uri or --blob-container-name"},
		},
		{
			name:   "relative file URI",
			args:   []string{"--storage-resource-uri", "file://backups", "-t", "x"},
			stderr: []string{"tresor: error: blob: invalid file URI"},
		},
		{
			name:   "no token",
			args:   []string{"--storage-resource-uri", "file://" + dir},
			stderr: []string{"tresor: error: Please specify --storage-container-SAS-token\n", "tresor: hint: see 'tresor backup list --help'"},
		},
		{
			name:   "no managed identity",
			args:   []string{"--storage-resource-uri", "file://" + dir, "--use-managed-identity", "true"},
			stderr: []string{"unknown flag: --use-managed-identity"},
		},
		{
			name:   "uri and account",
			args:   []string{"--storage-resource-uri", "file://" + dir, "--storage-account-name", "acct", "-t", "x"},
			stderr: []string{"tresor: error: Please do not specify --storage-account-name"},
		},
		{
			name:   "SAS in the URI",
			args:   []string{"--storage-resource-uri", "https://acct.blob.core.windows.net/backups?sig=secret", "-t", "x"},
			stderr: []string{"tresor: error: --storage-resource-uri"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tresor(t, nil, append([]string{"backup", "list"}, tc.args...)...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1 (a local error)", r.code)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if strings.Contains(r.stderr, "sig=") {
				t.Errorf("stderr shows the SAS signature:\n%s", r.stderr)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
		})
	}
}

func TestBackupListHelp(t *testing.T) {
	out := ok(t, nil, "backup", "list", "--help")
	for _, want := range []string{
		"--storage-resource-uri", "--storage-account-name", "--blob-container-name", "-t, --storage-container-SAS-token",
		"a directory of this machine", "no security domain", "proves nothing", "tresor restore start' verifies",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("backup list --help lacks %q", want)
		}
	}
	if strings.Contains(out, "--use-managed-identity") || strings.Contains(out, "--hsm-name") {
		t.Errorf("backup list --help offers server-side flags:\n%s", out)
	}
	if out := ok(t, nil, "backup", "--help"); !strings.Contains(out, "  list ") {
		t.Errorf("backup --help lacks list:\n%s", out)
	}
}
