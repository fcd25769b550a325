// Package console implements the region's web console, served at /console
// on the region endpoint: server-rendered pages (html/template) with a
// little CSS and JavaScript, all embedded in the binary, for the region's
// HSMs, their activation, keys, role assignments and backups.
//
// # No side door
//
// The console authorises nothing itself. A sign-in exchanges a principal's
// client id and secret at the region's own token endpoint (or, through a
// trusted [Issuer], an authorization code with PKCE at the issuer's) for a
// control-plane and a data-plane token, which stay in a server-side
// session; every read and every action is then a request to the region's
// own API handler, in process ([Config.API]), with the session's bearer
// token, on the routes and in the JSON that az and the Azure SDKs use. RBAC,
// validation and audit are therefore exactly the API's, and an error the
// API answers is shown with its Azure code and message.
//
// # Sessions
//
// The browser holds only a random session id, in a __Host- cookie that is
// HttpOnly, Secure and SameSite=Strict; tokens never reach page scripts.
// Every state-changing request is a POST that carries the session's CSRF
// token, and a cross-site request (by Sec-Fetch-Site or Origin) is refused
// before it is looked at. Pages are sent with a strict Content-Security-
// Policy (no inline script), X-Frame-Options DENY and no-store caching.
// Sign-out deletes the session on the server. See docs/console.md.
//
// Use [New] and [Wrap]: the composition root wraps the API handler so that
// /console and /console/... reach the console on the region endpoint.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"tresor/internal/client"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is the path under which the console is served.
const Prefix = "/console"

// Cookie names: the __Host- prefix makes browsers insist on Secure, Path=/
// and no Domain, so no other host can set or read them.
const (
	sessionCookie = "__Host-tresor-console"
	// preCookie carries the sign-in form's CSRF token (double submit),
	// before there is a session.
	preCookie = "__Host-tresor-console-pre"
)

// Config configures a [Console].
type Config struct {
	// API is the region's API handler: the console's only way to read or
	// change anything.
	API http.Handler
	// Endpoint is the region endpoint URL, e.g. https://localhost:8443.
	Endpoint string
	// DNSSuffix is the HSM hosts' suffix: requests to an HSM host are never
	// the console's (see [Wrap]).
	DNSSuffix string
	// Issuers are the trusted issuers offered on the sign-in page
	// (authorization code with PKCE); none: client secret sign-in only.
	Issuers []Issuer
	Logger  *slog.Logger
	Now     func() time.Time
	// IdleTimeout and MaxLifetime bound sessions (defaults
	// DefaultIdleTimeout, DefaultMaxLifetime).
	IdleTimeout, MaxLifetime time.Duration
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.API == nil {
		return errors.New("console: Config.API is nil")
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("console: Config.Endpoint %q: want https://host[:port]", c.Endpoint)
	}
	return nil
}

// Console is the web console's HTTP handler. Safe for concurrent use.
type Console struct {
	cfg      Config
	log      *slog.Logger
	mux      *http.ServeMux
	sessions *sessions
	pages    map[string]*pageTemplate
	hc       *http.Client // in process: the API handler
	records  *records     // the jobs and drills started through the console
	pending  pendingAuths // sign-ins at issuers in progress
	static   http.Handler

	regionMu sync.Mutex
	region   string // the location name, once known
}

// New returns the console.
func New(cfg Config) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = DefaultMaxLifetime
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c := &Console{
		cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), pages: pages,
		sessions: newSessions(cfg.IdleTimeout, cfg.MaxLifetime, cfg.Now),
		hc:       &http.Client{Transport: inProcess{api: cfg.API}},
		records:  newRecords(),
		static:   http.StripPrefix(Prefix+"/static/", http.FileServerFS(sub)),
	}
	c.routes()
	return c, nil
}

