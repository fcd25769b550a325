package rbac

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"tresor/internal/fault"
)

// Limits of an HSM's RBAC state (spec §6.1).
const (
	// MaxCustomRoles is the number of custom role definitions an HSM holds.
	MaxCustomRoles = 50
	// MaxAssignmentsHSM is the number of assignments at scope "/"; the
	// same limit applies, separately, at scope "/keys".
	MaxAssignmentsHSM = 50
	// MaxAssignmentsPerKey is the number of assignments at one key's scope.
	MaxAssignmentsPerKey = 10
	// maxRoleName and maxDescription bound a custom role's texts.
	maxRoleName    = 512
	maxDescription = 2048
)

// RoleDefinitionIDPrefix precedes a role's GUID in its id
// ("Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{guid}",
// without a leading slash, as the service writes it).
const RoleDefinitionIDPrefix = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"

// RoleDefinitionID returns the id of the role with GUID id.
func RoleDefinitionID(id string) string { return RoleDefinitionIDPrefix + id }

var (
	guidRE    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	keyNameRE = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)
)

// IsGUID reports whether s is a GUID (8-4-4-4-12 hexadecimal digits).
func IsGUID(s string) bool { return guidRE.MatchString(s) }

// ParseScope returns the canonical form of an RBAC scope: "/" (the whole
// HSM), "/keys" (every key) or "/keys/{name}" (one key; names of 1-127
// letters, digits and hyphens). Repeated and trailing slashes are dropped
// and the leading one is optional, as clients write scopes in all these
// ways (spec §5.1): "", "/", "//" → "/"; "keys", "//keys" → "/keys".
func ParseScope(s string) (string, error) {
	var parts []string
	for _, p := range strings.Split(s, "/") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	switch {
	case len(parts) == 0:
		return "/", nil
	case len(parts) == 1 && strings.EqualFold(parts[0], "keys"):
		return "/keys", nil
	case len(parts) == 2 && strings.EqualFold(parts[0], "keys") && keyNameRE.MatchString(parts[1]):
		return "/keys/" + parts[1], nil
	}
	return "", fault.New(fault.BadParameter, "InvalidScope",
		"the scope '%s' is not valid: a Managed HSM scope is '/', '/keys' or '/keys/{key name}' (key names are 1-127 letters, digits and hyphens)", s)
}

// ParseRoleID returns the GUID (lower case) of a role definition id in any
// of the forms clients send: the full id
// "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{guid}"
// (with or without a leading slash), "/providers/Microsoft.Authorization/roleDefinitions/{guid}",
// or the bare GUID.
func ParseRoleID(s string) (string, error) {
	guid := s
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		prefix := strings.TrimLeft(s[:i+1], "/")
		if !strings.EqualFold(prefix, RoleDefinitionIDPrefix) && !strings.EqualFold(prefix, "providers/Microsoft.Authorization/roleDefinitions/") {
			guid = ""
		} else {
			guid = s[i+1:]
		}
	}
	if !IsGUID(guid) {
		return "", fault.New(fault.BadParameter, "InvalidRoleDefinitionId",
			"the role definition id '%s' is not valid: give '%s{guid}' or the role's GUID", s, RoleDefinitionIDPrefix)
	}
	return strings.ToLower(guid), nil
}

// NewCustomRole validates a custom role definition and returns it with its
// GUID in lower case and its data actions in canonical form (vocabulary
// entries without prefix, without duplicates). An empty name becomes the
// GUID, as the service does.
func NewCustomRole(id, name, description string, dataActions, notDataActions []string) (Role, error) {
	if !IsGUID(id) {
		return Role{}, fault.New(fault.BadParameter, "InvalidRoleDefinitionId", "the role definition name '%s' is not a GUID", id)
	}
	id = strings.ToLower(id)
	if _, ok := BuiltInRole(id); ok {
		return Role{}, fault.New(fault.BadParameter, "BuiltInRoleNotModifiable", "the role definition %s is a built-in role: built-in roles cannot be changed", id)
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = id
	}
	if len(name) > maxRoleName || strings.ContainsFunc(name, unicode.IsControl) {
		return Role{}, fault.New(fault.BadParameter, "BadParameter", "roleName must be at most %d characters without control characters", maxRoleName)
	}
	if len(description) > maxDescription || strings.ContainsFunc(description, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) {
		return Role{}, fault.New(fault.BadParameter, "BadParameter", "description must be at most %d characters without control characters", maxDescription)
	}
	da, err := canonicalActions("dataActions", dataActions)
	if err != nil {
		return Role{}, err
	}
	nda, err := canonicalActions("notDataActions", notDataActions)
	if err != nil {
		return Role{}, err
	}
	return Role{ID: id, Name: name, Description: description, DataActions: da, NotDataActions: nda}, nil
}

