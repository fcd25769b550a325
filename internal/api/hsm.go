package api

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"

	"tresor/internal/fault"
	"tresor/internal/rbac"
)

// authorize checks the route's data action against the caller's role
// assignments on the instance.
func (a *API) authorize(r *http.Request, rt route, rc *reqCtx) error {
	scope := "/"
	if rt.scope != nil {
		scope = rt.scope(r)
	}
	ras, err := a.deps.Instances.RoleAssignments(r.Context(), rc.instance)
	if err != nil {
		return err
	}
	var grants []rbac.Grant
	for _, ra := range ras {
		if !strings.EqualFold(ra.PrincipalID, rc.caller.ObjectID) {
			continue
		}
		id := ra.RoleDefinitionID[strings.LastIndex(ra.RoleDefinitionID, "/")+1:]
		if role, ok := rbac.BuiltInRole(id); ok {
			grants = append(grants, rbac.Grant{Role: role, Scope: ra.Scope})
		}
	}
	if rbac.Allowed(grants, rt.action, scope) {
		return nil
	}
	return &fault.Error{Kind: fault.Forbidden, Code: "Forbidden", Inner: "ForbiddenByRbac",
		Message: "Operation is not allowed. Caller '" + rc.caller.ObjectID + "' does not have permission for data action '" +
			rbac.ActionPrefix + rt.action + "' at scope '" + scope + "' of the managed HSM '" + rc.instance.Name + "'"}
}

// rng answers POST /rng: {"count": 1..128} → {"value": base64url bytes}.
func (a *API) rng(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var req struct {
		Count *int `json:"count"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Count == nil || *req.Count < 1 || *req.Count > 128 {
		return fault.New(fault.BadParameter, "BadParameter", "count must be between 1 and 128")
	}
	b := make([]byte, *req.Count)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"value": base64.RawURLEncoding.EncodeToString(b)})
	return nil
}
