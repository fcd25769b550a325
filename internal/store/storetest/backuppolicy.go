package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"tresor/internal/store"
)

func backupPolicy(instance, id string) store.BackupPolicy {
	return store.BackupPolicy{Instance: instance, ID: id, Sealed: []byte("sealed " + id), Set: t0,
		Status: store.BackupPolicyStatus{NextRun: t1}}
}

func getBackupPolicy(t *testing.T, s store.Store, instance string) (store.BackupPolicy, error) {
	t.Helper()
	var p store.BackupPolicy
	var err error
	view(t, s, func(r store.Reader) error {
		p, err = r.BackupPolicy(instance)
		return nil
	})
	return p, err
}

func wantBackupPolicy(t *testing.T, s store.Store, what string, want store.BackupPolicy) {
	t.Helper()
	got, err := getBackupPolicy(t, s, want.Instance)
	if err != nil {
		t.Fatalf("%s: BackupPolicy(%s): %v", what, want.Instance, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: BackupPolicy(%s)\n got  %+v\n want %+v", what, want.Instance, got, want)
	}
}

func wantNoBackupPolicy(t *testing.T, s store.Store, what, instance string) {
	t.Helper()
	if _, err := getBackupPolicy(t, s, instance); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s: BackupPolicy(%s) = %v, want ErrNotFound", what, instance, err)
	}
}

// testBackupPolicies: a backup policy is region-local state of an
// instance: set only on a live instance, its status recorded only for the
// policy that ran, untouched by whole-instance replaces (bucket replace,
// root replace, staged commit), gone with the instance's purge and never
// seen by a re-created instance of the same name.
func testBackupPolicies(t *testing.T, open func(*testing.T) store.Store) {
	t.Run("refused", func(t *testing.T) {
		s := openStore(t, open)
		mustApply(t, s, create("hsm1"), create("gone"), deleteCmd("gone", 1))
		before := takeDump(t, s, "hsm1", "gone", "nothere")
		cases := map[string]struct {
			cmd  store.Command
			want error
		}{
			"missing instance":        {store.PutBackupPolicy{Policy: backupPolicy("nothere", "p1")}, store.ErrNotFound},
			"deleted instance":        {store.PutBackupPolicy{Policy: backupPolicy("gone", "p1")}, store.ErrConflict},
			"no id":                   {store.PutBackupPolicy{Policy: backupPolicy("hsm1", "")}, nil},
			"no sealed settings":      {store.PutBackupPolicy{Policy: store.BackupPolicy{Instance: "hsm1", ID: "p1"}}, nil},
			"delete without a policy": {store.DeleteBackupPolicy{Instance: "hsm1"}, store.ErrNotFound},
			"record without a policy": {store.RecordBackupRun{Instance: "hsm1", ID: "p1"}, store.ErrNotFound},
		}
		for name, tc := range cases {
			err := apply(s, tc.cmd)
			if err == nil {
				t.Fatalf("%s: applied", name)
			}
			if tc.want != nil {
				wantErr(t, name, err, tc.want)
			}
		}
		sameDump(t, "refused backup policy commands", takeDump(t, s, "hsm1", "gone", "nothere"), before)
	})

	t.Run("set, record, replace, delete", func(t *testing.T) {
		s := openStore(t, open)
		mustApply(t, s, create("hsm1"), create("hsm2"))
		p := backupPolicy("hsm1", "p1")
		mustApply(t, s, store.PutBackupPolicy{Policy: p})
		wantBackupPolicy(t, s, "set", p)
		wantNoBackupPolicy(t, s, "another instance", "hsm2")

		st := store.BackupPolicyStatus{
			LastSuccess:    &store.BackupRun{Time: t1, JobID: "j1", Folder: "mhsm-hsm1-2025060205060700"},
			LastFailure:    &store.BackupRun{Time: t0, Code: "BackupFailed", Message: "m"},
			NextRun:        t1.Add(time.Hour),
			DeletedFolders: 2,
		}
		mustApply(t, s, store.RecordBackupRun{Instance: "hsm1", ID: "p1", Status: st})
		p.Status = st
		wantBackupPolicy(t, s, "recorded", p)

		// A run of an older policy records nothing into the new one.
		p2 := backupPolicy("hsm1", "p2")
		mustApply(t, s, store.PutBackupPolicy{Policy: p2})
		wantErr(t, "record of a replaced policy", apply(s, store.RecordBackupRun{Instance: "hsm1", ID: "p1", Status: st}), store.ErrConflict)
		wantBackupPolicy(t, s, "replaced", p2)

		var all []store.BackupPolicy
		view(t, s, func(r store.Reader) error {
			var err error
			all, err = r.BackupPolicies()
			return err
		})
		if len(all) != 1 || all[0].ID != "p2" {
			t.Fatalf("BackupPolicies = %+v, want the one of hsm1", all)
		}

		mustApply(t, s, store.DeleteBackupPolicy{Instance: "hsm1"})
		wantNoBackupPolicy(t, s, "deleted", "hsm1")
		wantErr(t, "record of a deleted policy", apply(s, store.RecordBackupRun{Instance: "hsm1", ID: "p2", Status: st}), store.ErrNotFound)
		wantNoBackupPolicy(t, s, "record of a deleted policy", "hsm1")
	})

	t.Run("survives whole-instance replaces", func(t *testing.T) {
		s := openStore(t, open)
		mustApply(t, s, create("hsm1", val("keys", "k1", "v1")))
		p := backupPolicy("hsm1", "p1")
		mustApply(t, s, store.PutBackupPolicy{Policy: p},
			store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p"), WrappedRoot: []byte("new root"),
				ReplaceBuckets: append([]string{"keys"}, store.PolicyBuckets...)},
			store.BeginStage{Name: "hsm1", Expect: 2, Stage: "s1"},
			store.StageValues{Name: "hsm1", Stage: "s1", Values: []store.Value{val("keys", "k2", "v2")}},
			store.CommitStage{Name: "hsm1", Stage: "s1", Expect: 3, Buckets: append([]string{"keys", "other"}, store.PolicyBuckets...), WrappedRoot: []byte("root 3")},
		)
		wantBackupPolicy(t, s, "after the replaces", p)
		// Soft delete and recover keep it; status can be recorded while
		// the instance is deleted (a run that was under way).
		in := mustInstance(t, s, "hsm1")
		mustApply(t, s, deleteCmd("hsm1", in.Generation))
		wantBackupPolicy(t, s, "soft-deleted", p)
		mustApply(t, s, store.RecoverInstance{Name: "hsm1", Expect: in.Generation + 1})
		wantBackupPolicy(t, s, "recovered", p)
	})

	t.Run("purge removes it", func(t *testing.T) {
		s := openStore(t, open)
		mustApply(t, s, create("hsm1"), create("hsm2"),
			store.PutBackupPolicy{Policy: backupPolicy("hsm1", "p1")},
			store.PutBackupPolicy{Policy: backupPolicy("hsm2", "p2")},
			deleteCmd("hsm1", 1), store.PurgeInstance{Name: "hsm1", Expect: 2})
		wantNoBackupPolicy(t, s, "purged", "hsm1")
		mustApply(t, s, create("hsm1"))
		wantNoBackupPolicy(t, s, "re-created", "hsm1")
		wantBackupPolicy(t, s, "the other instance's", backupPolicy("hsm2", "p2"))
	})
}
