package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Local RBAC and settings calls (spec §5). They go to an HSM's data plane:
// hsmURL is its base URL, as [Client.HSMURL] returns it.
//
// Scopes are "/" (the whole HSM), "/keys" (every key) or "/keys/{name}"
// (one key); the leading slash is optional. Role definitions exist at "/"
// only.

// RBACAPIVersion is the api-version of RBAC and settings calls.
const RBACAPIVersion = "7.4"

// RoleDefinitionIDPrefix precedes a role's GUID in its id.
const RoleDefinitionIDPrefix = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"

// RoleDefinition is a role definition as the service returns it.
type RoleDefinition struct {
	ID         string                   `json:"id"`
	Name       string                   `json:"name"` // the role's GUID
	Type       string                   `json:"type"` // Microsoft.Authorization/roleDefinitions
	Properties RoleDefinitionProperties `json:"properties"`
}

// RoleDefinitionProperties are a role definition's properties; they are
// also what a custom role is created with.
type RoleDefinitionProperties struct {
	RoleName         string       `json:"roleName"`
	Description      string       `json:"description"`
	RoleType         string       `json:"type"` // AKVBuiltInRole or CustomRole
	Permissions      []Permission `json:"permissions"`
	AssignableScopes []string     `json:"assignableScopes,omitempty"`
}

// Permission lists the (data) actions a role grants and excludes.
type Permission struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

// RoleAssignment is a role assignment as the service returns it.
type RoleAssignment struct {
	ID         string                   `json:"id"`
	Name       string                   `json:"name"`
	Type       string                   `json:"type"` // Microsoft.Authorization/roleAssignments
	Properties RoleAssignmentProperties `json:"properties"`
}

