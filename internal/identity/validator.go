package identity

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	// DefaultSkew is the clock skew allowed when [ValidatorConfig.Skew] is
	// zero.
	DefaultSkew = 2 * time.Minute
	// DefaultPrincipalClaim names the claim holding the principal id when
	// [TrustedIssuer.PrincipalClaim] is empty.
	DefaultPrincipalClaim = "oid"

	maxSkew = 10 * time.Minute
	// maxTokenSize bounds the tokens Validate parses (Entra tokens are 1–4 KiB).
	maxTokenSize = 32 << 10
)

// acceptedAlgorithms are the JWS algorithms a token may use; a key narrows
// them further (see newVerifyKey). Never "none", never HMAC.
var acceptedAlgorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512,
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
}

// ValidatorConfig configures a [Validator]. The zero values of Skew and Now
// mean [DefaultSkew] and time.Now.
type ValidatorConfig struct {
	// Local is the region's own issuer; nil accepts external tokens only.
	Local *Issuer
	// LocalAudiences are the aud values accepted in Local's tokens (the
	// resources the region serves, as advertised in the challenge). Required
	// with Local.
	LocalAudiences []string
	// Trusted are the external issuers whose tokens are accepted.
	Trusted []TrustedIssuer
	// Skew is the clock skew allowed on exp, nbf and iat (at most 10 minutes).
	Skew time.Duration
	// Now returns the current time; tests inject a fixed clock.
	Now func() time.Time
	// Logger receives a warning each time fetching or reading a trusted
	// issuer's keys fails (at most once a minute per issuer, see
	// [Validator.Validate]), naming the issuer and the error, which names
	// the URL or file and the TLS, HTTP or parse failure; and a note when
	// they are fetched again. It never sees tokens. Nil logs nothing.
	Logger *slog.Logger
	// ShareKeys, if set, is a Validator whose key caches this one uses for
	// the trusted issuers both configure with the same JWKSFile or
	// DiscoveryURL, so that the validators of two endpoints, which accept
	// different audiences from the same issuers, fetch (and log) once.
	ShareKeys *Validator
}

// Validate reports the first problem with c; the message names the field. It
// does not read files or the network.
func (c ValidatorConfig) Validate() error {
	const prefix = "identity: ValidatorConfig"
	if c.Local == nil && len(c.Trusted) == 0 {
		return errors.New(prefix + ".Local, .Trusted: at least one issuer is required")
	}
	if c.Local != nil && len(c.LocalAudiences) == 0 {
		return errors.New(prefix + ".LocalAudiences: at least one audience is required with Local")
	}
	if c.Local == nil && len(c.LocalAudiences) != 0 {
		return errors.New(prefix + ".LocalAudiences: set without Local")
	}
	for n, a := range c.LocalAudiences {
		if a == "" {
			return fmt.Errorf("%s.LocalAudiences[%d]: empty", prefix, n)
		}
	}
	if c.Skew < 0 || c.Skew > maxSkew {
		return fmt.Errorf("%s.Skew: %v is outside [0, %v]", prefix, c.Skew, maxSkew)
	}
	seen := make(map[string]bool)
	if c.Local != nil {
		seen[c.Local.IssuerURL()] = true
	}
	for n, t := range c.Trusted {
		p := fmt.Sprintf("%s.Trusted[%d]", prefix, n)
		if err := t.validate(p); err != nil {
			return err
		}
		if seen[t.Issuer] {
			return fmt.Errorf("%s.Issuer: %q is configured twice", p, t.Issuer)
		}
		seen[t.Issuer] = true
	}
	return nil
}

// Validator checks bearer tokens from the region's own [Issuer] and from
// trusted external issuers. It caches the issuers' parsed keys. A Validator
// is safe for concurrent use.
type Validator struct {
	issuers map[string]*acceptedIssuer // by exact iss
	skew    time.Duration
	now     func() time.Time
}

type acceptedIssuer struct {
	issuer         string
	source         string          // the trusted issuer's JWKSFile or DiscoveryURL
	audiences      map[string]bool // without trailing slash
	principalClaim string
	local          bool
	keys           *keyCache
	shared         bool // keys belong to the ValidatorConfig.ShareKeys validator
}

