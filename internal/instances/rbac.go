package instances

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"tresor/internal/barrier"
	"tresor/internal/fault"
	"tresor/internal/rbac"
	"tresor/internal/store"
)

// Instance buckets of the RBAC state and the settings (values sealed by the
// instance barrier, like role assignments).
const (
	BucketRoleDefinitions = "roledefinitions"
	BucketSettings        = "settings"
)

// storedRole is a custom role definition as stored.
type storedRole struct {
	ID             string   `json:"id"`
	RoleName       string   `json:"roleName"`
	Description    string   `json:"description,omitempty"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions,omitempty"`
}

// rbacState is one consistent reading of an instance's RBAC state and
// settings.
type rbacState struct {
	in       Instance
	b        *barrier.Barrier // seals the values of this snapshot
	policy   rbac.Policy
	settings map[string]string // by canonical setting name
}

// Policy returns the instance's RBAC policy (custom roles and assignments),
// read in one snapshot, and the instance generation of that snapshot. Every
// change of the policy changes the generation, so the pair (instance,
// generation) names one policy.
func (s *Service) Policy(ctx context.Context, in Instance) (rbac.Policy, uint64, error) {
	st, err := s.rbacState(ctx, in.Key)
	if err != nil {
		return rbac.Policy{}, 0, err
	}
	return st.policy, st.in.Generation, nil
}