// Wrap returns a handler that serves /console and /console/... on the
// region endpoint with con and everything else with api.
func Wrap(api http.Handler, con *Console) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.URL.Path == Prefix || strings.HasPrefix(r.URL.Path, Prefix+"/")) && !con.hsmHost(r.Host) {
			con.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

func (c *Console) hsmHost(host string) bool {
	if c.cfg.DNSSuffix == "" {
		return false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return strings.HasSuffix(host, "."+strings.ToLower(c.cfg.DNSSuffix))
}

// securityHeaders are set on every console answer.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
	"X-Frame-Options":              "DENY",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "same-origin",
	"Cache-Control":                "no-store",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Strict-Transport-Security":    "max-age=31536000",
	"Permissions-Policy":           "camera=(), microphone=(), geolocation=()",
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range securityHeaders {
		h.Set(k, v)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.Method == http.MethodPost {
		if why := crossSite(r); why != "" {
			c.log.Warn("console: cross-site request refused", "path", r.URL.Path, "why", why, "remote", r.RemoteAddr)
			http.Error(w, "cross-site request refused: "+why, http.StatusForbidden)
			return
		}
	}
	c.mux.ServeHTTP(w, r)
}

// crossSite says why a state-changing request is not same-origin, or "".
// Browsers send Sec-Fetch-Site (and Origin on POST); a request with
// neither still needs the CSRF token.
func crossSite(r *http.Request) string {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return "Sec-Fetch-Site is " + s
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, r.Host) {
			return "Origin " + o + " is not this console's"
		}
	}
	return ""
}

// client returns an API client that speaks for the session: its tokens,
// through the in-process transport.
func (c *Console) client(s *session) (*client.Client, error) {
	return c.tokenClient(s.tokens)
}

// tokenClient is an API client with a control-plane and a data-plane
// token (in this order), whatever their audiences: the region's own, or a
// trusted issuer's.
func (c *Console) tokenClient(tokens []client.AccessToken) (*client.Client, error) {
	if len(tokens) != 2 {
		return nil, errors.New("console: a session needs a control-plane and a data-plane token")
	}
	return client.New(client.Config{Server: c.cfg.Endpoint, Token: tokens[0].Token, HSMToken: tokens[1].Token, HTTPClient: c.hc, PollInterval: 100 * time.Millisecond})
}

// ctx is the request's context carrying the browser's address for the
// in-process requests.
func ctx(r *http.Request) context.Context { return withRemote(r.Context(), r.RemoteAddr) }

// signIn exchanges a client id and secret at the region's token endpoint
// (in process) for a control-plane and a data-plane token; the secret is
// forgotten once they are fetched.
func (c *Console) signIn(ctx context.Context, tenant, clientID, secret string) (*session, error) {
	cl, err := client.New(client.Config{Server: c.cfg.Endpoint, TenantID: tenant, ClientID: clientID, ClientSecret: secret, HTTPClient: c.hc})
	if err != nil {
		return nil, err
	}
	mgmt, err := cl.ManagementToken(ctx)
	if err != nil {
		return nil, err
	}
	hsm, err := cl.HSMToken(ctx)
	if err != nil {
		return nil, err
	}
	return c.startSession(ctx, []client.AccessToken{mgmt, hsm})
}

// startSession asks the region's API who holds the tokens (GET
// /tresor/account, which also validates them) and starts a session.
func (c *Console) startSession(ctx context.Context, tokens []client.AccessToken) (*session, error) {
	tc, err := c.tokenClient(tokens)
	if err != nil {
		return nil, err
	}
	acct, err := tc.Account(ctx)
	if err != nil {
		return nil, err
	}
	c.regionMu.Lock()
	c.region = acct.Region
	c.regionMu.Unlock()
	return c.sessions.create(tokens, accountInfo{ObjectID: acct.ObjectID, ClientID: acct.ClientID, DisplayName: acct.DisplayName, RegionAdmin: acct.RegionAdmin})
}

func (c *Console) regionName() string {
	c.regionMu.Lock()
	defer c.regionMu.Unlock()
	return c.region
}

// errorFlash turns an error into the message a page shows: an API error
// with its Azure code and message, anything else as it is.
func errorFlash(err error) flash {
	var ae *client.Error
	if errors.As(err, &ae) {
		code := ae.Code
		if ae.InnerCode != "" {
			code += " (" + ae.InnerCode + ")"
		}
		return flash{Error: true, Code: code, Message: ae.Message}
	}
	if errors.Is(err, client.ErrNoCredentials) {
		return flash{Error: true, Code: "SessionExpired", Message: "the session's tokens expired: sign in again"}
	}
	return flash{Error: true, Code: "Error", Message: err.Error()}
}
