package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"tresor/internal/wire"
)

// Account returns who the caller is (GET /tresor/account).
func (c *Client) Account(ctx context.Context) (*wire.Account, error) {
	var out wire.Account
	if _, err := c.call(ctx, http.MethodGet, "/tresor/account", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreatePrincipal creates a service principal (POST /tresor/principals).
// The answer carries its client secret, which the server shows only once.
func (c *Client) CreatePrincipal(ctx context.Context, p wire.PrincipalCreate) (*wire.Principal, error) {
	if p.DisplayName == "" {
		return nil, errors.New("client: principal display name is empty")
	}
	var out wire.Principal
	if _, err := c.call(ctx, http.MethodPost, "/tresor/principals", p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListPrincipals lists the region's service principals (GET /tresor/principals).
func (c *Client) ListPrincipals(ctx context.Context) ([]wire.Principal, error) {
	var out wire.PrincipalList
	if _, err := c.call(ctx, http.MethodGet, "/tresor/principals", nil, &out); err != nil {
		return nil, err
	}
	if out.Value == nil {
		out.Value = []wire.Principal{}
	}
	return out.Value, nil
}

// DeletePrincipal deletes the service principal with objectID and returns
// it (DELETE /tresor/principals/{objectId}).
func (c *Client) DeletePrincipal(ctx context.Context, objectID string) (*wire.Principal, error) {
	if objectID == "" {
		return nil, errors.New("client: principal object id is empty")
	}
	var out wire.Principal
	if _, err := c.call(ctx, http.MethodDelete, "/tresor/principals/"+url.PathEscape(objectID), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Subscriptions lists the subscriptions the caller sees (GET /subscriptions).
func (c *Client) Subscriptions(ctx context.Context) ([]wire.Subscription, error) {
	var out wire.SubscriptionList
	if _, err := c.call(ctx, http.MethodGet, "/subscriptions?api-version="+SubscriptionsAPIVersion, nil, &out); err != nil {
		return nil, err
	}
	if out.Value == nil {
		out.Value = []wire.Subscription{}
	}
	return out.Value, nil
}

// Locations lists the locations of the client's subscription
// (GET /subscriptions/{sub}/locations).
func (c *Client) Locations(ctx context.Context) ([]wire.Location, error) {
	p, err := c.subPath(ctx, "/locations?api-version="+SubscriptionsAPIVersion)
	if err != nil {
		return nil, err
	}
	var out wire.LocationList
	if _, err := c.call(ctx, http.MethodGet, p, nil, &out); err != nil {
		return nil, err
	}
	if out.Value == nil {
		out.Value = []wire.Location{}
	}
	return out.Value, nil
}
