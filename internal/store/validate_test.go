package store

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestRefusedCommandsWriteNothing checks validate-then-write directly: a
// command that returns an error has not written anything to its
// transaction (Bolt would otherwise have to run a shared transaction again
// without it).
func TestRefusedCommandsWriteNothing(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	bad := Value{Bucket: "keys", Key: ""}
	setup := []Command{
		PutRegionValue{Key: "r", Value: []byte("v")},
		CreatePrincipal{Principal: Principal{ObjectID: "o", ClientID: "c"}},
		CreateInstance{Instance: Instance{Name: "live"}, Values: []Value{{Bucket: "keys", Key: "k", Value: []byte("v")}}},
		WriteInstanceValues{Name: "live", Epoch: 1, Puts: []Value{{Bucket: "keys", Key: "k2", Value: []byte("v")}}},
		CreateInstance{Instance: Instance{Name: "gone"}},
		DeleteInstance{Name: "gone", Expect: 1, DeletionDate: at, ScheduledPurgeDate: at},
		CreateInstance{Instance: Instance{Name: "staging"}},
		BeginStage{Name: "staging", Expect: 1, Stage: "s"},
		StartJob{Job: Job{ID: "j", Kind: "backup", Instance: "live", Start: at}, Exclusive: true},
		StartJob{Job: Job{ID: "done", Kind: "backup", Instance: "gone", Start: at}},
		UpdateJob{Job: Job{ID: "done", Kind: "backup", Instance: "gone", Status: JobSucceeded, Start: at}},
	}
	refused := map[string]Command{
		"PutRegionValue":             PutRegionValue{Key: "r", IfAbsent: true},
		"CreatePrincipal":            CreatePrincipal{Principal: Principal{ObjectID: "o2", ClientID: "c"}},
		"DeletePrincipal":            DeletePrincipal{ObjectID: "nope"},
		"ReplacePrincipals late key": ReplacePrincipals{Principals: []Principal{{ObjectID: "o", ClientID: "c", MAC: []byte("m")}}, RegionValues: []KV{{Key: "r", Value: []byte("w")}, {Key: ""}}},
		"ReplacePrincipals missing":  ReplacePrincipals{Principals: []Principal{{ObjectID: "o", ClientID: "c", MAC: []byte("m")}, {ObjectID: "o9", ClientID: "c9"}}},
		"ReplacePrincipals client":   ReplacePrincipals{Principals: []Principal{{ObjectID: "o", ClientID: "c2"}}},
		"CreateInstance late value":  CreateInstance{Instance: Instance{Name: "new"}, Values: []Value{{Bucket: "keys", Key: "a"}, bad}},
		"CreateInstance exists":      CreateInstance{Instance: Instance{Name: "gone"}},
		"UpdateInstance late put":    UpdateInstance{Name: "live", Expect: 1, ExpectWrites: 1, ReplaceBuckets: []string{"keys"}, Deletes: []Value{{Bucket: "keys", Key: "k"}}, Puts: []Value{{Bucket: "keys", Key: "a"}, bad}},
		"UpdateInstance writes":      UpdateInstance{Name: "live", Expect: 1, ReplaceBuckets: []string{"keys"}},
		"UpdateInstance staging":     UpdateInstance{Name: "staging", Expect: 2},
		"DeleteInstance":             DeleteInstance{Name: "gone", Expect: 2},
		"RecoverInstance":            RecoverInstance{Name: "live", Expect: 1},
		"PurgeInstance":              PurgeInstance{Name: "live", Expect: 1},
		"WriteInstanceValues late":   WriteInstanceValues{Name: "live", Epoch: 1, Deletes: []Value{{Bucket: "keys", Key: "k"}}, Puts: []Value{{Bucket: "keys", Key: "a"}, bad}},
		"WriteInstanceValues policy": WriteInstanceValues{Name: "live", Epoch: 1, Deletes: []Value{{Bucket: "keys", Key: "k"}}, Puts: []Value{{Bucket: "roledefinitions", Key: "a"}}},
		"WriteInstanceValues cond":   WriteInstanceValues{Name: "live", Epoch: 1, Deletes: []Value{{Bucket: "keys", Key: "k"}}, Conditions: []Condition{{Bucket: "keys", Key: "k", Absent: true}}},
		"WriteInstanceValues epoch":  WriteInstanceValues{Name: "live", Epoch: 2, Puts: []Value{{Bucket: "keys", Key: "a"}}},
		"BeginStage":                 BeginStage{Name: "staging", Expect: 2, Stage: "t"},
		"StageValues late value":     StageValues{Name: "staging", Stage: "s", Values: []Value{{Bucket: "keys", Key: "a"}, bad}},
		"StageValues other stage":    StageValues{Name: "staging", Stage: "t", Values: []Value{{Bucket: "keys", Key: "a"}}},
		"CommitStage late bucket":    CommitStage{Name: "staging", Stage: "s", Expect: 2, Buckets: []string{"keys", ""}},
		"CommitStage stale":          CommitStage{Name: "staging", Stage: "s", Expect: 1, Buckets: []string{"keys"}},
		"StartJob exclusive":         StartJob{Job: Job{ID: "j2", Kind: "restore", Instance: "live"}, Exclusive: true},
		"StartJob exists":            StartJob{Job: Job{ID: "j", Kind: "restore", Instance: "gone"}},
		"UpdateJob ended":            UpdateJob{Job: Job{ID: "done", Kind: "backup", Instance: "gone", Status: JobInProgress}},
	}
	s, err := OpenBolt(filepath.Join(t.TempDir(), "tresor.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, cmd := range setup {
		if err := s.Apply(t.Context(), cmd); err != nil {
			t.Fatalf("setup %s: %v", cmd.CommandType(), err)
		}
	}
	for name, cmd := range refused {
		t.Run(name, func(t *testing.T) {
			_ = s.db.Update(func(tx *bolt.Tx) error {
				bt := &boltTxn{tx: tx}
				err := cmd.apply(bt)
				if err == nil {
					t.Errorf("%s succeeded", name)
				}
				if bt.wrote {
					t.Errorf("%s wrote before it was refused (%v)", name, err)
				}
				return errRetry // roll back
			})
		})
	}
}
