// Package client implements a typed HTTP client for a Tresor region, a
// self-hosted Azure Key Vault Managed HSM: the control plane in Azure Resource
// Manager's shape (managed HSMs, subscriptions, locations), Tresor's own
// identity API under /tresor, and the data plane of each HSM instance at
// https://{name}.{dnsSuffix}:{port} (spec §1).
//
// Reach for [New] with a [Config], then the typed methods ([Client.CreateHSM],
// [Client.ListHSMs], [Client.CreatePrincipal], …) or, for the data plane,
// [Client.HSMURL] with [Client.Do] or [Client.DoJSON]. The JSON shapes are
// those of package wire.
//
// # Authentication
//
// The client gets OAuth 2.0 client-credentials tokens from the region's token
// endpoint ({authority}/{tenant}/oauth2/v2.0/token) and caches them in memory
// per audience, renewing each five minutes before it expires. Control-plane and
// /tresor calls use the region's management resource as audience; data-plane
// calls use its HSM resource. Instead of a client secret the caller may hand
// in tokens fetched earlier ([Config.Token], [Config.Tokens]); when those
// expire and there is no secret to renew them, calls fail with
// [ErrNoCredentials]. Tokens are only ever sent to the region endpoint and to
// HSM hosts under the region's DNS suffix.
//
// # HSM host names
//
// Clients usually have no DNS entry for {name}.{dnsSuffix}. The client's
// transport therefore dials the region endpoint's address for any host under
// the region's DNS suffix while keeping the HSM's name as the HTTP Host and as
// the TLS server name (SNI), so the server can route by either. It trusts the
// CA certificates of [Config.CAFile] (or [Config.CAPEM]) only, or the system
// roots when neither is given.
//
// # Errors
//
// Every answer of the server outside 2xx becomes an [*Error] carrying the
// HTTP status and the code and message of the Azure error body
// ({"error":{"code","message"}}) or of the OAuth error body.
//
// A Client is safe for concurrent use.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tresor/internal/wire"
)

// API versions the client sends.
const (
	// ARMAPIVersion is the api-version of Microsoft.KeyVault control-plane calls.
	ARMAPIVersion = "2023-07-01"
	// SubscriptionsAPIVersion is the api-version of subscription and location calls.
	SubscriptionsAPIVersion = "2022-12-01"
)

// maxBody bounds how much of a response body the client reads.
const maxBody = 64 << 20

// Config configures a [Client]. Only Server is required.
type Config struct {
	// Server is the region endpoint, e.g. "https://127.0.0.1:8443".
	Server string
	// CAFile names a PEM file of CA certificates to trust for the region.
	// CAPEM holds such certificates directly; it wins over CAFile. With
	// either, only those CAs are trusted; with neither, the system roots.
	CAFile string
	CAPEM  []byte
	// TenantID is the tenant whose token endpoint issues tokens; empty means
	// the region's default tenant.
	TenantID string
	// ClientID and ClientSecret are a service principal's credentials. With
	// them the client fetches and renews tokens itself.
	ClientID     string
	ClientSecret string
	// Token is a bearer token fetched earlier, used for every audience for
	// which Tokens has no valid entry, until it expires (when its JWT exp
	// claim can be read).
	Token string
	// HSMToken, if set, is a bearer token fetched earlier for the HSM
	// endpoints (the data plane); Token then serves the region endpoint
	// only. A trusted issuer whose planes have different audiences needs
	// both.
	HSMToken string
	// Tokens are tokens fetched earlier, one per audience (e.g. from a login
	// profile). The client uses them until they expire.
	Tokens []AccessToken
	// Subscription is the subscription of control-plane calls; empty means
	// the region's default subscription.
	Subscription string
	// HTTPClient, if set, is used as is: it must then trust the region's CA
	// and route HSM host names to the region itself.
	HTTPClient *http.Client
	// PollInterval is the wait between two polls of a long-running operation
	// when the server sends no Retry-After; zero means one second.
	PollInterval time.Duration
}

// Client talks to one Tresor region. Create it with [New].
type Client struct {
	cfg      Config
	base     *url.URL // the region endpoint, without trailing slash
	hc       *http.Client
	poll     time.Duration
	now      func() time.Time
	regionMu sync.Mutex                      // serializes fetching the region info
	region   atomic.Pointer[wire.RegionInfo] // set once fetched
	tokMu    sync.Mutex
	tokens   map[string]AccessToken // by resource; guarded by tokMu
	static   AccessToken            // Config.Token with its expiry, if known
	hsmTok   AccessToken            // Config.HSMToken with its expiry, if known
}

