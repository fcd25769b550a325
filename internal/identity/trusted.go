package identity

// This is the only file of the package that imports net/http, and only as a
// client: to fetch a trusted issuer's discovery document and JWKS.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// TrustedIssuer configures an external OpenID Connect issuer (Entra ID, ADFS,
// Keycloak, Dex, …) whose access tokens the region accepts. Exactly one of
// JWKSFile and DiscoveryURL must be set.
type TrustedIssuer struct {
	// Issuer is the exact iss claim value, e.g.
	// "https://login.microsoftonline.com/{tenant}/v2.0" or
	// "https://sts.windows.net/{tenant}/".
	Issuer string
	// JWKSFile is a local JWK Set file, for sites without access to the
	// issuer. It is read by [NewValidator] and read again when a token names
	// an unknown key (at most once a minute).
	JWKSFile string
	// DiscoveryURL is the issuer's OpenID discovery document, usually
	// "{issuer}/.well-known/openid-configuration"; its jwks_uri is fetched on
	// first use, when a token names an unknown key (at most once a minute) and
	// once a day. Both must be https URLs.
	DiscoveryURL string
	// Audiences are the accepted aud values (at least one).
	Audiences []string
	// PrincipalClaim names the claim holding the principal id used in role
	// assignments; empty means [DefaultPrincipalClaim] ("oid").
	PrincipalClaim string
	// HTTPClient fetches DiscoveryURL and the JWKS; nil means a client with
	// a 10 second timeout that trusts the system's roots. A server passes
	// one that trusts the issuer's own CA when one is configured.
	HTTPClient *http.Client
}

// validate reports the first problem with t, naming the field after prefix
// (e.g. "identity: ValidatorConfig.Trusted[0]").
func (t TrustedIssuer) validate(prefix string) error {
	switch {
	case t.Issuer == "":
		return errors.New(prefix + ".Issuer: required")
	case t.JWKSFile == "" && t.DiscoveryURL == "":
		return errors.New(prefix + ".JWKSFile, .DiscoveryURL: one is required")
	case t.JWKSFile != "" && t.DiscoveryURL != "":
		return errors.New(prefix + ".JWKSFile, .DiscoveryURL: set only one")
	case len(t.Audiences) == 0:
		return errors.New(prefix + ".Audiences: at least one audience is required")
	}
	if t.DiscoveryURL != "" {
		if err := checkHTTPS(t.DiscoveryURL); err != nil {
			return fmt.Errorf("%s.DiscoveryURL: %w", prefix, err)
		}
	}
	for n, a := range t.Audiences {
		if a == "" {
			return fmt.Errorf("%s.Audiences[%d]: empty", prefix, n)
		}
	}
	return nil
}

func (t TrustedIssuer) keySource() keySource {
	if t.JWKSFile != "" {
		return fileSource{path: t.JWKSFile}
	}
	client := t.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	return discoverySource{url: t.DiscoveryURL, client: client}
}

func checkHTTPS(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return errors.New("must be an absolute https URL")
	}
	return nil
}

// discoverySource fetches the JWKS named by an OpenID discovery document.
type discoverySource struct {
	url    string
	client *http.Client
}

func (s discoverySource) name() string { return s.url }

func (s discoverySource) fetchJWKS(ctx context.Context) ([]byte, error) {
	doc, err := s.get(ctx, s.url)
	if err != nil {
		return nil, err
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(doc, &meta); err != nil {
		return nil, fmt.Errorf("identity: discovery document %s: %w", s.url, err)
	}
	if err := checkHTTPS(meta.JWKSURI); err != nil {
		return nil, fmt.Errorf("identity: discovery document %s: jwks_uri %w", s.url, err)
	}
	return s.get(ctx, meta.JWKSURI)
}

func (s discoverySource) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("identity: fetch %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("identity: fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("identity: fetch %s: status %s", u, resp.Status)
	}
	if resp.Request != nil && resp.Request.URL.Scheme != "https" {
		return nil, fmt.Errorf("identity: fetch %s: redirected to a non-https URL", u)
	}
	b, err := readLimited(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("identity: fetch %s: %w", u, err)
	}
	return b, nil
}
