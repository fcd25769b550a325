package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"tresor/internal/api"
	"tresor/internal/rbac"
	"tresor/internal/server/servertest"
	"tresor/internal/uuid"
	"tresor/internal/wire"
)

// rbacEnv is a region with activated HSMs and helpers for RBAC calls.
type rbacEnv struct {
	t     *testing.T
	s     *servertest.Server
	c     *call
	arm   string // control-plane token of the bootstrap administrator
	admin string // its HSM token (Managed HSM Administrator at "/")
}

func newRBACEnv(t *testing.T, hsms ...string) *rbacEnv {
	t.Helper()
	s := servertest.Start(t)
	e := &rbacEnv{t: t, s: s, c: newCall(t, s), arm: s.AdminToken(t)}
	e.admin = s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	sd1, sd2, sd3 := custodian(t, "sd1"), custodian(t, "sd2"), custodian(t, "sd3")
	for _, n := range hsms {
		if code, _, body := e.c.do("PUT", e.c.hsmPath(n), e.arm, createBody(s.ObjectID)); code != 202 {
			t.Fatalf("create %s: %d %s", n, code, body)
		}
		if code, _, body := e.c.do("POST", e.url(n, "/securitydomain/download"), e.admin, downloadBody(2, sd1, sd2, sd3)); code != 202 {
			t.Fatalf("activate %s: %d %.300s", n, code, body)
		}
	}
	return e
}

// url is the data-plane URL of path on an HSM, with an api-version.
func (e *rbacEnv) url(hsm, path string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return e.s.HSMURL(hsm) + path + sep + "api-version=7.4"
}

// objectIDs creates n service principals and returns their object ids.
func (e *rbacEnv) objectIDs(n int) []string {
	e.t.Helper()
	var out []string
	for i := range n {
		code, _, body := e.c.do("POST", e.s.Endpoint+"/tresor/principals", e.arm, wire.PrincipalCreate{DisplayName: fmt.Sprintf("p%d", i)})
		if code != 201 {
			e.t.Fatalf("create principal: %d %s", code, body)
		}
		var p wire.Principal
		mustJSON(e.t, body, &p)
		out = append(out, p.ObjectID)
	}
	return out
}

// principal creates a service principal and returns its object id and an
// HSM token.
func (e *rbacEnv) principal(name string) (string, string) {
	e.t.Helper()
	code, _, body := e.c.do("POST", e.s.Endpoint+"/tresor/principals", e.arm, wire.PrincipalCreate{DisplayName: name})
	if code != 201 {
		e.t.Fatalf("create principal %s: %d %s", name, code, body)
	}
	var p wire.Principal
	_ = json.Unmarshal(body, &p)
	return p.ObjectID, e.s.Token(e.t, p.ClientID, p.ClientSecret, e.s.HSMResource())
}

type assignmentJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		Scope            string `json:"scope"`
		RoleDefinitionID string `json:"roleDefinitionId"`
		PrincipalID      string `json:"principalId"`
	} `json:"properties"`
}

// assign gives principal the role (any id form) at scope (any form) as
// the administrator and returns the assignment.
func (e *rbacEnv) assign(hsm, role, principal, scope string) assignmentJSON {
	e.t.Helper()
	name := uuid.New()
	code, _, body := e.c.do("PUT", e.url(hsm, "/"+scope+"/providers/Microsoft.Authorization/roleAssignments/"+name), e.admin,
		map[string]any{"properties": map[string]string{"roleDefinitionId": role, "principalId": principal}})
	if code != http.StatusCreated {
		e.t.Fatalf("assign %s to %s at %q: %d %s", role, principal, scope, code, body)
	}
	var a assignmentJSON
	if err := json.Unmarshal(body, &a); err != nil || a.Name != name {
		e.t.Fatalf("assignment: %s", body)
	}
	return a
}

// listAssignments returns the raw list of assignments at "/" (for
// before/after comparisons).
func (e *rbacEnv) listAssignments(hsm string) string {
	e.t.Helper()
	code, _, body := e.c.do("GET", e.url(hsm, "///providers/Microsoft.Authorization/roleAssignments"), e.admin, nil)
	if code != 200 {
		e.t.Fatalf("list assignments: %d %s", code, body)
	}
	return string(body)
}

func (e *rbacEnv) listDefinitions(hsm string) string {
	e.t.Helper()
	code, _, body := e.c.do("GET", e.url(hsm, "///providers/Microsoft.Authorization/roleDefinitions"), e.admin, nil)
	if code != 200 {
		e.t.Fatalf("list definitions: %d %s", code, body)
	}
	return string(body)
}

// wantForbidden checks a 403 that names the missing data action.
func wantForbidden(t *testing.T, code int, body []byte, action string) {
	t.Helper()
	wantError(t, code, body, http.StatusForbidden, "Forbidden")
	var e wire.Error
	_ = json.Unmarshal(body, &e)
	if e.Error.InnerError == nil || e.Error.InnerError.Code != "ForbiddenByRbac" || !strings.Contains(e.Error.Message, rbac.ActionPrefix+action) {
		t.Fatalf("denial does not name %s with ForbiddenByRbac: %s", action, body)
	}
}

// routeCase is one data-plane route: the request to send and the data
// action the spec (§2.2, §4.1, §5) says it needs. Bodies are chosen to fail
// validation where a permitted call would change something.
type routeCase struct {
	method, pattern string
	path            string
	body            any
	action          string
}

const (
	sdDownload = rbac.SecurityDomainDownload
	unknownRA  = "/providers/Microsoft.Authorization/roleAssignments/0f0f0f0f-0000-4000-8000-000000000001"
	unknownRD  = "/providers/Microsoft.Authorization/roleDefinitions/0f0f0f0f-0000-4000-8000-000000000002"
)

