package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"tresor/internal/client"
)

// Issuer is a trusted OpenID Connect issuer that people may sign in to the
// console through, by the authorization code flow with PKCE (RFC 7636).
// The console is a public client at the issuer: it has a client id and no
// secret, and its redirect URI is {Endpoint}/console/oidc/callback.
type Issuer struct {
	Issuer       string // the iss of its tokens, shown on the sign-in page
	DiscoveryURL string // its OpenID discovery document (https)
	ClientID     string // the console's client id at the issuer
	// ARMAudience and HSMAudience are the audiences of the two tokens the
	// console asks for: the first with the code, the second with the
	// refresh token that came with it.
	ARMAudience, HSMAudience string
	// HTTPClient reaches the issuer (trusting its CA); nil: the default.
	HTTPClient *http.Client
}

// oidcCookie binds a pending sign-in to the browser that started it. It
// is SameSite=Lax, not Strict: the issuer's redirect back is a cross-site
// navigation, on which a Strict cookie is not sent.
const oidcCookie = "__Host-tresor-console-oidc"

// pendingLifetime bounds how long a sign-in at an issuer may take.
const pendingLifetime = 10 * time.Minute

// maxPending bounds the sign-ins in progress.
const maxPending = 10000

// pendingAuth is a sign-in waiting for the issuer's redirect back.
type pendingAuth struct {
	issuer   int
	verifier string // the PKCE code verifier
	bind     string // the oidcCookie value
	next     string
	expires  time.Time
}

// pendingAuths are the sign-ins in progress, by state. Safe for
// concurrent use.
type pendingAuths struct {
	mu      sync.Mutex
	byState map[string]pendingAuth
}

func (p *pendingAuths) add(state string, a pendingAuth, now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byState == nil {
		p.byState = map[string]pendingAuth{}
	}
	if len(p.byState) >= maxPending {
		for k, v := range p.byState {
			if now.After(v.expires) {
				delete(p.byState, k)
			}
		}
	}
	if len(p.byState) >= maxPending {
		return errors.New("too many sign-ins in progress; try again later")
	}
	p.byState[state] = a
	return nil
}

// take returns the pending sign-in of state once.
func (p *pendingAuths) take(state string, now time.Time) (pendingAuth, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.byState[state]
	delete(p.byState, state)
	return a, ok && now.Before(a.expires)
}

// discovery is what the console needs of an issuer's discovery document.
type discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
}

