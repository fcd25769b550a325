package identity

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func newTestValidator(t testing.TB, cfg ValidatorConfig) *Validator {
	t.Helper()
	v, err := NewValidator(cfg)
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	return v
}

// tokenClaimsOf decodes a token's claims without verifying it.
func tokenClaimsOf(t testing.TB, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	check(t, err)
	var claims map[string]any
	check(t, json.Unmarshal(raw, &claims))
	return claims
}

// wantInvalid fails unless err is an ErrInvalidToken naming reason, caller is
// zero and the message does not quote the token.
func wantInvalid(t testing.TB, caller Caller, err error, reason, token string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Validate error = %v, want ErrInvalidToken", err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("Validate error = %q, want reason %q", err, reason)
	}
	if caller != (Caller{}) {
		t.Errorf("Validate returned %+v with an error", caller)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) > 8 && strings.Contains(err.Error(), part) {
			t.Errorf("error message quotes the token: %q", err)
		}
	}
}

func TestValidateRoundTrip(t *testing.T) {
	clock := newClock(t0)
	k0, k1 := signingKey(t, 0), signingKey(t, 1)
	iss := newTestIssuer(t, clock.Now, k0, k1)
	v := newTestValidator(t, ValidatorConfig{Local: iss, LocalAudiences: []string{testAudience}, Now: clock.Now})

	token, exp, err := iss.Issue(testPrincipal("s"), testAudience)
	check(t, err)
	caller, err := v.Validate(context.Background(), token)
	check(t, err)
	want := Caller{
		ObjectID:  testOID,
		TenantID:  testTenant,
		ClientID:  testClientID,
		Issuer:    iss.IssuerURL(),
		ExpiresAt: exp,
		Local:     true,
	}
	if !caller.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("ExpiresAt = %v, want %v", caller.ExpiresAt, want.ExpiresAt)
	}
	caller.ExpiresAt = want.ExpiresAt
	if caller != want {
		t.Fatalf("Caller = %+v, want %+v", caller, want)
	}

	// Rotation: tokens of the previous key (now second) stay valid.
	old := newTestIssuer(t, clock.Now, k1)
	oldToken, _, err := old.Issue(testPrincipal("s"), testAudience)
	check(t, err)
	if _, err := v.Validate(context.Background(), oldToken); err != nil {
		t.Fatalf("token of the second key rejected: %v", err)
	}
	// A key the issuer does not publish is not accepted.
	other := newTestIssuer(t, clock.Now, signingKey(t, 2))
	otherToken, _, err := other.Issue(testPrincipal("s"), testAudience)
	check(t, err)
	c, err := v.Validate(context.Background(), otherToken)
	wantInvalid(t, c, err, reasonUnknownKey, otherToken)

	// An hour later it has expired (skew 2 minutes).
	clock.Advance(time.Hour + 2*time.Minute)
	c, err = v.Validate(context.Background(), token)
	wantInvalid(t, c, err, reasonExpired, token)
}