// NewValidator returns a Validator for cfg. It reads the JWKS files of
// trusted issuers now (failing if one has no usable key); issuers with a
// DiscoveryURL are contacted on first use.
func NewValidator(cfg ValidatorConfig) (*Validator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &Validator{issuers: make(map[string]*acceptedIssuer), skew: cfg.Skew, now: cfg.Now}
	if v.skew == 0 {
		v.skew = DefaultSkew
	}
	if v.now == nil {
		v.now = time.Now
	}
	if l := cfg.Local; l != nil {
		keys := make(map[string]verifyKey, len(l.keys))
		for _, k := range l.keys {
			keys[k.kid] = verifyKey{key: k.PublicJWK().Key, algs: []jose.SignatureAlgorithm{jose.ES256}, lowS: true}
		}
		v.issuers[l.IssuerURL()] = &acceptedIssuer{
			issuer:         l.IssuerURL(),
			audiences:      audienceSet(cfg.LocalAudiences),
			principalClaim: DefaultPrincipalClaim,
			local:          true,
			keys:           newStaticKeyCache(keys),
		}
	}
	for n, t := range cfg.Trusted {
		a := &acceptedIssuer{
			issuer:         t.Issuer,
			source:         t.JWKSFile + t.DiscoveryURL,
			audiences:      audienceSet(t.Audiences),
			principalClaim: t.PrincipalClaim,
		}
		if a.principalClaim == "" {
			a.principalClaim = DefaultPrincipalClaim
		}
		if sh := cfg.ShareKeys; sh != nil {
			if o := sh.issuers[t.Issuer]; o != nil && !o.local && o.source == a.source {
				a.keys, a.shared = o.keys, true
				v.issuers[t.Issuer] = a
				continue
			}
		}
		a.keys = newKeyCache(t.keySource(), v.now)
		a.keys.log = issuerLogger(cfg.Logger, t.Issuer)
		if t.JWKSFile != "" {
			if err := a.keys.refresh(context.Background(), nil, false); err != nil {
				return nil, fmt.Errorf("identity: ValidatorConfig.Trusted[%d].JWKSFile: %w", n, err)
			}
		}
		v.issuers[t.Issuer] = a
	}
	return v, nil
}

// FetchKeys fetches the keys of every trusted issuer that has none yet
// (issuers with a DiscoveryURL are otherwise contacted on first use), at
// most once a minute per issuer; issuers whose keys come from
// [ValidatorConfig.ShareKeys] are left to that Validator's FetchKeys. It
// returns the failures joined, each naming the issuer; they are also
// logged. Unlike the fetches a token starts, these end with ctx. A server
// calls it at start, to refuse to start with a misconfigured issuer or to
// retry until every issuer answers.
func (v *Validator) FetchKeys(ctx context.Context) error {
	var errs []error
	for _, iss := range v.issuers {
		c := iss.keys
		if c.source == nil || iss.shared || c.set.Load() != nil {
			continue
		}
		if err := c.refresh(ctx, nil, false); err != nil {
			errs = append(errs, fmt.Errorf("trusted issuer %s: %w", iss.issuer, err))
		}
	}
	return errors.Join(errs...)
}

func issuerLogger(l *slog.Logger, issuer string) *slog.Logger {
	if l == nil {
		return nil
	}
	return l.With("issuer", issuer)
}

func audienceSet(auds []string) map[string]bool {
	m := make(map[string]bool, len(auds))
	for _, a := range auds {
		m[trimSlash(a)] = true
	}
	return m
}

// Caller is the authenticated principal behind a valid token.
type Caller struct {
	ObjectID  string    // the principal id: the oid claim, or the issuer's PrincipalClaim
	TenantID  string    // the tid claim, if any
	ClientID  string    // the appid (v1) or azp (v2) claim, if any
	Issuer    string    // the iss claim
	ExpiresAt time.Time // the exp claim
	Local     bool      // issued by the region's own Issuer
}