// routeCases lists every data-plane route of the route table. The test
// checks that it matches api.HSMRoutes, so that a new route cannot escape
// the table.
var routeCases = []routeCase{
	{"POST", "/securitydomain/download", "/securitydomain/download", "{}", sdDownload},
	{"GET", "/securitydomain/download/pending", "/securitydomain/download/pending", nil, rbac.SecurityDomainDownloadGet},
	{"GET", "/securitydomain/upload", "/securitydomain/upload", nil, rbac.SecurityDomainTransferKey},
	{"POST", "/securitydomain/upload", "/securitydomain/upload", "{}", rbac.SecurityDomainUpload},
	{"GET", "/securitydomain/upload/pending", "/securitydomain/upload/pending", nil, rbac.SecurityDomainUploadGet},

	{"GET", "/providers/Microsoft.Authorization/roleDefinitions", "///providers/Microsoft.Authorization/roleDefinitions", nil, rbac.RoleDefinitionsRead},
	{"GET", "/providers/Microsoft.Authorization/roleDefinitions/{name}", "///providers/Microsoft.Authorization/roleDefinitions/" + rbac.CryptoUserID, nil, rbac.RoleDefinitionsRead},
	{"PUT", "/providers/Microsoft.Authorization/roleDefinitions/{name}", "//" + unknownRD, `{"properties":{"permissions":[{"dataActions":["bogus"]}]}}`, rbac.RoleDefinitionsWrite},
	{"DELETE", "/providers/Microsoft.Authorization/roleDefinitions/{name}", "//" + unknownRD, nil, rbac.RoleDefinitionsDelete},
	{"GET", "/providers/Microsoft.Authorization/roleAssignments", "///providers/Microsoft.Authorization/roleAssignments", nil, rbac.RoleAssignmentsRead},
	{"GET", "/providers/Microsoft.Authorization/roleAssignments/{name}", "//" + unknownRA, nil, rbac.RoleAssignmentsRead},
	{"PUT", "/providers/Microsoft.Authorization/roleAssignments/{name}", "//" + unknownRA, `{"properties":{}}`, rbac.RoleAssignmentsWrite},
	{"DELETE", "/providers/Microsoft.Authorization/roleAssignments/{name}", "//" + unknownRA, nil, rbac.RoleAssignmentsDelete},
	{"GET", "/settings", "/settings", nil, rbac.RoleDefinitionsRead},
	{"GET", "/settings/{name}", "/settings/AllowKeyManagementOperationsThroughARM", nil, rbac.RoleDefinitionsRead},
	{"PATCH", "/settings/{name}", "/settings/AllowKeyManagementOperationsThroughARM", `{"value":"maybe"}`, rbac.RoleDefinitionsWrite},

	{"POST", "/keys/{name}/create", "/keys/k1/create", `{"kty":"bogus"}`, rbac.KeysCreate},
	{"PUT", "/keys/{name}", "/keys/k1", `{}`, rbac.KeysImport},
	{"GET", "/keys", "/keys", nil, rbac.KeysRead},
	{"GET", "/keys/{name}", "/keys/k1", nil, rbac.KeysRead},
	{"GET", "/keys/{name}/{$}", "/keys/k1/", nil, rbac.KeysRead},
	{"GET", "/keys/{name}/{version}", "/keys/k1/0123456789abcdef0123456789abcdef", nil, rbac.KeysRead},
	{"GET", "/keys/{name}/versions", "/keys/k1/versions", nil, rbac.KeysRead},
	{"PATCH", "/keys/{name}", "/keys/k1", `{}`, rbac.KeysWrite},
	{"PATCH", "/keys/{name}/{$}", "/keys/k1/", `{}`, rbac.KeysWrite},
	{"PATCH", "/keys/{name}/{version}", "/keys/k1/0123456789abcdef0123456789abcdef", `{}`, rbac.KeysWrite},
	{"DELETE", "/keys/{name}", "/keys/k1", nil, rbac.KeysDelete},
	{"GET", "/deletedkeys", "/deletedkeys", nil, rbac.DeletedKeysRead},
	{"GET", "/deletedkeys/{name}", "/deletedkeys/k1", nil, rbac.DeletedKeysRead},
	{"POST", "/deletedkeys/{name}/recover", "/deletedkeys/k1/recover", nil, rbac.DeletedKeysRecover},
	{"DELETE", "/deletedkeys/{name}", "/deletedkeys/k1", nil, rbac.DeletedKeysDelete},
	{"POST", "/keys/{name}/backup", "/keys/k1/backup", nil, rbac.KeysBackup},
	{"POST", "/keys/restore", "/keys/restore", `{}`, rbac.KeysRestore},
	{"POST", "/keys/{name}/rotate", "/keys/k1/rotate", nil, rbac.KeysRotate},
	{"GET", "/keys/{name}/rotationpolicy", "/keys/k1/rotationpolicy", nil, rbac.KeysRead},
	{"PUT", "/keys/{name}/rotationpolicy", "/keys/k1/rotationpolicy", `{"lifetimeActions":"bogus"}`, rbac.KeysWrite},
	{"POST", "/keys/{name}/encrypt", "/keys/k1/encrypt", `{}`, rbac.KeysEncrypt},
	{"POST", "/keys/{name}/{version}/encrypt", "/keys/k1/v1/encrypt", `{}`, rbac.KeysEncrypt},
	{"POST", "/keys/{name}/decrypt", "/keys/k1/decrypt", `{}`, rbac.KeysDecrypt},
	{"POST", "/keys/{name}/{version}/decrypt", "/keys/k1/v1/decrypt", `{}`, rbac.KeysDecrypt},
	{"POST", "/keys/{name}/wrapkey", "/keys/k1/wrapkey", `{}`, rbac.KeysWrap},
	{"POST", "/keys/{name}/{version}/wrapkey", "/keys/k1/v1/wrapkey", `{}`, rbac.KeysWrap},
	{"POST", "/keys/{name}/unwrapkey", "/keys/k1/unwrapkey", `{}`, rbac.KeysUnwrap},
	{"POST", "/keys/{name}/{version}/unwrapkey", "/keys/k1/v1/unwrapkey", `{}`, rbac.KeysUnwrap},
	{"POST", "/keys/{name}/sign", "/keys/k1/sign", `{}`, rbac.KeysSign},
	{"POST", "/keys/{name}/{version}/sign", "/keys/k1/v1/sign", `{}`, rbac.KeysSign},
	{"POST", "/keys/{name}/verify", "/keys/k1/verify", `{}`, rbac.KeysVerify},
	{"POST", "/keys/{name}/{version}/verify", "/keys/k1/v1/verify", `{}`, rbac.KeysVerify},
	{"POST", "/rng", "/rng", `{"count":4}`, rbac.RNG},

	// Backup and restore: bodies that are refused (400) when allowed, so
	// the walk starts no job.
	{"POST", "/backup", "/backup", `{"storageResourceUri":""}`, rbac.BackupStart},
	{"POST", "/prebackup", "/prebackup", `{"storageResourceUri":""}`, rbac.BackupStart},
	{"GET", "/backup/{job}/pending", "/backup/00000000000000000000000000000000/pending", nil, rbac.BackupStatus},
	{"PUT", "/backup/policy", "/backup/policy", `{"every":""}`, rbac.BackupStart},
	{"GET", "/backup/policy", "/backup/policy", nil, rbac.BackupStatus},
	{"DELETE", "/backup/policy", "/backup/policy", nil, rbac.BackupStart},
	{"PUT", "/restore", "/restore", `{"folderToRestore":""}`, rbac.RestoreStart},
	{"PUT", "/prerestore", "/prerestore", `{"folderToRestore":""}`, rbac.RestoreStart},
	{"PUT", "/keys/{name}/restore", "/keys/k1/restore", `{"folder":""}`, rbac.RestoreStart},
	{"GET", "/restore/{job}/pending", "/restore/00000000000000000000000000000000/pending", nil, rbac.RestoreStatus},
}