func TestValidateAccepts(t *testing.T) {
	k0 := signingKey(t, 0)
	v := newTestValidator(t, ValidatorConfig{
		Local:          newTestIssuer(t, fixedNow(t0), k0),
		LocalAudiences: []string{testAudience, "https://managedhsm.local/"},
		Now:            fixedNow(t0),
	})
	base := localClaims(t0)
	tests := map[string]map[string]any{
		"plain":                        base,
		"aud array":                    with(base, "aud", []string{"https://other", testAudience}),
		"aud with trailing slash":      with(base, "aud", testAudience+"/"),
		"configured with slash":        with(base, "aud", "https://managedhsm.local"),
		"expired within skew":          with(base, "exp", t0.Add(-time.Minute).Unix()),
		"expires just inside the skew": with(base, "exp", t0.Add(-2*time.Minute+time.Second).Unix()),
		"nbf within skew":              with(base, "nbf", t0.Add(time.Minute).Unix()),
		"nbf at skew":                  with(base, "nbf", t0.Add(2*time.Minute).Unix()),
		"iat within skew":              with(base, "iat", t0.Add(time.Minute).Unix()),
		"no nbf or iat":                with(base, "nbf", nil, "iat", nil),
		"fractional exp":               with(base, "exp", float64(t0.Add(time.Hour).Unix())+0.5),
		"v2 token without appid":       with(base, "appid", nil),
		"unknown claims":               with(base, "roles", []string{"x"}, "xms_cc", []string{"cp1"}),
	}
	for name, claims := range tests {
		t.Run(name, func(t *testing.T) {
			token := signJWT(t, jose.JSONWebKey{Key: k0.priv, KeyID: k0.KeyID()}, jose.ES256, "", claims)
			caller, err := v.Validate(context.Background(), token)
			if err != nil {
				t.Fatalf("Validate = %v", err)
			}
			if caller.ObjectID != testOID || caller.ClientID != testClientID || !caller.Local {
				t.Fatalf("Caller = %+v", caller)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	k0, k1 := signingKey(t, 0), signingKey(t, 1)
	kid := k0.KeyID()
	own := jose.JSONWebKey{Key: k0.priv, KeyID: kid}
	v := newTestValidator(t, ValidatorConfig{
		Local:          newTestIssuer(t, fixedNow(t0), k0),
		LocalAudiences: []string{testAudience},
		Now:            fixedNow(t0),
	})
	base := localClaims(t0)
	valid := signJWT(t, own, jose.ES256, "", base)
	validParts := strings.Split(valid, ".")

	pubDER, err := x509.MarshalPKIXPublicKey(k0.priv.Public())
	check(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	jwksJSON := newTestIssuer(t, nil, k0).JWKS()

	signedPayload := func(payload string) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: own}, nil)
		check(t, err)
		jws, err := signer.Sign([]byte(payload))
		check(t, err)
		s, err := jws.CompactSerialize()
		check(t, err)
		return s
	}
	withCrit := func() string {
		opts := (&jose.SignerOptions{}).WithType("JWT").WithCritical("exp").WithHeader("exp", 1)
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: own}, opts)
		check(t, err)
		jws, err := signer.Sign(mustJSON(t, base))
		check(t, err)
		s, err := jws.CompactSerialize()
		check(t, err)
		return s
	}

	tests := map[string]struct {
		token  string
		reason string
	}{
		"forged signature (other key, same kid)": {signJWT(t, k1.priv, jose.ES256, kid, base), reasonBadSignature},
		"signature of another token": {
			validParts[0] + "." + strings.Split(signJWT(t, own, jose.ES256, "", with(base, "oid", "attacker")), ".")[1] + "." + validParts[2],
			reasonBadSignature,
		},
		"truncated signature": {valid[:len(valid)-4], reasonBadSignature},
		"empty signature":     {validParts[0] + "." + validParts[1] + ".", reasonBadSignature},
		"alg none":            {rawJWT(t, map[string]any{"alg": "none", "kid": kid, "typ": "JWT"}, base, nil), reasonAlgorithm},
		"alg none with sig":   {rawJWT(t, map[string]any{"alg": "none", "kid": kid}, base, []byte("x")), reasonAlgorithm},
		"alg None":            {rawJWT(t, map[string]any{"alg": "None", "kid": kid}, base, nil), reasonAlgorithm},
		"no alg":              {rawJWT(t, map[string]any{"kid": kid}, base, []byte("x")), reasonAlgorithm},
		"HS256 with PEM key":  {signJWT(t, pubPEM, jose.HS256, kid, base), reasonAlgorithm},
		"HS256 with JWKS":     {signJWT(t, jwksJSON, jose.HS256, kid, base), reasonAlgorithm},
		"HS512 with PEM key":  {signJWT(t, append(pubPEM, pubPEM...), jose.HS512, kid, base), reasonAlgorithm},
		"alg RS256 on EC key": {rawJWT(t, map[string]any{"alg": "RS256", "kid": kid}, base, make([]byte, 256)), reasonAlgorithm},
		"alg ES384 on P-256":  {rawJWT(t, map[string]any{"alg": "ES384", "kid": kid}, base, make([]byte, 96)), reasonAlgorithm},
		"EdDSA":               {rawJWT(t, map[string]any{"alg": "EdDSA", "kid": kid}, base, make([]byte, 64)), reasonAlgorithm},
		"expired":             {signJWT(t, own, jose.ES256, "", with(base, "exp", t0.Add(-time.Hour).Unix())), reasonExpired},
		"expired at the skew": {signJWT(t, own, jose.ES256, "", with(base, "exp", t0.Add(-2*time.Minute).Unix())), reasonExpired},
		"nbf in future":       {signJWT(t, own, jose.ES256, "", with(base, "nbf", t0.Add(2*time.Minute+time.Second).Unix())), reasonNotYetValid},
		"iat in future":       {signJWT(t, own, jose.ES256, "", with(base, "iat", t0.Add(time.Hour).Unix())), reasonNotYetValid},
		"no exp":              {signJWT(t, own, jose.ES256, "", with(base, "exp", nil)), reasonMalformed},
		"exp as string":       {signJWT(t, own, jose.ES256, "", with(base, "exp", "2099-01-01")), reasonMalformed},
		"exp huge":            {signJWT(t, own, jose.ES256, "", with(base, "exp", 1e300)), reasonMalformed},
		"wrong audience":      {signJWT(t, own, jose.ES256, "", with(base, "aud", "https://vault.azure.net")), reasonWrongAudience},
		"audience prefix":     {signJWT(t, own, jose.ES256, "", with(base, "aud", testAudience+"0")), reasonWrongAudience},
		"empty audience list": {signJWT(t, own, jose.ES256, "", with(base, "aud", []string{})), reasonWrongAudience},
		"no audience":         {signJWT(t, own, jose.ES256, "", with(base, "aud", nil)), reasonWrongAudience},
		"audience not string": {signJWT(t, own, jose.ES256, "", with(base, "aud", 7)), reasonMalformed},
		"unknown issuer":      {signJWT(t, own, jose.ES256, "", with(base, "iss", "https://evil.example/"+testTenant+"/v2.0")), reasonUntrustedIssuer},
		"issuer with slash":   {signJWT(t, own, jose.ES256, "", with(base, "iss", testAuthority+"/"+testTenant+"/v2.0/")), reasonUntrustedIssuer},
		"issuer other case":   {signJWT(t, own, jose.ES256, "", with(base, "iss", strings.ToUpper(testAuthority)+"/"+testTenant+"/v2.0")), reasonUntrustedIssuer},
		"no issuer":           {signJWT(t, own, jose.ES256, "", with(base, "iss", nil)), reasonUntrustedIssuer},
		"issuer not string":   {signJWT(t, own, jose.ES256, "", with(base, "iss", []string{"x"})), reasonMalformed},
		"missing oid":         {signJWT(t, own, jose.ES256, "", with(base, "oid", nil)), reasonNoPrincipal},
		"empty oid":           {signJWT(t, own, jose.ES256, "", with(base, "oid", "")), reasonNoPrincipal},
		"oid not string":      {signJWT(t, own, jose.ES256, "", with(base, "oid", 42)), reasonNoPrincipal},
		"unknown kid":         {signJWT(t, k0.priv, jose.ES256, "some-other-kid", base), reasonUnknownKey},
		"no kid":              {signJWT(t, k0.priv, jose.ES256, "", base), reasonUnknownKey},
		"critical header":     {withCrit(), reasonMalformed},
		"payload not JSON":    {signedPayload("hello"), reasonMalformed},
		"payload JSON array":  {signedPayload(`[1,2]`), reasonMalformed},
		"payload JSON null":   {signedPayload(`null`), reasonMalformed},
		"garbage":             {"garbage", reasonMalformed},
		"empty":               {"", reasonMalformed},
		"dots":                {"..", reasonMalformed},
		"a.b.c":               {"a.b.c", reasonMalformed},
		"two parts":           {validParts[0] + "." + validParts[1], reasonMalformed},
		"four parts":          {valid + ".x", reasonMalformed},
		"five parts (JWE)":    {"eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aaaa.bbbb.cccc", reasonMalformed},
		"bearer prefix":       {"Bearer " + valid, reasonMalformed},
		"padded base64":       {validParts[0] + "==." + validParts[1] + "." + validParts[2], reasonMalformed},
		"header not JSON":     {b64([]byte("nope")) + "." + validParts[1] + "." + validParts[2], reasonMalformed},
		"JSON serialization":  {`{"payload":"` + validParts[1] + `","protected":"` + validParts[0] + `","signature":"` + validParts[2] + `"}`, reasonMalformed},
		"oversized":           {validParts[0] + "." + strings.Repeat("A", 40<<10) + "." + validParts[2], reasonMalformed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			caller, err := v.Validate(context.Background(), tc.token)
			wantInvalid(t, caller, err, tc.reason, tc.token)
		})
	}
}

