package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tresor/internal/pkgdoc"
)

func TestDocumentation(t *testing.T) { pkgdoc.CheckWithFields(t, ".") }

func event(i int) Event {
	return Event{
		Time:          time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
		ResourceID:    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/managedHSMs/hsm1",
		OperationName: "KeySign", ResultType: ResultSuccess, ResultSignature: "OK", DurationMs: int64(i),
		CallerIPAddress: "127.0.0.1", Identity: &Identity{Claim: Claim{ObjectID: fmt.Sprintf("oid-%d", i)}},
		Properties: Properties{ID: "https://hsm1.managedhsm.localhost/keys/k", RequestURI: "https://hsm1.managedhsm.localhost/keys/k/sign", HTTPMethod: "POST", HTTPStatusCode: 200},
	}
}

// writeLog writes n events to a new log in dir and returns its path.
func writeLog(t *testing.T, dir string, n int, opts Options) string {
	t.Helper()
	path := filepath.Join(dir, "audit.log")
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := l.Write(context.Background(), event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func TestWriteVerify(t *testing.T) {
	path := writeLog(t, t.TempDir(), 5, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	ls := lines(t, path)
	if len(ls) != 5 {
		t.Fatalf("%d lines, want 5", len(ls))
	}
	if !bytes.Contains(ls[0], []byte(`"seq":1,"prevHash":"`+ZeroHash+`"`)) || !bytes.Contains(ls[0], []byte(`"category":"AuditEvent"`)) {
		t.Errorf("first line %s", ls[0])
	}
	if want := `"prevHash":"` + hashLine(bytes.TrimSuffix(ls[0], []byte("\n"))) + `"`; !bytes.Contains(ls[1], []byte(want)) {
		t.Errorf("second line %s lacks %s", ls[1], want)
	}
	f, _ := os.Open(path)
	defer f.Close()
	var v Verifier
	n, err := v.Verify(f)
	if err != nil || n != 5 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	if seq, h := v.Last(); seq != 5 || h != hashLine(bytes.TrimSuffix(ls[4], []byte("\n"))) {
		t.Errorf("Last = %d, %s", seq, h)
	}
}

func TestVerifyTampering(t *testing.T) {
	path := writeLog(t, t.TempDir(), 6, Options{})
	orig := lines(t, path)
	join := func(ls [][]byte) []byte { return bytes.Join(ls, nil) }
	edit := func(f func(ls [][]byte) [][]byte) []byte {
		ls := make([][]byte, len(orig))
		for i := range orig {
			ls[i] = bytes.Clone(orig[i])
		}
		return join(f(ls))
	}
	tests := []struct {
		name     string
		data     []byte
		wantLine int
		want     string
	}{
		{"delete line 3", edit(func(ls [][]byte) [][]byte { return append(ls[:2], ls[3:]...) }), 3, "seq is 4 where 3 was expected"},
		{"delete line 1", edit(func(ls [][]byte) [][]byte { return ls[1:] }), 1, "the first line has seq 2"},
		{"edit line 2", edit(func(ls [][]byte) [][]byte {
			ls[1] = bytes.Replace(ls[1], []byte("oid-1"), []byte("oid-X"), 1)
			return ls
		}), 3, "hash does not match line 2"},
		{"edit line 5 (durationMs)", edit(func(ls [][]byte) [][]byte {
			ls[4] = bytes.Replace(ls[4], []byte(`"durationMs":4`), []byte(`"durationMs":0`), 1)
			return ls
		}), 6, "hash does not match line 5"},
		{"reorder lines 2 and 3", edit(func(ls [][]byte) [][]byte { ls[1], ls[2] = ls[2], ls[1]; return ls }), 2, "seq is 3 where 2 was expected"},
		{"insert a copy of line 2", edit(func(ls [][]byte) [][]byte {
			return append(ls[:2], append([][]byte{bytes.Clone(ls[1])}, ls[2:]...)...)
		}), 3, "seq is 2 where 3 was expected"},
		{"insert a forged line 3", edit(func(ls [][]byte) [][]byte {
			forged := []byte(`{"seq":3,"prevHash":"` + hashLine(bytes.TrimSuffix(ls[1], []byte("\n"))) + `","operationName":"KeyGet"}` + "\n")
			return append(ls[:2], append([][]byte{forged}, ls[2:]...)...)
		}), 4, "seq is 3 where 4 was expected"},
		{"garbage line", edit(func(ls [][]byte) [][]byte { ls[2] = []byte("not json\n"); return ls }), 3, "is not a JSON object"},
		{"broken JSON", edit(func(ls [][]byte) [][]byte { ls[2] = ls[2][:len(ls[2])/2]; ls[2] = append(ls[2], '\n'); return ls }), 3, "is not valid JSON"},
		{"empty line", edit(func(ls [][]byte) [][]byte { return append(ls[:2], append([][]byte{[]byte("\n")}, ls[2:]...)...) }), 3, "empty line"},
		{"no seq", edit(func(ls [][]byte) [][]byte { ls[0] = bytes.Replace(ls[0], []byte(`"seq":1,`), nil, 1); return ls }), 1, "has no seq"},
		{"bad prevHash", edit(func(ls [][]byte) [][]byte { ls[0] = bytes.Replace(ls[0], []byte(ZeroHash), []byte("00"), 1); return ls }), 1, "not 64 lower-case hex"},
		{"first line not zeros", edit(func(ls [][]byte) [][]byte {
			ls[0] = bytes.Replace(ls[0], []byte(ZeroHash), []byte(strings.Repeat("1", 64)), 1)
			return ls
		}), 1, "the first line has seq 1 and a prevHash that is not zeros"},
		{"cut mid-line", join(orig)[:len(join(orig))-10], 6, "incomplete"},
		{"data after the object", edit(func(ls [][]byte) [][]byte {
			ls[4] = append(bytes.TrimSuffix(ls[4], []byte("\n")), []byte(` {}`+"\n")...)
			return ls
		}), 5, "has data after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(bytes.NewReader(tt.data))
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %v, want a VerifyError", err)
			}
			if ve.Line != tt.wantLine || !strings.Contains(ve.Reason, tt.want) {
				t.Errorf("Verify = %v, want line %d: …%s…", err, tt.wantLine, tt.want)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("audit: line %d: ", tt.wantLine)) {
				t.Errorf("message %q", err)
			}
		})
	}
	// A cut at a line boundary is not found by the chain alone (docs).
	if n, err := Verify(bytes.NewReader(join(orig[:4]))); err != nil || n != 4 {
		t.Errorf("truncated tail: Verify = %d, %v", n, err)
	}
}

func TestRotationContinuesChain(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	opts := Options{MaxSize: 1500, Now: func() time.Time { now = now.Add(time.Second); return now }}
	path := writeLog(t, dir, 20, opts)
	// Reopen: the chain continues from the current file's last line.
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if seq, _ := l.Last(); seq != 20 {
		t.Errorf("reopened at seq %d, want 20", seq)
	}
	for i := range 5 {
		if err := l.Write(context.Background(), event(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	files, err := filepath.Glob(filepath.Join(dir, "audit-*.log"))
	if err != nil || len(files) < 3 {
		t.Fatalf("rotated files %v, %v: want at least 3", files, err)
	}
	var v Verifier
	total := 0
	for _, f := range append(files, path) {
		fi, _ := os.Stat(f)
		if fi.Size() > opts.MaxSize {
			t.Errorf("%s has %d bytes, more than %d", f, fi.Size(), opts.MaxSize)
		}
		r, _ := os.Open(f)
		n, err := v.Verify(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		total += n
	}
	if total != 25 {
		t.Errorf("%d lines over the files, want 25", total)
	}
	// Partial: the oldest file deleted, the rest still verifies, and a
	// change in it is still found.
	p := Verifier{Partial: true}
	for _, f := range append(files[1:], path) {
		r, _ := os.Open(f)
		_, err := p.Verify(r)
		r.Close()
		if err != nil {
			t.Fatalf("partial %s: %v", f, err)
		}
	}
	if seq, _ := p.Last(); p.First() <= 1 || seq != 25 || p.Lines() != 26-int(p.First()) {
		t.Errorf("partial: first %d, last %d, %d lines", p.First(), seq, p.Lines())
	}
	second := lines(t, files[1])
	second[0] = bytes.Replace(second[0], []byte("oid-"), []byte("OID-"), 1)
	if _, err := (&Verifier{Partial: true}).Verify(bytes.NewReader(bytes.Join(second, nil))); err == nil || !strings.Contains(err.Error(), "line 2: hash does not match line 1") {
		t.Errorf("partial with line 1 changed: %v", err)
	}

	// Files out of order, or one left out, break the chain.
	var v2 Verifier
	r, _ := os.Open(files[1])
	defer r.Close()
	if _, err := v2.Verify(r); err == nil || !strings.Contains(err.Error(), "line 1: the first line has seq") {
		t.Errorf("second file alone: %v", err)
	}
}

func TestReopenAfterRotationContinuesFromRotatedFile(t *testing.T) {
	dir := t.TempDir()
	path := writeLog(t, dir, 3, Options{})
	if err := os.Rename(path, filepath.Join(dir, "audit-20260101T000000.000000000Z.log")); err != nil {
		t.Fatal(err)
	}
	writeLog(t, dir, 2, Options{}) // a new, empty current file: continue from the rotated one
	var v Verifier
	for _, f := range []string{filepath.Join(dir, "audit-20260101T000000.000000000Z.log"), path} {
		r, _ := os.Open(f)
		if _, err := v.Verify(r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		r.Close()
	}
	if seq, _ := v.Last(); seq != 5 {
		t.Errorf("last seq %d, want 5", seq)
	}
}

func TestOpenRepairsTornLastLine(t *testing.T) {
	dir := t.TempDir()
	path := writeLog(t, dir, 3, Options{})
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":4,"prevHash":"ab`) // a crash mid-write
	f.Close()
	path = writeLog(t, dir, 2, Options{})
	r, _ := os.Open(path)
	defer r.Close()
	if n, err := Verify(r); err != nil || n != 5 {
		t.Errorf("Verify = %d, %v", n, err)
	}
}

func TestOpenRefusesDamagedLastLine(t *testing.T) {
	dir := t.TempDir()
	path := writeLog(t, dir, 2, Options{})
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("garbage\n")
	f.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "is not a JSON object") {
		t.Errorf("Open = %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	for name, opts := range map[string]Options{
		"fsync each group": {MaxSize: 64 << 10},
		"fsync every 5ms":  {MaxSize: 64 << 10, SyncInterval: 5 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) { testConcurrentWriters(t, opts) })
	}
}

func testConcurrentWriters(t *testing.T, opts Options) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := l.Write(context.Background(), event(w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if seq, _ := l.Last(); seq != writers*each {
		t.Errorf("Last seq %d, want %d", seq, writers*each)
	}
	l.Close()
	if err := l.Write(context.Background(), event(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "audit-*.log"))
	var v Verifier
	for _, f := range append(files, path) {
		r, _ := os.Open(f)
		if _, err := v.Verify(r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		r.Close()
	}
	if v.Lines() != writers*each {
		t.Errorf("%d lines, want %d", v.Lines(), writers*each)
	}
}

// TestFailClosed: a write that cannot reach the disk fails, and so does
// every later one; what is on disk still verifies.
func TestFailClosed(t *testing.T) {
	tests := map[string]struct {
		maxSize int64
		breakIt func(t *testing.T, l *Log, dir string) (logFile string)
	}{
		// The next rotation cannot rename the file: the directory moved away.
		"rotation fails": {1000, func(t *testing.T, l *Log, dir string) string {
			moved := filepath.Join(t.TempDir(), "moved")
			if err := os.Rename(dir, moved); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(moved, "audit.log")
		}},
		// The file descriptor is closed under the log.
		"closed file": {0, func(t *testing.T, l *Log, dir string) string {
			l.f.Close()
			return filepath.Join(dir, "audit.log")
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			l, err := Open(filepath.Join(dir, "audit.log"), Options{MaxSize: tt.maxSize})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := l.Write(ctx, event(0)); err != nil {
				t.Fatal(err)
			}
			file := tt.breakIt(t, l, dir)
			var failed error
			for i := 1; i < 20 && failed == nil; i++ {
				failed = l.Write(ctx, event(i))
			}
			if failed == nil {
				t.Fatal("every write succeeded")
			}
			if err := l.Write(ctx, event(99)); err == nil || err.Error() != failed.Error() {
				t.Errorf("write after a failure = %v, want the first failure %v", err, failed)
			}
			seq, _ := l.Last()
			l.Close()
			r, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if n, err := Verify(r); err != nil || uint64(n) != seq {
				t.Errorf("Verify = %d, %v; want %d lines", n, err, seq)
			}
		})
	}
}

// TestSyncInterval: with a sync interval, a Write returns once its line is
// in the file (before any fsync), the timer fsyncs what writes left
// unsynced, and Close syncs the rest.
func TestSyncInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := l.Write(context.Background(), event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.syncs.Load(); n != 0 {
		t.Errorf("%d fsyncs within the first interval, want 0", n)
	}
	b, _ := os.ReadFile(path)
	if got := bytes.Count(b, []byte("\n")); got != 3 {
		t.Errorf("%d lines in the file after 3 writes returned, want 3", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := l.syncs.Load(); n != 1 {
		t.Errorf("%d fsyncs after Close, want 1", n)
	}

	// The timer: lines written and then left alone are fsynced.
	l, err = Open(path, Options{SyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Write(context.Background(), event(9)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.syncs.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sync timer did not fsync a line left unsynced")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
