// Package storetest is the conformance suite of [store.Store]. Every
// implementation (bbolt today, raft later) runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { … })
//	}
//
// The suite exercises every command of package store through Apply and reads
// the results back through View only, so it states the behaviour that every
// implementation shares: command semantics and errors, all-or-nothing Apply,
// reads that return copies, concurrent Applies, Close, and the stable wire
// form of commands ([store.Encode], [store.Decode]).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"tresor/internal/store"
)

// Run runs the suite. open is called once per subtest and must return a new,
// empty store; the suite closes it (at most once) before the subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, func(*testing.T) store.Store)
	}{
		{"RegionValues", testRegionValues},
		{"Principals", testPrincipals},
		{"CreateInstance", testCreateInstance},
		{"CreateInstanceDuplicate", testCreateInstanceDuplicate},
		{"UpdateInstance", testUpdateInstance},
		{"UpdateInstanceRejected", testUpdateInstanceRejected},
		{"UpdateInstanceValues", testUpdateInstanceValues},
		{"InstanceBuckets", testInstanceBuckets},
		{"WriteInstanceValues", testWriteInstanceValues},
		{"InstanceLifecycle", testInstanceLifecycle},
		{"RewrapRoots", testRewrapRoots},
		{"PurgeRemovesValues", testPurgeRemovesValues},
		{"InstancesListed", testInstancesListed},
		{"AllOrNothing", testAllOrNothing},
		{"ReadsReturnCopies", testReadsReturnCopies},
		{"ValuesOutliveView", testValuesOutliveView},
		{"ApplyDoesNotRetainInput", testApplyDoesNotRetainInput},
		{"ConcurrentCreates", testConcurrentCreates},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ContextCanceled", testContextCanceled},
		{"NilCommand", testNilCommand},
		{"Closed", testClosed},
		{"EncodeDecode", testEncodeDecode},
		{"DecodeRejects", testDecodeRejects},
		{"DecodedCommandsApply", testDecodedCommandsApply},
	}
	for _, tc := range append(tests, v2Tests...) {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// ---------------------------------------------------------------------------
// helpers

var (
	t0 = time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	t1 = time.Date(2025, 6, 2, 5, 6, 7, 0, time.UTC)
)

// Buckets and region keys the suite uses; snapshots cover all of them.
var (
	suiteBuckets    = []string{"keys", "rbac", "settings", "other"}
	suiteRegionKeys = []string{"signing-key", "region-root", "empty", "k"}
)

// openStore opens a store and closes it when the test ends.
func openStore(t *testing.T, open func(*testing.T) store.Store) store.Store {
	t.Helper()
	s := open(t)
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func apply(s store.Store, cmd store.Command) error {
	return s.Apply(context.Background(), cmd)
}

func mustApply(t *testing.T, s store.Store, cmds ...store.Command) {
	t.Helper()
	for _, cmd := range cmds {
		if err := apply(s, cmd); err != nil {
			desc := fmt.Sprintf("%+v", cmd)
			if len(desc) > 500 { // a command of thousands of values
				desc = desc[:500] + "…"
			}
			t.Fatalf("Apply(%s %s): %v", cmd.CommandType(), desc, err)
		}
	}
}

// wantErr checks that err matches want: nil means success, errAny any
// non-nil error, anything else errors.Is.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case want == errAny && err == nil:
		t.Fatalf("%s: succeeded, want an error", what)
	case want != nil && want != errAny && !errors.Is(err, want):
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

func view(t *testing.T, s store.Store, fn func(store.Reader) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func getInstance(t *testing.T, s store.Store, name string) (store.Instance, error) {
	t.Helper()
	var in store.Instance
	var rerr error
	view(t, s, func(r store.Reader) error {
		in, rerr = r.Instance(name)
		return nil
	})
	return in, rerr
}

func mustInstance(t *testing.T, s store.Store, name string) store.Instance {
	t.Helper()
	in, err := getInstance(t, s, name)
	if err != nil {
		t.Fatalf("Instance(%q): %v", name, err)
	}
	return in
}

func instanceValue(t *testing.T, s store.Store, name, bucket, key string) ([]byte, error) {
	t.Helper()
	var v []byte
	var rerr error
	view(t, s, func(r store.Reader) error {
		v, rerr = r.InstanceValue(name, bucket, key)
		return nil
	})
	return v, rerr
}

func instanceValues(t *testing.T, s store.Store, name, bucket string) []store.KV {
	t.Helper()
	var kvs []store.KV
	view(t, s, func(r store.Reader) error {
		var err error
		kvs, err = r.InstanceValues(name, bucket)
		return err
	})
	return kvs
}

// wantKVs checks the listing of an instance's bucket (order by key; nil and
// empty lists are the same).
func wantKVs(t *testing.T, s store.Store, name, bucket string, want ...store.KV) {
	t.Helper()
	got := instanceValues(t, s, name, bucket)
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		same = got[i].Key == want[i].Key && bytes.Equal(got[i].Value, want[i].Value)
	}
	if !same {
		t.Fatalf("InstanceValues(%q, %q) = %s, want %s", name, bucket, fmtKVs(got), fmtKVs(want))
	}
}

func fmtKVs(kvs []store.KV) string {
	var b bytes.Buffer
	b.WriteString("[")
	for i, kv := range kvs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%q", kv.Key, kv.Value)
	}
	b.WriteString("]")
	return b.String()
}

func newInstance(name string) store.Instance {
	return store.Instance{
		Name:          name,
		Subscription:  "00000000-0000-0000-0000-000000000001",
		ResourceGroup: "rg-" + name,
		Location:      "westeurope",
		Epoch:         1,
		Properties:    []byte("props:" + name),
		WrappedRoot:   []byte("root:" + name),
	}
}

func newPrincipal(oid, cid string) store.Principal {
	return store.Principal{
		ObjectID:    oid,
		ClientID:    cid,
		DisplayName: "principal " + oid,
		SecretHash:  []byte("hash:" + oid),
		Created:     t0,
	}
}

func create(name string, values ...store.Value) store.CreateInstance {
	return store.CreateInstance{Instance: newInstance(name), Values: values}
}

func val(bucket, key, value string) store.Value {
	return store.Value{Bucket: bucket, Key: key, Value: []byte(value)}
}

func kv(key, value string) store.KV { return store.KV{Key: key, Value: []byte(value)} }

func deleteCmd(name string, expect uint64) store.DeleteInstance {
	return store.DeleteInstance{Name: name, Expect: expect, DeletionDate: t0, ScheduledPurgeDate: t1}
}

// snapshot is everything a Reader shows about the names the suite uses.
type snapshot struct {
	Region     map[string]string
	Principals []store.Principal
	Instances  []store.Instance
	Missing    map[string]bool   // instance names that Instance() does not find
	Values     map[string]string // "instance/bucket" → fmtKVs
}

// takeSnapshot reads the whole visible state: the suite's region keys, all
// principals, all listed instances plus names, and every suite bucket of each.
func takeSnapshot(t *testing.T, s store.Store, names ...string) snapshot {
	t.Helper()
	snap := snapshot{Region: map[string]string{}, Missing: map[string]bool{}, Values: map[string]string{}}
	view(t, s, func(r store.Reader) error {
		for _, k := range suiteRegionKeys {
			v, err := r.RegionValue(k)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return err
			default:
				snap.Region[k] = string(v)
			}
		}
		ps, err := r.Principals()
		if err != nil {
			return err
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i].ObjectID < ps[j].ObjectID })
		snap.Principals = ps
		ins, err := r.Instances()
		if err != nil {
			return err
		}
		snap.Instances = ins
		all := slices.Clone(names)
		for _, in := range ins {
			all = append(all, in.Name)
		}
		for _, n := range all {
			switch _, err := r.Instance(n); {
			case errors.Is(err, store.ErrNotFound):
				snap.Missing[n] = true
			case err != nil:
				return err
			}
			for _, b := range suiteBuckets {
				kvs, err := r.InstanceValues(n, b)
				if err != nil {
					return err
				}
				if len(kvs) > 0 {
					snap.Values[n+"/"+b] = fmtKVs(kvs)
				}
			}
		}
		return nil
	})
	return snap
}

