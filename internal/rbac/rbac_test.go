package rbac

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"tresor/internal/fault"
)

func TestBuiltInRolesUseTheVocabulary(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range BuiltIn {
		if !IsGUID(r.ID) || r.ID != strings.ToLower(r.ID) || seen[r.ID] || !r.BuiltIn || r.Type() != TypeBuiltIn {
			t.Errorf("built-in role %+v", r)
		}
		seen[r.ID] = true
		for _, a := range r.DataActions {
			if c, ok := CanonicalAction(ActionPrefix + a); !ok || c != a {
				t.Errorf("%s: data action %q is not in the vocabulary", r.Name, a)
			}
		}
	}
	if r, ok := BuiltInRole(strings.ToUpper(CryptoUserID)); !ok || r.Name != "Managed HSM Crypto User" {
		t.Errorf("BuiltInRole by upper-case GUID: %+v %v", r, ok)
	}
}

func TestCanonicalAction(t *testing.T) {
	tests := map[string]struct {
		in   string
		want string
	}{
		"exact":            {ActionPrefix + KeysSign, KeysSign},
		"other case":       {"microsoft.keyvault/MANAGEDHSM/Keys/Sign/Action", KeysSign},
		"spaces":           {"  " + ActionPrefix + RNG + " ", RNG},
		"no prefix":        {KeysSign, ""},
		"wildcard":         {ActionPrefix + "keys/*", ""},
		"star":             {"*", ""},
		"unknown":          {ActionPrefix + "keys/fly/action", ""},
		"vault prefix":     {"Microsoft.KeyVault/vaults/keys/sign/action", ""},
		"prefix only":      {ActionPrefix, ""},
		"partial":          {ActionPrefix + "keys/sign", ""},
		"settings unknown": {ActionPrefix + "settings/read", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := CanonicalAction(tc.in)
			if got != tc.want || ok != (tc.want != "") {
				t.Fatalf("CanonicalAction(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		scope, target string
		want          bool
	}{
		{"/", "/", true},
		{"/", "/keys", true},
		{"/", "/keys/k1", true},
		{"/keys", "/", false},
		{"/keys", "/keys", true},
		{"/keys", "/keys/k1", true},
		{"/keys", "/keysx", false},
		{"/keys/k1", "/keys/k1", true},
		{"/keys/K1", "/keys/k1", true},
		{"/keys/k1", "/keys/k10", false},
		{"/keys/k1", "/keys/k2", false},
		{"/keys/k1", "/keys", false},
		{"/keys/k1", "/", false},
		{"/keys/sk", "/keys/s\u212a", false}, // Kelvin sign
		{"/keys/sk", "/keys/\u017fk", false}, // long s
		{"/keys/K1", "/keys/\u212a1", false},
		{"/KEYS/ABC-1", "/keys/abc-1", true},
	}
	for _, tc := range tests {
		if got := Covers(tc.scope, tc.target); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tc.scope, tc.target, got, tc.want)
		}
	}
}

func TestAllowed(t *testing.T) {
	user, _ := BuiltInRole(CryptoUserID)
	noSign := Role{ID: "11111111-1111-4111-8111-111111111111", Name: "no sign",
		DataActions: []string{KeysSign, KeysVerify, KeysRead}, NotDataActions: []string{KeysSign}}
	tests := map[string]struct {
		grants []Grant
		action string
		target string
		want   bool
	}{
		"none":                     {nil, KeysSign, "/keys/k1", false},
		"user at /":                {[]Grant{{user, "/"}}, KeysSign, "/keys/k1", true},
		"user at /keys":            {[]Grant{{user, "/keys"}}, KeysSign, "/keys/k1", true},
		"user at the key":          {[]Grant{{user, "/keys/k1"}}, KeysSign, "/keys/k1", true},
		"user at another key":      {[]Grant{{user, "/keys/k2"}}, KeysSign, "/keys/k1", false},
		"user at a key, list":      {[]Grant{{user, "/keys/k1"}}, KeysRead, "/keys", false},
		"user lacks export":        {[]Grant{{user, "/"}}, KeysExport, "/keys/k1", false},
		"notDataActions narrow":    {[]Grant{{noSign, "/"}}, KeysSign, "/keys/k1", false},
		"notDataActions keep rest": {[]Grant{{noSign, "/"}}, KeysVerify, "/keys/k1", true},
		// As in Azure: notDataActions are no deny assignment.
		"other role still grants": {[]Grant{{noSign, "/"}, {user, "/keys/k1"}}, KeysSign, "/keys/k1", true},
		"prefixed role actions":   {[]Grant{{Role{DataActions: []string{ActionPrefix + RNG}}, "/"}}, RNG, "/", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Allowed(tc.grants, tc.action, tc.target); got != tc.want {
				t.Fatalf("Allowed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseScope(t *testing.T) {
	good := map[string]string{
		"": "/", "/": "/", "//": "/", "///": "/",
		"keys": "/keys", "/keys": "/keys", "//keys": "/keys", "/keys/": "/keys", "/KEYS": "/keys",
		"/keys/k1": "/keys/k1", "keys/k1": "/keys/k1", "//keys//My-Key-1/": "/keys/My-Key-1",
		"/keys/" + strings.Repeat("a", 127): "/keys/" + strings.Repeat("a", 127),
	}
	for in, want := range good {
		if got, err := ParseScope(in); err != nil || got != want {
			t.Errorf("ParseScope(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"/secrets", "/keys/k1/versions", "/keys/k_1", "/keys/" + strings.Repeat("a", 128), "/providers", "/keys/k 1"} {
		_, err := ParseScope(in)
		if fe, ok := fault.As(err); !ok || fe.Kind != fault.BadParameter || fe.Code != "InvalidScope" {
			t.Errorf("ParseScope(%q) error %v, want InvalidScope", in, err)
		}
	}
}

func TestParseRoleID(t *testing.T) {
	const g = "21DBD100-6940-42c2-9190-5d6cb909625b"
	good := []string{
		g,
		RoleDefinitionIDPrefix + g,
		"/" + RoleDefinitionIDPrefix + g,
		"/providers/Microsoft.Authorization/roleDefinitions/" + g,
		"microsoft.keyvault/providers/microsoft.authorization/roledefinitions/" + g,
	}
	for _, in := range good {
		if got, err := ParseRoleID(in); err != nil || got != strings.ToLower(g) {
			t.Errorf("ParseRoleID(%q) = %q, %v", in, got, err)
		}
	}
	bad := []string{"", "Managed HSM Crypto User", "not-a-guid", RoleDefinitionIDPrefix,
		"/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/" + g, "Microsoft.KeyVault/" + g, g + "/"}
	for _, in := range bad {
		if _, err := ParseRoleID(in); fault.KindOf(err) != fault.BadParameter {
			t.Errorf("ParseRoleID(%q) error %v, want BadParameter", in, err)
		}
	}
}

const (
	guid1 = "11111111-1111-4111-8111-111111111111"
	guid2 = "22222222-2222-4222-8222-222222222222"
	guid3 = "33333333-3333-4333-8333-333333333333"
)

func TestNewCustomRole(t *testing.T) {
	r, err := NewCustomRole(strings.ToUpper(guid1), "", "signs", []string{ActionPrefix + KeysSign, strings.ToUpper(ActionPrefix + KeysSign), ActionPrefix + KeysRead}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != guid1 || r.Name != guid1 || !slices.Equal(r.DataActions, []string{KeysSign, KeysRead}) || r.NotDataActions == nil || r.BuiltIn {
		t.Fatalf("role %+v", r)
	}
	bad := map[string]func() (Role, error){
		"not a guid":       func() (Role, error) { return NewCustomRole("x", "n", "", nil, nil) },
		"built-in":         func() (Role, error) { return NewCustomRole(AdministratorID, "n", "", nil, nil) },
		"wildcard":         func() (Role, error) { return NewCustomRole(guid1, "n", "", []string{ActionPrefix + "keys/*"}, nil) },
		"bad notData":      func() (Role, error) { return NewCustomRole(guid1, "n", "", nil, []string{"keys/sign/action"}) },
		"long name":        func() (Role, error) { return NewCustomRole(guid1, strings.Repeat("n", 513), "", nil, nil) },
		"control in name":  func() (Role, error) { return NewCustomRole(guid1, "a\x00b", "", nil, nil) },
		"long description": func() (Role, error) { return NewCustomRole(guid1, "n", strings.Repeat("d", 2049), nil, nil) },
	}
	for name, f := range bad {
		if _, err := f(); fault.KindOf(err) != fault.BadParameter {
			t.Errorf("%s: error %v, want BadParameter", name, err)
		}
	}
}

func TestNewAssignment(t *testing.T) {
	a, err := NewAssignment(strings.ToUpper(guid1), strings.ToUpper(guid2), CryptoUserID, "//keys/k1")
	if err != nil {
		t.Fatal(err)
	}
	if a != (Assignment{Name: guid1, PrincipalID: guid2, RoleID: CryptoUserID, Scope: "/keys/k1"}) {
		t.Fatalf("assignment %+v", a)
	}
	tests := map[string]struct {
		name, principal, role, scope, code string
	}{
		"name":      {"ra1", guid2, CryptoUserID, "/", "InvalidRoleAssignmentId"},
		"principal": {guid1, "alice@example.com", CryptoUserID, "/", "InvalidPrincipalId"},
		"role":      {guid1, guid2, "Managed HSM Crypto User", "/", "InvalidRoleDefinitionId"},
		"scope":     {guid1, guid2, CryptoUserID, "/secrets", "InvalidScope"},
	}
	for name, tc := range tests {
		_, err := NewAssignment(tc.name, tc.principal, tc.role, tc.scope)
		if fe, ok := fault.As(err); !ok || fe.Kind != fault.BadParameter || fe.Code != tc.code {
			t.Errorf("%s: error %v, want %s", name, err, tc.code)
		}
	}
}

func code(err error) string {
	if fe, ok := fault.As(err); ok {
		return fe.Code
	}
	return fmt.Sprint(err)
}

func TestPolicyChecks(t *testing.T) {
	custom, _ := NewCustomRole(guid3, "Signer", "", []string{ActionPrefix + KeysSign}, nil)
	admin := Assignment{Name: guid1, PrincipalID: guid2, RoleID: AdministratorID, Scope: "/"}
	p := Policy{Custom: []Role{custom}, Assignments: []Assignment{admin,
		{Name: "44444444-4444-4444-8444-444444444444", PrincipalID: guid2, RoleID: guid3, Scope: "/keys/k1"}}}

	// Roles: built-in first, custom after; names unique.
	if roles := p.Roles(); len(roles) != len(BuiltIn)+1 || roles[len(roles)-1].ID != guid3 {
		t.Fatalf("roles %v", roles)
	}
	renamed := custom
	renamed.Name = "managed hsm crypto user"
	if _, err := p.CheckPutRole(renamed); code(err) != "RoleDefinitionWithSameNameExists" {
		t.Errorf("duplicate name: %v", err)
	}
	if created, err := p.CheckPutRole(custom); err != nil || created {
		t.Errorf("update of a custom role: %v %v", created, err)
	}
	full := Policy{}
	for i := range MaxCustomRoles {
		r, _ := NewCustomRole(fmt.Sprintf("00000000-0000-4000-8000-%012d", i), fmt.Sprintf("r%d", i), "", nil, nil)
		full.Custom = append(full.Custom, r)
	}
	if _, err := full.CheckPutRole(custom); code(err) != "RoleDefinitionLimitExceeded" {
		t.Errorf("51st role: %v", err)
	}
	if _, err := full.CheckPutRole(full.Custom[3]); err != nil {
		t.Errorf("update when full: %v", err)
	}

	// Deleting roles.
	if _, err := p.CheckDeleteRole(guid3); code(err) != "RoleDefinitionHasAssignments" {
		t.Errorf("delete assigned role: %v", err)
	}
	if _, err := p.CheckDeleteRole(CryptoUserID); code(err) != "BuiltInRoleNotModifiable" {
		t.Errorf("delete built-in: %v", err)
	}
	if _, err := p.CheckDeleteRole(guid1); code(err) != "RoleDefinitionNotFound" {
		t.Errorf("delete unknown: %v", err)
	}

	// Grants: the custom role counts.
	if g := p.Grants(strings.ToUpper(guid2)); len(g) != 2 || !Allowed(g, KeysSign, "/keys/k1") || Allowed(g, KeysSign, "/keys/k2") {
		t.Errorf("grants %v", g)
	}

	// Assigning.
	same := admin
	if existing, err := p.CheckAssign(same); err != nil || !existing {
		t.Errorf("same assignment again: %v %v", existing, err)
	}
	changed := admin
	changed.RoleID = CryptoUserID
	if _, err := p.CheckAssign(changed); code(err) != "RoleAssignmentUpdateNotPermitted" {
		t.Errorf("changed assignment: %v", err)
	}
	dup := admin
	dup.Name = guid3
	if _, err := p.CheckAssign(dup); code(err) != "RoleAssignmentExists" {
		t.Errorf("duplicate assignment: %v", err)
	}
	unknown := Assignment{Name: guid3, PrincipalID: guid2, RoleID: "55555555-5555-4555-8555-555555555555", Scope: "/"}
	if _, err := p.CheckAssign(unknown); code(err) != "RoleDefinitionDoesNotExist" {
		t.Errorf("unknown role: %v", err)
	}
	limits := map[string]int{"/": MaxAssignmentsHSM, "/keys": MaxAssignmentsHSM, "/keys/k9": MaxAssignmentsPerKey}
	for scope, limit := range limits {
		q := Policy{}
		for i := range limit {
			q.Assignments = append(q.Assignments, Assignment{Name: fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
				PrincipalID: fmt.Sprintf("00000000-0000-4000-9000-%012d", i), RoleID: CryptoUserID, Scope: scope})
		}
		next := Assignment{Name: guid1, PrincipalID: guid2, RoleID: CryptoUserID, Scope: scope}
		if _, err := q.CheckAssign(next); code(err) != "RoleAssignmentLimitExceeded" {
			t.Errorf("assignment %d at %s: %v", limit+1, scope, err)
		}
		next.Scope = "/keys/other"
		if _, err := q.CheckAssign(next); err != nil {
			t.Errorf("other scope after %s is full: %v", scope, err)
		}
	}

	// Unassigning: the last administrator stays.
	if _, err := p.CheckUnassign(guid1, "/"); code(err) != "LastAdministratorAssignment" {
		t.Errorf("last admin: %v", err)
	}
	two := p
	two.Assignments = append(slices.Clone(p.Assignments), Assignment{Name: guid3, PrincipalID: guid1, RoleID: AdministratorID, Scope: "/"})
	if a, err := two.CheckUnassign(guid1, "/"); err != nil || a.Name != guid1 {
		t.Errorf("one of two admins: %v %v", a, err)
	}
	// "/" finds assignments at every scope; a key scope only its own.
	if _, err := p.FindAssignment("44444444-4444-4444-8444-444444444444", "/"); err != nil {
		t.Errorf("find from /: %v", err)
	}
	if _, err := p.FindAssignment("44444444-4444-4444-8444-444444444444", "/keys/k2"); code(err) != "RoleAssignmentNotFound" {
		t.Errorf("find from another key: %v", err)
	}
}

func TestListAssignments(t *testing.T) {
	mk := func(n int, principal, scope string) Assignment {
		return Assignment{Name: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), PrincipalID: principal, RoleID: CryptoUserID, Scope: scope}
	}
	p := Policy{Assignments: []Assignment{mk(1, guid1, "/"), mk(2, guid2, "/keys"), mk(3, guid1, "/keys/k1"), mk(4, guid2, "/keys/k2")}}
	names := func(as []Assignment) (out []int) {
		for _, a := range as {
			var n int
			fmt.Sscanf(a.Name[len(a.Name)-12:], "%d", &n)
			out = append(out, n)
		}
		return out
	}
	tests := []struct {
		scope  string
		filter string
		want   []int
	}{
		{"/", "", []int{1, 2, 3, 4}},
		{"/", "atScope()", []int{1}},
		{"/keys", "", []int{1, 2, 3, 4}},
		{"/keys", "atScope()", []int{1, 2}},
		{"/keys/k1", "", []int{1, 2, 3}},
		{"/keys/k1", "atScope()", []int{1, 2, 3}},
		{"/", "principalId eq '" + guid1 + "'", []int{1, 3}},
		{"/", "atScope() and principalId eq '" + strings.ToUpper(guid2) + "'", nil},
		{"/keys", "assignedTo('" + guid2 + "') and atScope()", []int{2}},
	}
	for _, tc := range tests {
		f, err := ParseAssignmentFilter(tc.filter)
		if err != nil {
			t.Fatalf("%q: %v", tc.filter, err)
		}
		if got := names(p.ListAssignments(tc.scope, f)); !slices.Equal(got, tc.want) {
			t.Errorf("list at %s with %q = %v, want %v", tc.scope, tc.filter, got, tc.want)
		}
	}
}

func TestFilters(t *testing.T) {
	badAssign := []string{"atScope", "atScope(", "principalId eq", "principalId eq 'x'", "principalId ne '" + guid1 + "'",
		"principalId eq '" + guid1, "roleName eq 'a'", "atScope() or atScope()", "atScope() and", "'x'", "atScope() atScope()",
		"principalId eq '" + guid1 + "' and principalId eq '" + guid2 + "'"}
	for _, s := range badAssign {
		if _, err := ParseAssignmentFilter(s); fault.KindOf(err) != fault.BadParameter {
			t.Errorf("ParseAssignmentFilter(%q) = %v, want BadParameter", s, err)
		}
	}
	f, err := ParseRoleFilter("roleName eq 'Bob''s role' and type eq 'BuiltInRole'")
	if err != nil || f.RoleName != "Bob's role" || f.Type != TypeBuiltIn {
		t.Fatalf("role filter %+v %v", f, err)
	}
	for _, s := range []string{"roleName eq Bob", "type eq 'Other'", "atScope()", "roleName eq 'a' and roleName eq 'b'"} {
		if _, err := ParseRoleFilter(s); fault.KindOf(err) != fault.BadParameter {
			t.Errorf("ParseRoleFilter(%q) = %v, want BadParameter", s, err)
		}
	}
	p := Policy{}
	if got := p.ListRoles(RoleFilter{RoleName: "managed hsm crypto user"}); len(got) != 1 || got[0].ID != CryptoUserID {
		t.Errorf("roleName filter: %v", got)
	}
	if got := p.ListRoles(RoleFilter{Type: TypeCustom}); len(got) != 0 {
		t.Errorf("type filter: %v", got)
	}
}

// FuzzFilters checks that the filter parsers never panic and that what
// they accept names only valid principals.
func FuzzFilters(f *testing.F) {
	for _, s := range []string{"", "atScope()", "principalId eq '" + guid1 + "'", "assignedTo('" + guid2 + "') and atScope()",
		"roleName eq 'a''b'", "type eq 'CustomRole'", "x eq '", "(('"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if af, err := ParseAssignmentFilter(s); err == nil && af.PrincipalID != "" && !IsGUID(af.PrincipalID) {
			t.Fatalf("accepted principal %q", af.PrincipalID)
		}
		_, _ = ParseRoleFilter(s)
	})
}
