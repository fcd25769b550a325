package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"tresor/internal/store"
)

// v2Tests are the cases of store contract v2: epochs and write counts,
// policy buckets, validate-then-write, applied index and batches, staged
// replace, snapshots, streaming reads, jobs and error codes.
var v2Tests = []struct {
	name string
	fn   func(*testing.T, func(*testing.T) store.Store)
}{
	{"EpochRace", testEpochRace},
	{"WriteCount", testWriteCount},
	{"PolicyBuckets", testPolicyBuckets},
	{"ValidateThenWrite", testValidateThenWrite},
	{"ValidateThenWriteBatch", testValidateThenWriteBatch},
	{"AppliedIndex", testAppliedIndex},
	{"BatchApply", testBatchApply},
	{"StagedReplace", testStagedReplace},
	{"StageAbort", testStageAbort},
	{"CommitStageEndsJob", testCommitStageEndsJob},
	{"Snapshot", testSnapshot},
	{"ForEach", testForEach},
	{"Jobs", testJobs},
	{"ErrorCodes", testErrorCodes},
	{"BackupPolicies", testBackupPolicies},
}

// dump is everything a Reader (and the applied index) shows of a store.
type dump struct {
	Snap     snapshot
	Buckets  map[string][]string // instance → bucket names
	Data     map[string]string   // "instance/bucket" → fmtKVs, read with ForEach
	Jobs     []store.Job
	Policies []store.BackupPolicy
	Applied  uint64
}

func takeDump(t *testing.T, s store.Store, names ...string) dump {
	t.Helper()
	d := dump{Snap: takeSnapshot(t, s, names...), Buckets: map[string][]string{}, Data: map[string]string{}}
	view(t, s, func(r store.Reader) error {
		ins, err := r.Instances()
		if err != nil {
			return err
		}
		all := slices.Clone(names)
		for _, in := range ins {
			all = append(all, in.Name)
		}
		for _, n := range all {
			bs, err := r.InstanceBuckets(n)
			if err != nil {
				return err
			}
			if len(bs) > 0 {
				d.Buckets[n] = bs
			}
			for _, b := range bs {
				var kvs []store.KV
				if err := r.ForEach(n, b, "", func(k string, v []byte) error {
					kvs = append(kvs, store.KV{Key: k, Value: slices.Clone(v)})
					return nil
				}); err != nil {
					return err
				}
				d.Data[n+"/"+b] = fmtKVs(kvs)
			}
		}
		if d.Jobs, err = r.Jobs(""); err != nil {
			return err
		}
		d.Policies, err = r.BackupPolicies()
		return err
	})
	if ba, ok := s.(store.BatchApplier); ok {
		n, err := ba.AppliedIndex()
		if err != nil {
			t.Fatalf("AppliedIndex: %v", err)
		}
		d.Applied = n
	}
	return d
}

func sameDump(t *testing.T, what string, got, want dump) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s changed the state:\n got  %+v\n want %+v", what, got, want)
	}
}

func batcher(t *testing.T, s store.Store) store.BatchApplier {
	t.Helper()
	ba, ok := s.(store.BatchApplier)
	if !ok {
		t.Skip("store does not implement store.BatchApplier")
	}
	return ba
}

func write(name string, epoch uint64, puts ...store.Value) store.WriteInstanceValues {
	return store.WriteInstanceValues{Name: name, Epoch: epoch, Puts: puts}
}

func job(id, instance, kind string, start int) store.Job {
	return store.Job{ID: id, Kind: kind, Instance: instance, Status: store.JobInProgress, Start: t0.Add(time.Duration(start) * time.Minute)}
}

// ---------------------------------------------------------------------------
// epochs and write counts

func testEpochRace(t *testing.T, open func(*testing.T) store.Store) {
	replace := func(in store.Instance, root bool) store.UpdateInstance {
		cmd := store.UpdateInstance{Name: in.Name, Expect: in.Generation, ExpectWrites: in.Writes, Properties: []byte("restored")}
		if root {
			cmd.WrappedRoot = []byte("restored root")
		} else {
			cmd.ReplaceBuckets = []string{"keys"}
			cmd.Puts = []store.Value{val("keys", "k1", "restored")}
		}
		return cmd
	}
	for _, root := range []bool{false, true} {
		kind := map[bool]string{false: "replace buckets", true: "replace root"}[root]
		t.Run(kind+"/write between read and replace", func(t *testing.T) {
			s := openStore(t, open)
			mustApply(t, s, create("hsm1", val("keys", "k1", "one")))
			read := mustInstance(t, s, "hsm1")
			mustApply(t, s, write("hsm1", read.Epoch, val("keys", "k2", "landed")))
			before := takeDump(t, s, "hsm1")
			wantErr(t, "replace after a write", apply(s, replace(read, root)), store.ErrConflict)
			sameDump(t, "refused replace", takeDump(t, s, "hsm1"), before)
			// Read again: the replace now knows of the write and succeeds.
			mustApply(t, s, replace(mustInstance(t, s, "hsm1"), root))
		})
		t.Run(kind+"/write from before the replace", func(t *testing.T) {
			s := openStore(t, open)
			mustApply(t, s, create("hsm1", val("keys", "k1", "one")))
			read := mustInstance(t, s, "hsm1")
			mustApply(t, s, replace(read, root))
			after := mustInstance(t, s, "hsm1")
			if after.Epoch != read.Epoch+1 || after.Generation != read.Generation+1 {
				t.Fatalf("after replace: epoch %d generation %d; want %d, %d", after.Epoch, after.Generation, read.Epoch+1, read.Generation+1)
			}
			before := takeDump(t, s, "hsm1")
			wantErr(t, "write with the old epoch", apply(s, write("hsm1", read.Epoch, val("keys", "k9", "stale"))), store.ErrConflict)
			sameDump(t, "refused write", takeDump(t, s, "hsm1"), before)
			mustApply(t, s, write("hsm1", after.Epoch, val("keys", "k9", "fresh")))
		})
	}
	t.Run("update without replace keeps the epoch", func(t *testing.T) {
		s := openStore(t, open)
		mustApply(t, s, create("hsm1"), write("hsm1", 1, val("keys", "k", "v")))
		// ExpectWrites does not matter when nothing is replaced.
		mustApply(t, s, store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p"), Puts: []store.Value{val("roleassignments", "r", "v")}})
		if in := mustInstance(t, s, "hsm1"); in.Epoch != 1 || in.Generation != 2 {
			t.Fatalf("epoch %d generation %d, want 1, 2", in.Epoch, in.Generation)
		}
		mustApply(t, s, write("hsm1", 1, val("keys", "k", "v2")))
	})
	t.Run("epoch zero is invalid", func(t *testing.T) {
		s := openStore(t, open)
		mustApply(t, s, create("hsm1"))
		err := apply(s, write("hsm1", 0, val("keys", "k", "v")))
		wantErr(t, "write with epoch 0", err, errAny)
		if code := store.ErrorCode(err); code != "" {
			t.Fatalf("write with epoch 0: code %q, want a plain error", code)
		}
	})
}

func testWriteCount(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	writes := func(t *testing.T) uint64 { t.Helper(); return mustInstance(t, s, "hsm1").Writes }
	mustApply(t, s, create("hsm1"))
	steps := []struct {
		name string
		cmd  store.Command
		want error
		n    uint64 // writes after
	}{
		{"first write", write("hsm1", 1, val("keys", "a", "1")), nil, 1},
		{"delete only", store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Deletes: []store.Value{{Bucket: "keys", Key: "a"}}}, nil, 2},
		{"refused write", store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Conditions: []store.Condition{{Bucket: "keys", Key: "zz", Value: []byte("x")}}}, store.ErrConflict, 2},
		{"update", store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p")}, nil, 2},
		{"third write", write("hsm1", 1, val("keys", "b", "2")), nil, 3},
		{"replace keeps the count", store.UpdateInstance{Name: "hsm1", Expect: 2, ExpectWrites: 3, ReplaceBuckets: []string{"keys"}}, nil, 3},
		{"delete", deleteCmd("hsm1", 3), nil, 3},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			wantErr(t, st.cmd.CommandType(), apply(s, st.cmd), st.want)
			if got := writes(t); got != st.n {
				t.Fatalf("Writes = %d, want %d", got, st.n)
			}
		})
	}
	t.Run("listed", func(t *testing.T) {
		view(t, s, func(r store.Reader) error {
			ins, err := r.Instances()
			if err != nil || len(ins) != 1 || ins[0].Writes != 3 {
				t.Errorf("Instances() = %+v, %v; want hsm1 with 3 writes", ins, err)
			}
			return nil
		})
	})
	t.Run("purge and create reset it", func(t *testing.T) {
		mustApply(t, s, store.PurgeInstance{Name: "hsm1", Expect: 4}, create("hsm1"))
		if in := mustInstance(t, s, "hsm1"); in.Writes != 0 || in.Epoch != 1 || in.Generation != 1 {
			t.Fatalf("re-created: writes %d epoch %d generation %d, want 0, 1, 1", in.Writes, in.Epoch, in.Generation)
		}
	})
}

