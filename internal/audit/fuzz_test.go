package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzVerify feeds Verify arbitrary files. Properties: it never panics; an
// error is an I/O-free *VerifyError naming a line that exists; on success
// the count is the number of lines, and appending any accepted line again
// breaks the chain (a replayed line is always found).
func FuzzVerify(f *testing.F) {
	path := filepath.Join(f.TempDir(), "audit.log")
	l, err := Open(path, Options{})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 4 {
		if err := l.Write(context.Background(), event(i)); err != nil {
			f.Fatal(err)
		}
	}
	l.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add([]byte(`{"seq":1,"prevHash":"` + ZeroHash + `"}` + "\n"))
	f.Add([]byte(`{"seq":1,"seq":2,"prevHash":"` + ZeroHash + `"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Verify(bytes.NewReader(data))
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a VerifyError", err)
			}
			if ve.Line != n || ve.Line < 1 || ve.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("error names line %d (count %d) of a file with %d newlines", ve.Line, n, bytes.Count(data, []byte("\n")))
			}
			return
		}
		if n != bytes.Count(data, []byte("\n")) || (len(data) > 0 && data[len(data)-1] != '\n') {
			t.Fatalf("accepted %d lines of %q", n, data)
		}
		if n == 0 {
			return
		}
		ls := bytes.SplitAfter(data, []byte("\n"))
		for _, l := range ls[:n] {
			if _, err := Verify(bytes.NewReader(append(bytes.Clone(data), l...))); err == nil {
				t.Fatalf("a replayed line was accepted: %q", l)
			}
		}
	})
}
