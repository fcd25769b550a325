package api

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"tresor/internal/fault"
	"tresor/internal/rbac"
	"tresor/internal/wire"
)

// RBAC paths (spec §5.1). Clients put the scope in front of
// "/providers/Microsoft.Authorization/…" without encoding it, so the server
// sees "///providers/…" (scope "/"), "//keys/providers/…",
// "/keys/k1/providers/…". ServeHTTP rewrites such paths with
// [rbacRequest] to the canonical ones below, before routing: Go's ServeMux
// would otherwise redirect paths with "//" (and "/keys/providers/…" would
// look like a key).
const (
	authzPrefix     = "/providers/Microsoft.Authorization"
	rbacAssignments = authzPrefix + "/roleAssignments"
	rbacDefinitions = authzPrefix + "/roleDefinitions"
)

// normalizeRBACPath splits an RBAC path into its scope (slashes collapsed:
// "" and "//" become "/", "keys" and "//keys" become "/keys"; not yet
// validated) and the canonical rest ("/providers/Microsoft.Authorization/
// roleAssignments[/{name}]" or ".../roleDefinitions[/{name}]"). ok is
// false for paths that are not RBAC paths.
func normalizeRBACPath(path string) (scope, rest string, ok bool) {
	const marker = "/providers/microsoft.authorization/"
	i := strings.Index(strings.ToLower(path), marker)
	if i < 0 {
		return "", "", false
	}
	var parts []string
	for _, p := range strings.Split(path[:i], "/") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	scope = "/" + strings.Join(parts, "/")
	tail := path[i+len(marker):]
	kind, name, _ := strings.Cut(tail, "/")
	switch strings.ToLower(kind) {
	case "roleassignments":
		rest = rbacAssignments
	case "roledefinitions":
		rest = rbacDefinitions
	default:
		return scope, authzPrefix + "/" + tail, true
	}
	if name != "" {
		rest += "/" + name
	}
	return scope, rest, true
}

type rbacScopeKey struct{}

// rbacRequest returns r with an RBAC path rewritten to its canonical form
// and its scope kept in the context (see [normalizeRBACPath]); any other
// request is returned as it is.
func rbacRequest(r *http.Request) *http.Request {
	scope, rest, ok := normalizeRBACPath(r.URL.Path)
	if !ok {
		return r
	}
	r2 := r.WithContext(context.WithValue(r.Context(), rbacScopeKey{}, scope))
	u := *r.URL
	u.Path, u.RawPath = rest, ""
	r2.URL = &u
	return r2
}

// requestScope returns the RBAC scope of a request as the client wrote it
// (collapsed; "/" for canonical paths).
func requestScope(r *http.Request) string {
	if s, ok := r.Context().Value(rbacScopeKey{}).(string); ok {
		return s
	}
	return "/"
}

// rbacScope is the authorization target of an RBAC route: the request's
// scope, or "/" (which only HSM-wide assignments cover) when the scope is
// not valid; the handler then refuses it.
func rbacScope(r *http.Request) string {
	s, err := rbac.ParseScope(requestScope(r))
	if err != nil {
		return "/"
	}
	return s
}

func withPrefix(actions []string) []string {
	out := make([]string, len(actions))
	for i, a := range actions {
		out[i] = rbac.ActionPrefix + a
	}
	return out
}

// toRoleDefinition renders a role; a custom role without data actions has
// no permissions, as the service shows it.
func toRoleDefinition(r rbac.Role) wire.RoleDefinition {
	perms := []wire.Permission{}
	if r.BuiltIn || len(r.DataActions) > 0 || len(r.NotDataActions) > 0 {
		perms = append(perms, wire.Permission{Actions: []string{}, NotActions: []string{},
			DataActions: withPrefix(r.DataActions), NotDataActions: withPrefix(r.NotDataActions)})
	}
	return wire.RoleDefinition{
		ID: rbac.RoleDefinitionID(r.ID), Name: r.ID, Type: "Microsoft.Authorization/roleDefinitions",
		Properties: wire.RoleDefinitionProperties{
			RoleName: r.Name, Description: r.Description, RoleType: r.Type(), AssignableScopes: []string{"/"}, Permissions: perms,
		},
	}
}

// assignmentID is an assignment's id: "{scope}/providers/…/{name}", with
// no scope in front for "/".
func assignmentID(a rbac.Assignment) string {
	s := a.Scope
	if s == "/" {
		s = ""
	}
	return s + rbacAssignments + "/" + a.Name
}

