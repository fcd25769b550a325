package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
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
		store.WriteInstanceValues{Name: "hsm1", Epoch: 2, Puts: []store.Value{{Bucket: "keys", Key: "k", Value: []byte("v")}}},
		store.BeginStage{Name: "hsm1", Expect: 5, Stage: "s"},
		store.StageValues{Name: "hsm1", Stage: "s", Values: []store.Value{{Bucket: "keys", Key: "k"}}},
		store.CommitStage{Name: "hsm1", Stage: "s", Expect: 6, Buckets: []string{"keys"}, Properties: []byte("p")},
		store.AbortStage{Name: "hsm1"},
		store.StartJob{Job: store.Job{ID: "j", Kind: "backup", Instance: "hsm1", Status: store.JobInProgress, Start: when}, Exclusive: true},
		store.UpdateJob{Job: store.Job{ID: "j", Kind: "backup", Instance: "hsm1", Status: store.JobFailed, Error: "e", Start: when, End: when}},
		store.FailInterruptedJobs{Message: "m", At: when},
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

// BenchmarkApplySequential applies one command after another on an idle
// store: with group commit and no batch timer each costs one commit (one
// fsync), not a batch delay on top.
func BenchmarkApplySequential(b *testing.B) {
	s, err := store.OpenBolt(filepath.Join(b.TempDir(), "tresor.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Apply(ctx, store.CreateInstance{Instance: store.Instance{Name: "hsm1"}}); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		cmd := store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Puts: []store.Value{{Bucket: "keys", Key: fmt.Sprint(i), Value: []byte("v")}}}
		if err := s.Apply(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyParallel applies from many goroutines: group commit shares
// one fsync among the commands that queued during the previous commit.
func BenchmarkApplyParallel(b *testing.B) {
	s, err := store.OpenBolt(filepath.Join(b.TempDir(), "tresor.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Apply(ctx, store.CreateInstance{Instance: store.Instance{Name: "hsm1"}}); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			k := fmt.Sprint(n)
			mu.Unlock()
			if err := s.Apply(ctx, store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Puts: []store.Value{{Bucket: "keys", Key: k, Value: []byte("v")}}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestBoltConcurrentApply: 64 goroutines applying at once all succeed, each
// sees its own write right after Apply, and all writes are there at the end.
func TestBoltConcurrentApply(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "tresor.db"))
	defer s.Close()
	ctx := context.Background()
	if err := s.Apply(ctx, store.CreateInstance{Instance: store.Instance{Name: "hsm1"}}); err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				k := fmt.Sprintf("g%02d-%02d", g, i)
				cmd := store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Puts: []store.Value{{Bucket: "keys", Key: k, Value: []byte(k)}},
					Conditions: []store.Condition{{Bucket: "keys", Key: k, Absent: true}}}
				if err := s.Apply(ctx, cmd); err != nil {
					errs <- fmt.Errorf("Apply %s: %w", k, err)
					continue
				}
				err := s.View(ctx, func(r store.Reader) error {
					v, err := r.InstanceValue("hsm1", "keys", k)
					if err == nil && string(v) != k {
						err = fmt.Errorf("value %q", v)
					}
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("own write %s not visible after Apply: %w", k, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	err := s.View(ctx, func(r store.Reader) error {
		kvs, err := r.InstanceValues("hsm1", "keys")
		if len(kvs) != goroutines*each {
			t.Errorf("%d values, want %d", len(kvs), goroutines*each)
		}
		in, _ := r.Instance("hsm1")
		if in.Writes != goroutines*each {
			t.Errorf("Writes = %d, want %d", in.Writes, goroutines*each)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.AppliedIndex(); err != nil || n != goroutines*each+1 {
		t.Fatalf("AppliedIndex = %d, %v; want %d", n, err, goroutines*each+1)
	}
}

// TestBoltRestoreConcurrent restores while others apply and read: every
// call either succeeds on a whole state (the old one or the restored one)
// or fails with ErrClosed, never on a torn one.
func TestBoltRestoreConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := openBolt(t, filepath.Join(dir, "src.db"))
	defer src.Close()
	dst := openBolt(t, filepath.Join(dir, "dst.db"))
	defer dst.Close()
	for _, s := range []*store.Bolt{src, dst} {
		if err := s.Apply(ctx, store.CreateInstance{Instance: store.Instance{Name: "hsm1"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.Apply(ctx, store.PutRegionValue{Key: "origin", Value: []byte("src")}); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if _, err := src.WriteTo(&snap); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := dst.Apply(ctx, store.PutRegionValue{Key: fmt.Sprintf("g%d-%d", g, i), Value: []byte("v")})
				if err != nil && !errors.Is(err, store.ErrClosed) {
					t.Errorf("Apply during Restore: %v", err)
				}
				err = dst.View(ctx, func(r store.Reader) error {
					_, err := r.Instance("hsm1")
					return err
				})
				if err != nil && !errors.Is(err, store.ErrClosed) {
					t.Errorf("View during Restore: %v", err)
				}
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	if err := dst.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Errorf("Restore: %v", err)
	}
	close(stop)
	wg.Wait()
	err := dst.View(ctx, func(r store.Reader) error {
		v, err := r.RegionValue("origin")
		if err != nil || string(v) != "src" {
			t.Errorf("origin after restore = %q, %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBoltRestoreAfterReopen: a restored store file is the store from then
// on, also after a restart.
func TestBoltRestoreAfterReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := openBolt(t, filepath.Join(dir, "src.db"))
	if err := src.Apply(ctx, store.PutRegionValue{Key: "k", Value: []byte("restored")}); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if _, err := src.WriteTo(&snap); err != nil {
		t.Fatal(err)
	}
	src.Close()
	path := filepath.Join(dir, "dst.db")
	dst := openBolt(t, path)
	if err := dst.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	if err := dst.Restore(bytes.NewReader(nil)); err == nil {
		t.Fatal("Restore of a closed store succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("files left beside the store: %v", entries)
	}
	dst = openBolt(t, path)
	defer dst.Close()
	if n, err := dst.AppliedIndex(); err != nil || n != 1 {
		t.Fatalf("AppliedIndex after reopen = %d, %v; want 1", n, err)
	}
	err := dst.View(ctx, func(r store.Reader) error {
		v, err := r.RegionValue("k")
		if err != nil || string(v) != "restored" {
			t.Errorf("k = %q, %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
