package policy_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"tresor/internal/barrier"
	"tresor/internal/fault"
	"tresor/internal/instances"
	"tresor/internal/pkgdoc"
	"tresor/internal/policy"
	"tresor/internal/rbac"
	"tresor/internal/store"
	"tresor/internal/uuid"
)

func TestPackageDoc(t *testing.T) { pkgdoc.Check(t, ".") }

// TestPolicyBuckets keeps the buckets this package writes the ones the
// store keeps out of WriteInstanceValues (the grants cache relies on it).
func TestPolicyBuckets(t *testing.T) {
	if !slices.Equal(policy.PolicyBuckets, store.PolicyBuckets) {
		t.Fatalf("policy.PolicyBuckets = %v, store.PolicyBuckets = %v", policy.PolicyBuckets, store.PolicyBuckets)
	}
}

// env is one instance in a bolt store, with the instance and policy
// services over it.
type env struct {
	inst   *instances.Service
	pol    *policy.Service
	in     instances.Instance
	admins []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(dir, "tresor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	seal, err := barrier.OpenFileSeal(filepath.Join(dir, "seal.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	regionRoot, err := barrier.NewRootKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	region, err := barrier.New(regionRoot, barrier.Storage, "region")
	if err != nil {
		t.Fatal(err)
	}
	inst := instances.New(st, seal, region, instances.Config{Region: "westeurope", TenantID: uuid.New()})
	admins := []string{uuid.New(), uuid.New()}
	in, err := inst.Create(context.Background(), instances.Caller{ObjectID: admins[0], RegionAdmin: true}, instances.CreateRequest{
		Name: "hsm1", Subscription: uuid.New(), ResourceGroup: "rg", Location: "westeurope", InitialAdmins: admins,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{inst: inst, pol: policy.New(inst, st), in: in, admins: admins}
}

// TestInitialAdministrators reads, through this package, the assignments
// that instances.Create writes in its own copy of the stored shape.
func TestInitialAdministrators(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ras, err := e.pol.RoleAssignments(ctx, e.in)
	if err != nil {
		t.Fatal(err)
	}
	if len(ras) != len(e.admins) {
		t.Fatalf("%d role assignments, want %d", len(ras), len(e.admins))
	}
	for _, ra := range ras {
		pt, err := json.Marshal(ra)
		if err != nil {
			t.Fatal(err)
		}
		if err := policy.CheckPolicyValue(policy.BucketRoleAssignments, ra.Name, pt); err != nil {
			t.Errorf("assignment of the creation: %v", err)
		}
	}
	p, gen, err := e.pol.Policy(ctx, e.in)
	if err != nil {
		t.Fatal(err)
	}
	if gen != e.in.Generation {
		t.Errorf("policy generation %d, instance generation %d", gen, e.in.Generation)
	}
	var got []string
	for _, a := range p.Assignments {
		if a.RoleID != rbac.AdministratorID || a.Scope != "/" {
			t.Errorf("assignment %+v: want the Administrator role at /", a)
		}
		got = append(got, a.PrincipalID)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(e.admins))
	if !slices.Equal(got, want) {
		t.Errorf("assigned principals %v, want %v", got, want)
	}
}

// TestChangesBumpGeneration checks the rule the grants cache relies on:
// every change of the policy or the settings changes the instance
// generation, and a change that changes nothing leaves it.
func TestChangesBumpGeneration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	gen := func() uint64 {
		t.Helper()
		_, g, err := e.pol.Policy(ctx, e.in)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	role, err := rbac.NewCustomRole(uuid.New(), "signer", "", []string{rbac.ActionPrefix + rbac.KeysSign}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := rbac.NewAssignment(uuid.New(), uuid.New(), role.ID, "/")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		do      func() error
		changes bool
	}{
		{"put role", func() error { _, err := e.pol.PutRoleDefinition(ctx, e.in, role); return err }, true},
		{"assign", func() error { return e.pol.Assign(ctx, e.in, a) }, true},
		{"assign again", func() error { return e.pol.Assign(ctx, e.in, a) }, false},
		{"set setting", func() error {
			_, err := e.pol.UpdateSetting(ctx, e.in, "allowkeymanagementoperationsthrougharm", "TRUE")
			return err
		}, true},
		{"set setting again", func() error {
			_, err := e.pol.UpdateSetting(ctx, e.in, "AllowKeyManagementOperationsThroughARM", "true")
			return err
		}, false},
		{"unassign", func() error { _, err := e.pol.Unassign(ctx, e.in, a.Name, "/"); return err }, true},
		{"delete role", func() error { _, err := e.pol.DeleteRoleDefinition(ctx, e.in, role.ID); return err }, true},
	}
	for _, s := range steps {
		before := gen()
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if after := gen(); (after != before) != s.changes {
			t.Errorf("%s: generation %d -> %d, want changed=%v", s.name, before, after, s.changes)
		}
	}
	got, err := e.pol.GetSetting(ctx, e.in, "AllowKeyManagementOperationsThroughARM")
	if err != nil || got.Value != "true" {
		t.Errorf("GetSetting = %+v, %v; want value true", got, err)
	}
	if _, err := e.pol.GetSetting(ctx, e.in, "NoSuchSetting"); fault.KindOf(err) != fault.NotFound {
		t.Errorf("GetSetting of an unknown setting: %v, want NotFound", err)
	}
}
