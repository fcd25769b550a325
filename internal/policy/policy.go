// Package policy implements the storage of an HSM instance's local RBAC
// policy and settings: custom role definitions, role assignments, settings
// (spec §5.1–§5.4; the role model and the checks of every change live in
// package [tresor/internal/rbac], which is pure). Their values are sealed by
// the instance's barrier in the instance buckets [PolicyBuckets].
//
// # Which API to use
//
//   - [Service.Policy] reads the whole policy (custom roles and assignments)
//     in one snapshot, with the instance generation it belongs to: the
//     authorization of a request uses it.
//   - [Service.PutRoleDefinition], [Service.DeleteRoleDefinition],
//     [Service.Assign] and [Service.Unassign] change the policy after
//     checking the change against the state they change.
//   - [Service.Settings], [Service.GetSetting] and [Service.UpdateSetting]
//     read and change the settings (spec §5.4).
//   - [CheckPolicyValue] checks a value of a policy bucket that a full
//     restore brings, before it is sealed and stored.
//
// # One generation, one policy
//
// Every change goes through one store.UpdateInstance (through
// [tresor/internal/instances.Service.ApplyUpdate]) at the generation it read,
// so every change of the policy or the settings changes the instance
// generation, and the pair (instance, generation) names one policy. The RBAC
// grants cache of the api package depends on it: it keeps a caller's grants
// per instance generation. [store.WriteInstanceValues], the write of the
// other instance values, refuses to touch these buckets ([store.PolicyBuckets]
// names the same ones).
package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"tresor/internal/barrier"
	"tresor/internal/instances"
	"tresor/internal/rbac"
	"tresor/internal/store"
)

// Instance buckets of the RBAC state and the settings (values sealed by the
// instance barrier).
const (
	// BucketRoleAssignments holds role assignments ([RoleAssignment]), by
	// name. Package instances writes the initial administrators' assignments
	// there at creation, in the same shape.
	BucketRoleAssignments = "roleassignments"
	// BucketRoleDefinitions holds custom role definitions, by GUID.
	BucketRoleDefinitions = "roledefinitions"
	// BucketSettings holds the settings that were set, by canonical name.
	BucketSettings = "settings"
)

// PolicyBuckets are the instance buckets of RBAC and settings, in the
// order a full backup writes them.
var PolicyBuckets = []string{BucketRoleAssignments, BucketRoleDefinitions, BucketSettings}

// RoleAssignment is a stored role assignment.
type RoleAssignment struct {
	Name             string `json:"name"`
	PrincipalID      string `json:"principalId"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	Scope            string `json:"scope"`
}

// storedRole is a custom role definition as stored.
type storedRole struct {
	ID             string   `json:"id"`
	RoleName       string   `json:"roleName"`
	Description    string   `json:"description,omitempty"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions,omitempty"`
}

// Service stores the RBAC policy and the settings of the instances that
// inst manages. It is safe for concurrent use.
type Service struct {
	inst *instances.Service
	st   store.Store
}

// New returns the service over inst and the store st it keeps its
// instances in.
func New(inst *instances.Service, st store.Store) *Service {
	return &Service{inst: inst, st: st}
}

// snapshot is one consistent reading of an instance's RBAC state and
// settings.
type snapshot struct {
	in       instances.Instance
	b        *barrier.Barrier // seals the values of this snapshot
	policy   rbac.Policy
	settings map[string]string // by canonical setting name
}

// Policy returns the instance's RBAC policy (custom roles and assignments),
// read in one snapshot, and the instance generation of that snapshot. Every
// change of the policy changes the generation, so the pair (instance,
// generation) names one policy.
func (s *Service) Policy(ctx context.Context, in instances.Instance) (rbac.Policy, uint64, error) {
	st, err := s.read(ctx, in.Key)
	if err != nil {
		return rbac.Policy{}, 0, err
	}
	return st.policy, st.in.Generation, nil
}

// Administrators returns the principals (object ids, lower case) that
// hold the Managed HSM Administrator role at scope "/" in the instance's
// current RBAC state: the control-plane administrators besides the
// region's (see [instances.Config.Administrators]).
func (s *Service) Administrators(ctx context.Context, in instances.Instance) ([]string, error) {
	st, err := s.read(ctx, in.Key)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range st.policy.Assignments {
		if a.RoleID == rbac.AdministratorID && a.Scope == "/" && !slices.Contains(out, a.PrincipalID) {
			out = append(out, a.PrincipalID)
		}
	}
	return out, nil
}

