package keys

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"tresor/internal/crypto/keyops"
	"tresor/internal/fault"
	"tresor/internal/instances"
)

// RotationPolicy is a key's rotation policy (ISO 8601 durations).
type RotationPolicy struct {
	Actions    []LifetimeAction `json:"actions"`
	ExpiryTime string           `json:"expiryTime,omitempty"`
	Created    int64            `json:"created"`
	Updated    int64            `json:"updated"`
}

// LifetimeAction is one trigger and action.
type LifetimeAction struct {
	TimeAfterCreate  string `json:"timeAfterCreate,omitempty"`
	TimeBeforeExpiry string `json:"timeBeforeExpiry,omitempty"`
	Type             string `json:"type"` // Rotate or Notify
}

// DefaultPolicy is what a key without a policy reports (as Key Vault does).
func DefaultPolicy() RotationPolicy {
	return RotationPolicy{Actions: []LifetimeAction{{TimeBeforeExpiry: "P30D", Type: "Notify"}}}
}

var durRE = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`)

// MaxPolicyDuration is the longest duration a rotation policy takes (100
// years of 365 days): far beyond any key's useful life, and far from the
// int64 nanoseconds a time.Duration holds (292 years), so that no sum of a
// creation time and a policy duration overflows.
const MaxPolicyDuration = 100 * 365 * 24 * time.Hour

// ParseDuration parses an ISO 8601 duration (years are 365 days, months 30)
// of at most [MaxPolicyDuration].
func ParseDuration(s string) (time.Duration, error) {
	m := durRE.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration such as P90D or PT12H", s)
	}
	units := []time.Duration{365 * 24 * time.Hour, 30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second}
	tooLong := fmt.Errorf("%q is longer than 100 years (P100Y)", s)
	var d time.Duration
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+1], 10, 64)
		// d+n*u ≤ max without overflow: n ≤ (max-d)/u.
		if err != nil || n > int64((MaxPolicyDuration-d)/u) {
			return 0, tooLong
		}
		d += time.Duration(n) * u
	}
	return d, nil
}

// minExpiry is the least expiryTime Key Vault accepts.
const minExpiry = 28 * 24 * time.Hour

// Validate checks a policy as Key Vault does.
func (p *RotationPolicy) Validate() error {
	var expiry time.Duration
	if p.ExpiryTime != "" {
		d, err := ParseDuration(p.ExpiryTime)
		if err != nil {
			return badParameter("attributes.expiryTime: %v", err)
		}
		if d < minExpiry {
			return badParameter("attributes.expiryTime must be at least 28 days (P28D), got %s", p.ExpiryTime)
		}
		expiry = d
	}
	if len(p.Actions) > 2 {
		return badParameter("lifetimeActions: at most one Rotate and one Notify action")
	}
	seen := map[string]bool{}
	for i, a := range p.Actions {
		switch strings.ToLower(a.Type) {
		case "rotate":
			p.Actions[i].Type = "Rotate"
		case "notify":
			p.Actions[i].Type = "Notify"
		default:
			return badParameter("lifetimeActions[%d].action.type must be Rotate or Notify, not %q", i, a.Type)
		}
		if seen[p.Actions[i].Type] {
			return badParameter("lifetimeActions: only one %s action", p.Actions[i].Type)
		}
		seen[p.Actions[i].Type] = true
		if (a.TimeAfterCreate == "") == (a.TimeBeforeExpiry == "") {
			return badParameter("lifetimeActions[%d].trigger needs exactly one of timeAfterCreate and timeBeforeExpiry", i)
		}
		if a.TimeAfterCreate != "" {
			d, err := ParseDuration(a.TimeAfterCreate)
			if err != nil {
				return badParameter("lifetimeActions[%d].trigger.timeAfterCreate: %v", i, err)
			}
			if d < 7*24*time.Hour {
				return badParameter("lifetimeActions[%d].trigger.timeAfterCreate must be at least 7 days (P7D)", i)
			}
			if expiry != 0 && d > expiry-7*24*time.Hour {
				return badParameter("lifetimeActions[%d].trigger.timeAfterCreate must be at least 7 days shorter than expiryTime", i)
			}
		}
		if a.TimeBeforeExpiry != "" {
			d, err := ParseDuration(a.TimeBeforeExpiry)
			if err != nil {
				return badParameter("lifetimeActions[%d].trigger.timeBeforeExpiry: %v", i, err)
			}
			if expiry == 0 {
				return badParameter("lifetimeActions[%d].trigger.timeBeforeExpiry needs attributes.expiryTime", i)
			}
			if d < 7*24*time.Hour || d > expiry-7*24*time.Hour {
				return badParameter("lifetimeActions[%d].trigger.timeBeforeExpiry must be at least 7 days and at least 7 days shorter than expiryTime", i)
			}
		}
	}
	return nil
}

// GetPolicy returns a key's rotation policy (the default if none was set).
func (s *Service) GetPolicy(ctx context.Context, in instances.Instance, name string) (RotationPolicy, error) {
	name = storageName(name)
	snap, _, _, err := s.readVersion(ctx, in, name, "")
	if err != nil {
		return RotationPolicy{}, err
	}
	if snap.rec.Policy == nil {
		return DefaultPolicy(), nil
	}
	return *snap.rec.Policy, nil
}

// PutPolicy sets a key's rotation policy.
func (s *Service) PutPolicy(ctx context.Context, in instances.Instance, name string, p RotationPolicy) (RotationPolicy, error) {
	name = storageName(name)
	if err := p.Validate(); err != nil {
		return RotationPolicy{}, err
	}
	var out RotationPolicy
	err := s.retry(in, name, func() error {
		snap, _, _, err := s.readVersion(ctx, in, name, "")
		if err != nil {
			return err
		}
		rec := snap.rec
		now := s.now().Unix()
		p.Created, p.Updated = now, now
		if rec.Policy != nil && rec.Policy.Created != 0 {
			p.Created = rec.Policy.Created
		}
		rec.Policy = &p
		if err := s.write(ctx, in, snap, name, &rec, nil, nil); err != nil {
			return err
		}
		out = p
		return nil
	})
	return out, err
}

// Rotate makes a new version of a key with the same type, size or curve,
// key_ops and tags; its expiry follows the rotation policy.
func (s *Service) Rotate(ctx context.Context, in instances.Instance, name string) (Version, error) {
	name = storageName(name)
	_, vr, sealed, err := s.readVersion(ctx, in, name, "")
	if err != nil {
		return Version{}, err
	}
	old, err := s.material(in, name, vr, sealed)
	if err != nil {
		return Version{}, err
	}
	k, err := keyops.Generate(keyops.GenerateOptions{Type: old.Type(), Size: old.Size(), Curve: old.Curve()}, rand.Reader)
	if err != nil {
		return Version{}, opError(err)
	}
	return s.addVersion(ctx, in, name, k, vr.KeyOps, AttrChange{}, vr.Tags, vr.ReleasePolicy, anyVersion)
}

// anyVersion makes addVersion a rotation of whichever version is current
// (a rotation asked for by a user: two of them make two versions).
const anyVersion = "*"

// rotateIfDue rotates a key whose policy asks for it now: the check and the
// rotation read the same current version, and the rotation applies only if
// that version is still current, so lifecycle runners racing each other
// rotate once.
func (s *Service) rotateIfDue(ctx context.Context, in instances.Instance, name string, now time.Time) (bool, error) {
	snap, vr, sealed, err := s.readVersion(ctx, in, name, "")
	if err != nil || !s.due(snap.rec, vr, now) {
		return false, nil
	}
	old, err := s.material(in, name, vr, sealed)
	if err != nil {
		return false, err
	}
	k, err := keyops.Generate(keyops.GenerateOptions{Type: old.Type(), Size: old.Size(), Curve: old.Curve()}, rand.Reader)
	if err != nil {
		return false, opError(err)
	}
	_, err = s.addVersion(ctx, in, name, k, vr.KeyOps, AttrChange{}, vr.Tags, vr.ReleasePolicy, vr.Version)
	if errors.Is(err, errRotated) {
		return false, nil
	}
	return err == nil, err
}

// due reports whether a key's policy asks for a rotation now.
func (s *Service) due(rec keyRecord, vr versionRecord, now time.Time) bool {
	if rec.Policy == nil || rec.Deleted {
		return false
	}
	for _, a := range rec.Policy.Actions {
		if a.Type != "Rotate" {
			continue
		}
		if a.TimeAfterCreate != "" {
			if d, err := ParseDuration(a.TimeAfterCreate); err == nil && !now.Before(time.Unix(vr.Created, 0).Add(d)) {
				return true
			}
		}
		if a.TimeBeforeExpiry != "" && vr.Expires != 0 {
			if d, err := ParseDuration(a.TimeBeforeExpiry); err == nil && !now.Before(time.Unix(vr.Expires, 0).Add(-d)) {
				return true
			}
		}
	}
	return false
}

// RunDue carries out what is due in an instance: rotations asked for by
// rotation policies, and purges of deleted keys past their scheduled
// purge date. It returns how many keys it rotated and purged.
func (s *Service) RunDue(ctx context.Context, in instances.Instance) (rotated, purged int, err error) {
	now := s.now()
	for _, deleted := range []bool{false, true} {
		list, err := s.List(ctx, in, deleted)
		if err != nil {
			return rotated, purged, err
		}
		for _, v := range list {
			if deleted {
				if now.Before(v.ScheduledPurgeDate) {
					continue
				}
				snap, _, err := s.read(ctx, in, storageName(v.Name))
				if err != nil || snap.recSealed == nil || !snap.rec.Deleted {
					continue
				}
				if err := s.purge(ctx, in, snap, storageName(v.Name)); err == nil {
					purged++
				}
				continue
			}
			ok, err := s.rotateIfDue(ctx, in, storageName(v.Name), now)
			if err != nil {
				if fault.KindOf(err) == fault.Internal {
					return rotated, purged, err
				}
				continue
			}
			if ok {
				rotated++
			}
		}
	}
	return rotated, purged, nil
}