func sameSnapshot(t *testing.T, what string, got, want snapshot) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s changed the state:\n got  %+v\n want %+v", what, got, want)
	}
}

// ---------------------------------------------------------------------------
// region values

func testRegionValues(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	read := func(t *testing.T, key string) ([]byte, error) {
		t.Helper()
		var v []byte
		var rerr error
		view(t, s, func(r store.Reader) error { v, rerr = r.RegionValue(key); return nil })
		return v, rerr
	}

	if _, err := read(t, "signing-key"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RegionValue of a missing key: %v, want ErrNotFound", err)
	}

	steps := []struct {
		name    string
		cmd     store.PutRegionValue
		wantErr error
		key     string // read after the step
		want    string
	}{
		{"put", store.PutRegionValue{Key: "signing-key", Value: []byte("v1")}, nil, "signing-key", "v1"},
		{"overwrite", store.PutRegionValue{Key: "signing-key", Value: []byte("v2")}, nil, "signing-key", "v2"},
		{"if absent, present", store.PutRegionValue{Key: "signing-key", Value: []byte("v3"), IfAbsent: true}, store.ErrExists, "signing-key", "v2"},
		{"if absent, absent", store.PutRegionValue{Key: "region-root", Value: []byte("r1"), IfAbsent: true}, nil, "region-root", "r1"},
		{"empty value", store.PutRegionValue{Key: "empty", Value: []byte{}}, nil, "empty", ""},
		{"if absent, present but empty", store.PutRegionValue{Key: "empty", Value: []byte("x"), IfAbsent: true}, store.ErrExists, "empty", ""},
		{"empty key", store.PutRegionValue{Key: "", Value: []byte("x")}, errAny, "signing-key", "v2"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			wantErr(t, "Apply", apply(s, st.cmd), st.wantErr)
			got, err := read(t, st.key)
			if err != nil {
				t.Fatalf("RegionValue(%q): %v", st.key, err)
			}
			if string(got) != st.want {
				t.Fatalf("RegionValue(%q) = %q, want %q", st.key, got, st.want)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// principals

func testPrincipals(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	alice := newPrincipal("oid-alice", "cid-alice")
	alice.RegionAdmin = true
	bob := newPrincipal("oid-bob", "cid-bob")
	mustApply(t, s, store.CreatePrincipal{Principal: alice}, store.CreatePrincipal{Principal: bob})

	t.Run("read", func(t *testing.T) {
		view(t, s, func(r store.Reader) error {
			for _, want := range []store.Principal{alice, bob} {
				got, err := r.Principal(want.ObjectID)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("Principal(%q) = %+v, %v; want %+v", want.ObjectID, got, err, want)
				}
				got, err = r.PrincipalByClientID(want.ClientID)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("PrincipalByClientID(%q) = %+v, %v; want %+v", want.ClientID, got, err, want)
				}
			}
			if _, err := r.Principal("oid-nobody"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Principal(missing): %v, want ErrNotFound", err)
			}
			if _, err := r.PrincipalByClientID("cid-nobody"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("PrincipalByClientID(missing): %v, want ErrNotFound", err)
			}
			// The object id is not a client id, nor the other way round.
			if _, err := r.PrincipalByClientID(alice.ObjectID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("PrincipalByClientID(object id): %v, want ErrNotFound", err)
			}
			ps, err := r.Principals()
			if err != nil {
				return err
			}
			sort.Slice(ps, func(i, j int) bool { return ps[i].ObjectID < ps[j].ObjectID })
			if want := []store.Principal{alice, bob}; !reflect.DeepEqual(ps, want) {
				t.Errorf("Principals() = %+v, want %+v", ps, want)
			}
			return nil
		})
	})

	rejected := map[string]struct {
		p    store.Principal
		want error
	}{
		"duplicate object id":  {newPrincipal("oid-alice", "cid-other"), store.ErrExists},
		"duplicate client id":  {newPrincipal("oid-other", "cid-alice"), store.ErrExists},
		"duplicate both":       {alice, store.ErrExists},
		"no object id":         {newPrincipal("", "cid-x"), errAny},
		"no client id":         {newPrincipal("oid-x", ""), errAny},
		"no object, client id": {store.Principal{}, errAny},
	}
	for name, tc := range rejected {
		t.Run(name, func(t *testing.T) {
			before := takeSnapshot(t, s)
			wantErr(t, "CreatePrincipal", apply(s, store.CreatePrincipal{Principal: tc.p}), tc.want)
			sameSnapshot(t, "CreatePrincipal", takeSnapshot(t, s), before)
		})
	}

	t.Run("delete", func(t *testing.T) {
		mustApply(t, s, store.DeletePrincipal{ObjectID: alice.ObjectID})
		view(t, s, func(r store.Reader) error {
			if _, err := r.Principal(alice.ObjectID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Principal after delete: %v, want ErrNotFound", err)
			}
			if _, err := r.PrincipalByClientID(alice.ClientID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("PrincipalByClientID after delete: %v, want ErrNotFound", err)
			}
			if got, err := r.PrincipalByClientID(bob.ClientID); err != nil || !reflect.DeepEqual(got, bob) {
				t.Errorf("PrincipalByClientID(bob) after deleting alice = %+v, %v", got, err)
			}
			ps, err := r.Principals()
			if err != nil {
				return err
			}
			if want := []store.Principal{bob}; !reflect.DeepEqual(ps, want) {
				t.Errorf("Principals() = %+v, want %+v", ps, want)
			}
			return nil
		})
	})

	t.Run("delete missing", func(t *testing.T) {
		before := takeSnapshot(t, s)
		wantErr(t, "DeletePrincipal", apply(s, store.DeletePrincipal{ObjectID: alice.ObjectID}), store.ErrNotFound)
		wantErr(t, "DeletePrincipal", apply(s, store.DeletePrincipal{ObjectID: "oid-never"}), store.ErrNotFound)
		sameSnapshot(t, "DeletePrincipal", takeSnapshot(t, s), before)
	})

	t.Run("ids free after delete", func(t *testing.T) {
		again := newPrincipal("oid-alice2", alice.ClientID)
		mustApply(t, s, store.CreatePrincipal{Principal: again}, store.CreatePrincipal{Principal: newPrincipal(alice.ObjectID, "cid-alice2")})
		view(t, s, func(r store.Reader) error {
			got, err := r.PrincipalByClientID(alice.ClientID)
			if err != nil || got.ObjectID != again.ObjectID {
				t.Errorf("PrincipalByClientID(%q) = %+v, %v; want object id %q", alice.ClientID, got, err, again.ObjectID)
			}
			return nil
		})
	})
}

// ---------------------------------------------------------------------------
// instances

func testCreateInstance(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	in := newInstance("hsm1")
	in.Generation = 42 // ignored: a new instance is at generation 1
	mustApply(t, s, store.CreateInstance{Instance: in, Values: []store.Value{
		val("keys", "k2", "two"), val("keys", "k1", "one"), val("rbac", "a1", "assignment"),
	}})

	want := newInstance("hsm1")
	want.Generation = 1
	if got := mustInstance(t, s, "hsm1"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Instance = %+v, want %+v", got, want)
	}
	wantKVs(t, s, "hsm1", "keys", kv("k1", "one"), kv("k2", "two"))
	wantKVs(t, s, "hsm1", "rbac", kv("a1", "assignment"))
	wantKVs(t, s, "hsm1", "settings")
	if v, err := instanceValue(t, s, "hsm1", "keys", "k1"); err != nil || string(v) != "one" {
		t.Fatalf("InstanceValue(keys/k1) = %q, %v", v, err)
	}

	missing := map[string]struct{ instance, bucket, key string }{
		"missing key":      {"hsm1", "keys", "k3"},
		"missing bucket":   {"hsm1", "settings", "k1"},
		"missing instance": {"hsm2", "keys", "k1"},
	}
	for name, tc := range missing {
		t.Run(name, func(t *testing.T) {
			if _, err := instanceValue(t, s, tc.instance, tc.bucket, tc.key); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("InstanceValue: %v, want ErrNotFound", err)
			}
		})
	}
	if _, err := getInstance(t, s, "hsm2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Instance(missing): %v, want ErrNotFound", err)
	}
	wantKVs(t, s, "hsm2", "keys")

	invalid := map[string]store.CreateInstance{
		"no name":         {Instance: newInstance("")},
		"value no bucket": create("hsm3", val("", "k", "v")),
		"value no key":    create("hsm3", val("keys", "", "v")),
	}
	for name, cmd := range invalid {
		t.Run(name, func(t *testing.T) {
			before := takeSnapshot(t, s, "", "hsm3")
			wantErr(t, "CreateInstance", apply(s, cmd), errAny)
			sameSnapshot(t, "CreateInstance", takeSnapshot(t, s, "", "hsm3"), before)
		})
	}
}

