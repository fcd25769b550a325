package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"tresor/internal/wire"
)

// hsmPath returns the ARM path of managed HSM name in resource group rg.
func (c *Client) hsmPath(ctx context.Context, rg, name string) (string, error) {
	if rg == "" {
		return "", errors.New("client: resource group is empty")
	}
	if name == "" {
		return "", errors.New("client: HSM name is empty")
	}
	sub, err := c.Subscription(ctx)
	if err != nil {
		return "", err
	}
	return "/subscriptions/" + url.PathEscape(sub) + "/resourceGroups/" + url.PathEscape(rg) +
		"/providers/Microsoft.KeyVault/managedHSMs/" + url.PathEscape(name), nil
}

// subPath returns "/subscriptions/{sub}" + rest.
func (c *Client) subPath(ctx context.Context, rest string) (string, error) {
	sub, err := c.Subscription(ctx)
	if err != nil {
		return "", err
	}
	return "/subscriptions/" + url.PathEscape(sub) + rest, nil
}

// arm appends the control-plane api-version to path.
func arm(path string) string { return path + "?api-version=" + ARMAPIVersion }

// BeginCreateHSM starts creating (PUT) managed HSM name in resource group
// rg and returns the first answer and the operation to wait for. An empty
// hsm.Properties.TenantID is filled with the client's tenant.
func (c *Client) BeginCreateHSM(ctx context.Context, rg, name string, hsm wire.ManagedHSM) (*wire.ManagedHSM, *Operation, error) {
	p, err := c.hsmPath(ctx, rg, name)
	if err != nil {
		return nil, nil, err
	}
	if hsm.Properties.TenantID == "" {
		if hsm.Properties.TenantID, err = c.tenant(ctx); err != nil {
			return nil, nil, err
		}
	}
	return c.put(ctx, p, hsm)
}

