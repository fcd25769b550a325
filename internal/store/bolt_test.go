package store_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"tresor/internal/store"
	"tresor/internal/store/storetest"
)

func openBolt(t *testing.T, path string) *store.Bolt {
	t.Helper()
	s, err := store.OpenBolt(path)
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	return s
}

func TestBoltConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openBolt(t, filepath.Join(t.TempDir(), "tresor.db"))
	})
}

func TestBoltFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tresor.db")
	s := openBolt(t, path)
	defer s.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Fatalf("store file mode %v, want 0600", got)
	}
}

func TestBoltReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tresor.db")
	created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	p := store.Principal{ObjectID: "oid", ClientID: "cid", SecretHash: []byte("h"), Created: created}

	s := openBolt(t, path)
	for _, cmd := range []store.Command{
		store.PutRegionValue{Key: "signing-key", Value: []byte("sk")},
		store.CreatePrincipal{Principal: p},
		store.CreateInstance{Instance: store.Instance{Name: "hsm1", Properties: []byte("p1")}, Values: []store.Value{{Bucket: "keys", Key: "k1", Value: []byte("v1")}}},
		store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p2")},
		store.CreateInstance{Instance: store.Instance{Name: "hsm2"}},
		store.DeleteInstance{Name: "hsm2", Expect: 1, DeletionDate: created, ScheduledPurgeDate: created.AddDate(0, 0, 90)},
	} {
		if err := s.Apply(ctx, cmd); err != nil {
			t.Fatalf("Apply(%s): %v", cmd.CommandType(), err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openBolt(t, path)
	defer s.Close()
	err := s.View(ctx, func(r store.Reader) error {
		if v, err := r.RegionValue("signing-key"); err != nil || string(v) != "sk" {
			t.Errorf("RegionValue = %q, %v", v, err)
		}
		if got, err := r.PrincipalByClientID("cid"); err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("PrincipalByClientID = %+v, %v; want %+v", got, err, p)
		}
		if in, err := r.Instance("hsm1"); err != nil || in.Generation != 2 || string(in.Properties) != "p2" {
			t.Errorf("Instance(hsm1) = %+v, %v", in, err)
		}
		if in, err := r.Instance("hsm2"); err != nil || !in.Deleted || !in.DeletionDate.Equal(created) {
			t.Errorf("Instance(hsm2) = %+v, %v", in, err)
		}
		if v, err := r.InstanceValue("hsm1", "keys", "k1"); err != nil || string(v) != "v1" {
			t.Errorf("InstanceValue = %q, %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	// The reopened store goes on from the stored generation.
	if err := s.Apply(ctx, store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p3")}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update after reopen: %v, want ErrConflict", err)
	}
	if err := s.Apply(ctx, store.UpdateInstance{Name: "hsm1", Expect: 2, Properties: []byte("p3")}); err != nil {
		t.Fatalf("update after reopen: %v", err)
	}
}

func TestOpenBoltErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not-a-db")
	if err := os.WriteFile(notDB, bytes.Repeat([]byte("garbage!"), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		"missing directory": filepath.Join(dir, "missing", "tresor.db"),
		"directory":         dir,
		"not a database":    notDB,
	}
	for name, path := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := store.OpenBolt(path)
			if err == nil {
				s.Close()
				t.Fatalf("OpenBolt(%s) succeeded", path)
			}
		})
	}
}

// FuzzDecode checks that Decode never panics, returns a nil command with
// every error, and that what it accepts has a stable wire form.
func FuzzDecode(f *testing.F) {
	when := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, cmd := range []store.Command{
		store.PutRegionValue{Key: "k", Value: []byte{0, 1, 0xff}, IfAbsent: true},
		store.CreatePrincipal{Principal: store.Principal{ObjectID: "o", ClientID: "c", SecretHash: []byte("h"), Created: when}},
		store.DeletePrincipal{ObjectID: "o"},
		store.CreateInstance{Instance: store.Instance{Name: "hsm1", DeletionDate: when}, Values: []store.Value{{Bucket: "b", Key: "k", Value: []byte("v")}}},
		store.UpdateInstance{Name: "hsm1", Expect: 1, Puts: []store.Value{{Bucket: "b", Key: "k"}}, Deletes: []store.Value{{Bucket: "b", Key: "j"}}, ReplaceBuckets: []string{"b"}},
		store.DeleteInstance{Name: "hsm1", Expect: 2, DeletionDate: when, ScheduledPurgeDate: when},
		store.RecoverInstance{Name: "hsm1", Expect: 3},
		store.PurgeInstance{Name: "hsm1", Expect: 4},
	} {
		data, err := store.Encode(cmd)
		if err != nil {
			f.Fatalf("Encode: %v", err)
		}
		f.Add(data)
	}
	for _, s := range []string{``, `null`, `{}`, `{"type":"X","payload":{}}`, `{"type":"PutRegionValue"}`, `{"type":"PutRegionValue","payload":null}`, "\xff\x00"} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := store.Decode(data)
		if err != nil {
			if cmd != nil {
				t.Fatalf("Decode returned %#v with error %v", cmd, err)
			}
			return
		}
		if cmd == nil {
			t.Fatal("Decode returned neither a command nor an error")
		}
		enc, err := store.Encode(cmd)
		if err != nil {
			t.Fatalf("Encode of a decoded %s: %v", cmd.CommandType(), err)
		}
		again, err := store.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(cmd)): %v", err)
		}
		enc2, err := store.Encode(again)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("wire form not stable:\n%s\n%s", enc, enc2)
		}
	})
}