func TestValidatorConfigValidate(t *testing.T) {
	iss := newTestIssuer(t, nil)
	jwksFile := writeJWKS(t, rsaJWK(rsaKey(t, 0), "k1", "RS256"))
	ext := TrustedIssuer{Issuer: "https://idp.example", JWKSFile: jwksFile, Audiences: []string{"api://tresor"}}
	good := ValidatorConfig{Local: iss, LocalAudiences: []string{testAudience}, Trusted: []TrustedIssuer{ext}}

	tests := map[string]struct {
		mutate  func(*ValidatorConfig)
		wantErr string
	}{
		"valid":             {func(*ValidatorConfig) {}, ""},
		"local only":        {func(c *ValidatorConfig) { c.Trusted = nil }, ""},
		"trusted only":      {func(c *ValidatorConfig) { c.Local = nil; c.LocalAudiences = nil }, ""},
		"skew set":          {func(c *ValidatorConfig) { c.Skew = 5 * time.Minute }, ""},
		"nothing":           {func(c *ValidatorConfig) { *c = ValidatorConfig{} }, "ValidatorConfig.Local, .Trusted"},
		"local without aud": {func(c *ValidatorConfig) { c.LocalAudiences = nil }, "ValidatorConfig.LocalAudiences"},
		"empty local aud":   {func(c *ValidatorConfig) { c.LocalAudiences = []string{""} }, "ValidatorConfig.LocalAudiences[0]"},
		"aud without local": {func(c *ValidatorConfig) { c.Local = nil }, "ValidatorConfig.LocalAudiences"},
		"negative skew":     {func(c *ValidatorConfig) { c.Skew = -time.Second }, "ValidatorConfig.Skew"},
		"huge skew":         {func(c *ValidatorConfig) { c.Skew = time.Hour }, "ValidatorConfig.Skew"},
		"trusted no issuer": {func(c *ValidatorConfig) { c.Trusted[0].Issuer = "" }, "ValidatorConfig.Trusted[0].Issuer"},
		"trusted no source": {func(c *ValidatorConfig) { c.Trusted[0].JWKSFile = "" }, "ValidatorConfig.Trusted[0].JWKSFile"},
		"trusted two sources": {func(c *ValidatorConfig) {
			c.Trusted[0].DiscoveryURL = "https://idp.example/.well-known/openid-configuration"
		}, "ValidatorConfig.Trusted[0].JWKSFile"},
		"trusted http discover": {func(c *ValidatorConfig) {
			c.Trusted[0].JWKSFile = ""
			c.Trusted[0].DiscoveryURL = "http://idp.example/x"
		}, "ValidatorConfig.Trusted[0].DiscoveryURL"},
		"trusted no audiences": {func(c *ValidatorConfig) { c.Trusted[0].Audiences = nil }, "ValidatorConfig.Trusted[0].Audiences"},
		"trusted empty aud":    {func(c *ValidatorConfig) { c.Trusted[0].Audiences = []string{"a", ""} }, "ValidatorConfig.Trusted[0].Audiences[1]"},
		"trusted twice":        {func(c *ValidatorConfig) { c.Trusted = append(c.Trusted, ext) }, "ValidatorConfig.Trusted[1].Issuer"},
		"trusted is local":     {func(c *ValidatorConfig) { c.Trusted[0].Issuer = iss.IssuerURL() }, "ValidatorConfig.Trusted[0].Issuer"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := good
			cfg.Trusted = append([]TrustedIssuer(nil), good.Trusted...)
			tc.mutate(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				newTestValidator(t, cfg)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.wantErr)
			}
			if v, err := NewValidator(cfg); err == nil || v != nil {
				t.Fatalf("NewValidator = %v, %v; want nil, error", v, err)
			}
		})
	}
}