// TestRoutesCoverTheRouteTable keeps routeCases and the route table in step.
func TestRoutesCoverTheRouteTable(t *testing.T) {
	declared := map[string]string{}
	for _, rt := range api.HSMRoutes() {
		declared[rt.Method+" "+rt.Pattern] = rt.Action
	}
	tested := map[string]bool{}
	for _, rc := range routeCases {
		k := rc.method + " " + rc.pattern
		tested[k] = true
		got, ok := declared[k]
		if !ok {
			t.Errorf("%s is not in the route table", k)
		} else if got != rc.action {
			t.Errorf("%s declares %s; the spec says %s", k, got, rc.action)
		}
	}
	for k := range declared {
		if !tested[k] {
			t.Errorf("route %s is missing from routeCases: add it to the RBAC table test", k)
		}
	}
}

// TestBuiltInRolesOnEveryRoute walks every (built-in role × route) pair:
// a principal holding only that role at "/" is denied (403 naming the
// action) exactly where the role lacks the route's data action.
func TestBuiltInRolesOnEveryRoute(t *testing.T) {
	e := newRBACEnv(t, "walk")
	for _, role := range rbac.BuiltIn {
		t.Run(role.Name, func(t *testing.T) {
			oid, tok := e.principal(role.Name)
			// Roles are given by bare GUID: the server accepts each id form.
			e.assign("walk", role.ID, oid, "/")
			for _, rc := range routeCases {
				code, _, body := e.c.do(rc.method, e.url("walk", rc.path), tok, rc.body)
				if slices.Contains(role.DataActions, rc.action) {
					if code == http.StatusForbidden || code == http.StatusUnauthorized || code >= 500 {
						t.Errorf("%s %s: %d, want it allowed (and served): %s", rc.method, rc.path, code, body)
					}
					continue
				}
				if code != http.StatusForbidden {
					t.Errorf("%s %s: %d, want 403 (role lacks %s): %s", rc.method, rc.path, code, rc.action, body)
					continue
				}
				wantForbidden(t, code, body, rc.action)
			}
		})
	}
}

func digest(s string) string {
	d := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(d[:])
}

// TestKeyScopedRoles: a Crypto User at /keys/k1 works with k1 only; a
// Crypto Auditor reads but does not sign; an Administrator without a crypto
// role does not sign.
func TestKeyScopedRoles(t *testing.T) {
	e := newRBACEnv(t, "scoped")
	userOID, user := e.principal("k1 user")
	auditorOID, auditor := e.principal("auditor")
	// Scope as the Azure CLI sends "--scope /keys/k1": with a slash in front.
	a := e.assign("scoped", rbac.RoleDefinitionID(rbac.CryptoUserID), userOID, "/keys/k1")
	if a.Properties.Scope != "/keys/k1" || a.ID != "/keys/k1/providers/Microsoft.Authorization/roleAssignments/"+a.Name {
		t.Fatalf("key-scoped assignment: %+v", a)
	}
	e.assign("scoped", "/providers/Microsoft.Authorization/roleDefinitions/"+rbac.CryptoAuditorID, auditorOID, "")

	// The key user creates k1, signs and verifies with it.
	create := wire.KeyCreateParameters{Kty: "EC-HSM", Curve: "P-256"}
	code, _, body := e.c.do("POST", e.url("scoped", "/keys/k1/create"), user, create)
	if code != 200 {
		t.Fatalf("create k1: %d %s", code, body)
	}
	sign := wire.KeySignParameters{Alg: "ES256", Value: digest("hello")}
	code, _, body = e.c.do("POST", e.url("scoped", "/keys/k1/sign"), user, sign)
	if code != 200 {
		t.Fatalf("sign with k1: %d %s", code, body)
	}
	// Everything beyond k1 is refused.
	for _, rc := range []struct{ method, path, action string }{
		{"POST", "/keys/k2/create", rbac.KeysCreate},
		{"POST", "/keys/k2/sign", rbac.KeysSign},
		{"GET", "/keys/k2", rbac.KeysRead},
		{"GET", "/keys", rbac.KeysRead},
		{"POST", "/keys/K10/sign", rbac.KeysSign},
		{"POST", "/rng", rbac.RNG},
		{"GET", "///providers/Microsoft.Authorization/roleAssignments", rbac.RoleAssignmentsRead},
	} {
		code, _, body := e.c.do(rc.method, e.url("scoped", rc.path), user, sign)
		wantForbidden(t, code, body, rc.action)
	}
	// Its own key scope it may read (roleAssignments/read at /keys/k1).
	code, _, body = e.c.do("GET", e.url("scoped", "/keys/k1/providers/Microsoft.Authorization/roleAssignments"), user, nil)
	if code != 200 || !strings.Contains(string(body), a.Name) {
		t.Fatalf("list at /keys/k1 by the key user: %d %s", code, body)
	}
	// Key names are case-insensitive: K1 is the same key as k1, for the
	// key service and for authorization alike.
	if code, _, body := e.c.do("GET", e.url("scoped", "/keys/K1"), user, nil); code == http.StatusForbidden {
		t.Fatalf("get K1: %d %s", code, body)
	}

	// The auditor reads keys but does not sign.
	if code, _, body := e.c.do("GET", e.url("scoped", "/keys/k1"), auditor, nil); code != 200 {
		t.Fatalf("auditor reads k1: %d %s", code, body)
	}
	code, _, body = e.c.do("POST", e.url("scoped", "/keys/k1/sign"), auditor, sign)
	wantForbidden(t, code, body, rbac.KeysSign)
	// The administrator has no crypto role.
	code, _, body = e.c.do("POST", e.url("scoped", "/keys/k1/sign"), e.admin, sign)
	wantForbidden(t, code, body, rbac.KeysSign)
	code, _, body = e.c.do("GET", e.url("scoped", "/keys/k1"), e.admin, nil)
	wantForbidden(t, code, body, rbac.KeysRead)
}

