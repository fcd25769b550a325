package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"tresor/internal/rbac"
	"tresor/internal/server/servertest"
	"tresor/internal/wire"
)

// cpPrincipal is a service principal with a control-plane and an HSM token.
type cpPrincipal struct {
	id, arm, hsm string
}

func newCPPrincipal(t *testing.T, s *servertest.Server, c *call, name string) cpPrincipal {
	t.Helper()
	code, _, body := c.do("POST", s.Endpoint+"/tresor/principals", s.AdminToken(t), wire.PrincipalCreate{DisplayName: name})
	if code != 201 {
		t.Fatalf("principal %s: %d %s", name, code, body)
	}
	var p wire.Principal
	mustJSON(t, body, &p)
	return cpPrincipal{id: p.ObjectID, arm: s.Token(t, p.ClientID, p.ClientSecret, s.Endpoint),
		hsm: s.Token(t, p.ClientID, p.ClientSecret, s.HSMResource())}
}

// adminAssignment returns the name of principal's Managed HSM
// Administrator assignment at "/".
func adminAssignment(t *testing.T, s *servertest.Server, c *call, hsm, tok, principal string) string {
	t.Helper()
	code, _, body := c.do("GET", s.HSMURL(hsm)+"///providers/Microsoft.Authorization/roleAssignments?api-version=7.4", tok, nil)
	if code != 200 {
		t.Fatalf("list assignments: %d %s", code, body)
	}
	var list struct {
		Value []assignmentJSON `json:"value"`
	}
	mustJSON(t, body, &list)
	for _, a := range list.Value {
		if a.Properties.PrincipalID == principal && a.Properties.Scope == "/" && strings.HasSuffix(a.Properties.RoleDefinitionID, rbac.AdministratorID) {
			return a.Name
		}
	}
	t.Fatalf("%s holds no Administrator assignment at /: %s", principal, body)
	return ""
}

// Control-plane rights follow the local RBAC state: an initial
// administrator whose Administrator assignment is removed can no longer
// update, delete, recover or purge the HSM; the remaining administrator
// can; a principal granted Administrator at "/" gains the rights; a region
// administrator always has them.
func TestControlPlaneFollowsAdministrators(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	region := s.AdminToken(t) // the bootstrap administrator is a region administrator
	first, second, later := newCPPrincipal(t, s, c, "first"), newCPPrincipal(t, s, c, "second"), newCPPrincipal(t, s, c, "later")
	if code, _, body := c.do("PUT", c.hsmPath("cphsm"), region, createBody(first.id, second.id)); code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	patch := func(tok, env string) (int, []byte) {
		code, _, body := c.do("PATCH", c.hsmPath("cphsm"), tok, map[string]any{"tags": map[string]string{"by": env}})
		return code, body
	}
	// Before activation the initial administrators have the rights.
	for name, tok := range map[string]string{"first": first.arm, "second": second.arm} {
		if code, body := patch(tok, name); code != 200 {
			t.Fatalf("initial administrator %s: PATCH %d %s", name, code, body)
		}
	}
	code, body := patch(later.arm, "later")
	wantError(t, code, body, http.StatusForbidden, "AuthorizationFailed")

	req := downloadBody(2, custodian(t, "sd1"), custodian(t, "sd2"), custodian(t, "sd3"))
	if code, _, body := c.do("POST", s.HSMURL("cphsm")+"/securitydomain/download?api-version=7.4", first.hsm, req); code != 202 {
		t.Fatalf("activate: %d %s", code, body)
	}
	// first removes second's Administrator assignment.
	name := adminAssignment(t, s, c, "cphsm", first.hsm, second.id)
	if code, _, body := c.do("DELETE", s.HSMURL("cphsm")+"///providers/Microsoft.Authorization/roleAssignments/"+name+"?api-version=7.4", first.hsm, nil); code != 200 {
		t.Fatalf("remove second's assignment: %d %s", code, body)
	}
	code, body = patch(second.arm, "second")
	wantError(t, code, body, http.StatusForbidden, "AuthorizationFailed")
	code, _, body = c.do("DELETE", c.hsmPath("cphsm"), second.arm, nil)
	wantError(t, code, body, http.StatusForbidden, "AuthorizationFailed")
	if code, body := patch(first.arm, "first"); code != 200 {
		t.Fatalf("remaining administrator: PATCH %d %s", code, body)
	}
	if code, body := patch(region, "region"); code != 200 {
		t.Fatalf("region administrator: PATCH %d %s", code, body)
	}

	// A principal granted Administrator at "/" gains the rights.
	assign(t, c, first.hsm, "cphsm", "/", rbac.AdministratorID, later.id)
	if code, body := patch(later.arm, "later"); code != 200 {
		t.Fatalf("granted administrator: PATCH %d %s", code, body)
	}
	// The last-administrator guard still holds: later's assignment goes,
	// first's, now the last, stays.
	name = adminAssignment(t, s, c, "cphsm", first.hsm, later.id)
	if code, _, body := c.do("DELETE", s.HSMURL("cphsm")+"///providers/Microsoft.Authorization/roleAssignments/"+name+"?api-version=7.4", first.hsm, nil); code != 200 {
		t.Fatalf("remove later's assignment: %d %s", code, body)
	}
	name = adminAssignment(t, s, c, "cphsm", first.hsm, first.id)
	code, _, body = c.do("DELETE", s.HSMURL("cphsm")+"///providers/Microsoft.Authorization/roleAssignments/"+name+"?api-version=7.4", first.hsm, nil)
	wantError(t, code, body, http.StatusConflict, "LastAdministratorAssignment")
	code, body = patch(later.arm, "later")
	wantError(t, code, body, http.StatusForbidden, "AuthorizationFailed")

	// Delete, recover and purge follow the same rule on the deleted HSM.
	if code, _, body := c.do("DELETE", c.hsmPath("cphsm"), first.arm, nil); code != 200 && code != 202 {
		t.Fatalf("delete by the remaining administrator: %d %s", code, body)
	}
	deleted := s.Endpoint + "/subscriptions/" + c.sub() + "/providers/Microsoft.KeyVault/locations/local/deletedManagedHSMs/cphsm"
	code, _, body = c.do("POST", deleted+"/purge"+armVersion, second.arm, nil)
	wantError(t, code, body, http.StatusForbidden, "AuthorizationFailed")
	recoverBody := createBody(first.id, second.id)
	recoverBody["properties"].(map[string]any)["createMode"] = "recover"
	code, _, body = c.do("PUT", c.hsmPath("cphsm"), second.arm, recoverBody)
	wantError(t, code, body, http.StatusForbidden, "AuthorizationFailed")
	code, _, body = c.do("POST", deleted+"/purge"+armVersion, later.arm, nil)
	wantError(t, code, body, http.StatusForbidden, "AuthorizationFailed")
	if code, _, body := c.do("POST", deleted+"/purge"+armVersion, first.arm, nil); code != 202 {
		t.Fatalf("purge by the remaining administrator: %d %s", code, body)
	}
	var gone wire.Error
	code, _, body = c.do("GET", deleted+armVersion, region, nil)
	if code != http.StatusNotFound || json.Unmarshal(body, &gone) != nil {
		t.Fatalf("after purge: %d %s", code, body)
	}
}