func testCreateInstanceDuplicate(t *testing.T, open func(*testing.T) store.Store) {
	tests := map[string]struct {
		setup []store.Command
	}{
		"active":       {setup: []store.Command{create("hsm1", val("keys", "k", "orig"))}},
		"soft-deleted": {setup: []store.Command{create("hsm1", val("keys", "k", "orig")), deleteCmd("hsm1", 1)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, open)
			mustApply(t, s, tc.setup...)
			before := takeSnapshot(t, s, "hsm1")
			wantErr(t, "CreateInstance", apply(s, create("hsm1", val("keys", "k", "new"), val("rbac", "r", "new"))), store.ErrExists)
			sameSnapshot(t, "CreateInstance", takeSnapshot(t, s, "hsm1"), before)
		})
	}
}

func testUpdateInstance(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	mustApply(t, s, create("hsm1"))

	steps := []struct {
		name     string
		cmd      store.UpdateInstance
		wantGen  uint64
		wantProp string
		wantRoot string
		wantEpch uint64
	}{
		{"properties", store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p2")}, 2, "p2", "root:hsm1", 1},
		{"root kept when nil", store.UpdateInstance{Name: "hsm1", Expect: 2, Properties: []byte("p3")}, 3, "p3", "root:hsm1", 1},
		{"root replaced", store.UpdateInstance{Name: "hsm1", Expect: 3, Properties: []byte("p4"), WrappedRoot: []byte("root2")}, 4, "p4", "root2", 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			mustApply(t, s, st.cmd)
			got := mustInstance(t, s, "hsm1")
			want := newInstance("hsm1")
			want.Generation, want.Properties, want.WrappedRoot, want.Epoch = st.wantGen, []byte(st.wantProp), []byte(st.wantRoot), st.wantEpch
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Instance = %+v, want %+v", got, want)
			}
		})
	}
}

func testUpdateInstanceRejected(t *testing.T, open func(*testing.T) store.Store) {
	tests := map[string]struct {
		setup []store.Command
		cmd   store.UpdateInstance
		want  error
	}{
		"stale generation": {
			setup: []store.Command{create("hsm1", val("keys", "k", "v")), store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p2")}},
			cmd:   store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p3"), WrappedRoot: []byte("r"), Puts: []store.Value{val("keys", "k2", "v")}, ReplaceBuckets: []string{"keys"}},
			want:  store.ErrConflict,
		},
		"future generation": {
			setup: []store.Command{create("hsm1")},
			cmd:   store.UpdateInstance{Name: "hsm1", Expect: 2, Properties: []byte("p3")},
			want:  store.ErrConflict,
		},
		"deleted": {
			setup: []store.Command{create("hsm1", val("keys", "k", "v")), deleteCmd("hsm1", 1)},
			cmd:   store.UpdateInstance{Name: "hsm1", Expect: 2, Properties: []byte("p3"), Deletes: []store.Value{{Bucket: "keys", Key: "k"}}},
			want:  store.ErrConflict,
		},
		"missing": {
			cmd:  store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p3")},
			want: store.ErrNotFound,
		},
		"put without key": {
			setup: []store.Command{create("hsm1", val("keys", "k", "v"))},
			cmd:   store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p3"), Puts: []store.Value{val("keys", "k2", "v"), val("keys", "", "v")}},
			want:  errAny,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, open)
			mustApply(t, s, tc.setup...)
			before := takeSnapshot(t, s, "hsm1")
			wantErr(t, "UpdateInstance", apply(s, tc.cmd), tc.want)
			sameSnapshot(t, "UpdateInstance", takeSnapshot(t, s, "hsm1"), before)
		})
	}
}

func testUpdateInstanceValues(t *testing.T, open func(*testing.T) store.Store) {
	seed := []store.Value{
		val("keys", "k1", "one"), val("keys", "k2", "two"),
		val("rbac", "r1", "ra1"), val("rbac", "r2", "ra2"),
		val("settings", "s1", "on"),
	}
	tests := map[string]struct {
		cmd  store.UpdateInstance
		want map[string][]store.KV // bucket → values; buckets not named are as seeded
	}{
		"puts add and overwrite": {
			cmd: store.UpdateInstance{Puts: []store.Value{val("keys", "k3", "three"), val("keys", "k1", "uno"), val("other", "o", "new bucket")}},
			want: map[string][]store.KV{
				"keys":  {kv("k1", "uno"), kv("k2", "two"), kv("k3", "three")},
				"other": {kv("o", "new bucket")},
			},
		},
		"deletes": {
			cmd: store.UpdateInstance{Deletes: []store.Value{{Bucket: "keys", Key: "k1"}, {Bucket: "rbac", Key: "r2"}}},
			want: map[string][]store.KV{
				"keys": {kv("k2", "two")},
				"rbac": {kv("r1", "ra1")},
			},
		},
		"delete missing key and bucket": {
			cmd: store.UpdateInstance{Deletes: []store.Value{{Bucket: "keys", Key: "nope"}, {Bucket: "other", Key: "nope"}}},
		},
		"replace bucket": {
			cmd: store.UpdateInstance{ReplaceBuckets: []string{"keys"}, Puts: []store.Value{val("keys", "k9", "nine")}},
			want: map[string][]store.KV{
				"keys": {kv("k9", "nine")},
			},
		},
		"replace buckets to empty": {
			cmd:  store.UpdateInstance{ReplaceBuckets: []string{"keys", "rbac", "other"}},
			want: map[string][]store.KV{"keys": nil, "rbac": nil},
		},
		"replace, then deletes, then puts": {
			cmd: store.UpdateInstance{
				ReplaceBuckets: []string{"rbac"},
				Deletes:        []store.Value{{Bucket: "keys", Key: "k1"}, {Bucket: "keys", Key: "k2"}},
				Puts:           []store.Value{val("keys", "k2", "back"), val("rbac", "r3", "ra3")},
			},
			want: map[string][]store.KV{
				"keys": {kv("k2", "back")},
				"rbac": {kv("r3", "ra3")},
			},
		},
		"empty value": {
			cmd:  store.UpdateInstance{Puts: []store.Value{{Bucket: "settings", Key: "s2", Value: []byte{}}}},
			want: map[string][]store.KV{"settings": {kv("s1", "on"), {Key: "s2", Value: []byte{}}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, open)
			mustApply(t, s, create("hsm1", seed...), create("hsm2", seed...))
			cmd := tc.cmd
			cmd.Name, cmd.Expect, cmd.Properties = "hsm1", 1, []byte("p2")
			mustApply(t, s, cmd)

			if got := mustInstance(t, s, "hsm1"); got.Generation != 2 || string(got.Properties) != "p2" {
				t.Fatalf("Instance after update: generation %d, properties %q; want 2, p2", got.Generation, got.Properties)
			}
			for _, b := range suiteBuckets {
				want, ok := tc.want[b]
				if !ok {
					for _, v := range seed {
						if v.Bucket == b {
							want = append(want, store.KV{Key: v.Key, Value: v.Value})
						}
					}
				}
				wantKVs(t, s, "hsm1", b, want...)
				if len(want) > 0 {
					if got, err := instanceValue(t, s, "hsm1", b, want[0].Key); err != nil || !bytes.Equal(got, want[0].Value) {
						t.Fatalf("InstanceValue(%s/%s) = %q, %v; want %q", b, want[0].Key, got, err, want[0].Value)
					}
				}
			}
			// The other instance is untouched.
			wantKVs(t, s, "hsm2", "keys", kv("k1", "one"), kv("k2", "two"))
			wantKVs(t, s, "hsm2", "rbac", kv("r1", "ra1"), kv("r2", "ra2"))
			wantKVs(t, s, "hsm2", "settings", kv("s1", "on"))
			wantKVs(t, s, "hsm2", "other")
		})
	}
}