// TestRevocationTakesEffectAtOnce: removing an assignment (or changing a
// custom role) applies to the next request of a still-valid token.
func TestRevocationTakesEffectAtOnce(t *testing.T) {
	e := newRBACEnv(t, "revoke")
	oid, tok := e.principal("app")
	rng := func() (int, []byte) {
		code, _, body := e.c.do("POST", e.url("revoke", "/rng"), tok, `{"count":8}`)
		return code, body
	}
	// A custom role that grants rng.
	roleID := uuid.New()
	code, _, body := e.c.do("PUT", e.url("revoke", "///providers/Microsoft.Authorization/roleDefinitions/"+roleID), e.admin,
		map[string]any{"properties": map[string]any{"roleName": "Random", "type": "CustomRole",
			"permissions": []map[string]any{{"dataActions": []string{rbac.ActionPrefix + rbac.RNG, rbac.ActionPrefix + rbac.KeysSign}}}}})
	if code != http.StatusCreated || !strings.Contains(string(body), `"type":"CustomRole"`) {
		t.Fatalf("create custom role: %d %s", code, body)
	}
	if code, body := rng(); code != 403 {
		t.Fatalf("rng before any assignment: %d %s", code, body)
	}
	a := e.assign("revoke", "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"+roleID, oid, "/")
	for range 3 { // the cached decision serves repeated calls
		if code, body := rng(); code != 200 {
			t.Fatalf("rng with the custom role: %d %s", code, body)
		}
	}
	// Narrowing the role with notDataActions takes effect at once.
	code, _, body = e.c.do("PUT", e.url("revoke", "/providers/Microsoft.Authorization/roleDefinitions/"+roleID), e.admin,
		map[string]any{"properties": map[string]any{"roleName": "Random", "permissions": []map[string]any{{
			"dataActions": []string{rbac.ActionPrefix + rbac.RNG}, "notDataActions": []string{rbac.ActionPrefix + rbac.RNG}}}}})
	if code != http.StatusCreated {
		t.Fatalf("update custom role: %d %s", code, body)
	}
	code, body = rng()
	wantForbidden(t, code, body, rbac.RNG)
	code, _, body = e.c.do("PUT", e.url("revoke", "/providers/Microsoft.Authorization/roleDefinitions/"+roleID), e.admin,
		map[string]any{"properties": map[string]any{"roleName": "Random", "permissions": []map[string]any{{"dataActions": []string{rbac.ActionPrefix + rbac.RNG}}}}})
	if code != http.StatusCreated {
		t.Fatalf("restore custom role: %d %s", code, body)
	}
	if code, body := rng(); code != 200 {
		t.Fatalf("rng after the role was widened again: %d %s", code, body)
	}
	// Removing the assignment: 200 with the deleted assignment; the same
	// token is refused on its next request.
	code, _, body = e.c.do("DELETE", e.url("revoke", "///providers/Microsoft.Authorization/roleAssignments/"+a.Name), e.admin, nil)
	var deleted assignmentJSON
	_ = json.Unmarshal(body, &deleted)
	if code != 200 || deleted.Name != a.Name || deleted.Properties.PrincipalID != oid {
		t.Fatalf("delete assignment: %d %s", code, body)
	}
	code, body = rng()
	wantForbidden(t, code, body, rbac.RNG)
	code, _, body = e.c.do("DELETE", e.url("revoke", "///providers/Microsoft.Authorization/roleAssignments/"+a.Name), e.admin, nil)
	wantError(t, code, body, http.StatusNotFound, "RoleAssignmentNotFound")
	// The role is free now: it can be deleted (200 with the definition).
	code, _, body = e.c.do("DELETE", e.url("revoke", "///providers/Microsoft.Authorization/roleDefinitions/"+roleID), e.admin, nil)
	if code != 200 || !strings.Contains(string(body), `"roleName":"Random"`) {
		t.Fatalf("delete custom role: %d %s", code, body)
	}
	code, _, body = e.c.do("GET", e.url("revoke", "///providers/Microsoft.Authorization/roleDefinitions/"+roleID), e.admin, nil)
	wantError(t, code, body, http.StatusNotFound, "RoleDefinitionNotFound")
}