func TestNewValidatorBadJWKSFile(t *testing.T) {
	dir := t.TempDir()
	ecKey := newECKey(t, p256())
	tests := map[string]string{
		"missing file": dir + "/nope.json",
		"not JSON":     writeFile(t, "jwks: no"),
		"no keys":      writeFile(t, `{"keys":[]}`),
		"only unusable keys": writeFile(t, `{"keys":[`+
			`{"kty":"oct","kid":"hmac","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"},`+
			string(mustJSON(t, jose.JSONWebKey{Key: ecKey.Public(), KeyID: "enc", Use: "enc"}))+`,`+
			string(mustJSON(t, jose.JSONWebKey{Key: ecKey.Public()}))+`,`+ // no kid
			string(mustJSON(t, jose.JSONWebKey{Key: ecKey.Public(), KeyID: "wrong-alg", Algorithm: "RS256"}))+`,`+
			string(mustJSON(t, jose.JSONWebKey{Key: ecKey, KeyID: "private"}))[:20]+`"}`+ // broken
			`]}`),
	}
	for name, path := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewValidator(ValidatorConfig{Trusted: []TrustedIssuer{{
				Issuer: "https://idp.example", JWKSFile: path, Audiences: []string{"a"},
			}}})
			if err == nil || !strings.Contains(err.Error(), "Trusted[0].JWKSFile") {
				t.Fatalf("NewValidator = %v, want an error naming Trusted[0].JWKSFile", err)
			}
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	rsa0 := rsaKey(b, 0)
	iss := newTestIssuer(b, fixedNow(t0))
	v := newTestValidator(b, ValidatorConfig{
		Local:          iss,
		LocalAudiences: []string{testAudience},
		Trusted: []TrustedIssuer{{
			Issuer: extIssuer, JWKSFile: writeJWKS(b, rsaJWK(rsa0, "rsa", "")), Audiences: []string{extAudience},
		}},
		Now: fixedNow(t0),
	})
	own, _, err := iss.Issue(testPrincipal("s"), testAudience)
	check(b, err)
	tokens := map[string]string{
		"local ES256":    own,
		"external RS256": signJWT(b, rsa0, jose.RS256, "rsa", extClaims(t0)),
	}
	for name, tok := range tokens {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Validate(context.Background(), tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