// testPolicyBuckets states the rule the RBAC grants cache relies on: every
// change of a policy bucket bumps the generation, because
// WriteInstanceValues (which does not) may not touch them.
func testPolicyBuckets(t *testing.T, open func(*testing.T) store.Store) {
	for _, b := range store.PolicyBuckets {
		refused := map[string]store.WriteInstanceValues{
			"put":                   write("hsm1", 1, val(b, "x", "v")),
			"put after a key":       write("hsm1", 1, val("keys", "k", "v"), val(b, "x", "v")),
			"delete":                {Name: "hsm1", Epoch: 1, Deletes: []store.Value{{Bucket: b, Key: "p"}}},
			"delete after a delete": {Name: "hsm1", Epoch: 1, Deletes: []store.Value{{Bucket: "keys", Key: "k0"}, {Bucket: b, Key: "p"}}},
		}
		for name, cmd := range refused {
			t.Run(b+"/"+name, func(t *testing.T) {
				s := openStore(t, open)
				mustApply(t, s, create("hsm1", val(b, "p", "policy"), val("keys", "k0", "key")))
				before := takeDump(t, s, "hsm1")
				err := apply(s, cmd)
				wantErr(t, "WriteInstanceValues to "+b, err, errAny)
				if code := store.ErrorCode(err); code != "" {
					t.Fatalf("code %q, want a plain error (the command is invalid)", code)
				}
				sameDump(t, "refused write", takeDump(t, s, "hsm1"), before)
			})
		}
		changes := map[string]func(in store.Instance) []store.Command{
			"update put": func(in store.Instance) []store.Command {
				return []store.Command{store.UpdateInstance{Name: "hsm1", Expect: in.Generation, Puts: []store.Value{val(b, "x", "v")}}}
			},
			"update delete": func(in store.Instance) []store.Command {
				return []store.Command{store.UpdateInstance{Name: "hsm1", Expect: in.Generation, Deletes: []store.Value{{Bucket: b, Key: "p"}}}}
			},
			"replace": func(in store.Instance) []store.Command {
				return []store.Command{store.UpdateInstance{Name: "hsm1", Expect: in.Generation, ReplaceBuckets: []string{b}}}
			},
			"staged replace": func(in store.Instance) []store.Command {
				return []store.Command{
					store.BeginStage{Name: "hsm1", Expect: in.Generation, Stage: "s"},
					store.StageValues{Name: "hsm1", Stage: "s", Values: []store.Value{val(b, "y", "v")}},
					store.CommitStage{Name: "hsm1", Stage: "s", Expect: in.Generation + 1, Buckets: []string{b}},
				}
			},
		}
		for name, cmds := range changes {
			t.Run(b+"/"+name+" bumps the generation", func(t *testing.T) {
				s := openStore(t, open)
				mustApply(t, s, create("hsm1", val(b, "p", "policy")))
				in := mustInstance(t, s, "hsm1")
				for _, cmd := range cmds(in) {
					before := mustInstance(t, s, "hsm1")
					beforeKVs := instanceValues(t, s, "hsm1", b)
					mustApply(t, s, cmd)
					after := mustInstance(t, s, "hsm1")
					if !reflect.DeepEqual(instanceValues(t, s, "hsm1", b), beforeKVs) && after.Generation <= before.Generation {
						t.Fatalf("%s changed %s without bumping the generation", cmd.CommandType(), b)
					}
				}
				if reflect.DeepEqual(instanceValues(t, s, "hsm1", b), []store.KV{kv("p", "policy")}) {
					t.Fatalf("%s unchanged", b)
				}
			})
		}
	}
}

// ---------------------------------------------------------------------------
// validate, then write

// refusedSetup is the state the refused commands run against.
func refusedSetup() []store.Command {
	j2 := job("j2", "hsm2", "backup", 2)
	done := j2
	done.Status, done.End = store.JobSucceeded, t1
	return []store.Command{
		store.PutRegionValue{Key: "signing-key", Value: []byte("sk")},
		store.CreatePrincipal{Principal: newPrincipal("oid-a", "cid-a")},
		create("hsm1", val("keys", "k1", "one"), val("keys", "k2", "two"), val("settings", "s1", "on")),
		write("hsm1", 1, val("keys", "k3", "three")), // hsm1: generation 1, epoch 1, 1 write
		create("hsm2", val("keys", "k1", "x")),
		deleteCmd("hsm2", 1), // hsm2: deleted, generation 2
		create("hsm3", val("keys", "k1", "live")),
		store.BeginStage{Name: "hsm3", Expect: 1, Stage: "st"}, // hsm3: staging, generation 2
		store.StageValues{Name: "hsm3", Stage: "st", Values: []store.Value{val("keys", "k1", "staged")}},
		store.StartJob{Job: job("j1", "hsm1", "backup", 1), Exclusive: true},
		store.StartJob{Job: j2},
		store.UpdateJob{Job: done},
	}
}

type refusal struct {
	name string
	cmd  store.Command
	want error
}