// Validate checks a bearer token and returns its caller. The token must be a
// compact JWS signed with ES256/384/512, RS256/384/512 or PS256/384/512 (as
// its key allows) by a key, named by kid, of the issuer its iss names
// exactly; its aud (a string or an array) must include one of that issuer's
// audiences (ignoring a trailing slash); exp is required and nbf and iat must
// not lie in the future, all within the allowed skew; the principal claim
// must be a non-empty string.
//
// Every rejection wraps [ErrInvalidToken] with a short reason safe to show to
// the client; a failure to fetch a trusted issuer's keys also wraps
// [ErrKeysUnavailable]. On error the Caller is zero. ctx bounds waiting for a
// key refresh.
func (v *Validator) Validate(ctx context.Context, token string) (Caller, error) {
	if len(token) > maxTokenSize {
		return Caller{}, invalid(reasonMalformed, nil)
	}
	if parts := strings.Split(token, "."); len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return Caller{}, invalid(reasonMalformed, nil)
	}
	jws, err := jose.ParseSignedCompact(token, acceptedAlgorithms)
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return Caller{}, invalid(reasonAlgorithm, nil)
		}
		return Caller{}, invalid(reasonMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return Caller{}, invalid(reasonMalformed, nil)
	}
	hdr := jws.Signatures[0].Protected
	if _, ok := hdr.ExtraHeaders["crit"]; ok {
		return Caller{}, invalid(reasonMalformed, errors.New("identity: critical header parameters are not supported"))
	}
	if hdr.KeyID == "" {
		return Caller{}, invalid(reasonUnknownKey, nil)
	}

	claims, err := parseClaims(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		return Caller{}, invalid(reasonMalformed, err)
	}
	iss := v.issuers[claims.iss]
	if iss == nil {
		return Caller{}, invalid(reasonUntrustedIssuer, nil)
	}
	key, err := iss.keys.lookup(ctx, hdr.KeyID)
	if err != nil {
		return Caller{}, err
	}
	if !key.allows(jose.SignatureAlgorithm(hdr.Algorithm)) {
		return Caller{}, invalid(reasonAlgorithm, nil)
	}
	if _, err := jws.Verify(key.key); err != nil {
		return Caller{}, invalid(reasonBadSignature, nil)
	}
	if pub, ok := key.key.(*ecdsa.PublicKey); ok && key.lowS && highS(pub, jws.Signatures[0].Signature) {
		return Caller{}, invalid(reasonHighS, nil)
	}

	now := v.now()
	switch {
	case claims.exp == nil:
		return Caller{}, invalid(reasonMalformed, errors.New("identity: token has no exp claim"))
	case !claims.exp.Time().After(now.Add(-v.skew)):
		return Caller{}, invalid(reasonExpired, nil)
	case claims.nbf != nil && claims.nbf.Time().After(now.Add(v.skew)),
		claims.iat != nil && claims.iat.Time().After(now.Add(v.skew)):
		return Caller{}, invalid(reasonNotYetValid, nil)
	}
	audOK := false
	for _, a := range claims.aud {
		if iss.audiences[trimSlash(a)] {
			audOK = true
			break
		}
	}
	if !audOK {
		return Caller{}, invalid(reasonWrongAudience, nil)
	}
	principal, ok := claims.str(iss.principalClaim)
	if !ok || principal == "" {
		return Caller{}, invalid(reasonNoPrincipal, nil)
	}
	tid, _ := claims.str("tid")
	client, _ := claims.str("appid")
	if client == "" {
		client, _ = claims.str("azp")
	}
	return Caller{
		ObjectID:  principal,
		TenantID:  tid,
		ClientID:  client,
		Issuer:    iss.issuer,
		ExpiresAt: claims.exp.Time(),
		Local:     iss.local,
	}, nil
}

// tokenClaims are the decoded claims Validate needs; all is every claim.
type tokenClaims struct {
	all           map[string]json.RawMessage
	iss           string
	aud           jwt.Audience
	exp, nbf, iat *jwt.NumericDate
}

func parseClaims(payload []byte) (tokenClaims, error) {
	var c tokenClaims
	if err := json.Unmarshal(payload, &c.all); err != nil {
		return tokenClaims{}, fmt.Errorf("identity: token claims: %w", err)
	}
	if c.all == nil {
		return tokenClaims{}, errors.New("identity: token claims: not an object")
	}
	fields := []struct {
		name string
		dst  any
	}{{"iss", &c.iss}, {"aud", &c.aud}, {"exp", &c.exp}, {"nbf", &c.nbf}, {"iat", &c.iat}}
	for _, f := range fields {
		raw, ok := c.all[f.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return tokenClaims{}, fmt.Errorf("identity: token claim %s: %w", f.name, err)
		}
	}
	return c, nil
}

// str returns the string claim name; ok is false if it is absent or not a
// string.
func (c tokenClaims) str(name string) (s string, ok bool) {
	raw, present := c.all[name]
	if !present || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