// put PUTs a managed HSM resource and derives the operation.
func (c *Client) put(ctx context.Context, p string, hsm wire.ManagedHSM) (*wire.ManagedHSM, *Operation, error) {
	var out wire.ManagedHSM
	resp, err := c.call(ctx, http.MethodPut, arm(p), hsm, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, c.newOperation(resp, arm(p), out.Properties.ProvisioningState), nil
}

// CreateHSM creates managed HSM name in resource group rg, waits for the
// operation to end and returns the resource.
func (c *Client) CreateHSM(ctx context.Context, rg, name string, hsm wire.ManagedHSM) (*wire.ManagedHSM, error) {
	first, op, err := c.BeginCreateHSM(ctx, rg, name, hsm)
	if err != nil {
		return nil, err
	}
	return c.finishPut(ctx, rg, name, first, op)
}

// finishPut waits for a PUT's operation and returns the resource.
func (c *Client) finishPut(ctx context.Context, rg, name string, first *wire.ManagedHSM, op *Operation) (*wire.ManagedHSM, error) {
	if op.Done() && first.ID != "" {
		return first, nil
	}
	if err := op.Wait(ctx, nil); err != nil {
		return nil, err
	}
	return c.GetHSM(ctx, rg, name)
}

// GetHSM returns managed HSM name of resource group rg.
func (c *Client) GetHSM(ctx context.Context, rg, name string) (*wire.ManagedHSM, error) {
	p, err := c.hsmPath(ctx, rg, name)
	if err != nil {
		return nil, err
	}
	var out wire.ManagedHSM
	if _, err := c.call(ctx, http.MethodGet, arm(p), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FindHSM returns the managed HSM called name (case-insensitively) in any
// resource group of the subscription, or an *Error with status 404 and code
// ResourceNotFound.
func (c *Client) FindHSM(ctx context.Context, name string) (*wire.ManagedHSM, error) {
	all, err := c.ListHSMs(ctx, "")
	if err != nil {
		return nil, err
	}
	for i := range all {
		if strings.EqualFold(all[i].Name, name) {
			return &all[i], nil
		}
	}
	sub, _ := c.Subscription(ctx)
	return nil, &Error{
		Status:  http.StatusNotFound,
		Code:    "ResourceNotFound",
		Message: fmt.Sprintf("The Resource 'Microsoft.KeyVault/managedHSMs/%s' under subscription '%s' was not found.", name, sub),
	}
}

// ListHSMs lists the managed HSMs of resource group rg, or of the whole
// subscription if rg is empty, following nextLink.
func (c *Client) ListHSMs(ctx context.Context, rg string) ([]wire.ManagedHSM, error) {
	rest := "/providers/Microsoft.KeyVault/managedHSMs"
	if rg != "" {
		rest = "/resourceGroups/" + url.PathEscape(rg) + rest
	}
	p, err := c.subPath(ctx, rest)
	if err != nil {
		return nil, err
	}
	out := []wire.ManagedHSM{}
	for next := arm(p); next != ""; {
		var page wire.ManagedHSMList
		if _, err := c.call(ctx, http.MethodGet, next, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Value...)
		next = page.NextLink
	}
	return out, nil
}

// UpdateHSM patches managed HSM name of resource group rg (tags,
// enablePurgeProtection) and returns the resource. Non-nil empty
// patch.Tags are sent as {} and so remove all tags.
func (c *Client) UpdateHSM(ctx context.Context, rg, name string, patch wire.ManagedHSMPatch) (*wire.ManagedHSM, error) {
	p, err := c.hsmPath(ctx, rg, name)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("client: encoding request: %w", err)
	}
	if patch.Tags != nil && len(patch.Tags) == 0 {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("client: encoding request: %w", err)
		}
		m["tags"] = json.RawMessage(`{}`)
		if body, err = json.Marshal(m); err != nil {
			return nil, fmt.Errorf("client: encoding request: %w", err)
		}
	}
	var out wire.ManagedHSM
	resp, err := c.call(ctx, http.MethodPatch, arm(p), json.RawMessage(body), &out)
	if err != nil {
		return nil, err
	}
	return c.finishPut(ctx, rg, name, &out, c.newOperation(resp, arm(p), out.Properties.ProvisioningState))
}

// BeginDeleteHSM starts deleting (softly) managed HSM name of resource
// group rg.
func (c *Client) BeginDeleteHSM(ctx context.Context, rg, name string) (*Operation, error) {
	p, err := c.hsmPath(ctx, rg, name)
	if err != nil {
		return nil, err
	}
	resp, err := c.call(ctx, http.MethodDelete, arm(p), nil, nil)
	if err != nil {
		return nil, err
	}
	return c.newOperation(resp, "", ""), nil
}

// DeleteHSM deletes (softly) managed HSM name of resource group rg and
// waits for the operation to end.
func (c *Client) DeleteHSM(ctx context.Context, rg, name string) error {
	op, err := c.BeginDeleteHSM(ctx, rg, name)
	if err != nil {
		return err
	}
	return op.Wait(ctx, nil)
}

// ListDeletedHSMs lists the subscription's soft-deleted managed HSMs,
// following nextLink.
func (c *Client) ListDeletedHSMs(ctx context.Context) ([]wire.DeletedManagedHSM, error) {
	p, err := c.subPath(ctx, "/providers/Microsoft.KeyVault/deletedManagedHSMs")
	if err != nil {
		return nil, err
	}
	out := []wire.DeletedManagedHSM{}
	for next := arm(p); next != ""; {
		var page wire.DeletedManagedHSMList
		if _, err := c.call(ctx, http.MethodGet, next, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Value...)
		next = page.NextLink
	}
	return out, nil
}

// deletedPath returns the ARM path of deleted managed HSM name in location.
func (c *Client) deletedPath(ctx context.Context, location, name string) (string, error) {
	if location == "" || name == "" {
		return "", errors.New("client: location and HSM name are required")
	}
	return c.subPath(ctx, "/providers/Microsoft.KeyVault/locations/"+url.PathEscape(location)+
		"/deletedManagedHSMs/"+url.PathEscape(name))
}

// GetDeletedHSM returns deleted managed HSM name in location. With an empty
// location it searches [Client.ListDeletedHSMs] by name instead.
func (c *Client) GetDeletedHSM(ctx context.Context, location, name string) (*wire.DeletedManagedHSM, error) {
	if location == "" {
		return c.findDeleted(ctx, name)
	}
	p, err := c.deletedPath(ctx, location, name)
	if err != nil {
		return nil, err
	}
	var out wire.DeletedManagedHSM
	if _, err := c.call(ctx, http.MethodGet, arm(p), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// findDeleted finds a deleted managed HSM by name (case-insensitively).
func (c *Client) findDeleted(ctx context.Context, name string) (*wire.DeletedManagedHSM, error) {
	all, err := c.ListDeletedHSMs(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if strings.EqualFold(all[i].Name, name) {
			return &all[i], nil
		}
	}
	return nil, &Error{
		Status:  http.StatusNotFound,
		Code:    "ResourceNotFound",
		Message: fmt.Sprintf("Deleted managed HSM '%s' was not found.", name),
	}
}

// BeginRecoverHSM starts recovering deleted managed HSM name (of location,
// or found by name if location is empty): a PUT with createMode "recover"
// to its original resource group.
func (c *Client) BeginRecoverHSM(ctx context.Context, location, name string) (*wire.ManagedHSM, *Operation, error) {
	_, first, op, err := c.beginRecover(ctx, location, name)
	return first, op, err
}

// beginRecover is [Client.BeginRecoverHSM], also returning the resource path.
func (c *Client) beginRecover(ctx context.Context, location, name string) (string, *wire.ManagedHSM, *Operation, error) {
	d, err := c.GetDeletedHSM(ctx, location, name)
	if err != nil {
		return "", nil, nil, err
	}
	p := d.Properties.MhsmID
	if ResourceGroup(p) == "" || !strings.HasPrefix(p, "/subscriptions/") || strings.ContainsAny(p, "?#") {
		return "", nil, nil, fmt.Errorf("client: deleted HSM %s has no usable mhsmId (%q)", name, p)
	}
	tenant, err := c.tenant(ctx)
	if err != nil {
		return "", nil, nil, err
	}
	body := wire.ManagedHSM{
		Location: d.Properties.Location,
		SKU:      &wire.SKU{Family: "B", Name: "Standard_B1"},
		Tags:     d.Properties.Tags,
		Properties: wire.ManagedHSMProps{
			TenantID:   tenant,
			CreateMode: "recover",
		},
	}
	first, op, err := c.put(ctx, p, body)
	return p, first, op, err
}

// RecoverHSM recovers deleted managed HSM name (see [Client.BeginRecoverHSM]),
// waits for the operation to end and returns the resource.
func (c *Client) RecoverHSM(ctx context.Context, location, name string) (*wire.ManagedHSM, error) {
	p, first, op, err := c.beginRecover(ctx, location, name)
	if err != nil {
		return nil, err
	}
	if op.Done() && first.ID != "" {
		return first, nil
	}
	if err := op.Wait(ctx, nil); err != nil {
		return nil, err
	}
	var out wire.ManagedHSM
	if _, err := c.call(ctx, http.MethodGet, arm(p), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BeginPurgeHSM starts purging deleted managed HSM name (of location, or
// found by name if location is empty).
func (c *Client) BeginPurgeHSM(ctx context.Context, location, name string) (*Operation, error) {
	if location == "" {
		d, err := c.findDeleted(ctx, name)
		if err != nil {
			return nil, err
		}
		location, name = d.Properties.Location, d.Name
	}
	p, err := c.deletedPath(ctx, location, name)
	if err != nil {
		return nil, err
	}
	resp, err := c.call(ctx, http.MethodPost, arm(p+"/purge"), nil, nil)
	if err != nil {
		return nil, err
	}
	return c.newOperation(resp, "", ""), nil
}

// PurgeHSM purges deleted managed HSM name and waits for the operation to end.
func (c *Client) PurgeHSM(ctx context.Context, location, name string) error {
	op, err := c.BeginPurgeHSM(ctx, location, name)
	if err != nil {
		return err
	}
	return op.Wait(ctx, nil)
}

// ResourceGroup returns the resource group named in an ARM resource id
// ("/subscriptions/{sub}/resourceGroups/{rg}/…"), or "" if it names none.
func ResourceGroup(id string) string {
	parts := strings.Split(id, "/")
	if len(parts) > 4 && parts[0] == "" && strings.EqualFold(parts[3], "resourceGroups") {
		return parts[4]
	}
	return ""
}

// CheckHSMName asks whether name is free for a new managed HSM
// (checkMhsmNameAvailability): valid, and held by no HSM of the region,
// live or soft-deleted.
func (c *Client) CheckHSMName(ctx context.Context, name string) (*wire.NameAvailability, error) {
	p, err := c.subPath(ctx, "/providers/Microsoft.KeyVault/checkMhsmNameAvailability")
	if err != nil {
		return nil, err
	}
	var out wire.NameAvailability
	if _, err := c.call(ctx, http.MethodPost, arm(p), wire.CheckNameAvailability{Name: name}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Tenant returns the tenant of the client: [Config.TenantID] or the region's.
func (c *Client) Tenant(ctx context.Context) (string, error) { return c.tenant(ctx) }

// tenant returns the tenant of the client: [Config.TenantID] or the region's.
func (c *Client) tenant(ctx context.Context) (string, error) {
	if c.cfg.TenantID != "" {
		return c.cfg.TenantID, nil
	}
	r, err := c.Region(ctx)
	if err != nil {
		return "", err
	}
	return r.TenantID, nil
}