// Error is an error answer of the server: the HTTP status and the code and
// message of the Azure error body (or of the OAuth error body of the token
// endpoint, whose "error" becomes Code).
type Error struct {
	Status  int
	Code    string
	Message string
	// InnerCode is the body's innererror.code, if any (e.g. "ForbiddenByRbac").
	InnerCode string
}

// Error returns "code: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// ErrNoCredentials is returned when a call needs a token that the client
// does not have and cannot get: the tokens it was given are missing or
// expired and it has no client secret to fetch new ones.
var ErrNoCredentials = errors.New("client: no valid token and no client secret to get one")

// New returns a client for the region at cfg.Server. It does not contact the
// server.
func New(cfg Config) (*Client, error) {
	if cfg.Server == "" {
		return nil, errors.New("client: Config.Server is empty")
	}
	base, err := url.Parse(strings.TrimRight(cfg.Server, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: Config.Server: %w", err)
	}
	if base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("client: Config.Server %q: want https://host[:port]", cfg.Server)
	}
	if base.Path != "" || base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("client: Config.Server %q: want no path or query", cfg.Server)
	}
	if cfg.ClientSecret != "" && cfg.ClientID == "" {
		return nil, errors.New("client: Config.ClientSecret given without Config.ClientID")
	}
	c := &Client{
		cfg:    cfg,
		base:   base,
		poll:   cfg.PollInterval,
		now:    time.Now,
		tokens: make(map[string]AccessToken),
	}
	if c.poll <= 0 {
		c.poll = time.Second
	}
	for _, t := range cfg.Tokens {
		if t.Resource != "" && t.Token != "" {
			c.tokens[t.Resource] = t
		}
	}
	if cfg.Token != "" {
		c.static = AccessToken{Token: cfg.Token, ExpiresOn: jwtExpiry(cfg.Token)}
	}
	if cfg.HSMToken != "" {
		c.hsmTok = AccessToken{Token: cfg.HSMToken, ExpiresOn: jwtExpiry(cfg.HSMToken)}
	}
	if cfg.HTTPClient != nil {
		c.hc = cfg.HTTPClient
	} else {
		pem := cfg.CAPEM
		if pem == nil && cfg.CAFile != "" {
			pem, err = os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("client: Config.CAFile: %w", err)
			}
		}
		c.hc, err = c.newHTTPClient(pem)
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Server returns the region endpoint the client talks to.
func (c *Client) Server() string { return c.base.String() }

// Region returns what the region tells about itself (GET /tresor/region, no
// authentication). The answer is cached for the client's lifetime.
func (c *Client) Region(ctx context.Context) (*wire.RegionInfo, error) {
	if r := c.region.Load(); r != nil {
		return r, nil
	}
	c.regionMu.Lock()
	defer c.regionMu.Unlock()
	if r := c.region.Load(); r != nil {
		return r, nil
	}
	var r wire.RegionInfo
	if _, err := c.send(ctx, http.MethodGet, c.base.String()+"/tresor/region", "", nil, &r); err != nil {
		return nil, err
	}
	if r.DNSSuffix == "" {
		return nil, errors.New("client: region info has no dnsSuffix")
	}
	c.region.Store(&r)
	return &r, nil
}

// Subscription returns the subscription of control-plane calls:
// [Config.Subscription], or the region's default.
func (c *Client) Subscription(ctx context.Context) (string, error) {
	if c.cfg.Subscription != "" {
		return c.cfg.Subscription, nil
	}
	r, err := c.Region(ctx)
	if err != nil {
		return "", err
	}
	if r.SubscriptionID == "" {
		return "", errors.New("client: no subscription given and the region has no default")
	}
	return r.SubscriptionID, nil
}

// managementResource returns the audience of control-plane tokens.
func (c *Client) managementResource(ctx context.Context) (string, error) {
	r, err := c.Region(ctx)
	if err != nil {
		return "", err
	}
	if r.ManagementResource != "" {
		return r.ManagementResource, nil
	}
	return c.base.String(), nil
}

// hsmResource returns the audience of data-plane tokens.
func (c *Client) hsmResource(ctx context.Context) (string, error) {
	r, err := c.Region(ctx)
	if err != nil {
		return "", err
	}
	return hsmResourceOf(r), nil
}