// PutRoleDefinition creates or replaces the custom role r (made by
// rbac.NewCustomRole) and reports whether it was new.
func (s *Service) PutRoleDefinition(ctx context.Context, in instances.Instance, r rbac.Role) (bool, error) {
	var created bool
	err := s.update(ctx, in, func(st *snapshot, b *barrier.Barrier) (store.UpdateInstance, error) {
		var err error
		if created, err = st.policy.CheckPutRole(r); err != nil {
			return store.UpdateInstance{}, err
		}
		v, err := instances.SealJSON(b, BucketRoleDefinitions, r.ID, storedRole{ID: r.ID, RoleName: r.Name, Description: r.Description,
			DataActions: r.DataActions, NotDataActions: r.NotDataActions})
		if err != nil {
			return store.UpdateInstance{}, err
		}
		return store.UpdateInstance{Puts: []store.Value{v}}, nil
	})
	return created, err
}

// DeleteRoleDefinition deletes the custom role with GUID id and returns it.
// A role that is still assigned is not deleted (Conflict).
func (s *Service) DeleteRoleDefinition(ctx context.Context, in instances.Instance, id string) (rbac.Role, error) {
	var r rbac.Role
	err := s.update(ctx, in, func(st *snapshot, _ *barrier.Barrier) (store.UpdateInstance, error) {
		var err error
		if r, err = st.policy.CheckDeleteRole(id); err != nil {
			return store.UpdateInstance{}, err
		}
		return store.UpdateInstance{Deletes: []store.Value{{Bucket: BucketRoleDefinitions, Key: r.ID}}}, nil
	})
	return r, err
}

// Assign stores the role assignment a (made by rbac.NewAssignment). An
// assignment that exists with the very same properties is left as it is.
func (s *Service) Assign(ctx context.Context, in instances.Instance, a rbac.Assignment) error {
	return s.update(ctx, in, func(st *snapshot, b *barrier.Barrier) (store.UpdateInstance, error) {
		existing, err := st.policy.CheckAssign(a)
		if err != nil || existing {
			return store.UpdateInstance{}, err
		}
		v, err := instances.SealJSON(b, BucketRoleAssignments, a.Name, RoleAssignment{
			Name: a.Name, PrincipalID: a.PrincipalID, RoleDefinitionID: rbac.RoleDefinitionID(a.RoleID), Scope: a.Scope})
		if err != nil {
			return store.UpdateInstance{}, err
		}
		return store.UpdateInstance{Puts: []store.Value{v}}, nil
	})
}

// Unassign deletes the role assignment called name that scope covers and
// returns it. The last Managed HSM Administrator assignment at "/" is not
// deleted (Conflict).
func (s *Service) Unassign(ctx context.Context, in instances.Instance, name, scope string) (rbac.Assignment, error) {
	var a rbac.Assignment
	err := s.update(ctx, in, func(st *snapshot, _ *barrier.Barrier) (store.UpdateInstance, error) {
		var err error
		if a, err = st.policy.CheckUnassign(name, scope); err != nil {
			return store.UpdateInstance{}, err
		}
		return store.UpdateInstance{Deletes: []store.Value{{Bucket: BucketRoleAssignments, Key: a.Name}}}, nil
	})
	return a, err
}

// RoleAssignments returns the instance's role assignments as stored.
func (s *Service) RoleAssignments(ctx context.Context, in instances.Instance) ([]RoleAssignment, error) {
	b, err := s.inst.Barrier(in)
	if err != nil {
		return nil, err
	}
	var kvs []store.KV
	err = s.st.View(ctx, func(r store.Reader) error {
		var err error
		kvs, err = r.InstanceValues(in.Key, BucketRoleAssignments)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]RoleAssignment, 0, len(kvs))
	for _, kv := range kvs {
		pt, err := b.Open(BucketRoleAssignments+"/"+kv.Key, kv.Value)
		if err != nil {
			return nil, fmt.Errorf("policy: open role assignment %s of %s: %w", kv.Key, in.Key, err)
		}
		var ra RoleAssignment
		if err := json.Unmarshal(pt, &ra); err != nil {
			return nil, err
		}
		out = append(out, ra)
	}
	return out, nil
}

// updateAttempts bounds how often update tries: each failed attempt
// means another change of the instance went through, so N concurrent
// writers need at most N attempts.
const updateAttempts = 32

// update reads the instance's RBAC state, lets fn check the change and
// build the value changes, and applies them with the instance's properties
// unchanged, at the generation it read. A concurrent change makes it read
// and try again, so that every check sees the state it changes. fn
// returning an empty command changes nothing.
func (s *Service) update(ctx context.Context, in instances.Instance, fn func(*snapshot, *barrier.Barrier) (store.UpdateInstance, error)) error {
	for attempt := 0; ; attempt++ {
		st, err := s.read(ctx, in.Key)
		if err != nil {
			return err
		}
		if st.in.Deleted {
			return instances.NotFound(in.Name)
		}
		cmd, err := fn(st, st.b)
		if err != nil {
			return err
		}
		if len(cmd.Puts) == 0 && len(cmd.Deletes) == 0 {
			return nil
		}
		_, err = s.inst.ApplyUpdate(ctx, st.in, st.in.Properties, cmd)
		if errors.Is(err, store.ErrConflict) && attempt < updateAttempts-1 {
			continue
		}
		return err
	}
}