// refusedCommands has refused variants of every command type; most would
// have written something before they fail if they did not validate first.
func refusedCommands() []refusal {
	bad := val("keys", "", "no key")
	j1 := job("j1", "hsm1", "backup", 1)
	j1kind := j1
	j1kind.Kind = "restore"
	j2 := job("j2", "hsm2", "backup", 2)
	return []refusal{
		{"PutRegionValue/exists", store.PutRegionValue{Key: "signing-key", Value: []byte("new"), IfAbsent: true}, store.ErrExists},
		{"PutRegionValue/empty key", store.PutRegionValue{Value: []byte("new")}, errAny},
		{"CreatePrincipal/client id", store.CreatePrincipal{Principal: newPrincipal("oid-b", "cid-a")}, store.ErrExists},
		{"CreatePrincipal/no ids", store.CreatePrincipal{}, errAny},
		{"DeletePrincipal/missing", store.DeletePrincipal{ObjectID: "oid-b"}, store.ErrNotFound},
		{"CreateInstance/late invalid value", create("hsm4", val("keys", "k1", "one"), val("rbac", "r", "v"), bad), errAny},
		{"CreateInstance/exists", create("hsm2", val("keys", "k9", "nine")), store.ErrExists},
		{"UpdateInstance/late invalid put", store.UpdateInstance{Name: "hsm1", Expect: 1, ExpectWrites: 1, Properties: []byte("p2"), WrappedRoot: []byte("r2"),
			ReplaceBuckets: []string{"keys"}, Deletes: []store.Value{{Bucket: "settings", Key: "s1"}}, Puts: []store.Value{val("keys", "k9", "nine"), bad}}, errAny},
		{"UpdateInstance/empty replace bucket", store.UpdateInstance{Name: "hsm1", Expect: 1, ExpectWrites: 1, ReplaceBuckets: []string{"keys", ""}}, errAny},
		{"UpdateInstance/stale", store.UpdateInstance{Name: "hsm1", Expect: 7, Properties: []byte("p2"), ReplaceBuckets: []string{"keys"}}, store.ErrConflict},
		{"UpdateInstance/writes changed", store.UpdateInstance{Name: "hsm1", Expect: 1, ExpectWrites: 0, ReplaceBuckets: []string{"keys"}}, store.ErrConflict},
		{"UpdateInstance/root, writes changed", store.UpdateInstance{Name: "hsm1", Expect: 1, WrappedRoot: []byte("r2")}, store.ErrConflict},
		{"UpdateInstance/deleted", store.UpdateInstance{Name: "hsm2", Expect: 2, Properties: []byte("p2")}, store.ErrConflict},
		{"UpdateInstance/staging", store.UpdateInstance{Name: "hsm3", Expect: 2, Properties: []byte("p2")}, store.ErrBusy},
		{"DeleteInstance/deleted", deleteCmd("hsm2", 2), store.ErrConflict},
		{"DeleteInstance/staging", deleteCmd("hsm3", 2), store.ErrBusy},
		{"RecoverInstance/active", store.RecoverInstance{Name: "hsm1", Expect: 1}, store.ErrConflict},
		{"RecoverInstance/missing", store.RecoverInstance{Name: "hsm4", Expect: 1}, store.ErrNotFound},
		{"PurgeInstance/active", store.PurgeInstance{Name: "hsm1", Expect: 1}, store.ErrConflict},
		{"PurgeInstance/stale", store.PurgeInstance{Name: "hsm2", Expect: 1}, store.ErrConflict},
		{"PurgeInstance/staging", store.PurgeInstance{Name: "hsm3", Expect: 2}, store.ErrBusy},
		{"WriteInstanceValues/epoch 0", store.WriteInstanceValues{Name: "hsm1", Puts: []store.Value{val("keys", "k9", "v")}}, errAny},
		{"WriteInstanceValues/old epoch", store.WriteInstanceValues{Name: "hsm1", Epoch: 2, Puts: []store.Value{val("keys", "k9", "v")}}, store.ErrConflict},
		{"WriteInstanceValues/late invalid put", store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Deletes: []store.Value{{Bucket: "keys", Key: "k1"}}, Puts: []store.Value{val("keys", "k9", "v"), bad}}, errAny},
		{"WriteInstanceValues/late policy put", store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Deletes: []store.Value{{Bucket: "keys", Key: "k1"}}, Puts: []store.Value{val("keys", "k9", "v"), val("settings", "s2", "v")}}, errAny},
		{"WriteInstanceValues/late condition", store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Deletes: []store.Value{{Bucket: "keys", Key: "k1"}},
			Conditions: []store.Condition{{Bucket: "keys", Key: "k1", Value: []byte("one")}, {Bucket: "keys", Key: "k2", Absent: true}}}, store.ErrConflict},
		{"WriteInstanceValues/staging", write("hsm3", 1, val("keys", "k9", "v")), store.ErrBusy},
		{"WriteInstanceValues/deleted", write("hsm2", 1, val("keys", "k9", "v")), store.ErrConflict},
		{"BeginStage/staging", store.BeginStage{Name: "hsm3", Expect: 2, Stage: "st2"}, store.ErrBusy},
		{"BeginStage/stale", store.BeginStage{Name: "hsm1", Expect: 7, Stage: "st2"}, store.ErrConflict},
		{"BeginStage/no stage", store.BeginStage{Name: "hsm1", Expect: 1}, errAny},
		{"BeginStage/deleted", store.BeginStage{Name: "hsm2", Expect: 2, Stage: "st2"}, store.ErrConflict},
		{"StageValues/other stage", store.StageValues{Name: "hsm3", Stage: "st2", Values: []store.Value{val("keys", "k9", "v")}}, store.ErrConflict},
		{"StageValues/not staging", store.StageValues{Name: "hsm1", Stage: "st", Values: []store.Value{val("keys", "k9", "v")}}, store.ErrConflict},
		{"StageValues/late invalid value", store.StageValues{Name: "hsm3", Stage: "st", Values: []store.Value{val("keys", "k9", "v"), bad}}, errAny},
		{"CommitStage/other stage", store.CommitStage{Name: "hsm3", Stage: "st2", Expect: 2, Buckets: []string{"keys"}}, store.ErrConflict},
		{"CommitStage/stale", store.CommitStage{Name: "hsm3", Stage: "st", Expect: 1, Buckets: []string{"keys"}}, store.ErrConflict},
		{"CommitStage/late empty bucket", store.CommitStage{Name: "hsm3", Stage: "st", Expect: 2, Buckets: []string{"keys", ""}}, errAny},
		{"CommitStage/ended job of another instance", store.CommitStage{Name: "hsm3", Stage: "st", Expect: 2, Buckets: []string{"keys"}, Job: &j2}, errAny},
		{"CommitStage/job of another instance", store.CommitStage{Name: "hsm3", Stage: "st", Expect: 2, Buckets: []string{"keys"}, Job: &j1}, errAny},
		{"CommitStage/missing", store.CommitStage{Name: "hsm4", Stage: "st", Expect: 2, Buckets: []string{"keys"}}, store.ErrNotFound},
		{"StartJob/exists", store.StartJob{Job: job("j2", "hsm1", "backup", 3)}, store.ErrExists},
		{"StartJob/exclusive", store.StartJob{Job: job("j3", "hsm1", "restore", 3), Exclusive: true}, store.ErrConflict},
		{"StartJob/no id", store.StartJob{Job: job("", "hsm1", "restore", 3)}, errAny},
		{"StartJob/ended", store.StartJob{Job: store.Job{ID: "j3", Kind: "backup", Instance: "hsm1", Status: store.JobSucceeded}}, errAny},
		{"UpdateJob/ended", store.UpdateJob{Job: j2}, store.ErrConflict},
		{"UpdateJob/missing", store.UpdateJob{Job: job("j9", "hsm1", "backup", 3)}, store.ErrNotFound},
		{"UpdateJob/kind", store.UpdateJob{Job: j1kind}, errAny},
	}
}

