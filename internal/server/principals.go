package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"tresor/internal/barrier"
	"tresor/internal/fault"
	"tresor/internal/identity"
	"tresor/internal/store"
	"tresor/internal/uuid"
)

// principals stores the region's service principals in the store (secrets
// only as salted hashes) and serves them to the token endpoint. Every
// record carries a MAC under a key of the region root (see [principalMAC]);
// every read checks it, so a record edited outside Tresor is refused, at
// start and while running.
type principals struct {
	st  store.Store
	mac *barrier.RecordMAC
	now func() time.Time
}

// RecordIntegrityError is returned when a security-relevant region record
// (a principal) fails its integrity check: it was edited, copied from
// another record or region, or stripped of its MAC outside Tresor.
type RecordIntegrityError struct {
	// Detail names the record and what is wrong with it.
	Detail string
}

func (e *RecordIntegrityError) Error() string {
	return e.Detail + ": it was changed outside tresor; restore the data directory from a backup or delete the principal record"
}

func principalPath(objectID string) string { return "principals/" + objectID }

// principalMAC is the tag of a principal record: the region's record MAC
// over the record's JSON without its MAC, at path principals/{objectId}.
// It covers what a reader uses (decoding drops unknown fields and keeps
// the last of duplicate ones), so no edit of the stored bytes changes a
// field without failing the check.
func principalMAC(m *barrier.RecordMAC, p store.Principal) []byte {
	return m.Sum(principalPath(p.ObjectID), macInputOf(p))
}

// check verifies a record read from the store.
func (d *principals) check(p store.Principal) error {
	switch {
	case len(p.MAC) == 0:
		return &RecordIntegrityError{Detail: fmt.Sprintf("principals record %s (client id %s) has no integrity tag, though the region's records are protected", p.ObjectID, p.ClientID)}
	case !d.mac.Verify(principalPath(p.ObjectID), macInputOf(p), p.MAC):
		return &RecordIntegrityError{Detail: fmt.Sprintf("principals record %s (client id %s) fails its integrity check", p.ObjectID, p.ClientID)}
	}
	return nil
}

func macInputOf(p store.Principal) []byte {
	p.MAC = nil
	b, err := json.Marshal(p)
	if err != nil {
		panic("server: encode principal: " + err.Error()) // plain fields cannot fail
	}
	return b
}

// readErr turns a store error about a record that does not match its key
// into a [RecordIntegrityError].
func readErr(err error) error {
	if errors.Is(err, store.ErrMismatch) {
		return &RecordIntegrityError{Detail: err.Error()}
	}
	return err
}

// migrate adds MACs to the principal records of a region written before
// records were protected, and in the same command replaces the region root
// with its wrap that marks the region's records as protected: after it, a
// record without a MAC is refused.
func (d *principals) migrate(ctx context.Context, protectedRoot []byte, log *slog.Logger) error {
	var ps []store.Principal
	if err := d.st.View(ctx, func(r store.Reader) error {
		var err error
		ps, err = r.Principals()
		return err
	}); err != nil {
		return readErr(err)
	}
	for i := range ps {
		if len(ps[i].MAC) > 0 {
			// An unprotected region has no MACs: one is someone's copy.
			if err := d.check(ps[i]); err != nil {
				return err
			}
			continue
		}
		ps[i].MAC = principalMAC(d.mac, ps[i])
	}
	if err := d.st.Apply(ctx, store.ReplacePrincipals{Principals: ps,
		RegionValues: []store.KV{{Key: keyRegionRoot, Value: protectedRoot}}}); err != nil {
		return fmt.Errorf("protect principal records: %w", err)
	}
	log.Info("principal records are now protected by integrity tags (data written by an earlier version)", "principals", len(ps))
	return nil
}

// verifyAll checks every principal record and its client-id index entry.
func (d *principals) verifyAll(ctx context.Context) error {
	ps, err := d.List(ctx)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if _, err := d.PrincipalByClientID(ctx, p.ClientID); err != nil {
			return err
		}
	}
	return nil
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
	if err != nil {
		return identity.Principal{}, readErr(err)
	}
	if err := d.check(p); err != nil {
		return identity.Principal{}, err
	}
	return fromStore(p), nil
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
	if err != nil {
		return identity.Principal{}, readErr(err)
	}
	if err := d.check(p); err != nil {
		return identity.Principal{}, err
	}
	return fromStore(p), nil
}

func (d *principals) List(ctx context.Context) ([]identity.Principal, error) {
	var ps []store.Principal
	err := d.st.View(ctx, func(r store.Reader) error {
		var err error
		ps, err = r.Principals()
		return err
	})
	if err != nil {
		return nil, readErr(err)
	}
	out := make([]identity.Principal, 0, len(ps))
	for _, p := range ps {
		if err := d.check(p); err != nil {
			return nil, err
		}
		out = append(out, fromStore(p))
	}
	return out, nil
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
	p.MAC = principalMAC(d.mac, p)
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