func (is Issuer) httpClient() *http.Client {
	if is.HTTPClient != nil {
		return is.HTTPClient
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// discover reads the issuer's discovery document and checks it names the
// configured issuer and https endpoints.
func (is Issuer) discover(ctx context.Context) (discovery, error) {
	var d discovery
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, is.DiscoveryURL, nil)
	if err != nil {
		return d, err
	}
	resp, err := is.httpClient().Do(req)
	if err != nil {
		return d, fmt.Errorf("the issuer's discovery document: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("the issuer's discovery document: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return d, fmt.Errorf("the issuer's discovery document: %w", err)
	}
	if strings.TrimSuffix(d.Issuer, "/") != strings.TrimSuffix(is.Issuer, "/") {
		return d, fmt.Errorf("the discovery document names the issuer %q, not %q", d.Issuer, is.Issuer)
	}
	for _, u := range []string{d.AuthorizationEndpoint, d.TokenEndpoint} {
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" || pu.Host == "" {
			return d, fmt.Errorf("the discovery document's endpoint %q is not an https URL", u)
		}
	}
	return d, nil
}

// tokenAnswer is the token endpoint's answer (RFC 6749 §5).
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// token posts a token request and returns the access token for resource.
func (is Issuer) token(ctx context.Context, endpoint string, form url.Values, resource string) (client.AccessToken, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return client.AccessToken{}, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := is.httpClient().Do(req)
	if err != nil {
		return client.AccessToken{}, "", fmt.Errorf("the issuer's token endpoint: %w", err)
	}
	defer resp.Body.Close()
	var a tokenAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&a); err != nil {
		return client.AccessToken{}, "", fmt.Errorf("the issuer's token endpoint answered HTTP %d without JSON", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK || a.AccessToken == "" {
		return client.AccessToken{}, "", &client.Error{Status: resp.StatusCode, Code: orDefault(a.Error, "TokenRefused"), Message: orDefault(a.Description, "the issuer gave no token")}
	}
	t := client.AccessToken{Resource: resource, Token: a.AccessToken}
	if a.ExpiresIn > 0 {
		t.ExpiresOn = start.Add(time.Duration(a.ExpiresIn) * time.Second)
	}
	return t, a.RefreshToken, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// scope is the OAuth scope of a resource's token, as Entra ID spells it.
func scope(resource string) string { return strings.TrimRight(resource, "/") + "/.default" }

func (c *Console) redirectURI() string {
	return strings.TrimRight(c.cfg.Endpoint, "/") + Prefix + "/oidc/callback"
}

// pkceChallenge is the S256 challenge of a verifier.
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// oidcStart begins a sign-in at an issuer: it checks the sign-in form's
// CSRF token, makes a state and a PKCE verifier, keeps them server-side,
// binds them to this browser with a cookie, and sends the browser to the
// issuer's authorization endpoint.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, smallForm)
	if err := r.ParseForm(); err != nil {
		c.renderSignin(w, r, http.StatusBadRequest, signinData{}, []flash{{Error: true, Code: "BadRequest", Message: err.Error()}})
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	ck, err := r.Cookie(preCookie)
	if err != nil || ck.Value == "" || !(&session{csrf: ck.Value}).checkCSRF(r.PostForm.Get("csrf")) {
		c.renderSignin(w, r, http.StatusForbidden, signinData{Next: next}, []flash{{Error: true, Code: "CSRFTokenInvalid", Message: "the sign-in form's CSRF token is missing or wrong: try again"}})
		return
	}
	i, err := strconv.Atoi(r.PostForm.Get("issuer"))
	if err != nil || i < 0 || i >= len(c.cfg.Issuers) {
		c.renderSignin(w, r, http.StatusBadRequest, signinData{Next: next}, []flash{{Error: true, Code: "BadRequest", Message: "no such issuer"}})
		return
	}
	is := c.cfg.Issuers[i]
	d, err := is.discover(r.Context())
	if err != nil {
		c.renderSignin(w, r, http.StatusBadGateway, signinData{Next: next}, []flash{{Error: true, Code: "IssuerUnavailable", Message: err.Error()}})
		return
	}
	state, verifier, bind := randomID(32), randomID(32), randomID(32)
	if err := c.pending.add(state, pendingAuth{issuer: i, verifier: verifier, bind: bind, next: next, expires: c.cfg.Now().Add(pendingLifetime)}, c.cfg.Now()); err != nil {
		c.renderSignin(w, r, http.StatusServiceUnavailable, signinData{Next: next}, []flash{errorFlash(err)})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: bind, Path: "/", MaxAge: int(pendingLifetime / time.Second), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	q := url.Values{
		"response_type": {"code"}, "client_id": {is.ClientID}, "redirect_uri": {c.redirectURI()},
		"scope": {"openid offline_access " + scope(is.ARMAudience)}, "state": {state},
		"code_challenge": {pkceChallenge(verifier)}, "code_challenge_method": {"S256"},
	}
	sep := "?"
	if strings.Contains(d.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	// Not a redirect: the CSP's form-action 'self' stops a form's redirect
	// to another origin. A page of our own moves on to the issuer.
	c.render(w, r, nil, http.StatusOK, "continue", view{Title: "Signing in at " + is.Issuer, Data: d.AuthorizationEndpoint + sep + q.Encode()})
}

// oidcCallback takes the issuer's redirect back: the state must be one
// this browser started (by the cookie), once; the code is exchanged with
// the PKCE verifier for a control-plane token and a refresh token, which
// gets the data-plane token. The region's API then says who signed in.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(status int, f flash) {
		clearCookie(w, oidcCookie)
		c.renderSignin(w, r, status, signinData{}, []flash{f})
	}
	a, ok := c.pending.take(q.Get("state"), c.cfg.Now())
	ck, err := r.Cookie(oidcCookie)
	if !ok || err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(a.bind)) != 1 {
		fail(http.StatusForbidden, flash{Error: true, Code: "SignInStateInvalid", Message: "this sign-in was not started here, was used already or took too long: sign in again"})
		return
	}
	if e := q.Get("error"); e != "" {
		fail(http.StatusUnauthorized, flash{Error: true, Code: e, Message: orDefault(q.Get("error_description"), "the issuer refused the sign-in")})
		return
	}
	is := c.cfg.Issuers[a.issuer]
	d, err := is.discover(r.Context())
	if err != nil {
		fail(http.StatusBadGateway, flash{Error: true, Code: "IssuerUnavailable", Message: err.Error()})
		return
	}
	arm, refresh, err := is.token(r.Context(), d.TokenEndpoint, url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {c.redirectURI()},
		"client_id": {is.ClientID}, "code_verifier": {a.verifier},
	}, is.ARMAudience)
	if err != nil {
		fail(http.StatusUnauthorized, errorFlash(err))
		return
	}
	if refresh == "" {
		fail(http.StatusUnauthorized, flash{Error: true, Code: "NoRefreshToken", Message: "the issuer gave no refresh token, which the console needs for the HSM token (scope offline_access)"})
		return
	}
	hsm, _, err := is.token(r.Context(), d.TokenEndpoint, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {is.ClientID}, "scope": {scope(is.HSMAudience)},
	}, is.HSMAudience)
	if err != nil {
		fail(http.StatusUnauthorized, errorFlash(err))
		return
	}
	// The refresh token is dropped here: like a client secret, the console
	// keeps nothing that renews its tokens.
	s, err := c.startSession(ctx(r), []client.AccessToken{arm, hsm})
	if err != nil {
		fail(http.StatusUnauthorized, errorFlash(err))
		return
	}
	clearCookie(w, oidcCookie)
	clearCookie(w, preCookie)
	setSessionCookie(w, s)
	c.log.Info("console: signed in", "objectId", s.account.ObjectID, "issuer", is.Issuer, "remote", r.RemoteAddr)
	// This answer ends a cross-site navigation, on which the browser does
	// not send the Strict session cookie: a page of our own moves on.
	c.render(w, r, nil, http.StatusOK, "continue", view{Title: "Signed in", Data: a.next})
}