func testValidateThenWrite(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	mustApply(t, s, refusedSetup()...)
	names := []string{"hsm1", "hsm2", "hsm3", "hsm4"}
	for _, tc := range refusedCommands() {
		t.Run(tc.name, func(t *testing.T) {
			before := takeDump(t, s, names...)
			wantErr(t, tc.cmd.CommandType(), apply(s, tc.cmd), tc.want)
			sameDump(t, tc.cmd.CommandType(), takeDump(t, s, names...), before)
		})
	}
	// Commands that cannot be refused do nothing when there is nothing to do
	// (the applied index aside).
	noops := map[string]store.Command{
		"AbortStage/other stage":   store.AbortStage{Name: "hsm3", Stage: "st2"},
		"AbortStage/not staging":   store.AbortStage{Name: "hsm1"},
		"AbortStage/missing":       store.AbortStage{Name: "hsm4", Stage: "st"},
		"FailInterruptedJobs/none": store.FailInterruptedJobs{Message: "m", At: t1},
	}
	for name, cmd := range noops {
		t.Run(name, func(t *testing.T) {
			if name == "FailInterruptedJobs/none" {
				s := openStore(t, open)
				mustApply(t, s, create("hsm1"))
				before := takeDump(t, s)
				mustApply(t, s, cmd)
				after := takeDump(t, s)
				after.Applied = before.Applied
				sameDump(t, name, after, before)
				return
			}
			before := takeDump(t, s, names...)
			mustApply(t, s, cmd)
			after := takeDump(t, s, names...)
			after.Applied = before.Applied
			sameDump(t, name, after, before)
		})
	}
}

// testValidateThenWriteBatch runs the refused commands in one batch among
// accepted ones: the batch ends as if only the accepted ones had been in it.
func testValidateThenWriteBatch(t *testing.T, open func(*testing.T) store.Store) {
	a, b := openStore(t, open), openStore(t, open)
	ba, bb := batcher(t, a), batcher(t, b)
	mustApply(t, a, refusedSetup()...)
	mustApply(t, b, refusedSetup()...)
	idx, err := ba.AppliedIndex()
	if err != nil {
		t.Fatal(err)
	}
	accepted := []store.Command{
		store.PutRegionValue{Key: "k", Value: []byte("v")},
		write("hsm1", 1, val("keys", "k1", "uno")),
		store.StageValues{Name: "hsm3", Stage: "st", Values: []store.Value{val("keys", "k2", "staged")}},
		store.UpdateJob{Job: job("j1", "hsm1", "backup", 1)},
		store.CommitStage{Name: "hsm3", Stage: "st", Expect: 2, Buckets: []string{"keys"}},
	}
	refused := refusedCommands()
	var all, only []store.Entry
	var want []error
	for i, r := range refused {
		idx++
		all = append(all, store.Entry{Index: idx, Cmd: r.cmd})
		want = append(want, r.want)
		if i%10 == 0 && i/10 < len(accepted) {
			idx++
			e := store.Entry{Index: idx, Cmd: accepted[i/10]}
			all, only, want = append(all, e), append(only, e), append(want, nil)
		}
	}
	// Both batches end with the same accepted entry, at the same index.
	idx++
	last := store.Entry{Index: idx, Cmd: store.AbortStage{Name: "hsm9"}}
	all, only, want = append(all, last), append(only, last), append(want, nil)
	errs, err := ba.ApplyBatch(context.Background(), all)
	if err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
	if len(errs) != len(all) {
		t.Fatalf("ApplyBatch returned %d errors for %d entries", len(errs), len(all))
	}
	for i, e := range all {
		wantErr(t, fmt.Sprintf("entry %d (%s)", e.Index, e.Cmd.CommandType()), errs[i], want[i])
	}
	if errs, err := bb.ApplyBatch(context.Background(), only); err != nil || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		t.Fatalf("ApplyBatch of the accepted entries: %v, %v", errs, err)
	}
	names := []string{"hsm1", "hsm2", "hsm3", "hsm4"}
	sameDump(t, "refused commands in a batch", takeDump(t, a, names...), takeDump(t, b, names...))
	if got := takeDump(t, a, names...).Data["hsm3/keys"]; got != fmtKVs([]store.KV{kv("k1", "staged"), kv("k2", "staged")}) {
		t.Fatalf("hsm3/keys after the batch = %s", got)
	}
}

// ---------------------------------------------------------------------------
// applied index and batches