func testInstanceLifecycle(t *testing.T, open func(*testing.T) store.Store) {
	active := []store.Command{create("hsm1", val("keys", "k", "v"))}
	deleted := []store.Command{create("hsm1", val("keys", "k", "v")), deleteCmd("hsm1", 1)}
	recovered := []store.Command{create("hsm1", val("keys", "k", "v")), deleteCmd("hsm1", 1), store.RecoverInstance{Name: "hsm1", Expect: 2}}

	type state struct {
		gone    bool
		gen     uint64
		deleted bool
	}
	tests := map[string]struct {
		setup []store.Command
		cmd   store.Command
		want  error // on error the state must be unchanged
		after state
	}{
		"delete active":         {active, deleteCmd("hsm1", 1), nil, state{gen: 2, deleted: true}},
		"delete stale":          {recovered, deleteCmd("hsm1", 1), store.ErrConflict, state{}},
		"delete deleted":        {deleted, deleteCmd("hsm1", 2), store.ErrConflict, state{}},
		"delete missing":        {nil, deleteCmd("hsm1", 1), store.ErrNotFound, state{}},
		"recover deleted":       {deleted, store.RecoverInstance{Name: "hsm1", Expect: 2}, nil, state{gen: 3}},
		"recover stale":         {deleted, store.RecoverInstance{Name: "hsm1", Expect: 1}, store.ErrConflict, state{}},
		"recover active":        {active, store.RecoverInstance{Name: "hsm1", Expect: 1}, store.ErrConflict, state{}},
		"recover recovered":     {recovered, store.RecoverInstance{Name: "hsm1", Expect: 3}, store.ErrConflict, state{}},
		"recover missing":       {nil, store.RecoverInstance{Name: "hsm1", Expect: 1}, store.ErrNotFound, state{}},
		"delete recovered":      {recovered, deleteCmd("hsm1", 3), nil, state{gen: 4, deleted: true}},
		"purge deleted":         {deleted, store.PurgeInstance{Name: "hsm1", Expect: 2}, nil, state{gone: true}},
		"purge stale":           {deleted, store.PurgeInstance{Name: "hsm1", Expect: 1}, store.ErrConflict, state{}},
		"purge active":          {active, store.PurgeInstance{Name: "hsm1", Expect: 1}, store.ErrConflict, state{}},
		"purge recovered":       {recovered, store.PurgeInstance{Name: "hsm1", Expect: 3}, store.ErrConflict, state{}},
		"purge missing":         {nil, store.PurgeInstance{Name: "hsm1", Expect: 1}, store.ErrNotFound, state{}},
		"update after recovery": {recovered, store.UpdateInstance{Name: "hsm1", Expect: 3, Properties: []byte("p")}, nil, state{gen: 4}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, open)
			mustApply(t, s, tc.setup...)
			before := takeSnapshot(t, s, "hsm1")
			err := apply(s, tc.cmd)
			wantErr(t, tc.cmd.CommandType(), err, tc.want)
			if err != nil {
				sameSnapshot(t, tc.cmd.CommandType(), takeSnapshot(t, s, "hsm1"), before)
				return
			}
			got, err := getInstance(t, s, "hsm1")
			if tc.after.gone {
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("Instance after purge: %+v, %v; want ErrNotFound", got, err)
				}
				wantKVs(t, s, "hsm1", "keys")
				return
			}
			if err != nil {
				t.Fatalf("Instance: %v", err)
			}
			want := newInstance("hsm1")
			want.Generation, want.Deleted = tc.after.gen, tc.after.deleted
			if tc.after.deleted {
				want.DeletionDate, want.ScheduledPurgeDate = t0, t1
			}
			if _, ok := tc.cmd.(store.UpdateInstance); ok {
				want.Properties = []byte("p")
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Instance = %+v, want %+v", got, want)
			}
			// Soft delete and recovery keep the instance's values.
			wantKVs(t, s, "hsm1", "keys", kv("k", "v"))
		})
	}
}

func testRewrapRoots(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	mustApply(t, s,
		store.PutRegionValue{Key: "region-root", Value: []byte("old region")},
		create("hsm1", val("keys", "k", "v")), create("hsm2"), create("hsm3"),
		deleteCmd("hsm2", 1),
		store.BeginStage{Name: "hsm3", Expect: 1, Stage: "s"},
	)
	before := takeSnapshot(t, s, "hsm1", "hsm2", "hsm3")
	good := func() store.RewrapRoots {
		return store.RewrapRoots{
			Region: []store.Rewrap{{Name: "region-root", Old: []byte("old region"), New: []byte("new region")}},
			Instances: []store.Rewrap{
				{Name: "hsm1", Old: []byte("root:hsm1"), New: []byte("new:hsm1")},
				{Name: "hsm2", Old: []byte("root:hsm2"), New: []byte("new:hsm2")},
				{Name: "hsm3", Old: []byte("root:hsm3"), New: []byte("new:hsm3")},
			},
		}
	}
	refused := map[string]struct {
		edit func(*store.RewrapRoots)
		want error
	}{
		"region value changed":   {func(c *store.RewrapRoots) { c.Region[0].Old = []byte("other") }, store.ErrConflict},
		"region value missing":   {func(c *store.RewrapRoots) { c.Region[0].Name = "k" }, store.ErrNotFound},
		"instance root changed":  {func(c *store.RewrapRoots) { c.Instances[2].Old = []byte("other") }, store.ErrConflict},
		"instance missing":       {func(c *store.RewrapRoots) { c.Instances[2].Name = "nope" }, store.ErrNotFound},
		"empty new instance":     {func(c *store.RewrapRoots) { c.Instances[1].New = nil }, store.ErrConflict},
		"empty new region value": {func(c *store.RewrapRoots) { c.Region[0].New = nil }, store.ErrConflict},
	}
	for name, tc := range refused {
		t.Run(name, func(t *testing.T) {
			cmd := good()
			tc.edit(&cmd)
			wantErr(t, name, apply(s, cmd), tc.want)
			sameSnapshot(t, name, takeSnapshot(t, s, "hsm1", "hsm2", "hsm3"), before)
		})
	}
	mustApply(t, s, good())
	view(t, s, func(r store.Reader) error {
		if v, err := r.RegionValue("region-root"); err != nil || string(v) != "new region" {
			t.Errorf("region root = %q, %v", v, err)
		}
		return nil
	})
	for _, name := range []string{"hsm1", "hsm2", "hsm3"} {
		in := mustInstance(t, s, name)
		var old store.Instance
		for _, o := range before.Instances {
			if o.Name == name {
				old = o
			}
		}
		if string(in.WrappedRoot) != "new:"+name {
			t.Errorf("%s: wrapped root %q", name, in.WrappedRoot)
		}
		if in.Generation != old.Generation || in.Epoch != old.Epoch || in.Deleted != old.Deleted || in.Staging != old.Staging {
			t.Errorf("%s: rewrap changed more than the root: %+v, was %+v", name, in, old)
		}
	}
	wantKVs(t, s, "hsm1", "keys", kv("k", "v"))
}

