package api

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"

	"tresor/internal/fault"
	"tresor/internal/rbac"
)

// authorize checks the route's data action against the caller's role
// assignments on the instance: built-in and custom roles, their
// notDataActions, and whether each assignment's scope covers the route's
// target ("/" unless the route names one). The caller's grants are cached
// per token and instance generation; every change of roles or assignments
// changes the generation, so a change takes effect on the next request.
func (a *API) authorize(r *http.Request, rt route, rc *reqCtx) error {
	scope := "/"
	if rt.scope != nil {
		scope = rt.scope(r)
	}
	key := authzKey{token: rc.tokenSum, instance: rc.instance.Key,
		created: rc.instance.Created.UnixNano(), generation: rc.instance.Generation}
	grants, ok := a.authz.get(key)
	if !ok {
		p, gen, err := a.deps.Policy.Policy(r.Context(), rc.instance)
		if err != nil {
			return err
		}
		grants = p.Grants(rc.caller.ObjectID)
		// The snapshot may be newer than the instance this request read:
		// keep it under the generation it belongs to.
		key.generation = gen
		a.authz.put(key, grants)
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
