package identity

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DefaultTokenLifetime is the lifetime of access tokens when
// [IssuerConfig.Lifetime] is zero (Entra ID issues tokens for 60–90 minutes).
const DefaultTokenLifetime = time.Hour

const (
	minTokenLifetime = time.Minute
	maxTokenLifetime = 24 * time.Hour
)

// IssuerConfig configures an [Issuer]. The zero value of Lifetime and Now
// mean [DefaultTokenLifetime] and time.Now.
type IssuerConfig struct {
	// Authority is the region endpoint's base URL, e.g.
	// "https://localhost:8443": an absolute https URL without query or
	// fragment; a trailing slash is dropped. Azure SDKs use it (with the
	// tenant appended) as their authority host.
	Authority string
	// TenantID is the region's tenant: letters, digits, '-' and '.', as the
	// Azure SDKs require (usually a uuid).
	TenantID string
	// Lifetime of issued access tokens, between 1 minute and 24 hours.
	Lifetime time.Duration
	// Now returns the current time; tests inject a fixed clock.
	Now func() time.Time
}

// Validate reports the first problem with c; the message names the field.
func (c IssuerConfig) Validate() error {
	if _, err := parseAuthority(c.Authority); err != nil {
		return err
	}
	if err := validateTenantID(c.TenantID); err != nil {
		return err
	}
	if c.Lifetime != 0 && (c.Lifetime < minTokenLifetime || c.Lifetime > maxTokenLifetime) {
		return fmt.Errorf("identity: IssuerConfig.Lifetime: %v is outside [%v, %v]", c.Lifetime, minTokenLifetime, maxTokenLifetime)
	}
	return nil
}

func parseAuthority(s string) (string, error) {
	const field = "identity: IssuerConfig.Authority: "
	if s == "" {
		return "", errors.New(field + "required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New(field + "not a URL")
	}
	switch {
	case u.Scheme != "https":
		return "", errors.New(field + "must be an https URL")
	case u.Host == "" || u.Opaque != "":
		return "", errors.New(field + "must be an absolute URL with a host")
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "":
		return "", errors.New(field + "must not have user info, query or fragment")
	}
	return strings.TrimRight(s, "/"), nil
}

func validateTenantID(t string) error {
	const field = "identity: IssuerConfig.TenantID: "
	if t == "" {
		return errors.New(field + "required")
	}
	if len(t) > 64 {
		return errors.New(field + "too long")
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return errors.New(field + "only letters, digits, '-' and '.' are allowed")
		}
	}
	return nil
}

// Issuer issues the region's access tokens: compact JWS JWTs signed with
// ES256, shaped like Entra ID v2 access tokens. It also renders the JWKS and
// the OpenID discovery document. An Issuer is immutable and safe for
// concurrent use.
type Issuer struct {
	authority string
	tenant    string
	issuerURL string
	lifetime  time.Duration
	now       func() time.Time
	keys      []*SigningKey
	signer    jose.Signer
	jwks      []byte
	openid    []byte
}

// NewIssuer returns an Issuer for cfg. The first key signs new tokens; all
// keys are published in the JWKS and accepted by a [Validator], so a new key
// can be put first while tokens signed by the old one are still in use.
func NewIssuer(cfg IssuerConfig, keys ...*SigningKey) (*Issuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("identity: NewIssuer: at least one signing key is required")
	}
	seen := make(map[string]bool, len(keys))
	for n, k := range keys {
		if k == nil || k.priv == nil {
			return nil, fmt.Errorf("identity: NewIssuer: signing key %d is nil", n)
		}
		if seen[k.kid] {
			return nil, fmt.Errorf("identity: NewIssuer: signing key %d repeats key id %s", n, k.kid)
		}
		seen[k.kid] = true
	}
	authority, _ := parseAuthority(cfg.Authority)
	i := &Issuer{
		authority: authority,
		tenant:    cfg.TenantID,
		issuerURL: authority + "/" + cfg.TenantID + "/v2.0",
		lifetime:  cfg.Lifetime,
		now:       cfg.Now,
		keys:      append([]*SigningKey(nil), keys...),
	}
	if i.lifetime == 0 {
		i.lifetime = DefaultTokenLifetime
	}
	if i.now == nil {
		i.now = time.Now
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: keys[0].priv, KeyID: keys[0].kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("identity: NewIssuer: %w", err)
	}
	i.signer = signer

	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.PublicJWK())
	}
	if i.jwks, err = json.Marshal(set); err != nil {
		return nil, fmt.Errorf("identity: NewIssuer: JWKS: %w", err)
	}
	if i.openid, err = json.Marshal(i.openIDConfiguration()); err != nil {
		return nil, fmt.Errorf("identity: NewIssuer: OpenID configuration: %w", err)
	}
	return i, nil
}

// IssuerURL returns the iss claim of issued tokens:
// "{authority}/{tenant}/v2.0".
func (i *Issuer) IssuerURL() string { return i.issuerURL }

// TenantID returns the tenant the issuer serves.
func (i *Issuer) TenantID() string { return i.tenant }

// Lifetime returns the lifetime of issued tokens.
func (i *Issuer) Lifetime() time.Duration { return i.lifetime }