// read reads the instance, its RBAC buckets and its settings in one
// snapshot and opens them.
func (s *Service) read(ctx context.Context, key string) (*snapshot, error) {
	var rec store.Instance
	var ras, rds, sets []store.KV
	err := s.st.View(ctx, func(r store.Reader) error {
		var err error
		if rec, err = r.Instance(key); err != nil {
			return err
		}
		if ras, err = r.InstanceValues(key, BucketRoleAssignments); err != nil {
			return err
		}
		if rds, err = r.InstanceValues(key, BucketRoleDefinitions); err != nil {
			return err
		}
		sets, err = r.InstanceValues(key, BucketSettings)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, instances.NotFound(key)
	}
	if err != nil {
		return nil, err
	}
	in, err := s.inst.Decode(rec)
	if err != nil {
		return nil, err
	}
	// The values of this snapshot are sealed under the root of this
	// snapshot (a security-domain upload changes both at once), which in
	// carries.
	b, err := s.inst.Barrier(in)
	if err != nil {
		return nil, err
	}
	st := &snapshot{in: in, b: b, settings: map[string]string{}}
	for _, kv := range ras {
		var ra RoleAssignment
		if err := openJSON(b, BucketRoleAssignments, kv, &ra); err != nil {
			return nil, fmt.Errorf("policy: role assignment %s of %s: %w", kv.Key, key, err)
		}
		rid, err := rbac.ParseRoleID(ra.RoleDefinitionID)
		if err != nil {
			return nil, fmt.Errorf("policy: role assignment %s of %s: %w", kv.Key, key, err)
		}
		st.policy.Assignments = append(st.policy.Assignments, rbac.Assignment{
			Name: strings.ToLower(ra.Name), PrincipalID: strings.ToLower(ra.PrincipalID), RoleID: rid, Scope: ra.Scope})
	}
	for _, kv := range rds {
		var sr storedRole
		if err := openJSON(b, BucketRoleDefinitions, kv, &sr); err != nil {
			return nil, fmt.Errorf("policy: role definition %s of %s: %w", kv.Key, key, err)
		}
		st.policy.Custom = append(st.policy.Custom, rbac.Role{ID: sr.ID, Name: sr.RoleName, Description: sr.Description,
			DataActions: sr.DataActions, NotDataActions: sr.NotDataActions})
	}
	for _, kv := range sets {
		var v string
		if err := openJSON(b, BucketSettings, kv, &v); err != nil {
			return nil, fmt.Errorf("policy: setting %s of %s: %w", kv.Key, key, err)
		}
		st.settings[kv.Key] = v
	}
	return st, nil
}

// CheckPolicyValue checks the plaintext of a value of a policy bucket
// (role assignments, role definitions, settings) stored under key, as a
// full restore brings it: it must be what this package would have stored
// there. The errors say what is wrong without quoting the value.
func CheckPolicyValue(bucket, key string, plaintext []byte) error {
	switch bucket {
	case BucketRoleAssignments:
		var ra RoleAssignment
		if err := json.Unmarshal(plaintext, &ra); err != nil || ra.Name != key || !instances.IsUUID(ra.PrincipalID) || ra.Scope == "" {
			return fmt.Errorf("role assignment %s is not valid", key)
		}
		if _, err := rbac.ParseRoleID(ra.RoleDefinitionID); err != nil {
			return fmt.Errorf("role assignment %s names no role definition", key)
		}
	case BucketRoleDefinitions:
		var sr storedRole
		if err := json.Unmarshal(plaintext, &sr); err != nil || sr.ID != key || sr.RoleName == "" {
			return fmt.Errorf("role definition %s is not valid", key)
		}
	case BucketSettings:
		var v string
		if _, err := findSetting(key); err != nil || json.Unmarshal(plaintext, &v) != nil {
			return fmt.Errorf("setting %s is not valid", key)
		}
	default:
		return fmt.Errorf("bucket %s is not a policy bucket", bucket)
	}
	return nil
}

func openJSON(b *barrier.Barrier, bucket string, kv store.KV, v any) error {
	pt, err := b.Open(bucket+"/"+kv.Key, kv.Value)
	if err != nil {
		return err
	}
	return json.Unmarshal(pt, v)
}
