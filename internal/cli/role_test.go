package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tresor/internal/client/clienttest"
)

const (
	roleTestCryptoUser = "21dbd100-6940-42c2-9190-5d6cb909625b"
	roleTestIDPrefix   = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"
	roleTestOID        = "11111111-2222-4333-8444-555555555555"
)

var roleTestGUIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// roleTestFakeHSM serves a minimal RBAC data plane on the fake region's HSM hosts:
// two built-in role definitions; PUT and DELETE of assignments and
// definitions echo what a real HSM would return; settings.
func roleTestFakeHSM(t *testing.T, r *clienttest.Region) {
	t.Helper()
	def := func(id, name string) map[string]any {
		return map[string]any{"id": roleTestIDPrefix + id, "name": id, "type": "Microsoft.Authorization/roleDefinitions",
			"properties": map[string]any{"roleName": name, "description": "", "type": "AKVBuiltInRole", "assignableScopes": []string{"/"},
				"permissions": []map[string]any{{"actions": []string{}, "notActions": []string{}, "dataActions": []string{}, "notDataActions": []string{}}}}}
	}
	assignment := func(scope, name string, props map[string]any) map[string]any {
		prefix := strings.TrimSuffix(scope, "/")
		return map[string]any{"id": prefix + "/providers/Microsoft.Authorization/roleAssignments/" + name, "name": name,
			"type":       "Microsoft.Authorization/roleAssignments",
			"properties": map[string]any{"scope": scope, "roleDefinitionId": props["roleDefinitionId"], "principalId": props["principalId"]}}
	}
	r.HSM = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Query().Get("api-version") == "" {
			http.Error(w, "no api-version", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(req.Body)
		var in map[string]map[string]any
		_ = json.Unmarshal(body, &in)
		path := req.URL.Path
		scope, rest, _ := strings.Cut(path, "/providers/Microsoft.Authorization/")
		if scope == "" {
			scope = "/"
		}
		kind, name, _ := strings.Cut(rest, "/")
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		switch {
		case req.Method == "GET" && kind == "roleDefinitions" && name == "":
			_ = enc.Encode(map[string]any{"value": []any{def(roleTestCryptoUser, "Managed HSM Crypto User"), def("a290e904-7015-4bba-90c8-60543313cdb4", "Managed HSM Administrator")}})
		case req.Method == "PUT" && kind == "roleDefinitions":
			props := in["properties"]
			w.WriteHeader(http.StatusCreated)
			_ = enc.Encode(map[string]any{"id": roleTestIDPrefix + name, "name": name, "type": "Microsoft.Authorization/roleDefinitions", "properties": props})
		case req.Method == "PUT" && kind == "roleAssignments":
			w.WriteHeader(http.StatusCreated)
			_ = enc.Encode(assignment(scope, name, in["properties"]))
		case req.Method == "DELETE" && kind == "roleAssignments":
			_ = enc.Encode(assignment(scope, name, map[string]any{"roleDefinitionId": roleTestIDPrefix + roleTestCryptoUser, "principalId": roleTestOID}))
		case req.Method == "GET" && path == "/settings":
			_ = enc.Encode(map[string]any{"settings": []any{map[string]string{"name": "AllowKeyManagementOperationsThroughARM", "value": "false", "type": "boolean"}}})
		case req.Method == "PATCH" && strings.HasPrefix(path, "/settings/"):
			var v map[string]string
			_ = json.Unmarshal(body, &v)
			_ = enc.Encode(map[string]string{"name": strings.TrimPrefix(path, "/settings/"), "value": v["value"], "type": "boolean"})
		default:
			w.WriteHeader(http.StatusNotFound)
			_ = enc.Encode(map[string]any{"error": map[string]string{"code": "NotFound", "message": req.Method + " " + path}})
		}
	})
}

// roleTestLastHSM returns the last request with method to an HSM host.
func roleTestLastHSM(t *testing.T, r *clienttest.Region, method string) clienttest.Request {
	t.Helper()
	reqs := r.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == method && strings.HasPrefix(reqs[i].Host, "hsm1.") {
			return reqs[i]
		}
	}
	t.Fatalf("no %s request to hsm1", method)
	return clienttest.Request{}
}

