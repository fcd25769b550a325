package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"tresor/internal/connlimit"
	"tresor/internal/fault"
	"tresor/internal/identity"
	"tresor/internal/throttle"
	"tresor/internal/wire"
)

// Rate is a rate limit: PerSecond requests a second, in bursts of up to
// Burst (0: twice PerSecond). PerSecond 0 means no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Sign-in backoff: signInFailures failed sign-ins of one client id within
// signInWindow refuse it (429) for signInBlock, each further failure for
// twice as long, at most signInMaxBlock; a success forgets the failures.
// The block is short enough that whoever knows a client id cannot lock its
// owner out for long, and long enough to make guessing pointless.
const (
	signInFailures = 5
	signInWindow   = time.Minute
	signInBlock    = time.Second
	signInMaxBlock = time.Minute
	maxLoggedID    = 128 // bytes of a client id kept as a limiter key and in logs
)

// limits are the API's rate limits (see Config).
// The rate limiters themselves are live state (reload.go): a reload
// replaces them.
type limits struct {
	signIn *throttle.Backoff // failed sign-ins per client id

	logMu      sync.Mutex
	logBucket  *throttle.Bucket // failed sign-ins logged
	logSkipped int
}

func newLimits() *limits {
	return &limits{
		signIn: throttle.NewBackoff(throttle.BackoffConfig{Threshold: signInFailures, Window: signInWindow,
			Base: signInBlock, Max: signInMaxBlock}),
		logBucket: throttle.NewBucket(5, 20),
	}
}

// clientKey is the limiter key of a client id: case-insensitive, bounded.
func clientKey(id string) string {
	id = strings.ToLower(id)
	if len(id) > maxLoggedID {
		id = id[:maxLoggedID]
	}
	return id
}

// throttleToken applies the token endpoint's limits: per client address
// before anything is read, per client id (and its sign-in backoff) once it
// is known. It writes the 429 and returns false when a limit refuses.
func (a *API) throttleToken(w http.ResponseWriter, r *http.Request, rc *reqCtx, clientID string) bool {
	now := a.cfg.Now()
	var wait time.Duration
	var why string
	if clientID == "" {
		ok, d := rc.live.tokenAddr.Allow(connlimit.Client(r.RemoteAddr).String(), now)
		if ok {
			return true
		}
		wait, why = d, "too many token requests from this client address"
	} else {
		key := clientKey(clientID)
		if d, blocked := a.limits.signIn.Blocked(key, now); blocked {
			wait, why = d, "AADSTS50053: sign-in of this client is blocked for a while after repeated failed sign-ins with a wrong client id or secret"
		} else if ok, d := rc.live.tokenClient.Allow(key, now); !ok {
			wait, why = d, "too many token requests for this client id"
		} else {
			return true
		}
	}
	secs := throttle.RetryAfter(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, wire.OAuthError{Error: "temporarily_unavailable",
		ErrorDescription: fmt.Sprintf("%s; retry after %d seconds", why, secs),
		Timestamp:        now.UTC().Format("2006-01-02 15:04:05Z"), TraceID: w.Header().Get("x-ms-request-id")})
	return false
}

// signInResult records the outcome of a sign-in of clientID: a failure
// (invalid client credentials) counts towards the backoff and is logged
// (rate-limited; never the secret), a success forgets the failures.
func (a *API) signInResult(r *http.Request, clientID string, oe *identity.OAuthError) {
	if clientID == "" {
		return
	}
	key := clientKey(clientID)
	if oe == nil {
		a.limits.signIn.Succeed(key)
		return
	}
	if oe.Code != identity.OAuthInvalidClient {
		return
	}
	now := a.cfg.Now()
	blocked := a.limits.signIn.Fail(key, now)
	l := a.limits
	l.logMu.Lock()
	ok, _ := l.logBucket.Take(now)
	skipped := l.logSkipped
	if ok {
		l.logSkipped = 0
	} else {
		l.logSkipped++
	}
	l.logMu.Unlock()
	if !ok {
		return
	}
	id := clientID
	if len(id) > maxLoggedID {
		id = id[:maxLoggedID] + "…"
	}
	a.log.WarnContext(r.Context(), "failed sign-in", "clientId", strings.ToValidUTF8(id, "?"),
		"client", connlimit.Client(r.RemoteAddr).String(), "reason", oe.Description,
		"blockedFor", blocked.String(), "notLogged", skipped)
}

// throttlePrincipal applies the per-principal rate limit to an
// authenticated request; a refused request (429) takes nothing from the
// principal's budget, as in Key Vault.
func (a *API) throttlePrincipal(w http.ResponseWriter, rc *reqCtx, objectID string) error {
	ok, wait := rc.live.principal.Allow(strings.ToLower(objectID), a.cfg.Now())
	if ok {
		return nil
	}
	secs := throttle.RetryAfter(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return fault.New(fault.Throttled, "Throttled",
		"the principal '%s' sent more requests than this region allows (%g a second); retry after %d seconds", objectID, rc.live.PrincipalRate.PerSecond, secs)
}