func testAppliedIndex(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	ba := batcher(t, s)
	ctx := context.Background()
	index := func(t *testing.T) uint64 {
		t.Helper()
		n, err := ba.AppliedIndex()
		if err != nil {
			t.Fatalf("AppliedIndex: %v", err)
		}
		return n
	}
	if n := index(t); n != 0 {
		t.Fatalf("new store: applied index %d, want 0", n)
	}
	mustApply(t, s, create("hsm1"), store.PutRegionValue{Key: "k", Value: []byte("1")})
	if n := index(t); n != 2 {
		t.Fatalf("after two Applies: applied index %d, want 2", n)
	}
	wantErr(t, "refused Apply", apply(s, create("hsm1")), store.ErrExists)
	if n := index(t); n != 2 {
		t.Fatalf("after a refused Apply: applied index %d, want 2", n)
	}

	log := []store.Entry{
		{Index: 3, Cmd: store.PutRegionValue{Key: "k", Value: []byte("3")}},
		{Index: 4, Cmd: write("hsm1", 1, val("keys", "a", "4"))},
		{Index: 5, Cmd: create("hsm1")}, // refused: still consumes its index
		{Index: 7, Cmd: write("hsm1", 1, val("keys", "b", "7"))},
	}
	errs, err := ba.ApplyBatch(ctx, log)
	if err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
	for i, want := range []error{nil, nil, store.ErrExists, nil} {
		wantErr(t, fmt.Sprint("entry ", log[i].Index), errs[i], want)
	}
	if n := index(t); n != 7 {
		t.Fatalf("after the batch: applied index %d, want 7", n)
	}
	before := takeDump(t, s, "hsm1")

	t.Run("replay", func(t *testing.T) {
		// Replaying the log, older entries included, is a no-op.
		replay := append([]store.Entry{{Index: 1, Cmd: store.PutRegionValue{Key: "k", Value: []byte("old")}}}, log...)
		errs, err := ba.ApplyBatch(ctx, replay)
		if err != nil {
			t.Fatalf("ApplyBatch replay: %v", err)
		}
		for i, e := range errs {
			if e != nil {
				t.Errorf("replayed entry %d: %v, want nil (skipped)", replay[i].Index, e)
			}
		}
		sameDump(t, "replay", takeDump(t, s, "hsm1"), before)
	})
	t.Run("partly applied", func(t *testing.T) {
		errs, err := ba.ApplyBatch(ctx, []store.Entry{log[3], {Index: 8, Cmd: store.PutRegionValue{Key: "k", Value: []byte("8")}}})
		if err != nil || errs[0] != nil || errs[1] != nil {
			t.Fatalf("ApplyBatch: %v, %v", errs, err)
		}
		if n := index(t); n != 8 {
			t.Fatalf("applied index %d, want 8", n)
		}
		wantKVs(t, s, "hsm1", "keys", kv("a", "4"), kv("b", "7"))
	})
	t.Run("Apply goes on from the index", func(t *testing.T) {
		mustApply(t, s, store.PutRegionValue{Key: "k", Value: []byte("9")})
		if n := index(t); n != 9 {
			t.Fatalf("applied index %d, want 9", n)
		}
	})
	bad := map[string][]store.Entry{
		"decreasing": {{Index: 11, Cmd: store.PutRegionValue{Key: "x", Value: []byte("1")}}, {Index: 10, Cmd: store.PutRegionValue{Key: "y", Value: []byte("1")}}},
		"repeated":   {{Index: 10, Cmd: store.PutRegionValue{Key: "x", Value: []byte("1")}}, {Index: 10, Cmd: store.PutRegionValue{Key: "y", Value: []byte("1")}}},
		"index 0":    {{Index: 0, Cmd: store.PutRegionValue{Key: "x", Value: []byte("1")}}},
	}
	for name, entries := range bad {
		t.Run(name, func(t *testing.T) {
			before := takeDump(t, s, "hsm1")
			if _, err := ba.ApplyBatch(ctx, entries); err == nil {
				t.Fatal("ApplyBatch succeeded")
			}
			sameDump(t, "bad batch", takeDump(t, s, "hsm1"), before)
		})
	}
	t.Run("nil command", func(t *testing.T) {
		errs, err := ba.ApplyBatch(ctx, []store.Entry{{Index: 10}, {Index: 11, Cmd: store.PutRegionValue{Key: "k", Value: []byte("11")}}})
		if err != nil || errs[0] == nil || errs[1] != nil {
			t.Fatalf("ApplyBatch: %v, %v; want an error for the nil command only", errs, err)
		}
	})
}

func testBatchApply(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	ba := batcher(t, s)
	const n = 500
	var entries []store.Entry
	var want []error
	add := func(cmd store.Command, err error) {
		entries = append(entries, store.Entry{Index: uint64(len(entries) + 1), Cmd: cmd})
		want = append(want, err)
	}
	add(create("hsm1"), nil)
	for i := 1; i <= n; i++ {
		k := fmt.Sprintf("k%03d", i)
		want := error(nil)
		if i%5 == 0 { // refused: the key before was written already
			k, want = fmt.Sprintf("k%03d", i-1), store.ErrConflict
		}
		add(store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Puts: []store.Value{val("keys", k, fmt.Sprint(i))},
			Conditions: []store.Condition{{Bucket: "keys", Key: k, Absent: true}}}, want)
	}
	add(create("hsm1"), store.ErrExists)
	add(store.UpdateInstance{Name: "hsm1", Expect: 1, ReplaceBuckets: []string{"other"}, ExpectWrites: 1}, store.ErrConflict)
	writes := uint64(0)
	for _, w := range want[1 : n+1] {
		if w == nil {
			writes++
		}
	}
	add(store.UpdateInstance{Name: "hsm1", Expect: 1, ReplaceBuckets: []string{"other"}, ExpectWrites: writes}, nil)
	add(write("hsm1", 1, val("keys", "late", "v")), store.ErrConflict) // epoch 2 now

	errs, err := ba.ApplyBatch(context.Background(), entries)
	if err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
	for i, e := range entries {
		wantErr(t, fmt.Sprintf("entry %d (%s)", e.Index, e.Cmd.CommandType()), errs[i], want[i])
	}
	in := mustInstance(t, s, "hsm1")
	if in.Writes != writes || in.Epoch != 2 || in.Generation != 2 {
		t.Fatalf("instance: writes %d epoch %d generation %d; want %d, 2, 2", in.Writes, in.Epoch, in.Generation, writes)
	}
	if got := len(instanceValues(t, s, "hsm1", "keys")); got != int(writes) {
		t.Fatalf("%d keys, want %d", got, writes)
	}
}

// ---------------------------------------------------------------------------
// staged replace