func toRoleAssignment(a rbac.Assignment) wire.RoleAssignment {
	return wire.RoleAssignment{
		ID: assignmentID(a), Name: a.Name, Type: "Microsoft.Authorization/roleAssignments",
		Properties: wire.RoleAssignmentProperties{Scope: a.Scope, RoleDefinitionID: rbac.RoleDefinitionID(a.RoleID), PrincipalID: a.PrincipalID},
	}
}

// definitionScope checks the scope of a role definition route. Role
// definitions apply to the whole HSM: they can be read at any scope (the
// Azure CLI lists them at the scope of the assignment it makes), and
// changed at "/" only.
func definitionScope(r *http.Request, change bool) error {
	s, err := rbac.ParseScope(requestScope(r))
	if err != nil {
		return err
	}
	if change && s != "/" {
		return fault.New(fault.BadParameter, "InvalidScope", "role definitions are created and deleted at scope '/' only, not at '%s'", s)
	}
	return nil
}

func (a *API) listRoleDefinitions(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := definitionScope(r, false); err != nil {
		return err
	}
	f, err := rbac.ParseRoleFilter(r.URL.Query().Get("$filter"))
	if err != nil {
		return err
	}
	p, _, err := a.deps.Policy.Policy(r.Context(), rc.instance)
	if err != nil {
		return err
	}
	out := wire.RoleDefinitionList{Value: []wire.RoleDefinition{}}
	for _, role := range p.ListRoles(f) {
		out.Value = append(out.Value, toRoleDefinition(role))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// roleGUID reads the {name} of a role definition route.
func roleGUID(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !rbac.IsGUID(name) {
		return "", fault.New(fault.BadParameter, "InvalidRoleDefinitionId", "the role definition name '%s' is not a GUID", name)
	}
	return strings.ToLower(name), nil
}

func (a *API) getRoleDefinition(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := definitionScope(r, false); err != nil {
		return err
	}
	id, err := roleGUID(r)
	if err != nil {
		return err
	}
	p, _, err := a.deps.Policy.Policy(r.Context(), rc.instance)
	if err != nil {
		return err
	}
	role, ok := p.Role(id)
	if !ok {
		return rbac.RoleNotFound(id)
	}
	writeJSON(w, http.StatusOK, toRoleDefinition(role))
	return nil
}

// putRoleDefinition creates or replaces a custom role: 201 either way.
func (a *API) putRoleDefinition(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := definitionScope(r, true); err != nil {
		return err
	}
	id, err := roleGUID(r)
	if err != nil {
		return err
	}
	var body wire.RoleDefinitionCreate
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	props := body.Properties
	if props == nil {
		return fault.New(fault.BadParameter, "BadParameter", "properties are missing")
	}
	if props.RoleType != "" && !strings.EqualFold(props.RoleType, rbac.TypeCustom) {
		return fault.New(fault.BadParameter, "BadParameter", "properties.type must be '%s': only custom roles can be created", rbac.TypeCustom)
	}
	for _, s := range props.AssignableScopes {
		if sc, err := rbac.ParseScope(s); err != nil || sc != "/" {
			return fault.New(fault.BadParameter, "BadParameter", "properties.assignableScopes: Managed HSM roles are assignable at '/' only, not at '%s'", s)
		}
	}
	if len(props.Permissions) > 1 {
		return fault.New(fault.BadParameter, "BadParameter", "properties.permissions: give at most one permission object")
	}
	var perm wire.Permission
	if len(props.Permissions) == 1 {
		perm = props.Permissions[0]
	}
	if len(perm.Actions) > 0 || len(perm.NotActions) > 0 {
		return fault.New(fault.BadParameter, "BadParameter", "permissions: Managed HSM roles grant data actions only: leave actions and notActions empty")
	}
	role, err := rbac.NewCustomRole(id, props.RoleName, props.Description, perm.DataActions, perm.NotDataActions)
	if err != nil {
		return err
	}
	if _, err := a.deps.Policy.PutRoleDefinition(r.Context(), rc.instance, role); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toRoleDefinition(role))
	return nil
}

func (a *API) deleteRoleDefinition(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := definitionScope(r, true); err != nil {
		return err
	}
	id, err := roleGUID(r)
	if err != nil {
		return err
	}
	role, err := a.deps.Policy.DeleteRoleDefinition(r.Context(), rc.instance, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRoleDefinition(role))
	return nil
}

func (a *API) listRoleAssignments(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	scope, err := rbac.ParseScope(requestScope(r))
	if err != nil {
		return err
	}
	f, err := rbac.ParseAssignmentFilter(r.URL.Query().Get("$filter"))
	if err != nil {
		return err
	}
	p, _, err := a.deps.Policy.Policy(r.Context(), rc.instance)
	if err != nil {
		return err
	}
	out := wire.RoleAssignmentList{Value: []wire.RoleAssignment{}}
	for _, as := range p.ListAssignments(scope, f) {
		out.Value = append(out.Value, toRoleAssignment(as))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// assignmentTarget reads the scope and {name} of a role assignment route.
func assignmentTarget(r *http.Request) (scope, name string, err error) {
	if scope, err = rbac.ParseScope(requestScope(r)); err != nil {
		return "", "", err
	}
	name = r.PathValue("name")
	if !rbac.IsGUID(name) {
		return "", "", fault.New(fault.BadParameter, "InvalidRoleAssignmentId", "the role assignment name '%s' is not valid: it must be a GUID", name)
	}
	return scope, strings.ToLower(name), nil
}

func (a *API) getRoleAssignment(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	scope, name, err := assignmentTarget(r)
	if err != nil {
		return err
	}
	p, _, err := a.deps.Policy.Policy(r.Context(), rc.instance)
	if err != nil {
		return err
	}
	as, err := p.FindAssignment(name, scope)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRoleAssignment(as))
	return nil
}

// putRoleAssignment creates an assignment: 201 (also when the very same
// assignment exists).
func (a *API) putRoleAssignment(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	scope, name, err := assignmentTarget(r)
	if err != nil {
		return err
	}
	var body wire.RoleAssignmentCreate
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Properties == nil {
		return fault.New(fault.BadParameter, "BadParameter", "properties (roleDefinitionId, principalId) are missing")
	}
	as, err := rbac.NewAssignment(name, body.Properties.PrincipalID, body.Properties.RoleDefinitionID, scope)
	if err != nil {
		return err
	}
	if err := a.knownPrincipals(r.Context(), rc.live, "properties.principalId", as.PrincipalID); err != nil {
		return err
	}
	if err := a.deps.Policy.Assign(r.Context(), rc.instance, as); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toRoleAssignment(as))
	return nil
}

// deleteRoleAssignment answers 200 with the deleted assignment.
func (a *API) deleteRoleAssignment(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	scope, name, err := assignmentTarget(r)
	if err != nil {
		return err
	}
	as, err := a.deps.Policy.Unassign(r.Context(), rc.instance, name, scope)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRoleAssignment(as))
	return nil
}