func TestRoleAssignmentCreateRequest(t *testing.T) {
	r, env := region(t)
	roleTestFakeHSM(t, r)
	out := ok(t, env, "role", "assignment", "create", "--hsm-name", "hsm1", "--role", "Managed HSM Crypto User",
		"--assignee-object-id", roleTestOID, "--scope", "keys/k1")
	req := roleTestLastHSM(t, r, http.MethodPut)
	name := strings.TrimPrefix(req.Path, "/keys/k1/providers/Microsoft.Authorization/roleAssignments/")
	if !roleTestGUIDRE.MatchString(name) || req.Query.Get("api-version") == "" {
		t.Fatalf("PUT %s?%s", req.Path, req.Query.Encode())
	}
	var body map[string]map[string]string
	_ = json.Unmarshal(req.Body, &body)
	if body["properties"]["roleDefinitionId"] != roleTestIDPrefix+roleTestCryptoUser || body["properties"]["principalId"] != roleTestOID {
		t.Errorf("body %s", req.Body)
	}
	// az's flattened output; the principal is not one of the region's.
	printed := decode[map[string]any](t, out)
	want := map[string]any{"name": name, "scope": "/keys/k1", "roleName": "Managed HSM Crypto User", "principalId": roleTestOID,
		"principalName": "Unknown", "principalType": "Unknown", "roleDefinitionId": roleTestIDPrefix + roleTestCryptoUser,
		"type": "Microsoft.Authorization/roleAssignments", "id": "/keys/k1/providers/Microsoft.Authorization/roleAssignments/" + name}
	for k, v := range want {
		if printed[k] != v {
			t.Errorf("output %s = %v, want %v", k, printed[k], v)
		}
	}
	if len(printed) != len(want) {
		t.Errorf("output has %d keys, want %d: %s", len(printed), len(want), out)
	}

	// A GUID or a full id is sent without a lookup; a principal of the
	// region gets its name.
	ok(t, env, "role", "assignment", "create", "--hsm-name", "hsm1", "--role", "/"+roleTestIDPrefix+roleTestCryptoUser,
		"--assignee", r.ObjectID, "-n", "00000000-0000-4000-8000-000000000001")
	req = roleTestLastHSM(t, r, http.MethodPut)
	if req.Path != "/providers/Microsoft.Authorization/roleAssignments/00000000-0000-4000-8000-000000000001" ||
		!strings.Contains(string(req.Body), `"roleDefinitionId":"`+roleTestIDPrefix+roleTestCryptoUser+`"`) {
		t.Errorf("PUT %s %s", req.Path, req.Body)
	}
}

