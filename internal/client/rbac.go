package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"tresor/internal/wire"
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
func (c *Client) ListRoleDefinitions(ctx context.Context, hsmURL, scope, filter string) ([]wire.RoleDefinition, error) {
	return listPages[wire.RoleDefinition](ctx, c, rbacURL(hsmURL, scope, "roleDefinitions", "", filter))
}

// GetRoleDefinition returns the role definition with GUID name.
func (c *Client) GetRoleDefinition(ctx context.Context, hsmURL, name string) (*wire.RoleDefinition, error) {
	return c.roleDefinition(ctx, http.MethodGet, hsmURL, name, nil)
}

// SetRoleDefinition creates or replaces the custom role with GUID name.
func (c *Client) SetRoleDefinition(ctx context.Context, hsmURL, name string, props wire.RoleDefinitionProperties) (*wire.RoleDefinition, error) {
	return c.roleDefinition(ctx, http.MethodPut, hsmURL, name, wire.RoleDefinitionCreate{Properties: &props})
}

// DeleteRoleDefinition deletes the custom role with GUID name and returns it.
func (c *Client) DeleteRoleDefinition(ctx context.Context, hsmURL, name string) (*wire.RoleDefinition, error) {
	return c.roleDefinition(ctx, http.MethodDelete, hsmURL, name, nil)
}

func (c *Client) roleDefinition(ctx context.Context, method, hsmURL, name string, in any) (*wire.RoleDefinition, error) {
	if name == "" {
		return nil, errors.New("client: role definition name is empty")
	}
	var out wire.RoleDefinition
	if _, err := c.DoJSON(ctx, method, rbacURL(hsmURL, "/", "roleDefinitions", name, ""), in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListRoleAssignments lists the role assignments that apply at scope,
// optionally with a $filter ("atScope()", "principalId eq '…'").
func (c *Client) ListRoleAssignments(ctx context.Context, hsmURL, scope, filter string) ([]wire.RoleAssignment, error) {
	return listPages[wire.RoleAssignment](ctx, c, rbacURL(hsmURL, scope, "roleAssignments", "", filter))
}

// GetRoleAssignment returns the role assignment called name at scope.
func (c *Client) GetRoleAssignment(ctx context.Context, hsmURL, scope, name string) (*wire.RoleAssignment, error) {
	return c.roleAssignment(ctx, http.MethodGet, hsmURL, scope, name, nil)
}

// CreateRoleAssignment assigns the role (its id, or its GUID) to the
// principal (object id) at scope, under name (a GUID).
func (c *Client) CreateRoleAssignment(ctx context.Context, hsmURL, scope, name, roleDefinitionID, principalID string) (*wire.RoleAssignment, error) {
	body := wire.RoleAssignmentCreate{Properties: &wire.RoleAssignmentCreateProperties{RoleDefinitionID: roleDefinitionID, PrincipalID: principalID}}
	return c.roleAssignment(ctx, http.MethodPut, hsmURL, scope, name, body)
}

// DeleteRoleAssignment deletes the role assignment called name at scope
// (scope "/" reaches assignments at every scope) and returns it.
func (c *Client) DeleteRoleAssignment(ctx context.Context, hsmURL, scope, name string) (*wire.RoleAssignment, error) {
	return c.roleAssignment(ctx, http.MethodDelete, hsmURL, scope, name, nil)
}

func (c *Client) roleAssignment(ctx context.Context, method, hsmURL, scope, name string, in any) (*wire.RoleAssignment, error) {
	if name == "" {
		return nil, errors.New("client: role assignment name is empty")
	}
	var out wire.RoleAssignment
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
func (c *Client) ListSettings(ctx context.Context, hsmURL string) ([]wire.Setting, error) {
	var out wire.SettingsList
	if _, err := c.DoJSON(ctx, http.MethodGet, settingsURL(hsmURL, ""), nil, &out); err != nil {
		return nil, err
	}
	if out.Settings == nil {
		out.Settings = []wire.Setting{}
	}
	return out.Settings, nil
}

// GetSetting returns one setting (GET /settings/{name}).
func (c *Client) GetSetting(ctx context.Context, hsmURL, name string) (*wire.Setting, error) {
	if name == "" {
		return nil, errors.New("client: setting name is empty")
	}
	var out wire.Setting
	if _, err := c.DoJSON(ctx, http.MethodGet, settingsURL(hsmURL, name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateSetting sets a setting's value (PATCH /settings/{name}).
func (c *Client) UpdateSetting(ctx context.Context, hsmURL, name, value string) (*wire.Setting, error) {
	if name == "" {
		return nil, errors.New("client: setting name is empty")
	}
	var out wire.Setting
	if _, err := c.DoJSON(ctx, http.MethodPatch, settingsURL(hsmURL, name), wire.SettingUpdate{Value: &value}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