// RouteInfo describes a data-plane route of the route table.
type RouteInfo struct {
	Method, Pattern string
	// Action is the data action the route requires (without prefix).
	Action string
}

// HSMRoutes lists the data-plane routes of the route table with the data
// action each requires, for documentation and conformance tests.
func HSMRoutes() []RouteInfo {
	var out []RouteInfo
	for _, rt := range (&API{}).routes() {
		if rt.plane == hsmPlane {
			out = append(out, RouteInfo{Method: rt.method, Pattern: rt.pattern, Action: rt.action})
		}
	}
	return out
}

// authzCacheSize bounds the cached authorization decisions.
const authzCacheSize = 4096

// authzKey names one caller's grants on one instance generation.
type authzKey struct {
	token    [32]byte // SHA-256 of the bearer token
	instance string
	// created tells apart incarnations of a name: a purged instance's
	// successor starts again at generation 1.
	created    int64
	generation uint64
}

// authzCache keeps callers' grants per token and instance generation. It
// holds at most authzCacheSize entries and forgets the oldest first
// (entries of old generations are never asked for again). The zero value
// is ready to use; it is safe for concurrent use.
type authzCache struct {
	mu      sync.Mutex
	entries map[authzKey][]rbac.Grant
	ring    []authzKey // insertion order, authzCacheSize long once full
	next    int        // the ring slot to reuse next, once full
}

func (c *authzCache) get(k authzKey) ([]rbac.Grant, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.entries[k]
	return g, ok
}

func (c *authzCache) put(k authzKey, g []rbac.Grant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[authzKey][]rbac.Grant)
	}
	if _, ok := c.entries[k]; ok {
		c.entries[k] = g
		return
	}
	if len(c.ring) < authzCacheSize {
		c.ring = append(c.ring, k)
	} else {
		delete(c.entries, c.ring[c.next])
		c.ring[c.next] = k
		c.next = (c.next + 1) % authzCacheSize
	}
	c.entries[k] = g
}
