package identity

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestIssuerConfigValidate(t *testing.T) {
	good := IssuerConfig{Authority: testAuthority, TenantID: testTenant}
	tests := map[string]struct {
		mutate  func(*IssuerConfig)
		wantErr string // substring; empty means valid
	}{
		"valid":                   {func(*IssuerConfig) {}, ""},
		"trailing slash":          {func(c *IssuerConfig) { c.Authority += "/" }, ""},
		"with path":               {func(c *IssuerConfig) { c.Authority += "/login" }, ""},
		"domain tenant":           {func(c *IssuerConfig) { c.TenantID = "contoso.example" }, ""},
		"lifetime set":            {func(c *IssuerConfig) { c.Lifetime = 90 * time.Minute }, ""},
		"no authority":            {func(c *IssuerConfig) { c.Authority = "" }, "IssuerConfig.Authority"},
		"http authority":          {func(c *IssuerConfig) { c.Authority = "http://localhost:8443" }, "IssuerConfig.Authority"},
		"relative authority":      {func(c *IssuerConfig) { c.Authority = "localhost:8443" }, "IssuerConfig.Authority"},
		"authority with query":    {func(c *IssuerConfig) { c.Authority += "?x=1" }, "IssuerConfig.Authority"},
		"authority with user":     {func(c *IssuerConfig) { c.Authority = "https://u:p@localhost" }, "IssuerConfig.Authority"},
		"no tenant":               {func(c *IssuerConfig) { c.TenantID = "" }, "IssuerConfig.TenantID"},
		"tenant with slash":       {func(c *IssuerConfig) { c.TenantID = "a/b" }, "IssuerConfig.TenantID"},
		"tenant too long":         {func(c *IssuerConfig) { c.TenantID = strings.Repeat("a", 65) }, "IssuerConfig.TenantID"},
		"lifetime too short":      {func(c *IssuerConfig) { c.Lifetime = time.Second }, "IssuerConfig.Lifetime"},
		"lifetime too long":       {func(c *IssuerConfig) { c.Lifetime = 25 * time.Hour }, "IssuerConfig.Lifetime"},
		"negative lifetime":       {func(c *IssuerConfig) { c.Lifetime = -time.Hour }, "IssuerConfig.Lifetime"},
		"authority with fragment": {func(c *IssuerConfig) { c.Authority += "#f" }, "IssuerConfig.Authority"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := good
			tc.mutate(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				if _, err := NewIssuer(cfg, signingKey(t, 0)); err != nil {
					t.Fatalf("NewIssuer = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.wantErr)
			}
			if iss, err := NewIssuer(cfg, signingKey(t, 0)); err == nil || iss != nil {
				t.Fatalf("NewIssuer = %v, %v; want nil, error", iss, err)
			}
		})
	}
}

func TestNewIssuerKeys(t *testing.T) {
	cfg := IssuerConfig{Authority: testAuthority, TenantID: testTenant}
	k0, k1 := signingKey(t, 0), signingKey(t, 1)
	tests := map[string]struct {
		keys    []*SigningKey
		wantErr bool
	}{
		"one key":       {[]*SigningKey{k0}, false},
		"two keys":      {[]*SigningKey{k0, k1}, false},
		"no keys":       {nil, true},
		"nil key":       {[]*SigningKey{k0, nil}, true},
		"zero key":      {[]*SigningKey{{}}, true},
		"duplicate key": {[]*SigningKey{k0, k1, k0}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewIssuer(cfg, tc.keys...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("NewIssuer error = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestIssueClaims(t *testing.T) {
	now := t0.Add(123 * time.Millisecond)
	k0, k1 := signingKey(t, 0), signingKey(t, 1)
	iss := newTestIssuer(t, fixedNow(now), k0, k1)
	if got, want := iss.IssuerURL(), testAuthority+"/"+testTenant+"/v2.0"; got != want {
		t.Fatalf("IssuerURL = %s, want %s", got, want)
	}
	p := testPrincipal("s")
	token, exp, err := iss.Issue(p, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Hour); !exp.Equal(want) {
		t.Fatalf("expiresAt = %v, want %v", exp, want)
	}

	// go-jose parses and verifies it with the first key only.
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("go-jose rejects the token: %v", err)
	}
	h := parsed.Headers[0]
	if h.Algorithm != "ES256" || h.KeyID != k0.KeyID() || h.ExtraHeaders["typ"] != "JWT" {
		t.Fatalf("header = alg %q kid %q typ %v", h.Algorithm, h.KeyID, h.ExtraHeaders["typ"])
	}
	var other map[string]any
	if err := parsed.Claims(k1.PublicJWK(), &other); err == nil {
		t.Fatal("token verifies under the second key")
	}
	var std jwt.Claims
	var claims map[string]any
	if err := parsed.Claims(k0.PublicJWK(), &std, &claims); err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{
		Issuer:      iss.IssuerURL(),
		Subject:     testOID,
		AnyAudience: jwt.Audience{testAudience},
		Time:        now,
	}, 0); err != nil {
		t.Fatalf("go-jose claim validation: %v", err)
	}

	wantStrings := map[string]string{
		"iss":    iss.IssuerURL(),
		"aud":    testAudience,
		"sub":    testOID,
		"oid":    testOID,
		"tid":    testTenant,
		"appid":  testClientID,
		"azp":    testClientID,
		"azpacr": "1",
		"idtyp":  "app",
		"ver":    "2.0",
	}
	for name, want := range wantStrings {
		if got, _ := claims[name].(string); got != want {
			t.Errorf("claim %s = %v, want %q", name, claims[name], want)
		}
	}
	wantNumbers := map[string]int64{"iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
	for name, want := range wantNumbers {
		if got, _ := claims[name].(float64); int64(got) != want {
			t.Errorf("claim %s = %v, want %d", name, claims[name], want)
		}
	}
	uti, _ := claims["uti"].(string)
	if len(uti) < 22 || claims["jti"] != uti {
		t.Errorf("uti = %v, jti = %v; want equal random ids", claims["uti"], claims["jti"])
	}
	token2, _, err := iss.Issue(p, testAudience)
	check(t, err)
	var claims2 map[string]any
	parsed2, err := jwt.ParseSigned(token2, []jose.SignatureAlgorithm{jose.ES256})
	check(t, err)
	check(t, parsed2.Claims(k0.PublicJWK(), &claims2))
	if claims2["uti"] == uti {
		t.Error("two tokens have the same uti")
	}
}

func TestIssueRejects(t *testing.T) {
	iss := newTestIssuer(t, fixedNow(t0))
	tests := map[string]struct {
		p   Principal
		aud string
	}{
		"no object id": {Principal{ClientID: testClientID}, testAudience},
		"no client id": {Principal{ObjectID: testOID}, testAudience},
		"no audience":  {testPrincipal("s"), ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			token, exp, err := iss.Issue(tc.p, tc.aud)
			if err == nil || token != "" || !exp.IsZero() {
				t.Fatalf("Issue = %q, %v, %v; want error", token, exp, err)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	k0, k1 := signingKey(t, 0), signingKey(t, 1)
	iss := newTestIssuer(t, nil, k0, k1)
	raw := iss.JWKS()

	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	check(t, json.Unmarshal(raw, &doc))
	if len(doc.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2", len(doc.Keys))
	}
	for n, k := range []*SigningKey{k0, k1} {
		got := doc.Keys[n]
		want := map[string]any{"kty": "EC", "use": "sig", "kid": k.KeyID(), "crv": "P-256", "alg": "ES256"}
		for f, v := range want {
			if got[f] != v {
				t.Errorf("key %d: %s = %v, want %v", n, f, got[f], v)
			}
		}
		for _, f := range []string{"x", "y"} {
			if s, _ := got[f].(string); len(s) != 43 {
				t.Errorf("key %d: %s = %v, want 32 bytes base64url", n, f, got[f])
			}
		}
		if _, ok := got["d"]; ok {
			t.Fatalf("JWKS publishes a private key")
		}
	}
	var set jose.JSONWebKeySet
	check(t, json.Unmarshal(raw, &set))
	if keys := set.Key(k1.KeyID()); len(keys) != 1 || !keys[0].IsPublic() {
		t.Fatalf("go-jose does not find key %s in the JWKS", k1.KeyID())
	}
	raw[0] = 'X'
	if iss.JWKS()[0] == 'X' {
		t.Fatal("JWKS returns shared memory")
	}
}

func TestOpenIDConfiguration(t *testing.T) {
	iss := newTestIssuer(t, nil)
	raw := iss.OpenIDConfiguration()
	var doc map[string]any
	check(t, json.Unmarshal(raw, &doc))

	base := testAuthority + "/" + testTenant
	wantStrings := map[string]string{
		"issuer":                 base + "/v2.0",
		"token_endpoint":         base + "/oauth2/v2.0/token",
		"jwks_uri":               base + "/discovery/v2.0/keys",
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		"cloud_instance_name":    "localhost",
	}
	for f, want := range wantStrings {
		if doc[f] != want {
			t.Errorf("%s = %v, want %q", f, doc[f], want)
		}
	}
	wantLists := map[string][]string{
		"id_token_signing_alg_values_supported": {"ES256"},
		"token_endpoint_auth_methods_supported": {"client_secret_post", "client_secret_basic"},
		"grant_types_supported":                 {"client_credentials"},
	}
	for f, want := range wantLists {
		got, _ := json.Marshal(doc[f])
		if w, _ := json.Marshal(want); string(got) != string(w) {
			t.Errorf("%s = %s, want %s", f, got, w)
		}
	}
	for _, f := range []string{"response_types_supported", "subject_types_supported", "scopes_supported"} {
		if l, _ := doc[f].([]any); len(l) == 0 {
			t.Errorf("%s missing or empty", f)
		}
	}
	if v, ok := doc["tenant_region_scope"]; !ok || v != nil {
		t.Errorf("tenant_region_scope = %v (present %v), want null", v, ok)
	}
	// MSAL requires the issuer's host to be the authority's.
	u, err := url.Parse(doc["issuer"].(string))
	check(t, err)
	a, _ := url.Parse(testAuthority)
	if u.Host != a.Host {
		t.Errorf("issuer host %s != authority host %s", u.Host, a.Host)
	}
}
