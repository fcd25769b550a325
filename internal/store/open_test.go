package store_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"tresor/internal/store"
)

// filledStore returns the path of a closed store file with a few commands
// applied.
func filledStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tresor.db")
	st, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tenant", "subscription", "region-root"} {
		if err := st.Apply(context.Background(), store.PutRegionValue{Key: k, Value: make([]byte, 3000)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenBoltRefuses(t *testing.T) {
	tests := map[string]struct {
		damage func(t *testing.T, path string)
		kind   error
	}{
		"truncated to half": {func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, store.ErrCorrupt},
		"one page left": {func(t *testing.T, path string) {
			if err := os.Truncate(path, 4096); err != nil {
				t.Fatal(err)
			}
		}, store.ErrCorrupt},
		"garbage": {func(t *testing.T, path string) {
			junk := make([]byte, 64<<10)
			_, _ = rand.Read(junk)
			if err := os.WriteFile(path, junk, 0o600); err != nil {
				t.Fatal(err)
			}
		}, store.ErrCorrupt},
		"meta pages zeroed": {func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 8192), 0); err != nil {
				t.Fatal(err)
			}
		}, store.ErrCorrupt},
		"another program's bbolt file": {func(t *testing.T, path string) {
			writeForeign(t, path, "widgets")
		}, store.ErrForeign},
		"our bucket names, no applied index": {func(t *testing.T, path string) {
			writeForeign(t, path, "region")
		}, store.ErrForeign},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filledStore(t)
			tc.damage(t, path)
			before, _ := os.ReadFile(path)
			st, err := store.OpenBolt(path)
			if err == nil {
				st.Close()
				t.Fatal("opened")
			}
			var oe *store.OpenError
			if !errors.Is(err, tc.kind) || !errors.As(err, &oe) || oe.Path != path {
				t.Fatalf("err = %v, want a *store.OpenError of %v for %s", err, tc.kind, path)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Error("the refused file changed")
			}
		})
	}
	// A new file and a store of ours still open.
	for _, path := range []string{filepath.Join(t.TempDir(), "new.db"), filledStore(t)} {
		st, err := store.OpenBolt(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		st.Close()
	}
}

// writeForeign replaces path with a bbolt file holding one bucket.
func writeForeign(t *testing.T, path, bucket string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte(bucket))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}