// TestRBACShapes checks the wire shapes, the path forms and the filters
// against spec §5.
func TestRBACShapes(t *testing.T) {
	e := newRBACEnv(t, "shapes")
	// Built-in definitions: real GUIDs, no leading slash, prefixed actions.
	code, _, body := e.c.do("GET", e.url("shapes", "///providers/Microsoft.Authorization/roleDefinitions/"+strings.ToUpper(rbac.AdministratorID)), e.admin, nil)
	var def struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		Type       string `json:"type"`
		Properties struct {
			RoleName         string   `json:"roleName"`
			Description      *string  `json:"description"`
			Type             string   `json:"type"`
			AssignableScopes []string `json:"assignableScopes"`
			Permissions      []struct {
				Actions        []string `json:"actions"`
				DataActions    []string `json:"dataActions"`
				NotDataActions []string `json:"notDataActions"`
			} `json:"permissions"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(body, &def); err != nil || code != 200 {
		t.Fatalf("get definition: %d %s", code, body)
	}
	if def.ID != "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"+rbac.AdministratorID || def.Name != rbac.AdministratorID ||
		def.Type != "Microsoft.Authorization/roleDefinitions" || def.Properties.RoleName != "Managed HSM Administrator" ||
		def.Properties.Type != "AKVBuiltInRole" || def.Properties.Description == nil || *def.Properties.Description != "" ||
		!slices.Equal(def.Properties.AssignableScopes, []string{"/"}) || len(def.Properties.Permissions) != 1 ||
		def.Properties.Permissions[0].Actions == nil || !slices.Contains(def.Properties.Permissions[0].DataActions, rbac.ActionPrefix+rbac.SecurityDomainDownload) {
		t.Fatalf("administrator definition: %s", body)
	}
	var defs struct {
		Value []json.RawMessage `json:"value"`
	}
	_ = json.Unmarshal([]byte(e.listDefinitions("shapes")), &defs)
	if len(defs.Value) != len(rbac.BuiltIn) {
		t.Fatalf("%d definitions, want the %d built-ins", len(defs.Value), len(rbac.BuiltIn))
	}
	// A custom role made with nothing: its GUID as name, no permissions.
	bare := uuid.New()
	code, _, body = e.c.do("PUT", e.url("shapes", "///providers/Microsoft.Authorization/roleDefinitions/"+bare), e.admin, `{"properties":{}}`)
	if code != 201 || !strings.Contains(string(body), `"roleName":"`+bare+`"`) || !strings.Contains(string(body), `"permissions":[]`) ||
		!strings.Contains(string(body), `"type":"CustomRole"`) {
		t.Fatalf("bare custom role: %d %s", code, body)
	}
	if code, _, body := e.c.do("DELETE", e.url("shapes", "///providers/Microsoft.Authorization/roleDefinitions/"+bare), e.admin, nil); code != 200 {
		t.Fatalf("delete bare role: %d %s", code, body)
	}
	// Definitions are readable at every scope (az lists them at the scope
	// of the assignment it makes).
	code, _, body = e.c.do("GET", e.url("shapes", "/keys/k1/providers/Microsoft.Authorization/roleDefinitions"), e.admin, nil)
	if code != 200 || strings.Count(string(body), `"roleName"`) != len(rbac.BuiltIn) {
		t.Fatalf("definitions at /keys/k1: %d %s", code, body)
	}
	code, _, body = e.c.do("GET", e.url("shapes", "/providers/Microsoft.Authorization/roleDefinitions?$filter="+
		strings.ReplaceAll("roleName eq 'Managed HSM Crypto User'", " ", "%20")), e.admin, nil)
	if code != 200 || strings.Count(string(body), `"roleName"`) != 1 || !strings.Contains(string(body), rbac.CryptoUserID) {
		t.Fatalf("roleName filter: %d %s", code, body)
	}

	// Assignments at each scope form; ids as the service writes them.
	oid, _ := e.principal("shapes app")
	forms := map[string]string{"": "/", "/": "/", "keys": "/keys", "/keys": "/keys", "/keys/k1": "/keys/k1"}
	ids := map[string]string{"/": "/providers/Microsoft.Authorization/roleAssignments/", "/keys": "/keys/providers/Microsoft.Authorization/roleAssignments/",
		"/keys/k1": "/keys/k1/providers/Microsoft.Authorization/roleAssignments/"}
	roles := []string{rbac.CryptoUserID, rbac.CryptoAuditorID, rbac.BackupUserID, rbac.ServiceEncID, rbac.ServiceRelID}
	i := 0
	for form, scope := range forms {
		a := e.assign("shapes", roles[i], oid, form)
		i++
		if a.Properties.Scope != scope || a.ID != ids[scope]+a.Name || a.Type != "Microsoft.Authorization/roleAssignments" ||
			a.Properties.PrincipalID != oid || !strings.HasPrefix(a.Properties.RoleDefinitionID, "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/") {
			t.Errorf("assignment at %q: %+v", form, a)
		}
		code, _, body := e.c.do("GET", e.url("shapes", "/"+form+"/providers/Microsoft.Authorization/roleAssignments/"+a.Name), e.admin, nil)
		if code != 200 || !strings.Contains(string(body), a.Name) {
			t.Errorf("get at %q: %d %s", form, code, body)
		}
	}
	count := func(path string) int {
		t.Helper()
		code, _, body := e.c.do("GET", e.url("shapes", path), e.admin, nil)
		var l struct {
			Value []assignmentJSON `json:"value"`
		}
		if err := json.Unmarshal(body, &l); err != nil || code != 200 {
			t.Fatalf("list %s: %d %s", path, code, body)
		}
		return len(l.Value)
	}
	// The bootstrap administrator's assignment plus the five above.
	for path, want := range map[string]int{
		"///providers/Microsoft.Authorization/roleAssignments":                                        6,
		"///providers/Microsoft.Authorization/roleAssignments?$filter=atScope()":                      3,
		"//keys/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()":                  5,
		"/keys/k2/providers/Microsoft.Authorization/roleAssignments":                                  5,
		"/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20'" + oid + "'": 5,
	} {
		if got := count(path); got != want {
			t.Errorf("%s: %d assignments, want %d", path, got, want)
		}
	}
	// A repeated PUT of the same assignment is accepted and changes nothing.
	a := e.assign("shapes", rbac.PolicyAdminID, oid, "/keys/k9")
	before := e.listAssignments("shapes")
	code, _, body = e.c.do("PUT", e.url("shapes", "/keys/k9/providers/Microsoft.Authorization/roleAssignments/"+a.Name), e.admin,
		map[string]any{"properties": map[string]string{"roleDefinitionId": rbac.PolicyAdminID, "principalId": oid}})
	if code != 201 || e.listAssignments("shapes") != before {
		t.Fatalf("repeated PUT: %d %s", code, body)
	}

	// Settings (spec §5.4).
	code, _, body = e.c.do("GET", e.url("shapes", "/settings"), e.admin, nil)
	if code != 200 || string(body) != `{"settings":[{"name":"AllowKeyManagementOperationsThroughARM","value":"false","type":"boolean"}]}` {
		t.Fatalf("settings: %d %s", code, body)
	}
	code, _, body = e.c.do("PATCH", e.url("shapes", "/settings/allowkeymanagementoperationsthrougharm"), e.admin, `{"value":"True"}`)
	if code != 200 || string(body) != `{"name":"AllowKeyManagementOperationsThroughARM","value":"true","type":"boolean"}` {
		t.Fatalf("patch setting: %d %s", code, body)
	}
	code, _, body = e.c.do("GET", e.url("shapes", "/settings/AllowKeyManagementOperationsThroughARM"), e.admin, nil)
	if code != 200 || !strings.Contains(string(body), `"value":"true"`) {
		t.Fatalf("get setting: %d %s", code, body)
	}
	code, _, body = e.c.do("GET", e.url("shapes", "/settings/NoSuchSetting"), e.admin, nil)
	wantError(t, code, body, http.StatusNotFound, "SettingNotFound")
	for _, bad := range []string{`{"value":"yes"}`, `{}`, `{"value":true}`} {
		code, _, body = e.c.do("PATCH", e.url("shapes", "/settings/AllowKeyManagementOperationsThroughARM"), e.admin, bad)
		wantError(t, code, body, http.StatusBadRequest, "")
	}
}

// TestRBACValidation: bad requests get clear 400s and store nothing; the
// guard rails answer 409.
func TestRBACValidation(t *testing.T) {
	e := newRBACEnv(t, "strict")
	oid, _ := e.principal("strict app")
	ra := func(scope, name string) string {
		return e.url("strict", scope+"/providers/Microsoft.Authorization/roleAssignments/"+name)
	}
	body := func(role, principal string) map[string]any {
		return map[string]any{"properties": map[string]string{"roleDefinitionId": role, "principalId": principal}}
	}
	beforeA, beforeD := e.listAssignments("strict"), e.listDefinitions("strict")
	name := uuid.New()
	badAssignments := map[string]struct {
		url  string
		body any
		code string
	}{
		"role by name":        {ra("/", name), body("Managed HSM Crypto User", oid), "InvalidRoleDefinitionId"},
		"unknown role":        {ra("/", name), body("00000000-1111-4222-8333-444444444444", oid), "RoleDefinitionDoesNotExist"},
		"vault role id":       {ra("/", name), body("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/"+rbac.CryptoUserID, oid), "InvalidRoleDefinitionId"},
		"principal not guid":  {ra("/", name), body(rbac.CryptoUserID, "alice@contoso.com"), "InvalidPrincipalId"},
		"empty principal":     {ra("/", name), body(rbac.CryptoUserID, ""), "InvalidPrincipalId"},
		"unknown principal":   {ra("/", name), body(rbac.CryptoUserID, uuid.New()), "PrincipalNotFound"},
		"name not guid":       {ra("/", "my-assignment"), body(rbac.CryptoUserID, oid), "InvalidRoleAssignmentId"},
		"scope /secrets":      {ra("/secrets", name), body(rbac.CryptoUserID, oid), "InvalidScope"},
		"scope too deep":      {ra("/keys/k1/v1", name), body(rbac.CryptoUserID, oid), "InvalidScope"},
		"scope bad key name":  {ra("/keys/k_1", name), body(rbac.CryptoUserID, oid), "InvalidScope"},
		"no properties":       {ra("/", name), map[string]any{}, "BadParameter"},
		"not json":            {ra("/", name), "{", "BadParameter"},
		"properties not json": {ra("/", name), `{"properties":"x"}`, "BadParameter"},
	}
	for what, tc := range badAssignments {
		t.Run("assignment "+what, func(t *testing.T) {
			code, _, b := e.c.do("PUT", tc.url, e.admin, tc.body)
			wantError(t, code, b, http.StatusBadRequest, tc.code)
		})
	}
	for _, f := range []string{"atScope", "principalId%20eq%20'bob'", "roleName%20eq%20'x'", "atScope()%20or%20atScope()", "principalId%20eq%20'" + oid} {
		code, _, b := e.c.do("GET", e.url("strict", "///providers/Microsoft.Authorization/roleAssignments?$filter="+f), e.admin, nil)
		wantError(t, code, b, http.StatusBadRequest, "BadParameter")
	}
	code, _, b := e.c.do("GET", e.url("strict", "/secrets/providers/Microsoft.Authorization/roleAssignments"), e.admin, nil)
	wantError(t, code, b, http.StatusBadRequest, "InvalidScope")

	rd := func(id string) string {
		return e.url("strict", "///providers/Microsoft.Authorization/roleDefinitions/"+id)
	}
	role := func(actions ...string) map[string]any {
		return map[string]any{"properties": map[string]any{"roleName": "r", "permissions": []map[string]any{{"dataActions": actions}}}}
	}
	badRoles := map[string]struct {
		url  string
		body any
		code string
	}{
		"wildcard":             {rd(name), role(rbac.ActionPrefix + "keys/*"), "BadParameter"},
		"unknown action":       {rd(name), role(rbac.ActionPrefix + "keys/fly/action"), "BadParameter"},
		"action sans prefix":   {rd(name), role(rbac.KeysSign), "BadParameter"},
		"vault action":         {rd(name), role("Microsoft.KeyVault/vaults/keys/sign/action"), "BadParameter"},
		"control-plane action": {rd(name), map[string]any{"properties": map[string]any{"permissions": []map[string]any{{"actions": []string{"Microsoft.KeyVault/managedHSMs/read"}}}}}, "BadParameter"},
		"built-in type":        {rd(name), map[string]any{"properties": map[string]any{"type": "AKVBuiltInRole"}}, "BadParameter"},
		"other scope":          {rd(name), map[string]any{"properties": map[string]any{"assignableScopes": []string{"/keys"}}}, "BadParameter"},
		"name not guid":        {rd("my-role"), role(), "InvalidRoleDefinitionId"},
		"built-in id":          {rd(rbac.CryptoUserID), role(), "BuiltInRoleNotModifiable"},
		"key scope":            {e.url("strict", "/keys/providers/Microsoft.Authorization/roleDefinitions/"+name), role(), "InvalidScope"},
		"no properties":        {rd(name), map[string]any{}, "BadParameter"},
	}
	for what, tc := range badRoles {
		t.Run("definition "+what, func(t *testing.T) {
			code, _, b := e.c.do("PUT", tc.url, e.admin, tc.body)
			wantError(t, code, b, http.StatusBadRequest, tc.code)
		})
	}
	code, _, b = e.c.do("DELETE", rd(rbac.CryptoUserID), e.admin, nil)
	wantError(t, code, b, http.StatusBadRequest, "BuiltInRoleNotModifiable")
	if a, d := e.listAssignments("strict"), e.listDefinitions("strict"); a != beforeA || d != beforeD {
		t.Fatalf("bad requests changed the state:\n%s\n%s", a, d)
	}

	// Role names are unique among all roles.
	code, _, b = e.c.do("PUT", rd(name), e.admin, map[string]any{"properties": map[string]any{"roleName": "Managed HSM Crypto User"}})
	wantError(t, code, b, http.StatusConflict, "RoleDefinitionWithSameNameExists")
	// A custom role that is assigned cannot be deleted.
	code, _, b = e.c.do("PUT", rd(name), e.admin, role(rbac.ActionPrefix+rbac.KeysRead))
	if code != 201 {
		t.Fatalf("create role: %d %s", code, b)
	}
	a := e.assign("strict", name, oid, "/keys")
	code, _, b = e.c.do("DELETE", rd(name), e.admin, nil)
	wantError(t, code, b, http.StatusConflict, "RoleDefinitionHasAssignments")
	// The same principal, role and scope under another name.
	code, _, b = e.c.do("PUT", ra("/keys", uuid.New()), e.admin, body(name, oid))
	wantError(t, code, b, http.StatusConflict, "RoleAssignmentExists")
	// An existing name with other properties.
	code, _, b = e.c.do("PUT", ra("/keys", a.Name), e.admin, body(rbac.CryptoUserID, oid))
	wantError(t, code, b, http.StatusConflict, "RoleAssignmentUpdateNotPermitted")

	// The last administrator assignment at "/" stays; with a second one,
	// the first may go.
	var list struct {
		Value []assignmentJSON `json:"value"`
	}
	_ = json.Unmarshal([]byte(e.listAssignments("strict")), &list)
	var adminRA string
	for _, x := range list.Value {
		if x.Properties.PrincipalID == e.s.ObjectID {
			adminRA = x.Name
		}
	}
	code, _, b = e.c.do("DELETE", ra("", adminRA), e.admin, nil)
	wantError(t, code, b, http.StatusConflict, "LastAdministratorAssignment")
	second := e.assign("strict", rbac.AdministratorID, oid, "/")
	if code, _, b := e.c.do("DELETE", ra("", adminRA), e.admin, nil); code != 200 {
		t.Fatalf("delete one of two admin assignments: %d %s", code, b)
	}
	// The bootstrap principal is no HSM administrator any more.
	code, _, b = e.c.do("GET", e.url("strict", "///providers/Microsoft.Authorization/roleAssignments"), e.admin, nil)
	wantForbidden(t, code, b, rbac.RoleAssignmentsRead)
	_ = second
}

// TestKeyScopeLimit: at most 10 assignments per key.
func TestKeyScopeLimit(t *testing.T) {
	e := newRBACEnv(t, "limits")
	oids := e.objectIDs(rbac.MaxAssignmentsPerKey + 1)
	for _, oid := range oids[:rbac.MaxAssignmentsPerKey] {
		e.assign("limits", rbac.CryptoUserID, oid, "/keys/k1")
	}
	code, _, body := e.c.do("PUT", e.url("limits", "/keys/k1/providers/Microsoft.Authorization/roleAssignments/"+uuid.New()), e.admin,
		map[string]any{"properties": map[string]string{"roleDefinitionId": rbac.CryptoUserID, "principalId": oids[rbac.MaxAssignmentsPerKey]}})
	wantError(t, code, body, http.StatusConflict, "RoleAssignmentLimitExceeded")
	e.assign("limits", rbac.CryptoUserID, oids[rbac.MaxAssignmentsPerKey], "/keys/k2")
}

// TestRBACBeforeActivation: a not activated HSM answers RBAC reads but
// refuses changes.
func TestRBACBeforeActivation(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	if code, _, body := c.do("PUT", c.hsmPath("fresh"), s.AdminToken(t), createBody(s.ObjectID)); code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	tok := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	u := s.HSMURL("fresh") + "///providers/Microsoft.Authorization/roleAssignments"
	if code, _, body := c.do("GET", u+"?api-version=7.4", tok, nil); code != 200 || !strings.Contains(string(body), s.ObjectID) {
		t.Fatalf("list before activation: %d %s", code, body)
	}
	code, _, body := c.do("PUT", u+"/"+uuid.New()+"?api-version=7.4", tok,
		map[string]any{"properties": map[string]string{"roleDefinitionId": rbac.CryptoUserID, "principalId": s.ObjectID}})
	wantError(t, code, body, http.StatusConflict, "HSMNotActivated")
	// Unauthenticated RBAC calls get the challenge, even on "//" paths.
	code, hdr, _ := c.do("PUT", u+"/"+uuid.New()+"?api-version=7.4", "", nil)
	if code != 401 || hdr.Get("WWW-Authenticate") == "" {
		t.Fatalf("challenge: %d %v", code, hdr)
	}
}

// TestConcurrentAssignments: concurrent changes are serialized; the
// per-key limit holds under contention.
func TestConcurrentAssignments(t *testing.T) {
	e := newRBACEnv(t, "busy")
	const n = 20
	codes := make([]int, n)
	oids := e.objectIDs(n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = e.c.do("PUT", e.url("busy", "/keys/k1/providers/Microsoft.Authorization/roleAssignments/"+uuid.New()), e.admin,
				map[string]any{"properties": map[string]string{"roleDefinitionId": rbac.CryptoUserID, "principalId": oids[i]}})
		}()
	}
	wg.Wait()
	created := 0
	for _, code := range codes {
		switch code {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Fatalf("status %d", code)
		}
	}
	if created != rbac.MaxAssignmentsPerKey {
		t.Fatalf("%d assignments made, want %d", created, rbac.MaxAssignmentsPerKey)
	}
	code, _, body := e.c.do("GET", e.url("busy", "/keys/k1/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()"), e.admin, nil)
	if code != 200 || strings.Count(string(body), `"scope":"/keys/k1"`) != rbac.MaxAssignmentsPerKey {
		t.Fatalf("list: %d %s", code, body)
	}
}

// TestAuthorizationCacheAcrossIncarnations: grants cached for an instance do
// not carry over to a new instance of the same name after a purge (both
// start at generation 1).
func TestAuthorizationCacheAcrossIncarnations(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	admin := s.AdminToken(t)
	code, _, body := c.do("POST", s.Endpoint+"/tresor/principals", admin, wire.PrincipalCreate{DisplayName: "former admin"})
	if code != 201 {
		t.Fatalf("principal: %d %s", code, body)
	}
	var p wire.Principal
	mustJSON(t, body, &p)
	user := s.Token(t, p.ClientID, p.ClientSecret, s.HSMResource())
	list := s.HSMURL("reborn") + "///providers/Microsoft.Authorization/roleAssignments?api-version=7.4"

	if code, _, body := c.do("PUT", c.hsmPath("reborn"), admin, createBody(p.ObjectID)); code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _, body := c.do("GET", list, user, nil); code != 200 {
		t.Fatalf("the instance's administrator lists assignments: %d %s", code, body)
	}
	c.do("DELETE", c.hsmPath("reborn"), admin, nil)
	purge := s.Endpoint + "/subscriptions/" + c.sub() + "/providers/Microsoft.KeyVault/locations/local/deletedManagedHSMs/reborn/purge" + armVersion
	if code, _, body := c.do("POST", purge, admin, nil); code != 202 {
		t.Fatalf("purge: %d %s", code, body)
	}
	if code, _, body := c.do("PUT", c.hsmPath("reborn"), admin, createBody(s.ObjectID)); code != 202 {
		t.Fatalf("re-create: %d %s", code, body)
	}
	code, _, body = c.do("GET", list, user, nil)
	wantError(t, code, body, http.StatusForbidden, "Forbidden")
}

// TestLocalRBACGrantsNoControlPlane: local RBAC gives control-plane rights
// only through the Managed HSM Administrator role at "/": a Managed HSM
// Policy Administrator cannot delete the instance. It can assign itself
// Administrator (as in Managed HSM), and then holds the rights that role
// carries (docs/architecture.md, control-plane rights).
func TestLocalRBACGrantsNoControlPlane(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	admin := s.AdminToken(t)
	if code, _, body := c.do("PUT", c.hsmPath("owned"), admin, createBody(s.ObjectID)); code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	hsm := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	req := downloadBody(2, custodian(t, "sd1"), custodian(t, "sd2"), custodian(t, "sd3"))
	if code, _, body := c.do("POST", s.HSMURL("owned")+"/securitydomain/download?api-version=7.4", hsm, req); code != 202 {
		t.Fatalf("activate: %d %s", code, body)
	}
	code, _, body := c.do("POST", s.Endpoint+"/tresor/principals", admin, wire.PrincipalCreate{DisplayName: "policy admin"})
	if code != 201 {
		t.Fatalf("principal: %d %s", code, body)
	}
	var p wire.Principal
	mustJSON(t, body, &p)
	assign(t, c, hsm, "owned", "/", rbac.PolicyAdminID, p.ObjectID)
	userHSM := s.Token(t, p.ClientID, p.ClientSecret, s.HSMResource())
	userARM := s.Token(t, p.ClientID, p.ClientSecret, s.Endpoint)
	code, _, body = c.do("DELETE", c.hsmPath("owned"), userARM, nil)
	wantError(t, code, body, http.StatusForbidden, "AuthorizationFailed")
	assign(t, c, userHSM, "owned", "/", rbac.AdministratorID, p.ObjectID) // as in Managed HSM, allowed
	code, _, body = c.do("PATCH", c.hsmPath("owned"), userARM, map[string]any{"tags": map[string]string{"by": "policy admin"}})
	if code != http.StatusOK {
		t.Fatalf("PATCH as Managed HSM Administrator: %d %s", code, body)
	}
}
