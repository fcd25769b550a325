package store_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"tresor/internal/store"
)

// TestBucketScopes: every top-level bucket the store creates holds either
// region-local or instance state (docs/architecture.md), never both and
// never something unlisted.
func TestBucketScopes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tresor.db")
	s := openBolt(t, path)
	ctx := context.Background()
	now := time.Now().UTC()
	cmds := []store.Command{
		store.PutRegionValue{Key: "tenant", Value: []byte("t")},
		store.CreatePrincipal{Principal: store.Principal{ObjectID: "o1", ClientID: "c1"}},
		store.CreateInstance{Instance: store.Instance{Name: "hsm1"}, Values: []store.Value{{Bucket: "roleassignments", Key: "a", Value: []byte("x")}}},
		store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Puts: []store.Value{{Bucket: "keys", Key: "k", Value: []byte("v")}}},
		store.StartJob{Job: store.Job{ID: "j1", Kind: "backup", Instance: "hsm1", Start: now}, Exclusive: true},
		store.PutBackupPolicy{Policy: store.BackupPolicy{Instance: "hsm1", ID: "p1", Sealed: []byte("s"), Set: now}},
		store.BeginStage{Name: "hsm1", Expect: 1, Stage: "s1"},
		store.StageValues{Name: "hsm1", Stage: "s1", Values: []store.Value{{Bucket: "keys", Key: "k2", Value: []byte("v")}}},
	}
	for _, c := range cmds {
		if err := s.Apply(ctx, c); err != nil {
			t.Fatalf("%s: %v", c.CommandType(), err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, b := range store.RegionBuckets {
		if slices.Contains(store.InstanceBuckets, b) {
			t.Errorf("bucket %s is listed as both region-local and instance state", b)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seen []string
	_ = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			seen = append(seen, string(name))
			return nil
		})
	})
	for _, b := range seen {
		if !slices.Contains(store.RegionBuckets, b) && !slices.Contains(store.InstanceBuckets, b) {
			t.Errorf("bucket %s is neither in RegionBuckets nor in InstanceBuckets", b)
		}
	}
	for _, want := range []string{"region", "principals", "jobs", "backup-policies", "instances", "instance-data", "staging"} {
		if !slices.Contains(seen, want) {
			t.Errorf("bucket %s was not created (seen %v)", want, seen)
		}
	}
}
