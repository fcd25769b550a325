package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tresor/internal/audit"
)

// auditFiles writes n events through a log that rotates every few lines
// and returns its files in order (rotated ones first).
func auditFiles(t *testing.T, n int) []string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := audit.Open(path, audit.Options{MaxSize: 1200, Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		e := audit.Event{Time: clock, OperationName: "KeySign", ResultType: audit.ResultSuccess, ResultSignature: "OK",
			Properties: audit.Properties{RequestURI: "https://hsm1.managedhsm.localhost/keys/k/sign", HTTPMethod: "POST", HTTPStatusCode: 200, RequestID: strings.Repeat("r", i%7)}}
		if err := l.Write(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rotated, _ := filepath.Glob(filepath.Join(dir, "audit-*.log"))
	if len(rotated) < 2 {
		t.Fatalf("only %d rotated files", len(rotated))
	}
	return append(rotated, path)
}

func TestAuditVerify(t *testing.T) {
	files := auditFiles(t, 20)
	out := decode[[]map[string]any](t, ok(t, nil, append([]string{"audit", "verify"}, files...)...))
	if len(out) != len(files) || out[len(out)-1]["lastSeq"] != float64(20) || out[0]["result"] != "ok" || out[0]["file"] != files[0] ||
		out[0]["firstSeq"] != float64(1) || out[1]["firstSeq"] != out[0]["lastSeq"].(float64)+1 {
		t.Errorf("verify printed %v", out)
	}
	if got := ok(t, nil, "audit", "verify", "-o", "tsv", "--query", "[-1].lastSeq", files[0], files[1], files[2]); strings.TrimSpace(got) == "" {
		t.Errorf("--query printed nothing")
	}

	// --partial: the oldest file deleted.
	part := decode[[]map[string]any](t, ok(t, nil, append([]string{"audit", "verify", "--partial"}, files[1:]...)...))
	if len(part) != len(files)-1 || part[0]["firstSeq"] != out[1]["firstSeq"] || part[len(part)-1]["lastHash"] != out[len(out)-1]["lastHash"] {
		t.Errorf("--partial printed %v, the whole log %v", part, out)
	}
	if r := tresor(t, nil, append([]string{"audit", "verify"}, files[1:]...)...); r.code != 1 || !strings.Contains(r.stderr, "tresor: hint: give every file of the log in order") {
		t.Errorf("without --partial: exit %d, %s", r.code, r.stderr)
	}

	// tamper returns the files with the first one changed by f.
	tamper := func(t *testing.T, f func(ls [][]byte) [][]byte) []string {
		b, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		ls := bytes.SplitAfter(b, []byte("\n"))
		ls = ls[:len(ls)-1]
		if len(ls) < 3 {
			t.Fatalf("%s has %d lines", files[0], len(ls))
		}
		p := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(p, bytes.Join(f(ls), nil), 0o600); err != nil {
			t.Fatal(err)
		}
		return append([]string{p}, files[1:]...)
	}
	tests := map[string]struct {
		args func(t *testing.T) []string
		want string
	}{
		"a rotated file left out": {func(t *testing.T) []string { return append([]string{files[0]}, files[2:]...) },
			"audit: " + files[2] + ": line 1: seq is"},
		"files out of order": {func(t *testing.T) []string { return []string{files[1], files[0]} },
			"audit: " + files[1] + ": line 1: the first line has seq"},
		"a line deleted": {func(t *testing.T) []string {
			return tamper(t, func(ls [][]byte) [][]byte { return append(ls[:1], ls[2:]...) })
		}, ": line 2: seq is"},
		"two lines reordered": {func(t *testing.T) []string {
			return tamper(t, func(ls [][]byte) [][]byte { ls[1], ls[2] = ls[2], ls[1]; return ls })
		}, ": line 2: seq is 3 where 2 was expected"},
		"a line changed": {func(t *testing.T) []string {
			return tamper(t, func(ls [][]byte) [][]byte {
				ls[0] = bytes.Replace(ls[0], []byte("KeySign"), []byte("KeyGet"), 1)
				return ls
			})
		}, ": line 2: hash does not match line 1 (a line was changed, removed or reordered)"},
		"a missing file": {func(t *testing.T) []string { return []string{filepath.Join(t.TempDir(), "nope.log")} }, "no such file"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := tresor(t, nil, append([]string{"audit", "verify"}, tt.args(t)...)...)
			if r.code != 1 || !strings.HasPrefix(r.stderr, "tresor: error: audit: ") || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
				t.Errorf("exit %d\nstdout %s\nstderr %s\nwant …%s…", r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
	if r := tresor(t, nil, "audit", "verify"); r.code != 1 || !strings.Contains(r.stderr, "give at least one audit log file") {
		t.Errorf("no file: exit %d, %s", r.code, r.stderr)
	}
}