func testPurgeRemovesValues(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	mustApply(t, s,
		create("hsm1", val("keys", "k1", "old"), val("rbac", "r1", "old")),
		create("hsm2", val("keys", "k1", "keep")),
		store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p"), Puts: []store.Value{val("settings", "s1", "old"), val("other", "o1", "old")}},
		deleteCmd("hsm1", 2),
		store.PurgeInstance{Name: "hsm1", Expect: 3},
	)
	if _, err := getInstance(t, s, "hsm1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Instance after purge: %v, want ErrNotFound", err)
	}
	for _, b := range suiteBuckets {
		wantKVs(t, s, "hsm1", b)
	}

	mustApply(t, s, create("hsm1"))
	if got := mustInstance(t, s, "hsm1"); got.Generation != 1 || got.Deleted {
		t.Fatalf("re-created instance: generation %d, deleted %v; want 1, false", got.Generation, got.Deleted)
	}
	for _, b := range suiteBuckets {
		wantKVs(t, s, "hsm1", b)
	}
	if _, err := instanceValue(t, s, "hsm1", "keys", "k1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("InstanceValue of a purged value: %v, want ErrNotFound", err)
	}
	wantKVs(t, s, "hsm2", "keys", kv("k1", "keep"))
}

func testInstancesListed(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	mustApply(t, s, create("hsm-c"), create("hsm-a"), create("hsm-b"), deleteCmd("hsm-b", 1))
	var got []string
	view(t, s, func(r store.Reader) error {
		ins, err := r.Instances()
		for _, in := range ins {
			got = append(got, fmt.Sprintf("%s:%d:%v", in.Name, in.Generation, in.Deleted))
		}
		return err
	})
	want := []string{"hsm-a:1:false", "hsm-b:2:true", "hsm-c:1:false"}
	if !slices.Equal(got, want) {
		t.Fatalf("Instances() = %v, want %v (by name, deleted included)", got, want)
	}
}

// ---------------------------------------------------------------------------
// contract

func testAllOrNothing(t *testing.T, open func(*testing.T) store.Store) {
	setup := []store.Command{
		store.PutRegionValue{Key: "signing-key", Value: []byte("sk")},
		store.CreatePrincipal{Principal: newPrincipal("oid-a", "cid-a")},
		create("hsm1", val("keys", "k1", "one"), val("keys", "k2", "two"), val("rbac", "r1", "ra")),
		create("hsm2", val("keys", "k1", "x")),
		deleteCmd("hsm2", 1),
	}
	// Each command fails, most of them after they have written something.
	tests := map[string]store.Command{
		"region value exists": store.PutRegionValue{Key: "signing-key", Value: []byte("new"), IfAbsent: true},
		"region empty key":    store.PutRegionValue{Value: []byte("new")},
		"principal client id": store.CreatePrincipal{Principal: newPrincipal("oid-b", "cid-a")},
		"principal object id": store.CreatePrincipal{Principal: newPrincipal("oid-a", "cid-b")},
		"delete principal":    store.DeletePrincipal{ObjectID: "oid-b"},
		"create late invalid value": create("hsm3",
			val("keys", "k1", "one"), val("rbac", "r", "v"), val("keys", "", "bad")),
		"create exists": create("hsm2", val("keys", "k9", "nine")),
		"update late invalid put": store.UpdateInstance{
			Name: "hsm1", Expect: 1, Properties: []byte("p2"), WrappedRoot: []byte("r2"),
			ReplaceBuckets: []string{"rbac"},
			Deletes:        []store.Value{{Bucket: "keys", Key: "k1"}},
			Puts:           []store.Value{val("keys", "k3", "three"), val("other", "o", "v"), val("", "k", "bad")},
		},
		"update stale":    store.UpdateInstance{Name: "hsm1", Expect: 7, Properties: []byte("p2"), ReplaceBuckets: []string{"keys"}},
		"update deleted":  store.UpdateInstance{Name: "hsm2", Expect: 2, Properties: []byte("p2"), ReplaceBuckets: []string{"keys"}},
		"delete twice":    deleteCmd("hsm2", 2),
		"recover active":  store.RecoverInstance{Name: "hsm1", Expect: 1},
		"purge active":    store.PurgeInstance{Name: "hsm1", Expect: 1},
		"purge stale":     store.PurgeInstance{Name: "hsm2", Expect: 1},
		"purge missing":   store.PurgeInstance{Name: "hsm3", Expect: 1},
		"recover missing": store.RecoverInstance{Name: "hsm3", Expect: 1},
	}
	s := openStore(t, open)
	mustApply(t, s, setup...)
	for name, cmd := range tests {
		t.Run(name, func(t *testing.T) {
			before := takeSnapshot(t, s, "hsm1", "hsm2", "hsm3")
			if err := apply(s, cmd); err == nil {
				t.Fatalf("Apply(%+v) succeeded, want an error", cmd)
			}
			sameSnapshot(t, cmd.CommandType(), takeSnapshot(t, s, "hsm1", "hsm2", "hsm3"), before)
		})
	}
}

// bigValue is large enough that stores which keep small values inline (bbolt
// copies those when it reads them anyway) hand out their own memory.
func bigValue(s string) []byte { return bytes.Repeat([]byte(s), 8<<10/len(s)) }

func testReadsReturnCopies(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	mustApply(t, s,
		store.PutRegionValue{Key: "k", Value: bigValue("region")},
		store.CreatePrincipal{Principal: newPrincipal("oid-a", "cid-a")},
		create("hsm1", store.Value{Bucket: "keys", Key: "k1", Value: bigValue("value")},
			store.Value{Bucket: "keys", Key: "k2", Value: bigValue("other")}),
	)
	before := takeSnapshot(t, s, "hsm1")
	scribble := func(b []byte) {
		for i := range b {
			b[i] ^= 0xff
		}
	}
	view(t, s, func(r store.Reader) error {
		if v, err := r.RegionValue("k"); err == nil {
			scribble(v)
		}
		if p, err := r.Principal("oid-a"); err == nil {
			scribble(p.SecretHash)
		}
		if p, err := r.PrincipalByClientID("cid-a"); err == nil {
			scribble(p.SecretHash)
		}
		if ps, err := r.Principals(); err == nil {
			for _, p := range ps {
				scribble(p.SecretHash)
			}
		}
		if in, err := r.Instance("hsm1"); err == nil {
			scribble(in.Properties)
			scribble(in.WrappedRoot)
		}
		if ins, err := r.Instances(); err == nil {
			for _, in := range ins {
				scribble(in.Properties)
				scribble(in.WrappedRoot)
			}
		}
		if v, err := r.InstanceValue("hsm1", "keys", "k1"); err == nil {
			scribble(v)
		}
		if kvs, err := r.InstanceValues("hsm1", "keys"); err == nil {
			for _, kv := range kvs {
				scribble(kv.Value)
			}
		}
		return nil
	})
	sameSnapshot(t, "mutating read results", takeSnapshot(t, s, "hsm1"), before)
}