func TestRoleDefinitionCreateRequest(t *testing.T) {
	r, env := region(t)
	roleTestFakeHSM(t, r)
	file := filepath.Join(t.TempDir(), "role.json")
	if err := os.WriteFile(file, []byte(`{"RoleName": "Signer", "Description": "d", "DataActions": ["Microsoft.KeyVault/managedHsm/keys/sign/action"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{"@" + file, file} {
		out := ok(t, env, "role", "definition", "create", "--hsm-name", "hsm1", "--role-definition", arg)
		req := roleTestLastHSM(t, r, http.MethodPut)
		name := strings.TrimPrefix(req.Path, "/providers/Microsoft.Authorization/roleDefinitions/")
		if !roleTestGUIDRE.MatchString(name) {
			t.Fatalf("PUT %s", req.Path)
		}
		var body struct {
			Properties struct {
				RoleName    string `json:"roleName"`
				Description string `json:"description"`
				Type        string `json:"type"`
				Permissions []struct {
					DataActions []string `json:"dataActions"`
				} `json:"permissions"`
			} `json:"properties"`
		}
		_ = json.Unmarshal(req.Body, &body)
		p := body.Properties
		if p.RoleName != "Signer" || p.Description != "d" || p.Type != "CustomRole" || len(p.Permissions) != 1 ||
			len(p.Permissions[0].DataActions) != 1 {
			t.Errorf("body %s", req.Body)
		}
		printed := decode[map[string]any](t, out)
		if printed["name"] != name || printed["roleName"] != "Signer" || printed["roleType"] != "CustomRole" {
			t.Errorf("output %s", out)
		}
	}
	// update names the role by its id.
	ok(t, env, "role", "definition", "update", "--hsm-name", "hsm1", "--role-definition",
		`{"id": "`+roleTestIDPrefix+`00000000-0000-4000-8000-000000000009", "roleName": "Signer"}`)
	if req := roleTestLastHSM(t, r, http.MethodPut); !strings.HasSuffix(req.Path, "/roleDefinitions/00000000-0000-4000-8000-000000000009") {
		t.Errorf("update PUT %s", req.Path)
	}
}

func TestRoleAssignmentDeleteByIDs(t *testing.T) {
	r, env := region(t)
	roleTestFakeHSM(t, r)
	out := ok(t, env, "role", "assignment", "delete", "--hsm-name", "hsm1", "--ids",
		"/keys/providers/Microsoft.Authorization/roleAssignments/00000000-0000-4000-8000-00000000000a",
		"/providers/Microsoft.Authorization/roleAssignments/00000000-0000-4000-8000-00000000000b", "--query", "[].name", "-o", "tsv")
	if out != "00000000-0000-4000-8000-00000000000a\n00000000-0000-4000-8000-00000000000b\n" {
		t.Errorf("deleted %q", out)
	}
	var paths []string
	for _, req := range r.Requests() {
		if req.Method == http.MethodDelete {
			paths = append(paths, req.Path)
		}
	}
	// Like az, by name at the given scope ("/" without --scope).
	if len(paths) != 2 || paths[0] != "/providers/Microsoft.Authorization/roleAssignments/00000000-0000-4000-8000-00000000000a" {
		t.Errorf("DELETE %v", paths)
	}
}

func TestRoleUsageErrors(t *testing.T) {
	_, env := region(t)
	tests := map[string]struct {
		args []string
		want string
	}{
		"no hsm":                {[]string{"role", "definition", "list"}, "--hsm-name (or --id) is required"},
		"hsm and id":            {[]string{"role", "definition", "list", "--hsm-name", "a", "--id", "https://a.b"}, "give --hsm-name or --id, not both"},
		"bad id":                {[]string{"role", "definition", "list", "--id", "http://a.b"}, "is not an HSM URI"},
		"show without name":     {[]string{"role", "definition", "show", "--hsm-name", "a"}, "give --name or --role-id"},
		"bad role id":           {[]string{"role", "definition", "delete", "--hsm-name", "a", "--role-id", "guid"}, "is not a role resource id"},
		"no definition":         {[]string{"role", "definition", "create", "--hsm-name", "a"}, "--role-definition is required"},
		"definition not json":   {[]string{"role", "definition", "create", "--hsm-name", "a", "--role-definition", "{"}, "a JSON object is expected"},
		"update without name":   {[]string{"role", "definition", "update", "--hsm-name", "a", "--role-definition", `{"roleName":"x"}`}, `give the role's "name" or "id"`},
		"create without role":   {[]string{"role", "assignment", "create", "--hsm-name", "a", "--assignee-object-id", roleTestOID}, "--role is required"},
		"create without who":    {[]string{"role", "assignment", "create", "--hsm-name", "a", "--role", "x"}, "give --assignee-object-id"},
		"assignee not an id":    {[]string{"role", "assignment", "list", "--hsm-name", "a", "--assignee", "bob@contoso.com"}, "give the principal's object id"},
		"delete without filter": {[]string{"role", "assignment", "delete", "--hsm-name", "a"}, "give --ids, --name, or --role"},
		"setting without value": {[]string{"setting", "update", "--hsm-name", "a", "--name", "x"}, "--name and --value are required"},
		"setting type":          {[]string{"setting", "update", "--hsm-name", "a", "--name", "x", "--value", "1", "--type", "int"}, "the only setting type is boolean"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := tresor(t, env, tc.args...)
			if res.code != 1 || !strings.Contains(res.stderr, tc.want) || !strings.Contains(res.stderr, "tresor: hint: see 'tresor ") {
				t.Errorf("exit %d, stderr %q; want 1 and %q", res.code, res.stderr, tc.want)
			}
		})
	}
	help := ok(t, nil, "--help")
	for _, cmd := range []string{"role", "setting"} {
		if !strings.Contains(help, "  "+cmd+" ") {
			t.Errorf("help lacks %s", cmd)
		}
	}
}