func testStagedReplace(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	mustApply(t, s, create("hsm1", val("keys", "k1", "old1"), val("keys", "k2", "old2"),
		val("roleassignments", "r1", "ra-old"), val("settings", "s1", "old"), val("other", "o1", "keep")))
	mustApply(t, s, write("hsm1", 1, val("keys", "k3", "old3")))
	mustApply(t, s, store.BeginStage{Name: "hsm1", Expect: 1, Stage: "st1"})
	if in := mustInstance(t, s, "hsm1"); in.Staging != "st1" || in.Generation != 2 || in.Epoch != 1 {
		t.Fatalf("after BeginStage: staging %q generation %d epoch %d; want st1, 2, 1", in.Staging, in.Generation, in.Epoch)
	}
	view(t, s, func(r store.Reader) error {
		ins, err := r.Instances()
		if err != nil || len(ins) != 1 || ins[0].Staging != "st1" {
			t.Errorf("Instances() = %+v, %v; want hsm1 staging st1", ins, err)
		}
		return nil
	})
	mustApply(t, s,
		store.StageValues{Name: "hsm1", Stage: "st1", Values: []store.Value{val("keys", "k1", "new1"), val("keys", "k9", "new9")}},
		store.StageValues{Name: "hsm1", Stage: "st1", Values: []store.Value{val("roleassignments", "r2", "ra-new"), val("keys", "k8", "new8")}},
	)

	t.Run("readers see the live values", func(t *testing.T) {
		wantKVs(t, s, "hsm1", "keys", kv("k1", "old1"), kv("k2", "old2"), kv("k3", "old3"))
		wantKVs(t, s, "hsm1", "roleassignments", kv("r1", "ra-old"))
		if v, err := instanceValue(t, s, "hsm1", "keys", "k9"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("staged value visible: %q, %v", v, err)
		}
	})
	t.Run("busy while staging", func(t *testing.T) {
		busy := map[string]store.Command{
			"write":       write("hsm1", 1, val("keys", "k4", "v")),
			"update":      store.UpdateInstance{Name: "hsm1", Expect: 2, Properties: []byte("p")},
			"replace":     store.UpdateInstance{Name: "hsm1", Expect: 2, ExpectWrites: 1, ReplaceBuckets: []string{"keys"}},
			"delete":      deleteCmd("hsm1", 2),
			"begin again": store.BeginStage{Name: "hsm1", Expect: 2, Stage: "st2"},
		}
		for name, cmd := range busy {
			t.Run(name, func(t *testing.T) {
				before := takeDump(t, s, "hsm1")
				wantErr(t, name, apply(s, cmd), store.ErrBusy)
				sameDump(t, name, takeDump(t, s, "hsm1"), before)
			})
		}
	})
	t.Run("commit", func(t *testing.T) {
		if err := s.Apply(ctx, store.CommitStage{Name: "hsm1", Stage: "st1", Expect: 2, Buckets: []string{"keys", "roleassignments", "settings"}, Properties: []byte("p-new")}); err != nil {
			t.Fatalf("CommitStage: %v", err)
		}
		in := mustInstance(t, s, "hsm1")
		if in.Staging != "" || in.Epoch != 2 || in.Generation != 3 || string(in.Properties) != "p-new" || string(in.WrappedRoot) != "root:hsm1" {
			t.Fatalf("after commit: %+v", in)
		}
		wantKVs(t, s, "hsm1", "keys", kv("k1", "new1"), kv("k8", "new8"), kv("k9", "new9"))
		wantKVs(t, s, "hsm1", "roleassignments", kv("r2", "ra-new"))
		wantKVs(t, s, "hsm1", "settings")                // listed but not staged: empty
		wantKVs(t, s, "hsm1", "other", kv("o1", "keep")) // not listed: kept
	})
	t.Run("writes from before the stage fail", func(t *testing.T) {
		wantErr(t, "write at the old epoch", apply(s, write("hsm1", 1, val("keys", "k4", "v"))), store.ErrConflict)
		mustApply(t, s, write("hsm1", 2, val("keys", "k4", "v")))
	})
	t.Run("a new stage starts empty", func(t *testing.T) {
		mustApply(t, s,
			store.BeginStage{Name: "hsm1", Expect: 3, Stage: "st2"},
			store.CommitStage{Name: "hsm1", Stage: "st2", Expect: 4, Buckets: []string{"keys"}},
		)
		wantKVs(t, s, "hsm1", "keys")
		if in := mustInstance(t, s, "hsm1"); in.Epoch != 3 || string(in.Properties) != "p-new" {
			t.Fatalf("after the second commit: epoch %d properties %q; want 3, p-new", in.Epoch, in.Properties)
		}
	})
}

// testCommitStageEndsJob: a CommitStage that carries its job ends it in the
// same transaction; the job is then immutable and no longer running.
func testCommitStageEndsJob(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	j := job("r1", "hsm1", "restore", 1)
	for _, c := range []store.Command{
		create("hsm1", val("keys", "k1", "old")),
		store.StartJob{Job: j, Exclusive: true},
		store.BeginStage{Name: "hsm1", Expect: 1, Stage: "r1"},
		store.StageValues{Name: "hsm1", Stage: "r1", Values: []store.Value{val("keys", "k1", "new")}},
	} {
		if err := s.Apply(ctx, c); err != nil {
			t.Fatalf("%s: %v", c.CommandType(), err)
		}
	}
	done := j
	done.Status, done.End, done.Details = store.JobSucceeded, t1, "restored"
	if err := s.Apply(ctx, store.CommitStage{Name: "hsm1", Stage: "r1", Expect: 2, Buckets: []string{"keys"}, Job: &done}); err != nil {
		t.Fatalf("CommitStage: %v", err)
	}
	wantKVs(t, s, "hsm1", "keys", kv("k1", "new"))
	var got store.Job
	if err := s.View(ctx, func(r store.Reader) error {
		var err error
		got, err = r.Job("r1")
		return err
	}); err != nil || got.Status != store.JobSucceeded || got.Details != "restored" {
		t.Fatalf("job after the commit: %+v, %v", got, err)
	}
	wantErr(t, "update of the ended job", apply(s, store.UpdateJob{Job: j}), store.ErrConflict)
	// A commit whose job has ended is refused whole.
	for _, c := range []store.Command{
		store.BeginStage{Name: "hsm1", Expect: 3, Stage: "r3"},
		store.StageValues{Name: "hsm1", Stage: "r3", Values: []store.Value{val("keys", "k1", "newer")}},
	} {
		if err := s.Apply(ctx, c); err != nil {
			t.Fatalf("%s: %v", c.CommandType(), err)
		}
	}
	wantErr(t, "commit with an ended job", apply(s, store.CommitStage{Name: "hsm1", Stage: "r3", Expect: 4, Buckets: []string{"keys"}, Job: &done}), store.ErrConflict)
	wantKVs(t, s, "hsm1", "keys", kv("k1", "new"))
	if err := s.Apply(ctx, store.AbortStage{Name: "hsm1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, store.StartJob{Job: job("r2", "hsm1", "backup", 2), Exclusive: true}); err != nil {
		t.Fatalf("an exclusive job after the commit: %v", err)
	}
}

func testStageAbort(t *testing.T, open func(*testing.T) store.Store) {
	tests := map[string]struct {
		abort   store.AbortStage
		aborted bool
	}{
		"same stage":  {store.AbortStage{Name: "hsm1", Stage: "st1"}, true},
		"any stage":   {store.AbortStage{Name: "hsm1"}, true},
		"other stage": {store.AbortStage{Name: "hsm1", Stage: "st2"}, false},
		"missing":     {store.AbortStage{Name: "hsm9", Stage: "st1"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, open)
			mustApply(t, s, create("hsm1", val("keys", "k1", "old1"), val("settings", "s", "on")), write("hsm1", 1, val("keys", "k2", "old2")))
			before := takeDump(t, s, "hsm1")
			mustApply(t, s,
				store.BeginStage{Name: "hsm1", Expect: 1, Stage: "st1"},
				store.StageValues{Name: "hsm1", Stage: "st1", Values: []store.Value{val("keys", "k1", "new"), val("other", "o", "new")}},
			)
			mustApply(t, s, tc.abort)
			in := mustInstance(t, s, "hsm1")
			if !tc.aborted {
				if in.Staging != "st1" {
					t.Fatalf("after a no-op abort: staging %q, want st1", in.Staging)
				}
				return
			}
			after := takeDump(t, s, "hsm1")
			// Everything is as before, but for the generation (begin, abort)
			// and the applied index.
			after.Applied = before.Applied
			if after.Snap.Instances[0].Generation != 3 {
				t.Fatalf("generation after begin and abort %d, want 3", after.Snap.Instances[0].Generation)
			}
			after.Snap.Instances[0].Generation = 1
			sameDump(t, "begin, stage, abort", after, before)
			mustApply(t, s, write("hsm1", 1, val("keys", "k3", "v")))
			// The staged values are gone for good.
			mustApply(t, s, store.BeginStage{Name: "hsm1", Expect: 3, Stage: "st3"},
				store.CommitStage{Name: "hsm1", Stage: "st3", Expect: 4, Buckets: []string{"keys", "other"}})
			wantKVs(t, s, "hsm1", "keys")
			wantKVs(t, s, "hsm1", "other")
		})
	}
}