// testValuesOutliveView keeps values read in View after it returns, while
// later Applies grow the store; the kept values must not change.
func testValuesOutliveView(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	regionWant, instanceWant := bigValue("region value"), bigValue("instance value")
	mustApply(t, s,
		store.PutRegionValue{Key: "k", Value: regionWant},
		create("hsm1", store.Value{Bucket: "keys", Key: "k1", Value: instanceWant}),
	)
	var region, single []byte
	var list []store.KV
	view(t, s, func(r store.Reader) error {
		var err error
		if region, err = r.RegionValue("k"); err != nil {
			return err
		}
		if single, err = r.InstanceValue("hsm1", "keys", "k1"); err != nil {
			return err
		}
		list, err = r.InstanceValues("hsm1", "keys")
		return err
	})
	big := bytes.Repeat([]byte{0xAB}, 64<<10)
	for i := range 8 {
		mustApply(t, s,
			store.PutRegionValue{Key: "k", Value: big},
			store.UpdateInstance{Name: "hsm1", Expect: uint64(i + 1), ReplaceBuckets: []string{"keys"}, Puts: []store.Value{
				{Bucket: "keys", Key: "k1", Value: big}, {Bucket: "keys", Key: fmt.Sprintf("k%d", i+2), Value: big},
			}},
		)
	}
	if !bytes.Equal(region, regionWant) || !bytes.Equal(single, instanceWant) ||
		len(list) != 1 || !bytes.Equal(list[0].Value, instanceWant) {
		t.Fatal("values kept from View changed")
	}
}

func testApplyDoesNotRetainInput(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	p := newPrincipal("oid-a", "cid-a")
	region := store.PutRegionValue{Key: "k", Value: []byte("region")}
	ci := create("hsm1", val("keys", "k1", "one"))
	ci.Instance.Properties = []byte("props")
	up := store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p2"), WrappedRoot: []byte("r2"), Puts: []store.Value{val("keys", "k2", "two")}}
	mustApply(t, s, region, store.CreatePrincipal{Principal: p}, ci)
	before := takeSnapshot(t, s, "hsm1")
	for _, b := range [][]byte{region.Value, p.SecretHash, ci.Instance.Properties, ci.Instance.WrappedRoot, ci.Values[0].Value} {
		b[0] = '!'
	}
	sameSnapshot(t, "mutating applied commands", takeSnapshot(t, s, "hsm1"), before)

	mustApply(t, s, up)
	before = takeSnapshot(t, s, "hsm1")
	for _, b := range [][]byte{up.Properties, up.WrappedRoot, up.Puts[0].Value} {
		b[0] = '!'
	}
	sameSnapshot(t, "mutating applied commands", takeSnapshot(t, s, "hsm1"), before)
}

const goroutines = 50

func testConcurrentCreates(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	const distinct = 10
	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	perrs := make([]error, goroutines)
	for i := range goroutines {
		wg.Go(func() {
			n := i % distinct
			errs[i] = apply(s, create(fmt.Sprintf("hsm%02d", n), val("keys", "k", fmt.Sprint(n))))
			perrs[i] = apply(s, store.CreatePrincipal{Principal: newPrincipal(fmt.Sprintf("oid-%d", n), fmt.Sprintf("cid-%d", n))})
		})
	}
	wg.Wait()

	for _, kind := range []struct {
		name string
		errs []error
	}{{"CreateInstance", errs}, {"CreatePrincipal", perrs}} {
		wins := make([]int, distinct)
		for i, err := range kind.errs {
			switch {
			case err == nil:
				wins[i%distinct]++
			case !errors.Is(err, store.ErrExists):
				t.Errorf("%s #%d: %v, want nil or ErrExists", kind.name, i, err)
			}
		}
		for n, w := range wins {
			if w != 1 {
				t.Errorf("%s %d succeeded %d times, want exactly once", kind.name, n, w)
			}
		}
	}
	view(t, s, func(r store.Reader) error {
		ins, err := r.Instances()
		if err != nil {
			return err
		}
		if len(ins) != distinct {
			t.Errorf("%d instances, want %d", len(ins), distinct)
		}
		for n := range distinct {
			name := fmt.Sprintf("hsm%02d", n)
			if in, err := r.Instance(name); err != nil || in.Generation != 1 {
				t.Errorf("Instance(%s) = generation %d, %v", name, in.Generation, err)
			}
			if v, err := r.InstanceValue(name, "keys", "k"); err != nil || string(v) != fmt.Sprint(n) {
				t.Errorf("InstanceValue(%s) = %q, %v", name, v, err)
			}
		}
		ps, err := r.Principals()
		if len(ps) != distinct {
			t.Errorf("%d principals, want %d", len(ps), distinct)
		}
		return err
	})
}

func testConcurrentUpdates(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	mustApply(t, s, create("hsm1"))
	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	for i := range goroutines {
		wg.Go(func() {
			errs[i] = apply(s, store.UpdateInstance{
				Name: "hsm1", Expect: 1, Properties: []byte(fmt.Sprintf("p%d", i)),
				Puts: []store.Value{val("keys", fmt.Sprintf("k%02d", i), "v")},
			})
		})
	}
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("updates %d and %d with the same expected generation both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("update %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no update succeeded")
	}
	in := mustInstance(t, s, "hsm1")
	if in.Generation != 2 || string(in.Properties) != fmt.Sprintf("p%d", winner) {
		t.Fatalf("instance: generation %d, properties %q; want 2, p%d", in.Generation, in.Properties, winner)
	}
	wantKVs(t, s, "hsm1", "keys", kv(fmt.Sprintf("k%02d", winner), "v"))
}

func testContextCanceled(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Apply(ctx, store.PutRegionValue{Key: "k", Value: []byte("v")}); err == nil {
		t.Fatal("Apply with a canceled context succeeded")
	}
	called := false
	if err := s.View(ctx, func(store.Reader) error { called = true; return nil }); err == nil || called {
		t.Fatalf("View with a canceled context: %v (fn called: %v), want an error", err, called)
	}
	view(t, s, func(r store.Reader) error {
		if _, err := r.RegionValue("k"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RegionValue after canceled Apply: %v, want ErrNotFound", err)
		}
		return nil
	})
}

func testNilCommand(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	if err := apply(s, nil); err == nil {
		t.Fatal("Apply(nil) succeeded")
	}
	mustApply(t, s, store.PutRegionValue{Key: "k", Value: []byte("v")}) // still usable
}

func testClosed(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	mustApply(t, s, store.PutRegionValue{Key: "k", Value: []byte("v")})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	called := false
	err := s.View(context.Background(), func(store.Reader) error { called = true; return nil })
	if !errors.Is(err, store.ErrClosed) || called {
		t.Fatalf("View after Close: %v (fn called: %v), want ErrClosed", err, called)
	}
	if err := apply(s, store.PutRegionValue{Key: "k2", Value: []byte("v")}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Apply after Close: %v, want ErrClosed", err)
	}
}