// hsmResourceOf returns the audience of data-plane tokens of region r.
func hsmResourceOf(r *wire.RegionInfo) string {
	if r.HSMResource != "" {
		return r.HSMResource
	}
	return "https://" + r.DNSSuffix
}

// resourceFor returns the token audience for a request to u, or an error if
// u is neither the region endpoint nor an HSM host of the region.
func (c *Client) resourceFor(ctx context.Context, u *url.URL) (string, error) {
	if u.Scheme != "https" {
		return "", fmt.Errorf("client: refusing to send a token over %s to %s", u.Scheme, u.Host)
	}
	if hostPort(u) == hostPort(c.base) {
		return c.managementResource(ctx)
	}
	r, err := c.Region(ctx)
	if err != nil {
		return "", err
	}
	// The region may name itself differently than Config.Server does
	// (localhost vs 127.0.0.1) in the status URLs and nextLinks it returns.
	if ep, err := url.Parse(r.Endpoint); err == nil && ep.Scheme == "https" && hostPort(u) == hostPort(ep) {
		return c.managementResource(ctx)
	}
	if isUnder(u.Hostname(), r.DNSSuffix) {
		return c.hsmResource(ctx)
	}
	return "", fmt.Errorf("client: refusing to send a token to %s: neither the region %s nor an HSM under %s", u.Host, c.base.Host, r.DNSSuffix)
}

// hostPort returns u's host with an explicit port, lowercased.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return strings.ToLower(u.Hostname()) + ":" + port
}

// isUnder reports whether host is a name directly or indirectly under suffix.
func isUnder(host, suffix string) bool {
	if suffix == "" {
		return false
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	suffix = strings.TrimSuffix(strings.ToLower(suffix), ".")
	return strings.HasSuffix(host, "."+suffix) && len(host) > len(suffix)+1
}

// call sends a JSON request to the region endpoint with a management token.
// path is absolute ("/subscriptions/…") or a full URL (nextLink, status URLs).
func (c *Client) call(ctx context.Context, method, path string, in, out any) (*http.Response, error) {
	u := path
	if strings.HasPrefix(path, "/") {
		u = c.base.String() + path
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	resource, err := c.resourceFor(ctx, parsed)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, method, u, resource, in, out)
}

// send sends one request. With a resource it adds a bearer token for it. A
// JSON body is marshalled from in (unless nil); a 2xx body is decoded into
// out (unless nil or empty); any other status becomes an *Error. The
// returned response's body has been read and closed.
func (c *Client) send(ctx context.Context, method, u, resource string, in, out any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("client: encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	if resource != "" {
		tok, err := c.Token(ctx, resource)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok.Token)
	}
	return c.doRequest(req, out)
}

// doRequest sends req, decodes a 2xx JSON body into out (unless nil or
// empty) and turns any other status into an *Error. The returned response's
// body has been read and closed.
func (c *Client) doRequest(req *http.Request, out any) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := readAll(resp)
	if err != nil {
		return nil, fmt.Errorf("client: reading response of %s %s: %w", req.Method, redact(req.URL.String()), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, decodeError(resp.StatusCode, data)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp, fmt.Errorf("client: decoding response of %s %s: %w", req.Method, redact(req.URL.String()), err)
		}
	}
	return resp, nil
}

// readAll reads a response body, at most maxBody bytes of it.
func readAll(resp *http.Response) ([]byte, error) {
	return io.ReadAll(io.LimitReader(resp.Body, maxBody))
}

// redact drops the query of a URL for error messages (it may carry tokens).
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// decodeError turns an error answer into an *Error: from the Azure error
// body, else the OAuth error body, else the status.
func decodeError(status int, body []byte) *Error {
	var az wire.Error
	if json.Unmarshal(body, &az) == nil && az.Error.Code != "" {
		e := &Error{Status: status, Code: az.Error.Code, Message: az.Error.Message}
		if az.Error.InnerError != nil {
			e.InnerCode = az.Error.InnerError.Code
		}
		return e
	}
	var oe wire.OAuthError
	if json.Unmarshal(body, &oe) == nil && oe.Error != "" {
		return &Error{Status: status, Code: oe.Error, Message: oe.ErrorDescription}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	if msg == "" {
		msg = fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
	}
	code := strings.ReplaceAll(http.StatusText(status), " ", "")
	if code == "" {
		code = fmt.Sprintf("HTTP%d", status)
	}
	return &Error{Status: status, Code: code, Message: msg}
}
