package atomicfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"tresor/internal/atomicfile"
	"tresor/internal/pkgdoc"
)

func TestWrite(t *testing.T) {
	tests := map[string]struct {
		existing *string
		fn       func(string, []byte, os.FileMode) error
		want     string
		wantErr  error
	}{
		"write creates":     {fn: atomicfile.Write, want: "new"},
		"write replaces":    {existing: ptr("old"), fn: atomicfile.Write, want: "new"},
		"write new creates": {fn: atomicfile.WriteNew, want: "new"},
		"write new refuses": {existing: ptr("old"), fn: atomicfile.WriteNew, want: "old", wantErr: os.ErrExist},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tc.existing != nil {
				if err := os.WriteFile(path, []byte(*tc.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := tc.fn(path, []byte("new"), 0o600)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != tc.want {
				t.Fatalf("file = %q, %v; want %q", got, err, tc.want)
			}
			if tc.wantErr == nil {
				if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
					t.Errorf("mode = %v, want 0600", st.Mode().Perm())
				}
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only the file (no temporary left)", len(entries))
			}
		})
	}
}

func TestWriteMissingDir(t *testing.T) {
	if err := atomicfile.Write(filepath.Join(t.TempDir(), "no", "f"), nil, 0o600); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
}

func ptr(s string) *string { return &s }

func TestPackageDoc(t *testing.T) { pkgdoc.Check(t, ".") }