// ---------------------------------------------------------------------------
// wire form

// sampleCommands has one fully populated command of every type.
func sampleCommands() map[string]store.Command {
	return map[string]store.Command{
		"PutRegionValue":  store.PutRegionValue{Key: "signing-key", Value: []byte{0, 1, 2, 0xff}, IfAbsent: true},
		"CreatePrincipal": store.CreatePrincipal{Principal: store.Principal{ObjectID: "oid", ClientID: "cid", DisplayName: "Ünïcode \"name\"", SecretHash: []byte{9, 8, 7}, RegionAdmin: true, Created: t0}},
		"DeletePrincipal": store.DeletePrincipal{ObjectID: "oid"},
		"RewrapRoots": store.RewrapRoots{
			Region:    []store.Rewrap{{Name: "region-root", Old: []byte("o"), New: []byte{0, 0xff}}},
			Instances: []store.Rewrap{{Name: "hsm1", Old: []byte("r1"), New: []byte("n1")}, {Name: "hsm2", Old: []byte{}, New: []byte("n2")}},
		},
		"CreateInstance": store.CreateInstance{
			Instance: store.Instance{Name: "hsm1", Subscription: "sub", ResourceGroup: "rg", Location: "loc", Generation: 3, Epoch: 2, Staging: "st", Deleted: true, DeletionDate: t0, ScheduledPurgeDate: t1, Properties: []byte("p"), WrappedRoot: []byte{0}},
			Values:   []store.Value{val("keys", "k1", "v1"), {Bucket: "rbac", Key: "r", Value: []byte{}}},
		},
		"UpdateInstance": store.UpdateInstance{
			Name: "hsm1", Expect: 1 << 60, Properties: []byte("p2"), WrappedRoot: []byte("r2"),
			Puts: []store.Value{val("keys", "k1", "v1")}, Deletes: []store.Value{{Bucket: "keys", Key: "k0"}},
			ReplaceBuckets: []string{"keys", "rbac"}, ExpectWrites: 1 << 40,
		},
		"DeleteInstance":  store.DeleteInstance{Name: "hsm1", Expect: 2, DeletionDate: t0, ScheduledPurgeDate: t1},
		"RecoverInstance": store.RecoverInstance{Name: "hsm1", Expect: 3},
		"PurgeInstance":   store.PurgeInstance{Name: "hsm1", Expect: 4},
		"WriteInstanceValues": store.WriteInstanceValues{
			Name: "hsm1", Epoch: 7, Root: []byte("r"), Puts: []store.Value{val("keys", "k1", "v1")}, Deletes: []store.Value{{Bucket: "keys", Key: "k0"}},
			Conditions: []store.Condition{{Bucket: "keys", Key: "k1", Absent: true}, {Bucket: "keys", Key: "k0", Value: []byte("v0")}},
		},
		"BeginStage":  store.BeginStage{Name: "hsm1", Expect: 5, Stage: "restore-1"},
		"StageValues": store.StageValues{Name: "hsm1", Stage: "restore-1", Values: []store.Value{val("keys", "k1", "v1"), {Bucket: "rbac", Key: "r", Value: []byte{}}}},
		"CommitStage": store.CommitStage{Name: "hsm1", Stage: "restore-1", Expect: 6, Buckets: []string{"keys", "rbac"}, Properties: []byte("p"), WrappedRoot: []byte("r")},
		"AbortStage":  store.AbortStage{Name: "hsm1", Stage: "restore-1"},
		"StartJob": store.StartJob{Exclusive: true, Job: store.Job{ID: "j1", Kind: "backup", Instance: "hsm1", Status: store.JobInProgress,
			Details: "d", Done: 3, Total: 9, Start: t0}},
		"UpdateJob": store.UpdateJob{Job: store.Job{ID: "j1", Kind: "backup", Instance: "hsm1", Status: store.JobFailed,
			Details: "d", Error: "e", Result: "https://x", Done: 3, Total: 9, Start: t0, End: t1}},
		"FailInterruptedJobs": store.FailInterruptedJobs{Message: "interrupted", At: t1},
		"PutBackupPolicy": store.PutBackupPolicy{Policy: store.BackupPolicy{Instance: "hsm1", ID: "p1", Sealed: []byte{1, 2}, Set: t0,
			Status: store.BackupPolicyStatus{LastSuccess: &store.BackupRun{Time: t0, JobID: "j1", Folder: "f"},
				LastFailure: &store.BackupRun{Time: t1, JobID: "j2", Code: "c", Message: "m"}, NextRun: t1, DeletedFolders: 3, BusySince: t0}}},
		"DeleteBackupPolicy": store.DeleteBackupPolicy{Instance: "hsm1"},
		"RecordBackupRun":    store.RecordBackupRun{Instance: "hsm1", ID: "p1", Status: store.BackupPolicyStatus{NextRun: t1, DeletedFolders: 1}},
	}
}

// deref turns the *T that Decode returns into T, so it compares with samples.
func deref(c store.Command) any {
	v := reflect.ValueOf(c)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		return v.Elem().Interface()
	}
	return c
}

func testEncodeDecode(t *testing.T, _ func(*testing.T) store.Store) {
	for name, cmd := range sampleCommands() {
		t.Run(name, func(t *testing.T) {
			if got := cmd.CommandType(); got != name {
				t.Fatalf("CommandType() = %q, want %q", got, name)
			}
			data, err := store.Encode(cmd)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := store.Decode(data)
			if err != nil {
				t.Fatalf("Decode(%s): %v", data, err)
			}
			if got.CommandType() != name {
				t.Fatalf("decoded CommandType() = %q, want %q", got.CommandType(), name)
			}
			if !reflect.DeepEqual(deref(got), deref(cmd)) {
				t.Fatalf("Decode(Encode(cmd)) = %#v\nwant %#v", deref(got), deref(cmd))
			}
			// A decoded command encodes to the same bytes: the wire form is stable.
			again, err := store.Encode(got)
			if err != nil {
				t.Fatalf("Encode(decoded): %v", err)
			}
			if !bytes.Equal(again, data) {
				t.Fatalf("re-encoded form differs:\n%s\n%s", again, data)
			}
		})
	}
}