// RoleAssignmentProperties are a role assignment's properties.
type RoleAssignmentProperties struct {
	Scope            string `json:"scope"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	PrincipalID      string `json:"principalId"`
}

// Setting is an HSM setting (spec §5.4).
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Type  string `json:"type"`
}

// scopePath turns a scope into the path segment in front of
// "/providers/Microsoft.Authorization/…": "" for "/", "/keys",
// "/keys/{name}". Scopes are not validated here: the server says which it
// takes.
func scopePath(scope string) string {
	var parts []string
	for _, p := range strings.Split(scope, "/") {
		if p != "" {
			parts = append(parts, url.PathEscape(p))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "/" + strings.Join(parts, "/")
}

// rbacURL returns hsmURL + scope + "/providers/Microsoft.Authorization/" +
// kind [+ "/" + name] + "?api-version=…" [+ "&$filter=…"].
func rbacURL(hsmURL, scope, kind, name, filter string) string {
	u := strings.TrimRight(hsmURL, "/") + scopePath(scope) + "/providers/Microsoft.Authorization/" + kind
	if name != "" {
		u += "/" + url.PathEscape(name)
	}
	q := url.Values{"api-version": {RBACAPIVersion}}
	if filter != "" {
		q.Set("$filter", filter)
	}
	return u + "?" + q.Encode()
}

// listPages follows nextLink from u, appending each page's values.
func listPages[T any](ctx context.Context, c *Client, u string) ([]T, error) {
	out := []T{}
	for u != "" {
		var page struct {
			Value    []T    `json:"value"`
			NextLink string `json:"nextLink"`
		}
		if _, err := c.DoJSON(ctx, http.MethodGet, u, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Value...)
		u = page.NextLink
	}
	return out, nil
}

// ListRoleDefinitions lists the HSM's role definitions (built-in and
// custom) at scope, optionally with a $filter such as "roleName eq '…'".
func (c *Client) ListRoleDefinitions(ctx context.Context, hsmURL, scope, filter string) ([]RoleDefinition, error) {
	return listPages[RoleDefinition](ctx, c, rbacURL(hsmURL, scope, "roleDefinitions", "", filter))
}

// GetRoleDefinition returns the role definition with GUID name.
func (c *Client) GetRoleDefinition(ctx context.Context, hsmURL, name string) (*RoleDefinition, error) {
	return c.roleDefinition(ctx, http.MethodGet, hsmURL, name, nil)
}

// SetRoleDefinition creates or replaces the custom role with GUID name.
func (c *Client) SetRoleDefinition(ctx context.Context, hsmURL, name string, props RoleDefinitionProperties) (*RoleDefinition, error) {
	return c.roleDefinition(ctx, http.MethodPut, hsmURL, name, map[string]any{"properties": props})
}

// DeleteRoleDefinition deletes the custom role with GUID name and returns it.
func (c *Client) DeleteRoleDefinition(ctx context.Context, hsmURL, name string) (*RoleDefinition, error) {
	return c.roleDefinition(ctx, http.MethodDelete, hsmURL, name, nil)
}

func (c *Client) roleDefinition(ctx context.Context, method, hsmURL, name string, in any) (*RoleDefinition, error) {
	if name == "" {
		return nil, errors.New("client: role definition name is empty")
	}
	var out RoleDefinition
	if _, err := c.DoJSON(ctx, method, rbacURL(hsmURL, "/", "roleDefinitions", name, ""), in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListRoleAssignments lists the role assignments that apply at scope,
// optionally with a $filter ("atScope()", "principalId eq '…'").
func (c *Client) ListRoleAssignments(ctx context.Context, hsmURL, scope, filter string) ([]RoleAssignment, error) {
	return listPages[RoleAssignment](ctx, c, rbacURL(hsmURL, scope, "roleAssignments", "", filter))
}

// GetRoleAssignment returns the role assignment called name at scope.
func (c *Client) GetRoleAssignment(ctx context.Context, hsmURL, scope, name string) (*RoleAssignment, error) {
	return c.roleAssignment(ctx, http.MethodGet, hsmURL, scope, name, nil)
}

// CreateRoleAssignment assigns the role (its id, or its GUID) to the
// principal (object id) at scope, under name (a GUID).
func (c *Client) CreateRoleAssignment(ctx context.Context, hsmURL, scope, name, roleDefinitionID, principalID string) (*RoleAssignment, error) {
	body := map[string]any{"properties": map[string]string{"roleDefinitionId": roleDefinitionID, "principalId": principalID}}
	return c.roleAssignment(ctx, http.MethodPut, hsmURL, scope, name, body)
}

// DeleteRoleAssignment deletes the role assignment called name at scope
// (scope "/" reaches assignments at every scope) and returns it.
func (c *Client) DeleteRoleAssignment(ctx context.Context, hsmURL, scope, name string) (*RoleAssignment, error) {
	return c.roleAssignment(ctx, http.MethodDelete, hsmURL, scope, name, nil)
}

func (c *Client) roleAssignment(ctx context.Context, method, hsmURL, scope, name string, in any) (*RoleAssignment, error) {
	if name == "" {
		return nil, errors.New("client: role assignment name is empty")
	}
	var out RoleAssignment
	if _, err := c.DoJSON(ctx, method, rbacURL(hsmURL, scope, "roleAssignments", name, ""), in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// settingsURL returns hsmURL + "/settings[/{name}]?api-version=…".
func settingsURL(hsmURL, name string) string {
	u := strings.TrimRight(hsmURL, "/") + "/settings"
	if name != "" {
		u += "/" + url.PathEscape(name)
	}
	return u + "?api-version=" + RBACAPIVersion
}

// ListSettings returns the HSM's settings (GET /settings).
func (c *Client) ListSettings(ctx context.Context, hsmURL string) ([]Setting, error) {
	var out struct {
		Settings []Setting `json:"settings"`
	}
	if _, err := c.DoJSON(ctx, http.MethodGet, settingsURL(hsmURL, ""), nil, &out); err != nil {
		return nil, err
	}
	if out.Settings == nil {
		out.Settings = []Setting{}
	}
	return out.Settings, nil
}

// GetSetting returns one setting (GET /settings/{name}).
func (c *Client) GetSetting(ctx context.Context, hsmURL, name string) (*Setting, error) {
	if name == "" {
		return nil, errors.New("client: setting name is empty")
	}
	var out Setting
	if _, err := c.DoJSON(ctx, http.MethodGet, settingsURL(hsmURL, name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateSetting sets a setting's value (PATCH /settings/{name}).
func (c *Client) UpdateSetting(ctx context.Context, hsmURL, name, value string) (*Setting, error) {
	if name == "" {
		return nil, errors.New("client: setting name is empty")
	}
	var out Setting
	if _, err := c.DoJSON(ctx, http.MethodPatch, settingsURL(hsmURL, name), map[string]string{"value": value}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