// ---------------------------------------------------------------------------
// snapshots

func testSnapshot(t *testing.T, open func(*testing.T) store.Store) {
	a := openStore(t, open)
	sa, ok := a.(store.Snapshotter)
	if !ok {
		t.Skip("store does not implement store.Snapshotter")
	}
	mustApply(t, a, refusedSetup()...)
	mustApply(t, a, store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p2"), Puts: []store.Value{{Bucket: "keys", Key: "big", Value: bigValue("snapshot")}}})
	names := []string{"hsm1", "hsm2", "hsm3"}
	want := takeDump(t, a, names...)

	var buf bytes.Buffer
	n, err := sa.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	snap := buf.Bytes()

	b := openStore(t, open)
	sb := b.(store.Snapshotter)
	mustApply(t, b, create("other", val("keys", "x", "gone after restore")), store.PutRegionValue{Key: "k", Value: []byte("gone")})
	if err := sb.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	sameDump(t, "Restore", takeDump(t, b, append(names, "other")...), takeDump(t, a, append(names, "other")...))
	if got := takeDump(t, b, names...); got.Applied == 0 || got.Applied != want.Applied {
		t.Fatalf("applied index after restore %d, want %d", got.Applied, want.Applied)
	}

	t.Run("restored store works", func(t *testing.T) {
		mustApply(t, b, write("hsm1", 1, val("keys", "after", "restore")))
		mustApply(t, b, store.AbortStage{Name: "hsm3"})
		wantKVs(t, b, "hsm3", "keys", kv("k1", "live"))
		sameDump(t, "applying to the restored copy", takeDump(t, a, names...), want)
	})
	t.Run("garbage refused", func(t *testing.T) {
		before := takeDump(t, b, names...)
		if err := sb.Restore(strings.NewReader(strings.Repeat("not a snapshot ", 1000))); err == nil {
			t.Fatal("Restore of garbage succeeded")
		}
		if err := sb.Restore(bytes.NewReader(snap[:len(snap)/2])); err == nil {
			t.Fatal("Restore of a truncated snapshot succeeded")
		}
		sameDump(t, "refused Restore", takeDump(t, b, names...), before)
	})
}

// ---------------------------------------------------------------------------
// streaming reads

func testForEach(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	const n = 10000
	values := make([]store.Value, 0, n)
	for i := range n {
		// Inserted out of order; read back in byte order.
		j := (i * 7919) % n
		values = append(values, val("keys", fmt.Sprintf("k%05d", j), fmt.Sprintf("v%05d", j)))
	}
	mustApply(t, s, create("hsm1", values...), create("hsm2", val("keys", "a", "other instance")))

	walk := func(t *testing.T, after string, stop int) []string {
		t.Helper()
		var keys []string
		view(t, s, func(r store.Reader) error {
			return r.ForEach("hsm1", "keys", after, func(k string, v []byte) error {
				if want := "v" + k[1:]; string(v) != want {
					t.Fatalf("value of %s = %q, want %q", k, v, want)
				}
				keys = append(keys, k)
				if len(keys) == stop {
					return store.ErrStop
				}
				return nil
			})
		})
		return keys
	}
	key := func(i int) string { return fmt.Sprintf("k%05d", i) }
	tests := map[string]struct {
		after       string
		stop        int
		first, last string
		count       int
	}{
		"all":              {"", 0, key(0), key(n - 1), n},
		"after a key":      {key(4999), 0, key(5000), key(n - 1), n - 5000},
		"after a gap":      {key(4999) + "x", 0, key(5000), key(n - 1), n - 5000},
		"before the first": {"a", 0, key(0), key(n - 1), n},
		"after the last":   {key(n - 1), 0, "", "", 0},
		"stop":             {"", 10, key(0), key(9), 10},
		"stop after":       {key(100), 300, key(101), key(400), 300},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			keys := walk(t, tc.after, tc.stop)
			if len(keys) != tc.count {
				t.Fatalf("%d keys, want %d", len(keys), tc.count)
			}
			if !slices.IsSorted(keys) {
				t.Fatal("keys not in byte order")
			}
			if tc.count > 0 && (keys[0] != tc.first || keys[len(keys)-1] != tc.last) {
				t.Fatalf("keys %s … %s, want %s … %s", keys[0], keys[len(keys)-1], tc.first, tc.last)
			}
		})
	}
	t.Run("chunks of a few hundred per View", func(t *testing.T) {
		var all []string
		after, views := "", 0
		for {
			chunk := walk(t, after, 300)
			views++
			if len(chunk) == 0 {
				break
			}
			all = append(all, chunk...)
			after = chunk[len(chunk)-1]
		}
		if len(all) != n || !slices.IsSorted(all) || views != n/300+2 {
			t.Fatalf("%d keys in %d views", len(all), views)
		}
	})
	t.Run("error ends the walk", func(t *testing.T) {
		boom := errors.New("boom")
		calls := 0
		err := s.View(context.Background(), func(r store.Reader) error {
			return r.ForEach("hsm1", "keys", "", func(string, []byte) error { calls++; return boom })
		})
		if !errors.Is(err, boom) || calls != 1 {
			t.Fatalf("ForEach: %v after %d calls, want boom after 1", err, calls)
		}
	})
	t.Run("missing bucket or instance", func(t *testing.T) {
		view(t, s, func(r store.Reader) error {
			for _, c := range [][2]string{{"hsm1", "nope"}, {"nope", "keys"}} {
				if err := r.ForEach(c[0], c[1], "", func(string, []byte) error { t.Fatal("fn called"); return nil }); err != nil {
					t.Errorf("ForEach(%s, %s): %v", c[0], c[1], err)
				}
			}
			return nil
		})
	})
}

// ---------------------------------------------------------------------------
// jobs