func canonicalActions(field string, in []string) ([]string, error) {
	out := []string{}
	for _, a := range in {
		c, ok := CanonicalAction(a)
		if !ok {
			return nil, fault.New(fault.BadParameter, "BadParameter",
				"%s: '%s' is not a Managed HSM data action: name one of the service's data actions exactly, with the prefix '%s' (for example '%s%s'); wildcards are not supported",
				field, a, ActionPrefix, ActionPrefix, KeysSign)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Assignment is a role assignment: a principal holds a role at a scope.
type Assignment struct {
	Name        string // GUID, lower case
	PrincipalID string // object id, lower case
	RoleID      string // the role's GUID, lower case
	Scope       string // canonical (see ParseScope)
}

// NewAssignment validates an assignment's fields: name and principal must
// be GUIDs, the role id any form [ParseRoleID] takes, the scope any form
// [ParseScope] takes. Whether the role exists is the policy's to say.
// Principals are not looked up: they may come from the region's identity
// service or from a trusted external issuer, as with Entra ID.
func NewAssignment(name, principalID, roleID, scope string) (Assignment, error) {
	if !IsGUID(name) {
		return Assignment{}, fault.New(fault.BadParameter, "InvalidRoleAssignmentId",
			"the role assignment name '%s' is not valid: it must be a GUID", name)
	}
	sc, err := ParseScope(scope)
	if err != nil {
		return Assignment{}, err
	}
	rid, err := ParseRoleID(roleID)
	if err != nil {
		return Assignment{}, err
	}
	if !IsGUID(principalID) {
		return Assignment{}, fault.New(fault.BadParameter, "InvalidPrincipalId",
			"the principal id '%s' is not valid: give the principal's object id (a GUID)", principalID)
	}
	return Assignment{Name: strings.ToLower(name), PrincipalID: strings.ToLower(principalID), RoleID: rid, Scope: sc}, nil
}

// Policy is an HSM's RBAC state: its custom roles and its role
// assignments. The methods that check a change do not modify the policy.
type Policy struct {
	Custom      []Role
	Assignments []Assignment
}

// Role returns the built-in or custom role with GUID id.
func (p Policy) Role(id string) (Role, bool) {
	if r, ok := BuiltInRole(id); ok {
		return r, true
	}
	for _, r := range p.Custom {
		if strings.EqualFold(r.ID, id) {
			return r, true
		}
	}
	return Role{}, false
}

// Roles returns every role: the built-in ones, then the custom ones by name.
func (p Policy) Roles() []Role {
	custom := slices.Clone(p.Custom)
	slices.SortFunc(custom, func(a, b Role) int { return cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return append(slices.Clone(BuiltIn), custom...)
}

// Grants returns the principal's assignments as the decision sees them.
// An assignment whose role no longer exists grants nothing.
func (p Policy) Grants(principal string) []Grant {
	var out []Grant
	for _, a := range p.Assignments {
		if !strings.EqualFold(a.PrincipalID, principal) {
			continue
		}
		if r, ok := p.Role(a.RoleID); ok {
			out = append(out, Grant{Role: r, Scope: a.Scope})
		}
	}
	return out
}

// CheckPutRole checks that r (made by [NewCustomRole]) may be stored:
// its name is unique among all roles and, if it is new, the HSM holds
// fewer than [MaxCustomRoles] custom roles. It reports whether r is new.
func (p Policy) CheckPutRole(r Role) (created bool, err error) {
	created = true
	for _, c := range p.Custom {
		if strings.EqualFold(c.ID, r.ID) {
			created = false
		}
	}
	for _, o := range p.Roles() {
		if !strings.EqualFold(o.ID, r.ID) && strings.EqualFold(o.Name, r.Name) {
			return false, fault.New(fault.Conflict, "RoleDefinitionWithSameNameExists",
				"a role definition named '%s' exists already (%s): role names must be unique", r.Name, o.ID)
		}
	}
	if created && len(p.Custom) >= MaxCustomRoles {
		return false, fault.New(fault.Conflict, "RoleDefinitionLimitExceeded",
			"the managed HSM holds %d custom role definitions, the most it can hold: delete one first", MaxCustomRoles)
	}
	return created, nil
}

// CheckDeleteRole returns the custom role with GUID id if it may be
// deleted: it exists, is not built in and no assignment names it.
func (p Policy) CheckDeleteRole(id string) (Role, error) {
	r, ok := p.Role(id)
	if !ok {
		return Role{}, RoleNotFound(id)
	}
	if r.BuiltIn {
		return Role{}, fault.New(fault.BadParameter, "BuiltInRoleNotModifiable", "the role definition %s is the built-in role '%s': built-in roles cannot be deleted", r.ID, r.Name)
	}
	n := 0
	for _, a := range p.Assignments {
		if strings.EqualFold(a.RoleID, r.ID) {
			n++
		}
	}
	if n > 0 {
		return Role{}, fault.New(fault.Conflict, "RoleDefinitionHasAssignments",
			"the role '%s' is still assigned (%d assignments): delete its assignments first", r.Name, n)
	}
	return r, nil
}

// RoleNotFound is the error for a role definition that does not exist.
func RoleNotFound(id string) error {
	return fault.New(fault.NotFound, "RoleDefinitionNotFound", "the role definition '%s' was not found", id)
}

// AssignmentNotFound is the error for a role assignment that does not exist.
func AssignmentNotFound(name string) error {
	return fault.New(fault.NotFound, "RoleAssignmentNotFound", "the role assignment '%s' was not found", name)
}

// CheckAssign checks that a (made by [NewAssignment]) may be stored: its
// role exists; its name is new, or names the very same assignment (then
// existing is true and nothing needs to change); the principal does not
// hold the role at that scope under another name; and the scope has room
// (see the limits).
func (p Policy) CheckAssign(a Assignment) (existing bool, err error) {
	if _, ok := p.Role(a.RoleID); !ok {
		return false, fault.New(fault.BadParameter, "RoleDefinitionDoesNotExist",
			"the role definition '%s' does not exist: list the roles with 'tresor role definition list'", a.RoleID)
	}
	n := 0
	for _, o := range p.Assignments {
		if strings.EqualFold(o.Name, a.Name) {
			if o.PrincipalID == a.PrincipalID && o.RoleID == a.RoleID && strings.EqualFold(o.Scope, a.Scope) {
				return true, nil
			}
			return false, fault.New(fault.Conflict, "RoleAssignmentUpdateNotPermitted",
				"the role assignment '%s' exists with other properties: role assignments cannot be changed, delete it and create a new one", a.Name)
		}
		if o.PrincipalID == a.PrincipalID && o.RoleID == a.RoleID && strings.EqualFold(o.Scope, a.Scope) {
			return false, fault.New(fault.Conflict, "RoleAssignmentExists",
				"the principal %s holds this role at scope '%s' already (role assignment %s)", a.PrincipalID, a.Scope, o.Name)
		}
		if strings.EqualFold(o.Scope, a.Scope) {
			n++
		}
	}
	limit := MaxAssignmentsHSM
	if strings.HasPrefix(a.Scope, "/keys/") {
		limit = MaxAssignmentsPerKey
	}
	if n >= limit {
		return false, fault.New(fault.Conflict, "RoleAssignmentLimitExceeded",
			"scope '%s' holds %d role assignments, the most it can hold: delete one first", a.Scope, limit)
	}
	return false, nil
}

// FindAssignment returns the assignment called name if scope covers its
// scope (so that "/" finds every assignment, as clients that delete by id
// alone expect).
func (p Policy) FindAssignment(name, scope string) (Assignment, error) {
	for _, a := range p.Assignments {
		if strings.EqualFold(a.Name, name) && Covers(scope, a.Scope) {
			return a, nil
		}
	}
	return Assignment{}, AssignmentNotFound(name)
}

// CheckUnassign returns the assignment called name (found as by
// [Policy.FindAssignment]) if it may be deleted: the last Managed HSM
// Administrator assignment at scope "/" may not, or nobody could manage
// the HSM any more.
func (p Policy) CheckUnassign(name, scope string) (Assignment, error) {
	a, err := p.FindAssignment(name, scope)
	if err != nil {
		return Assignment{}, err
	}
	if a.RoleID == AdministratorID && a.Scope == "/" {
		admins := 0
		for _, o := range p.Assignments {
			if o.RoleID == AdministratorID && o.Scope == "/" {
				admins++
			}
		}
		if admins <= 1 {
			return Assignment{}, fault.New(fault.Conflict, "LastAdministratorAssignment",
				"the role assignment '%s' is the last Managed HSM Administrator assignment at scope '/': assign the role to another principal before deleting it", a.Name)
		}
	}
	return a, nil
}

// ListAssignments returns the assignments that apply at scope, by name:
// without a filter those at, above and below scope; with atScope() those
// at or above it; principalId eq '…' keeps one principal's.
func (p Policy) ListAssignments(scope string, f AssignmentFilter) []Assignment {
	out := []Assignment{}
	for _, a := range p.Assignments {
		if f.PrincipalID != "" && !strings.EqualFold(a.PrincipalID, f.PrincipalID) {
			continue
		}
		if !Covers(a.Scope, scope) && (f.AtScope || !Covers(scope, a.Scope)) {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Assignment) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// ListRoles returns the roles that match f, as [Policy.Roles] orders them.
func (p Policy) ListRoles(f RoleFilter) []Role {
	out := []Role{}
	for _, r := range p.Roles() {
		if f.RoleName != "" && !strings.EqualFold(r.Name, f.RoleName) {
			continue
		}
		if f.Type != "" && !strings.EqualFold(r.Type(), f.Type) {
			continue
		}
		out = append(out, r)
	}
	return out
}
