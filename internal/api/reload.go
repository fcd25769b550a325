package api

import (
	"maps"
	"slices"

	"tresor/internal/throttle"
)

// Live is the part of the API's configuration that [API.Reload] replaces
// while the API serves: the token validators (and so the trusted issuers),
// the external region administrators and the rate limits.
type Live struct {
	// MgmtValidator and HSMValidator are as in [Deps].
	MgmtValidator, HSMValidator Validator
	// RegionAdmins, ExternalPrincipals and IssuerTenants are as in [Config].
	RegionAdmins       []string
	ExternalPrincipals bool
	IssuerTenants      map[string][]string
	// TokenRatePerAddress, TokenRatePerClient and PrincipalRate are as in
	// [Config].
	TokenRatePerAddress, TokenRatePerClient, PrincipalRate Rate
}

// live is the reloadable state one request works with from its start to
// its end: a request reads it once (reqCtx.live), so it sees the state
// before a reload or after it, never a mix.
type live struct {
	Live
	// tokens caches the tokens these validators accepted: a new set of
	// validators starts with an empty cache, so no token of an issuer that
	// is no longer trusted passes from the cache.
	tokens      *tokenCache
	tokenAddr   *throttle.Limiter // token requests per client address
	tokenClient *throttle.Limiter // token requests per client id
	principal   *throttle.Limiter // authenticated requests per object id
}

// newLive builds the state of l; a limiter whose rate is the same as in
// old is kept with its budgets, one whose rate changed starts full.
func newLive(l Live, old *live) *live {
	l.RegionAdmins = slices.Clone(l.RegionAdmins)
	l.IssuerTenants = maps.Clone(l.IssuerTenants)
	n := &live{Live: l, tokens: &tokenCache{}}
	limiter := func(r Rate, prev Rate, have *throttle.Limiter) *throttle.Limiter {
		if old != nil && r == prev {
			return have
		}
		return throttle.NewLimiter(r.PerSecond, r.Burst)
	}
	var o live
	if old != nil {
		o = *old
	}
	n.tokenAddr = limiter(l.TokenRatePerAddress, o.TokenRatePerAddress, o.tokenAddr)
	n.tokenClient = limiter(l.TokenRatePerClient, o.TokenRatePerClient, o.tokenClient)
	n.principal = limiter(l.PrincipalRate, o.PrincipalRate, o.principal)
	if old != nil && n.MgmtValidator == old.MgmtValidator && n.HSMValidator == old.HSMValidator {
		n.tokens = old.tokens
	}
	return n
}

// Reload replaces the live configuration. Requests that started before
// keep the state they started with; later ones get l. A rate limit whose
// rate did not change keeps its clients' budgets; a changed one starts
// with full budgets. The sign-in backoff of client ids is kept.
//
// Reload is safe to call concurrently with serving; concurrent Reloads
// must be serialized by the caller.
func (a *API) Reload(l Live) {
	a.live.Store(newLive(l, a.live.Load()))
}