// accessTokenClaims are the claims of an issued token, named as in Entra ID
// v2 app-only access tokens (plus appid from v1, and jti from RFC 7519).
type accessTokenClaims struct {
	Aud    string `json:"aud"`
	Iss    string `json:"iss"`
	Iat    int64  `json:"iat"`
	Nbf    int64  `json:"nbf"`
	Exp    int64  `json:"exp"`
	AppID  string `json:"appid"`
	Azp    string `json:"azp"`
	Azpacr string `json:"azpacr"` // "1": the client authenticated with a secret
	IDTyp  string `json:"idtyp"`  // "app": an app-only token
	Oid    string `json:"oid"`
	Sub    string `json:"sub"`
	Tid    string `json:"tid"`
	Uti    string `json:"uti"`
	Jti    string `json:"jti"`
	Ver    string `json:"ver"`
}

// Issue returns a signed access token for p with the single audience
// audience, and its expiry time. The token's claims are iss, aud, sub (= oid),
// oid, tid, appid and azp (= client id), iat, nbf, exp, ver "2.0", and a random
// uti and jti. Issue does not check that the audience is one the region
// serves; [Issuer.Token] does.
func (i *Issuer) Issue(p Principal, audience string) (string, time.Time, error) {
	switch {
	case p.ObjectID == "":
		return "", time.Time{}, errors.New("identity: Issue: principal has no object id")
	case p.ClientID == "":
		return "", time.Time{}, errors.New("identity: Issue: principal has no client id")
	case audience == "":
		return "", time.Time{}, errors.New("identity: Issue: audience is required")
	}
	now := i.now().Unix()
	exp := now + int64(i.lifetime/time.Second)
	var id [16]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never returns an error
	uti := base64.RawURLEncoding.EncodeToString(id[:])
	payload, err := json.Marshal(accessTokenClaims{
		Aud:    audience,
		Iss:    i.issuerURL,
		Iat:    now,
		Nbf:    now,
		Exp:    exp,
		AppID:  p.ClientID,
		Azp:    p.ClientID,
		Azpacr: "1",
		IDTyp:  "app",
		Oid:    p.ObjectID,
		Sub:    p.ObjectID,
		Tid:    i.tenant,
		Uti:    uti,
		Jti:    uti,
		Ver:    "2.0",
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("identity: Issue: %w", err)
	}
	jws, err := i.signer.Sign(payload)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("identity: Issue: sign: %w", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("identity: Issue: serialize: %w", err)
	}
	if token, err = lowSCompact(&i.keys[0].priv.PublicKey, token); err != nil {
		return "", time.Time{}, fmt.Errorf("identity: Issue: %w", err)
	}
	return token, time.Unix(exp, 0), nil
}

// JWKS returns the issuer's public keys as a JSON Web Key Set (RFC 7517 §5):
// {"keys":[{"use":"sig","kty":"EC","kid":…,"crv":"P-256","alg":"ES256","x":…,"y":…}]}.
// The server serves it at "{authority}/{tenant}/discovery/v2.0/keys". The
// caller may modify the returned slice.
func (i *Issuer) JWKS() []byte { return append([]byte(nil), i.jwks...) }

// OpenIDConfiguration returns the OpenID Connect discovery document (OpenID
// Connect Discovery 1.0 §3) in Entra ID v2's shape, which the server serves
// at "{authority}/{tenant}/v2.0/.well-known/openid-configuration". Azure SDKs
// (MSAL) read issuer, authorization_endpoint and token_endpoint from it and
// require the issuer's host to be the authority's. Only the token endpoint
// (client credentials) is served; authorization_endpoint is listed because
// MSAL requires it. The caller may modify the returned slice.
func (i *Issuer) OpenIDConfiguration() []byte { return append([]byte(nil), i.openid...) }

type openIDConfiguration struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	TenantRegionScope                 *string  `json:"tenant_region_scope"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
}

func (i *Issuer) openIDConfiguration() openIDConfiguration {
	base := i.authority + "/" + i.tenant
	host := i.authority
	if u, err := url.Parse(i.authority); err == nil {
		host = u.Hostname()
	}
	return openIDConfiguration{
		TokenEndpoint:                     base + "/oauth2/v2.0/token",
		TokenEndpointAuthMethodsSupported: []string{"client_secret_post", "client_secret_basic"},
		JWKSURI:                           base + "/discovery/v2.0/keys",
		ResponseModesSupported:            []string{"query", "fragment", "form_post"},
		SubjectTypesSupported:             []string{"pairwise"},
		IDTokenSigningAlgValuesSupported:  []string{string(jose.ES256)},
		ResponseTypesSupported:            []string{"code", "id_token", "code id_token", "id_token token"},
		ScopesSupported:                   []string{"openid", "profile", "email", "offline_access"},
		Issuer:                            i.issuerURL,
		RequestURIParameterSupported:      false,
		AuthorizationEndpoint:             base + "/oauth2/v2.0/authorize",
		GrantTypesSupported:               []string{"client_credentials"},
		ClaimsSupported:                   []string{"sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "appid", "azp", "ver"},
		TenantRegionScope:                 nil,
		CloudInstanceName:                 host,
	}
}
