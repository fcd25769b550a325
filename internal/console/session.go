package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"

	"tresor/internal/client"
)

// Session limits: a session ends when it has been idle for IdleTimeout,
// when it reaches MaxLifetime, or when its tokens expire (the console
// keeps no secret to renew them), whichever comes first.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxLifetime = 8 * time.Hour
	// MaxSessions bounds the store: a sign-in beyond it is refused.
	MaxSessions = 10000
	// downloadLifetime is how long a file waiting for download (a
	// security-domain file, an exchange certificate) is kept.
	downloadLifetime = 10 * time.Minute
)

// errTooManySessions is returned by [sessions.create] when the store is full.
var errTooManySessions = errors.New("console: too many sessions; try again later")

// session is one signed-in browser. Its tokens never leave the server:
// the browser holds only the random id, in an HttpOnly cookie.
type session struct {
	id      string
	csrf    string
	tokens  []client.AccessToken // one per audience (control plane, HSM data plane)
	account accountInfo
	created time.Time
	expires time.Time // the tokens' expiry or MaxLifetime, whichever is first

	mu        sync.Mutex // guards the fields below
	lastSeen  time.Time
	flash     []flash
	downloads map[string]download
}

// accountInfo is the signed-in principal as the API's /tresor/account
// describes it.
type accountInfo struct {
	ObjectID, ClientID, DisplayName string
	RegionAdmin                     bool
}

// flash is a one-shot message for the next page the session sees.
type flash struct {
	Error   bool
	Code    string // the Azure error code, for errors
	Message string
}

// download is a file the session may fetch once (GET /console/download/{id}).
type download struct {
	name, contentType string
	data              []byte
	expires           time.Time
}

func (s *session) addFlash(f flash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.flash) < 10 {
		s.flash = append(s.flash, f)
	}
}

func (s *session) takeFlash() []flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

// addDownload keeps a file for the session and returns its id.
func (s *session) addDownload(name, contentType string, data []byte, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.downloads == nil {
		s.downloads = map[string]download{}
	}
	for id, d := range s.downloads {
		if now.After(d.expires) {
			delete(s.downloads, id)
		}
	}
	id := randomID(16)
	s.downloads[id] = download{name: name, contentType: contentType, data: data, expires: now.Add(downloadLifetime)}
	return id
}

// pendingDownloads lists the files waiting for the session, by id.
func (s *session) pendingDownloads(now time.Time) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for id, d := range s.downloads {
		if now.Before(d.expires) {
			out[id] = d.name
		}
	}
	return out
}

// takeDownload returns a file once and forgets it.
func (s *session) takeDownload(id string, now time.Time) (download, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.downloads[id]
	delete(s.downloads, id)
	return d, ok && now.Before(d.expires)
}

// checkCSRF compares a form's token with the session's in constant time.
func (s *session) checkCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

// sessions is the server-side session store, in memory: a restart signs
// everyone out. Safe for concurrent use.
type sessions struct {
	idle, max time.Duration
	now       func() time.Time

	mu      sync.Mutex
	byID    map[string]*session
	creates int // sessions created, for sweeping
}

func newSessions(idle, max time.Duration, now func() time.Time) *sessions {
	return &sessions{idle: idle, max: max, now: now, byID: map[string]*session{}}
}

// create starts a session holding tokens; it expires at the earliest
// token expiry or after the maximum lifetime.
func (st *sessions) create(tokens []client.AccessToken, acct accountInfo) (*session, error) {
	now := st.now()
	exp := now.Add(st.max)
	for _, t := range tokens {
		if !t.ExpiresOn.IsZero() && t.ExpiresOn.Before(exp) {
			exp = t.ExpiresOn
		}
	}
	s := &session{id: randomID(32), csrf: randomID(32), tokens: tokens, account: acct, created: now, expires: exp, lastSeen: now}
	st.mu.Lock()
	defer st.mu.Unlock()
	// Sweep now and then, and whenever the store is full.
	if st.creates++; st.creates%64 == 0 || len(st.byID) >= MaxSessions {
		st.sweepLocked(now)
	}
	if len(st.byID) >= MaxSessions {
		return nil, errTooManySessions
	}
	st.byID[s.id] = s
	return s, nil
}

// get returns the live session with id and marks it seen; an expired or
// idle one is deleted and not returned.
func (st *sessions) get(id string) (*session, bool) {
	if id == "" {
		return nil, false
	}
	now := st.now()
	st.mu.Lock()
	s, ok := st.byID[id]
	st.mu.Unlock()
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	alive := now.Before(s.expires) && now.Sub(s.lastSeen) < st.idle
	if alive {
		s.lastSeen = now
	}
	s.mu.Unlock()
	if !alive {
		st.delete(id)
		return nil, false
	}
	return s, true
}

// delete ends a session (sign-out).
func (st *sessions) delete(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.byID, id)
}

// len is the number of sessions held (live or not yet swept).
func (st *sessions) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.byID)
}

func (st *sessions) sweepLocked(now time.Time) {
	for id, s := range st.byID {
		s.mu.Lock()
		dead := !now.Before(s.expires) || now.Sub(s.lastSeen) >= st.idle
		s.mu.Unlock()
		if dead {
			delete(st.byID, id)
		}
	}
}

// randomID returns n random bytes, base64url without padding.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