func testDecodeRejects(t *testing.T, _ func(*testing.T) store.Store) {
	tests := map[string]string{
		"empty":             ``,
		"garbage":           "\x00\xffnot json",
		"truncated":         `{"type":"PutRegionValue","payload":{"key":"k"`,
		"null":              `null`,
		"array":             `[]`,
		"string":            `"PutRegionValue"`,
		"no type":           `{"payload":{"key":"k"}}`,
		"unknown type":      `{"type":"FormatDisk","payload":{}}`,
		"type wrong case":   `{"type":"putregionvalue","payload":{"key":"k"}}`,
		"type not a string": `{"type":7,"payload":{}}`,
		"no payload":        `{"type":"PutRegionValue"}`,
		"payload array":     `{"type":"PutRegionValue","payload":[1,2]}`,
		"payload string":    `{"type":"DeletePrincipal","payload":"oid"}`,
		"field wrong type":  `{"type":"UpdateInstance","payload":{"name":"hsm1","expect":"one"}}`,
		"negative expect":   `{"type":"PurgeInstance","payload":{"name":"hsm1","expect":-1}}`,
		"bad base64 value":  `{"type":"PutRegionValue","payload":{"key":"k","value":"!!!"}}`,
		"bad time":          `{"type":"DeleteInstance","payload":{"name":"hsm1","deletionDate":"yesterday"}}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			cmd, err := store.Decode([]byte(in))
			if err == nil {
				t.Fatalf("Decode(%q) = %#v, want an error", in, cmd)
			}
			if cmd != nil {
				t.Fatalf("Decode(%q) returned %#v with its error, want nil", in, cmd)
			}
		})
	}
}

// testDecodedCommandsApply applies commands as a replicated log would: each
// through Encode and Decode.
func testDecodedCommandsApply(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	log := []store.Command{
		store.PutRegionValue{Key: "k", Value: []byte("v")},
		store.CreatePrincipal{Principal: newPrincipal("oid-a", "cid-a")},
		store.CreatePrincipal{Principal: newPrincipal("oid-b", "cid-b")},
		store.DeletePrincipal{ObjectID: "oid-b"},
		create("hsm1", val("keys", "k1", "one")),
		store.UpdateInstance{Name: "hsm1", Expect: 1, Properties: []byte("p2"), Puts: []store.Value{val("keys", "k2", "two")}},
		deleteCmd("hsm1", 2),
		store.RecoverInstance{Name: "hsm1", Expect: 3},
		create("hsm2"),
		deleteCmd("hsm2", 1),
		store.PurgeInstance{Name: "hsm2", Expect: 2},
	}
	for _, cmd := range log {
		data, err := store.Encode(cmd)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		dec, err := store.Decode(data)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		mustApply(t, s, dec)
	}
	got := takeSnapshot(t, s, "hsm1", "hsm2")
	want := snapshot{
		Region:     map[string]string{"k": "v"},
		Principals: []store.Principal{newPrincipal("oid-a", "cid-a")},
		Missing:    map[string]bool{"hsm2": true},
		Values:     map[string]string{"hsm1/keys": fmtKVs([]store.KV{kv("k1", "one"), kv("k2", "two")})},
	}
	in := newInstance("hsm1")
	in.Generation, in.Properties = 4, []byte("p2")
	want.Instances = []store.Instance{in}
	if _, err := getInstance(t, s, "hsm2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Instance(hsm2) after purge: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("state after the decoded log:\n got  %+v\n want %+v", got, want)
	}
}

func testInstanceBuckets(t *testing.T, open func(*testing.T) store.Store) {
	s := openStore(t, open)
	mustApply(t, s, create("hsm1", val("keys", "k1", "one"), val("rbac", "r1", "ra1")), create("hsm2"))
	buckets := func(name string) []string {
		t.Helper()
		var out []string
		if err := s.View(context.Background(), func(r store.Reader) error {
			var err error
			out, err = r.InstanceBuckets(name)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := buckets("hsm1"); !reflect.DeepEqual(got, []string{"keys", "rbac"}) {
		t.Fatalf("hsm1 buckets %v, want [keys rbac]", got)
	}
	if got := buckets("hsm2"); len(got) != 0 {
		t.Fatalf("hsm2 buckets %v, want none", got)
	}
	if got := buckets("nope"); len(got) != 0 {
		t.Fatalf("missing instance buckets %v, want none", got)
	}
}

func testWriteInstanceValues(t *testing.T, open func(*testing.T) store.Store) {
	get := func(t *testing.T, s store.Store, bucket, key string) []byte {
		t.Helper()
		var v []byte
		err := s.View(context.Background(), func(r store.Reader) error {
			var err error
			v, err = r.InstanceValue("hsm1", bucket, key)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	generation := func(t *testing.T, s store.Store) uint64 {
		t.Helper()
		var in store.Instance
		if err := s.View(context.Background(), func(r store.Reader) error {
			var err error
			in, err = r.Instance("hsm1")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return in.Generation
	}
	tests := map[string]struct {
		cmd     store.WriteInstanceValues
		wantErr error
		want    map[string]string // key → value in bucket "keys"; "" = absent
	}{
		"put when absent": {
			cmd:  store.WriteInstanceValues{Puts: []store.Value{val("keys", "k2", "two")}, Conditions: []store.Condition{{Bucket: "keys", Key: "k2", Absent: true}}},
			want: map[string]string{"k1": "one", "k2": "two"},
		},
		"absent condition fails": {
			cmd:     store.WriteInstanceValues{Puts: []store.Value{val("keys", "k1", "uno")}, Conditions: []store.Condition{{Bucket: "keys", Key: "k1", Absent: true}}},
			wantErr: store.ErrConflict, want: map[string]string{"k1": "one"},
		},
		"equal condition holds": {
			cmd:  store.WriteInstanceValues{Puts: []store.Value{val("keys", "k1", "uno")}, Conditions: []store.Condition{{Bucket: "keys", Key: "k1", Value: []byte("one")}}},
			want: map[string]string{"k1": "uno"},
		},
		"equal condition fails": {
			cmd:     store.WriteInstanceValues{Deletes: []store.Value{{Bucket: "keys", Key: "k1"}}, Conditions: []store.Condition{{Bucket: "keys", Key: "k1", Value: []byte("old")}}},
			wantErr: store.ErrConflict, want: map[string]string{"k1": "one"},
		},
		"equal condition on missing value fails": {
			cmd:     store.WriteInstanceValues{Puts: []store.Value{val("keys", "k3", "x")}, Conditions: []store.Condition{{Bucket: "keys", Key: "k3", Value: []byte("x")}}},
			wantErr: store.ErrConflict, want: map[string]string{"k1": "one", "k3": ""},
		},
		"delete": {
			cmd:  store.WriteInstanceValues{Deletes: []store.Value{{Bucket: "keys", Key: "k1"}}},
			want: map[string]string{"k1": ""},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, open)
			mustApply(t, s, create("hsm1", val("keys", "k1", "one")))
			cmd := tc.cmd
			cmd.Name, cmd.Epoch = "hsm1", 1
			err := s.Apply(context.Background(), cmd)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Apply = %v, want %v", err, tc.wantErr)
			}
			for k, want := range tc.want {
				if got := string(get(t, s, "keys", k)); got != want {
					t.Errorf("keys/%s = %q, want %q", k, got, want)
				}
			}
			if g := generation(t, s); g != 1 {
				t.Errorf("generation %d, want 1: values do not change the instance", g)
			}
		})
	}
	t.Run("root must match", func(t *testing.T) {
		s := openStore(t, open)
		mustApply(t, s, create("hsm1"))
		var root []byte
		if err := s.View(context.Background(), func(r store.Reader) error {
			in, err := r.Instance("hsm1")
			root = in.WrappedRoot
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(context.Background(), store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Root: []byte("another root"), Puts: []store.Value{val("keys", "k", "v")}}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("write for another root: %v, want ErrConflict", err)
		}
		if got := get(t, s, "keys", "k"); got != nil {
			t.Fatal("a refused write stored a value")
		}
		if err := s.Apply(context.Background(), store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Root: root, Puts: []store.Value{val("keys", "k", "v")}}); err != nil {
			t.Fatalf("write for the instance's root: %v", err)
		}
	})
	t.Run("deleted or missing instance", func(t *testing.T) {
		s := openStore(t, open)
		mustApply(t, s, create("hsm1"), store.DeleteInstance{Name: "hsm1", Expect: 1, DeletionDate: t0, ScheduledPurgeDate: t1})
		if err := s.Apply(context.Background(), store.WriteInstanceValues{Name: "hsm1", Epoch: 1, Puts: []store.Value{val("keys", "k", "v")}}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("write to deleted instance: %v, want ErrConflict", err)
		}
		if err := s.Apply(context.Background(), store.WriteInstanceValues{Name: "nope", Epoch: 1, Puts: []store.Value{val("keys", "k", "v")}}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("write to missing instance: %v, want ErrNotFound", err)
		}
	})
}