// PutRoleDefinition creates or replaces the custom role r (made by
// rbac.NewCustomRole) and reports whether it was new.
func (s *Service) PutRoleDefinition(ctx context.Context, in Instance, r rbac.Role) (bool, error) {
	var created bool
	err := s.updateRBAC(ctx, in, func(st *rbacState, b *barrier.Barrier) (store.UpdateInstance, error) {
		var err error
		if created, err = st.policy.CheckPutRole(r); err != nil {
			return store.UpdateInstance{}, err
		}
		v, err := sealJSON(b, BucketRoleDefinitions, r.ID, storedRole{ID: r.ID, RoleName: r.Name, Description: r.Description,
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
func (s *Service) DeleteRoleDefinition(ctx context.Context, in Instance, id string) (rbac.Role, error) {
	var r rbac.Role
	err := s.updateRBAC(ctx, in, func(st *rbacState, _ *barrier.Barrier) (store.UpdateInstance, error) {
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
func (s *Service) Assign(ctx context.Context, in Instance, a rbac.Assignment) error {
	return s.updateRBAC(ctx, in, func(st *rbacState, b *barrier.Barrier) (store.UpdateInstance, error) {
		existing, err := st.policy.CheckAssign(a)
		if err != nil || existing {
			return store.UpdateInstance{}, err
		}
		v, err := sealJSON(b, BucketRoleAssignments, a.Name, RoleAssignment{
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
func (s *Service) Unassign(ctx context.Context, in Instance, name, scope string) (rbac.Assignment, error) {
	var a rbac.Assignment
	err := s.updateRBAC(ctx, in, func(st *rbacState, _ *barrier.Barrier) (store.UpdateInstance, error) {
		var err error
		if a, err = st.policy.CheckUnassign(name, scope); err != nil {
			return store.UpdateInstance{}, err
		}
		return store.UpdateInstance{Deletes: []store.Value{{Bucket: BucketRoleAssignments, Key: a.Name}}}, nil
	})
	return a, err
}

// rbacAttempts bounds how often updateRBAC tries: each failed attempt
// means another change of the instance went through, so N concurrent
// writers need at most N attempts.
const rbacAttempts = 32

// updateRBAC reads the instance's RBAC state, lets fn check the change and
// build the value changes, and applies them with the instance's properties
// unchanged, at the generation it read. A concurrent change makes it read
// and try again, so that every check sees the state it changes. fn
// returning an empty command changes nothing.
func (s *Service) updateRBAC(ctx context.Context, in Instance, fn func(*rbacState, *barrier.Barrier) (store.UpdateInstance, error)) error {
	for attempt := 0; ; attempt++ {
		st, err := s.rbacState(ctx, in.Key)
		if err != nil {
			return err
		}
		if st.in.Deleted {
			return notFound(in.Name)
		}
		cmd, err := fn(st, st.b)
		if err != nil {
			return err
		}
		if len(cmd.Puts) == 0 && len(cmd.Deletes) == 0 {
			return nil
		}
		_, err = s.ApplyUpdate(ctx, st.in, st.in.Properties, cmd)
		if errors.Is(err, store.ErrConflict) && attempt < rbacAttempts-1 {
			continue
		}
		return err
	}
}

// rbacState reads the instance, its RBAC buckets and its settings in one
// snapshot and opens them.
func (s *Service) rbacState(ctx context.Context, key string) (*rbacState, error) {
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
		return nil, notFound(key)
	}
	if err != nil {
		return nil, err
	}
	in, err := s.decode(rec)
	if err != nil {
		return nil, err
	}
	// The values of this snapshot are sealed under the root of this
	// snapshot (a security-domain upload changes both at once), which in
	// carries.
	b, err := s.Barrier(in)
	if err != nil {
		return nil, err
	}
	st := &rbacState{in: in, b: b, settings: map[string]string{}}
	for _, kv := range ras {
		var ra RoleAssignment
		if err := openJSON(b, BucketRoleAssignments, kv, &ra); err != nil {
			return nil, fmt.Errorf("instances: role assignment %s of %s: %w", kv.Key, key, err)
		}
		rid, err := rbac.ParseRoleID(ra.RoleDefinitionID)
		if err != nil {
			return nil, fmt.Errorf("instances: role assignment %s of %s: %w", kv.Key, key, err)
		}
		st.policy.Assignments = append(st.policy.Assignments, rbac.Assignment{
			Name: strings.ToLower(ra.Name), PrincipalID: strings.ToLower(ra.PrincipalID), RoleID: rid, Scope: ra.Scope})
	}
	for _, kv := range rds {
		var sr storedRole
		if err := openJSON(b, BucketRoleDefinitions, kv, &sr); err != nil {
			return nil, fmt.Errorf("instances: role definition %s of %s: %w", kv.Key, key, err)
		}
		st.policy.Custom = append(st.policy.Custom, rbac.Role{ID: sr.ID, Name: sr.RoleName, Description: sr.Description,
			DataActions: sr.DataActions, NotDataActions: sr.NotDataActions})
	}
	for _, kv := range sets {
		var v string
		if err := openJSON(b, BucketSettings, kv, &v); err != nil {
			return nil, fmt.Errorf("instances: setting %s of %s: %w", kv.Key, key, err)
		}
		st.settings[kv.Key] = v
	}
	return st, nil
}

func openJSON(b *barrier.Barrier, bucket string, kv store.KV, v any) error {
	pt, err := b.Open(bucket+"/"+kv.Key, kv.Value)
	if err != nil {
		return err
	}
	return json.Unmarshal(pt, v)
}

// Setting is an HSM setting (spec §5.4).
type Setting struct {
	Name  string
	Value string
	Type  string // "boolean"
}

// settingDef describes a setting the HSM knows.
type settingDef struct {
	name, typ, def string
}

// settingDefs are the settings an HSM has, with their defaults.
var settingDefs = []settingDef{
	// AllowKeyManagementOperationsThroughARM lets key management go through
	// the control plane too; Tresor keeps it as a setting only.
	{name: "AllowKeyManagementOperationsThroughARM", typ: "boolean", def: "false"},
}

func findSetting(name string) (settingDef, error) {
	for _, d := range settingDefs {
		if strings.EqualFold(d.name, name) {
			return d, nil
		}
	}
	return settingDef{}, fault.New(fault.NotFound, "SettingNotFound", "the managed HSM has no setting named '%s'", name)
}

// Settings returns the instance's settings, each with its value or default.
func (s *Service) Settings(ctx context.Context, in Instance) ([]Setting, error) {
	st, err := s.rbacState(ctx, in.Key)
	if err != nil {
		return nil, err
	}
	out := make([]Setting, 0, len(settingDefs))
	for _, d := range settingDefs {
		v, ok := st.settings[d.name]
		if !ok {
			v = d.def
		}
		out = append(out, Setting{Name: d.name, Value: v, Type: d.typ})
	}
	return out, nil
}

// GetSetting returns one setting by name (any case).
func (s *Service) GetSetting(ctx context.Context, in Instance, name string) (Setting, error) {
	d, err := findSetting(name)
	if err != nil {
		return Setting{}, err
	}
	all, err := s.Settings(ctx, in)
	if err != nil {
		return Setting{}, err
	}
	for _, st := range all {
		if st.Name == d.name {
			return st, nil
		}
	}
	return Setting{}, fmt.Errorf("instances: setting %s missing", d.name)
}

// UpdateSetting sets a setting; a boolean takes "true" or "false" (any case).
func (s *Service) UpdateSetting(ctx context.Context, in Instance, name, value string) (Setting, error) {
	d, err := findSetting(name)
	if err != nil {
		return Setting{}, err
	}
	switch v := strings.ToLower(strings.TrimSpace(value)); {
	case d.typ == "boolean" && (v == "true" || v == "false"):
		value = v
	default:
		return Setting{}, fault.New(fault.BadParameter, "BadParameter", "the setting %s is a %s: its value must be 'true' or 'false', not '%s'", d.name, d.typ, value)
	}
	err = s.updateRBAC(ctx, in, func(st *rbacState, b *barrier.Barrier) (store.UpdateInstance, error) {
		if cur, ok := st.settings[d.name]; ok && cur == value {
			return store.UpdateInstance{}, nil
		}
		v, err := sealJSON(b, BucketSettings, d.name, value)
		if err != nil {
			return store.UpdateInstance{}, err
		}
		return store.UpdateInstance{Puts: []store.Value{v}}, nil
	})
	if err != nil {
		return Setting{}, err
	}
	return Setting{Name: d.name, Value: value, Type: d.typ}, nil
}

// CheckPolicyValue checks the plaintext of a value of a policy bucket
// (role assignments, role definitions, settings) stored under key, as a
// full restore brings it: it must be what this package would have stored
// there. The errors say what is wrong without quoting the value.
func CheckPolicyValue(bucket, key string, plaintext []byte) error {
	switch bucket {
	case BucketRoleAssignments:
		var ra RoleAssignment
		if err := json.Unmarshal(plaintext, &ra); err != nil || ra.Name != key || !IsUUID(ra.PrincipalID) || ra.Scope == "" {
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

// PolicyBuckets are the instance buckets of RBAC and settings, in the
// order a full backup writes them.
var PolicyBuckets = []string{BucketRoleAssignments, BucketRoleDefinitions, BucketSettings}
