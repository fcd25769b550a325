package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"tresor/internal/wire"
)

// renewBefore is how long before its expiry a token is renewed when the
// client can renew it.
const renewBefore = 5 * time.Minute

// expirySkew is how long before its expiry a token that cannot be renewed
// is no longer used (the clocks of client and server differ a little).
const expirySkew = 30 * time.Second

// AccessToken is a bearer token for one audience (resource).
type AccessToken struct {
	// Resource is the audience, e.g. "https://127.0.0.1:8443".
	Resource string `json:"resource"`
	// Token is the bearer token itself.
	Token string `json:"accessToken"`
	// ExpiresOn is when the token expires; zero if unknown.
	ExpiresOn time.Time `json:"expiresOn"`
}

// valid reports whether t can still be used at now, with margin to spare.
func (t AccessToken) valid(now time.Time, margin time.Duration) bool {
	return t.Token != "" && (t.ExpiresOn.IsZero() || now.Add(margin).Before(t.ExpiresOn))
}

// Token returns a token for resource (an audience such as the region's
// management or HSM resource): a cached one while it is valid for five more
// minutes, else a new one from the token endpoint if the client has a
// secret, else a given one until it expires, else [ErrNoCredentials].
func (c *Client) Token(ctx context.Context, resource string) (AccessToken, error) {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	now := c.now()
	cached, ok := c.tokens[resource]
	if ok && cached.valid(now, renewBefore) {
		return cached, nil
	}
	if c.cfg.ClientSecret != "" {
		t, err := c.fetchToken(ctx, resource)
		if err != nil {
			return AccessToken{}, err
		}
		c.tokens[resource] = t
		return t, nil
	}
	if ok && cached.valid(now, expirySkew) {
		return cached, nil
	}
	static := c.static
	if c.hsmTok.Token != "" {
		if r := c.region.Load(); r != nil && resource == hsmResourceOf(r) {
			static = c.hsmTok
		}
	}
	if !ok && static.valid(now, expirySkew) {
		t := static
		t.Resource = resource
		return t, nil
	}
	if ok || static.Token != "" {
		exp := cached.ExpiresOn
		if !ok {
			exp = static.ExpiresOn
		}
		return AccessToken{}, fmt.Errorf("%w: the token for %s expired at %s", ErrNoCredentials, resource, exp.Local().Format(time.RFC3339))
	}
	return AccessToken{}, fmt.Errorf("%w: no token for %s", ErrNoCredentials, resource)
}

// Tokens returns the tokens the client holds, one per audience, for a
// caller that keeps them (e.g. a login profile).
func (c *Client) Tokens() []AccessToken {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	out := make([]AccessToken, 0, len(c.tokens))
	for _, t := range c.tokens {
		out = append(out, t)
	}
	return out
}

// ManagementToken returns a token for the region's control plane (see [Client.Token]).
func (c *Client) ManagementToken(ctx context.Context) (AccessToken, error) {
	res, err := c.managementResource(ctx)
	if err != nil {
		return AccessToken{}, err
	}
	return c.Token(ctx, res)
}

// HSMToken returns a token for the data plane of the region's HSMs (see [Client.Token]).
func (c *Client) HSMToken(ctx context.Context) (AccessToken, error) {
	res, err := c.hsmResource(ctx)
	if err != nil {
		return AccessToken{}, err
	}
	return c.Token(ctx, res)
}

// fetchToken gets a token by the client-credentials grant.
func (c *Client) fetchToken(ctx context.Context, resource string) (AccessToken, error) {
	r, err := c.Region(ctx)
	if err != nil {
		return AccessToken{}, err
	}
	tenant := c.cfg.TenantID
	if tenant == "" {
		tenant = r.TenantID
	}
	if tenant == "" {
		return AccessToken{}, fmt.Errorf("client: no tenant given and the region has no default")
	}
	authority := strings.TrimRight(r.Authority, "/")
	if authority == "" {
		authority = c.base.String()
	}
	au, err := url.Parse(authority)
	if err != nil {
		return AccessToken{}, fmt.Errorf("client: region authority %q: %w", r.Authority, err)
	}
	if au.Scheme != "https" {
		return AccessToken{}, fmt.Errorf("client: refusing to send a client secret to %s over %s", au.Host, au.Scheme)
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret},
		"scope":         {strings.TrimRight(resource, "/") + "/.default"},
	}
	endpoint := authority + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return AccessToken{}, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	start := c.now()
	var tok wire.Token
	if _, err := c.doRequest(req, &tok); err != nil {
		return AccessToken{}, err
	}
	if tok.AccessToken == "" {
		return AccessToken{}, fmt.Errorf("client: token endpoint answered no access_token")
	}
	t := AccessToken{Resource: resource, Token: tok.AccessToken}
	if tok.ExpiresIn > 0 {
		t.ExpiresOn = start.Add(time.Duration(tok.ExpiresIn) * time.Second)
	} else {
		t.ExpiresOn = jwtExpiry(tok.AccessToken)
	}
	return t, nil
}

// ManagementResource returns the audience of the region's control-plane
// tokens (what [Client.ManagementToken] asks for).
func (c *Client) ManagementResource(ctx context.Context) (string, error) {
	return c.managementResource(ctx)
}

// TokenTenant returns the tid claim of a JWT without verifying it; "" if
// the token is no JWT or has no tid.
func TokenTenant(token string) string {
	var claims struct {
		Tid string `json:"tid"`
	}
	if !jwtClaims(token, &claims) {
		return ""
	}
	return claims.Tid
}

// jwtClaims decodes the claims of a JWT into v without verifying it, and
// reports whether it could.
func jwtClaims(token string, v any) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return false
	}
	return json.Unmarshal(payload, v) == nil
}

// jwtExpiry reads the exp claim of a JWT without verifying it; zero if the
// token is no JWT or has no exp.
func jwtExpiry(token string) time.Time {
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if !jwtClaims(token, &claims) {
		return time.Time{}
	}
	exp, err := claims.Exp.Float64()
	if err != nil || exp <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(exp), 0)
}