func testJobs(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	getJob := func(t *testing.T, id string) store.Job {
		t.Helper()
		var j store.Job
		view(t, s, func(r store.Reader) error {
			var err error
			j, err = r.Job(id)
			return err
		})
		return j
	}
	listJobs := func(t *testing.T, instance string) []string {
		t.Helper()
		var ids []string
		view(t, s, func(r store.Reader) error {
			js, err := r.Jobs(instance)
			for _, j := range js {
				ids = append(ids, j.ID+":"+j.Status)
			}
			return err
		})
		return ids
	}
	b1 := job("b1", "hsm1", "backup", 1)
	progress := b1
	progress.Details, progress.Done, progress.Total = "copying", 5, 10
	done := progress
	done.Status, done.Result, done.End, done.Done = store.JobSucceeded, "https://blob/folder", t1, 10
	k1 := job("k1", "hsm1", "keyrestore", 3)
	k1failed := k1
	k1failed.Status, k1failed.Error, k1failed.End = store.JobFailed, "bad key", t1

	steps := []struct {
		name string
		cmd  store.Command
		want error
	}{
		{"start exclusive", store.StartJob{Job: b1, Exclusive: true}, nil},
		{"second exclusive refused", store.StartJob{Job: job("r1", "hsm1", "restore", 2), Exclusive: true}, store.ErrConflict},
		{"other instance", store.StartJob{Job: job("b2", "hsm2", "backup", 2), Exclusive: true}, nil},
		{"not exclusive", store.StartJob{Job: k1}, nil},
		{"same id", store.StartJob{Job: job("b1", "hsm3", "backup", 4)}, store.ErrExists},
		{"progress", store.UpdateJob{Job: progress}, nil},
		{"succeed", store.UpdateJob{Job: done}, nil},
		{"ended is immutable", store.UpdateJob{Job: progress}, store.ErrConflict},
		{"missing", store.UpdateJob{Job: job("nope", "hsm1", "backup", 1)}, store.ErrNotFound},
		{"still one running", store.StartJob{Job: job("r1", "hsm1", "restore", 4), Exclusive: true}, store.ErrConflict},
		{"fail", store.UpdateJob{Job: k1failed}, nil},
		{"now exclusive again", store.StartJob{Job: job("r1", "hsm1", "restore", 4), Exclusive: true}, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := apply(s, st.cmd)
			wantErr(t, st.cmd.CommandType(), err, st.want)
			if st.name == "second exclusive refused" && (!strings.Contains(err.Error(), "b1") || !strings.Contains(err.Error(), "backup")) {
				t.Fatalf("conflict %q does not name the running job (b1, backup)", err)
			}
		})
	}
	if got := getJob(t, "b1"); !reflect.DeepEqual(got, done) {
		t.Fatalf("Job(b1) = %+v, want %+v", got, done)
	}
	view(t, s, func(r store.Reader) error {
		if _, err := r.Job("nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Job(missing): %v, want ErrNotFound", err)
		}
		return nil
	})
	if got, want := listJobs(t, ""), []string{"b1:Succeeded", "b2:InProgress", "k1:Failed", "r1:InProgress"}; !slices.Equal(got, want) {
		t.Fatalf("Jobs(\"\") = %v, want %v (by start time)", got, want)
	}
	if got, want := listJobs(t, "hsm1"), []string{"b1:Succeeded", "k1:Failed", "r1:InProgress"}; !slices.Equal(got, want) {
		t.Fatalf("Jobs(hsm1) = %v, want %v", got, want)
	}
	if got := listJobs(t, "hsm9"); len(got) != 0 {
		t.Fatalf("Jobs(hsm9) = %v, want none", got)
	}

	t.Run("FailInterruptedJobs", func(t *testing.T) {
		mustApply(t, s, store.FailInterruptedJobs{Message: "interrupted by a restart", At: t1})
		if got, want := listJobs(t, ""), []string{"b1:Succeeded", "b2:Failed", "k1:Failed", "r1:Failed"}; !slices.Equal(got, want) {
			t.Fatalf("Jobs after FailInterruptedJobs = %v, want %v", got, want)
		}
		r1 := getJob(t, "r1")
		if r1.Error != "interrupted by a restart" || !r1.End.Equal(t1) {
			t.Fatalf("r1 = %+v, want error and end set", r1)
		}
		if got := getJob(t, "k1"); !reflect.DeepEqual(got, k1failed) {
			t.Fatalf("an ended job changed: %+v, want %+v", got, k1failed)
		}
		mustApply(t, s, store.StartJob{Job: job("r2", "hsm1", "restore", 5), Exclusive: true})
	})

	t.Run("FailInterruptedJobs of one node", func(t *testing.T) {
		// r2 (no node) runs; n1's and n2's jobs run on other instances.
		j1, j2 := job("n1job", "hsm2", "backup", 6), job("n2job", "hsm3", "backup", 7)
		j1.Node, j2.Node = "n1", "n2"
		mustApply(t, s, store.StartJob{Job: j1, Exclusive: true}, store.StartJob{Job: j2, Exclusive: true})
		mustApply(t, s, store.FailInterruptedJobs{Message: "n1 restarted", At: t1, Node: "n1"})
		if got := getJob(t, "n1job"); got.Status != store.JobFailed || got.Error != "n1 restarted" {
			t.Fatalf("n1's job = %+v, want Failed", got)
		}
		for _, id := range []string{"n2job", "r2"} {
			if got := getJob(t, id); got.Status != store.JobInProgress {
				t.Fatalf("job %s of another node = %+v, want it still in progress", id, got)
			}
		}
		if got := getJob(t, "n2job"); got.Node != "n2" {
			t.Fatalf("Node not kept: %+v", got)
		}
	})
}

// ---------------------------------------------------------------------------
// error codes

func testErrorCodes(t *testing.T, _ func(*testing.T) store.Store) {
	tests := map[string]struct {
		err  error
		code string
		is   error
	}{
		"not found":   {fmt.Errorf("instance hsm1: %w", store.ErrNotFound), "NotFound", store.ErrNotFound},
		"exists":      {fmt.Errorf("job j: %w", store.ErrExists), "Exists", store.ErrExists},
		"conflict":    {fmt.Errorf("a: %w", fmt.Errorf("b: %w", store.ErrConflict)), "Conflict", store.ErrConflict},
		"closed":      {store.ErrClosed, "Closed", store.ErrClosed},
		"busy":        {fmt.Errorf("instance hsm1 is staging: %w", store.ErrBusy), "Busy", store.ErrBusy},
		"unavailable": {fmt.Errorf("no leader: %w", store.ErrUnavailable), "Unavailable", store.ErrUnavailable},
		"plain":       {errors.New("store: value needs bucket and key"), "", nil},
	}
	type wire struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := store.ErrorCode(tc.err); got != tc.code {
				t.Fatalf("ErrorCode = %q, want %q", got, tc.code)
			}
			data, err := json.Marshal(wire{store.ErrorCode(tc.err), tc.err.Error()})
			if err != nil {
				t.Fatal(err)
			}
			var w wire
			if err := json.Unmarshal(data, &w); err != nil {
				t.Fatal(err)
			}
			back := store.ErrorFromCode(w.Code, w.Message)
			if back.Error() != tc.err.Error() {
				t.Fatalf("message %q, want %q", back.Error(), tc.err.Error())
			}
			if store.ErrorCode(back) != tc.code {
				t.Fatalf("ErrorCode after the round trip = %q, want %q", store.ErrorCode(back), tc.code)
			}
			for _, s := range []error{store.ErrNotFound, store.ErrExists, store.ErrConflict, store.ErrClosed, store.ErrBusy} {
				if errors.Is(back, s) != (s == tc.is) {
					t.Fatalf("errors.Is(%v, %v) = %v", back, s, !(s == tc.is))
				}
			}
		})
	}
	if store.ErrorCode(nil) != "" {
		t.Fatal("ErrorCode(nil) is not empty")
	}
	if err := store.ErrorFromCode("Teapot", "short and stout"); store.ErrorCode(err) != "" || err.Error() != "short and stout" {
		t.Fatalf("unknown code: %v (code %q)", err, store.ErrorCode(err))
	}
}
