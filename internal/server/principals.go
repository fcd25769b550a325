package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tresor/internal/fault"
	"tresor/internal/identity"
	"tresor/internal/store"
	"tresor/internal/uuid"
)

// principals stores the region's service principals in the store (secrets
// only as salted hashes) and serves them to the token endpoint.
type principals struct {
	st  store.Store
	now func() time.Time
}

func fromStore(p store.Principal) identity.Principal {
	return identity.Principal{ObjectID: p.ObjectID, ClientID: p.ClientID, DisplayName: p.DisplayName,
		SecretHash: p.SecretHash, RegionAdmin: p.RegionAdmin, Created: p.Created}
}

func principalNotFound(id string) error {
	return fault.New(fault.NotFound, "PrincipalNotFound", "no principal '%s' exists in this region", id)
}

// PrincipalByClientID implements identity.PrincipalDirectory.
func (d *principals) PrincipalByClientID(ctx context.Context, clientID string) (identity.Principal, error) {
	var p store.Principal
	err := d.st.View(ctx, func(r store.Reader) error {
		var err error
		p, err = r.PrincipalByClientID(clientID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return identity.Principal{}, fmt.Errorf("client %s: %w", clientID, identity.ErrPrincipalNotFound)
	}
	return fromStore(p), err
}

func (d *principals) Get(ctx context.Context, oid string) (identity.Principal, error) {
	var p store.Principal
	err := d.st.View(ctx, func(r store.Reader) error {
		var err error
		p, err = r.Principal(oid)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return identity.Principal{}, principalNotFound(oid)
	}
	return fromStore(p), err
}

func (d *principals) List(ctx context.Context) ([]identity.Principal, error) {
	var ps []store.Principal
	err := d.st.View(ctx, func(r store.Reader) error {
		var err error
		ps, err = r.Principals()
		return err
	})
	out := make([]identity.Principal, 0, len(ps))
	for _, p := range ps {
		out = append(out, fromStore(p))
	}
	return out, err
}

// Create makes a principal and returns it with its secret (shown once).
func (d *principals) Create(ctx context.Context, displayName string, regionAdmin bool) (identity.Principal, string, error) {
	secret, err := identity.NewSecret()
	if err != nil {
		return identity.Principal{}, "", err
	}
	p := store.Principal{
		ObjectID: uuid.New(), ClientID: uuid.New(), DisplayName: displayName,
		SecretHash: identity.HashSecret(secret), RegionAdmin: regionAdmin, Created: d.now().UTC().Truncate(time.Second),
	}
	if err := d.st.Apply(ctx, store.CreatePrincipal{Principal: p}); err != nil {
		return identity.Principal{}, "", err
	}
	return fromStore(p), secret, nil
}

func (d *principals) Delete(ctx context.Context, oid string) (identity.Principal, error) {
	p, err := d.Get(ctx, oid)
	if err != nil {
		return p, err
	}
	if err := d.st.Apply(ctx, store.DeletePrincipal{ObjectID: oid}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return p, principalNotFound(oid)
		}
		return p, err
	}
	return p, nil
}
