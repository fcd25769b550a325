package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"tresor/internal/rbac"
)

func TestNormalizeRBACPath(t *testing.T) {
	const ra = "/providers/Microsoft.Authorization/roleAssignments"
	tests := []struct {
		path, scope, rest string
		ok                bool
	}{
		{"///providers/Microsoft.Authorization/roleAssignments/x", "/", ra + "/x", true},
		{"//providers/Microsoft.Authorization/roleAssignments", "/", ra, true},
		{"/providers/Microsoft.Authorization/roleAssignments", "/", ra, true},
		{"//keys/providers/Microsoft.Authorization/roleAssignments/x", "/keys", ra + "/x", true},
		{"/keys/providers/Microsoft.Authorization/roleAssignments", "/keys", ra, true},
		{"/keys/k1/providers/Microsoft.Authorization/roleAssignments/x", "/keys/k1", ra + "/x", true},
		{"///keys//k1/providers/microsoft.authorization/ROLEASSIGNMENTS/x", "/keys/k1", ra + "/x", true},
		{"///providers/Microsoft.Authorization/roleDefinitions/g", "/", "/providers/Microsoft.Authorization/roleDefinitions/g", true},
		{"/secrets/providers/Microsoft.Authorization/roleDefinitions", "/secrets", "/providers/Microsoft.Authorization/roleDefinitions", true},
		{"/providers/Microsoft.Authorization/denyAssignments", "/", "/providers/Microsoft.Authorization/denyAssignments", true},
		{"/keys/k1", "", "", false},
		{"/settings", "", "", false},
	}
	for _, tc := range tests {
		scope, rest, ok := normalizeRBACPath(tc.path)
		if scope != tc.scope || rest != tc.rest || ok != tc.ok {
			t.Errorf("normalizeRBACPath(%q) = %q, %q, %v; want %q, %q, %v", tc.path, scope, rest, ok, tc.scope, tc.rest, tc.ok)
		}
	}
}

// TestRBACRequestRoutes checks that rewritten RBAC paths reach their
// routes through a ServeMux (no "clean path" redirect) with their scope.
func TestRBACRequestRoutes(t *testing.T) {
	mux := http.NewServeMux()
	for _, p := range []string{rbacAssignments, rbacAssignments + "/{name}", "/keys/{name}/{version}"} {
		mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s %s", p, requestScope(r), r.PathValue("name"))
		})
	}
	tests := map[string]string{
		"///providers/Microsoft.Authorization/roleAssignments/abc":     rbacAssignments + "/{name} / abc",
		"//keys/providers/Microsoft.Authorization/roleAssignments":     rbacAssignments + " /keys ",
		"/keys/providers/Microsoft.Authorization/roleAssignments/abc":  rbacAssignments + "/{name} /keys abc",
		"/keys/k1/providers/Microsoft.Authorization/roleAssignments/x": rbacAssignments + "/{name} /keys/k1 x",
		"/keys/k1/v1": "/keys/{name}/{version} / k1",
	}
	for path, want := range tests {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, rbacRequest(httptest.NewRequest("GET", "https://h.example"+path+"?api-version=7.4", nil)))
		if w.Code != 200 || w.Body.String() != want {
			t.Errorf("%s: %d %q, want %q", path, w.Code, w.Body.String(), want)
		}
	}
}

func TestAuthzCacheIsBounded(t *testing.T) {
	var c authzCache
	key := func(i int) authzKey { return authzKey{instance: "hsm", generation: uint64(i)} }
	for i := range authzCacheSize + 10 {
		c.put(key(i), []rbac.Grant{{Scope: "/"}})
	}
	if len(c.entries) != authzCacheSize || len(c.ring) != authzCacheSize {
		t.Fatalf("%d entries, %d ring slots", len(c.entries), len(c.ring))
	}
	if _, ok := c.get(key(0)); ok {
		t.Error("the oldest entry was kept")
	}
	if _, ok := c.get(key(authzCacheSize + 9)); !ok {
		t.Error("the newest entry was dropped")
	}
	c.put(key(authzCacheSize+9), nil) // again: no second slot
	if len(c.entries) != authzCacheSize {
		t.Fatalf("%d entries after a repeated put", len(c.entries))
	}
}

// TestDataPlaneRoutesDeclareVocabularyActions: deny by default means every
// data-plane route names a data action the roles can grant.
func TestDataPlaneRoutesDeclareVocabularyActions(t *testing.T) {
	routes := HSMRoutes()
	if len(routes) < 20 {
		t.Fatalf("only %d data-plane routes", len(routes))
	}
	for _, rt := range routes {
		if _, ok := rbac.CanonicalAction(rbac.ActionPrefix + rt.Action); !ok {
			t.Errorf("%s %s declares %q, not a data action of the vocabulary", rt.Method, rt.Pattern, rt.Action)
		}
	}
}
