package identity

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func p256() elliptic.Curve { return elliptic.P256() }

func writeFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file")
	check(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

const (
	extIssuer   = "https://sts.example.com/d1b7c2a4-0000-4000-8000-000000000001/"
	extAudience = "api://tresor"
	extUser     = "alice@example.com"
)

func extClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": extIssuer,
		"aud": []string{"https://other.example", extAudience},
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
		"upn": extUser,
		"oid": "11111111-2222-3333-4444-555555555555",
		"tid": "d1b7c2a4-0000-4000-8000-000000000001",
		"azp": "client-app",
	}
}

// TestTrustedIssuerJWKSFile covers an air-gapped external issuer with RSA and
// EC keys and a custom principal claim.
func TestTrustedIssuerJWKSFile(t *testing.T) {
	clock := newClock(t0)
	rsa0, rsa1 := rsaKey(t, 0), rsaKey(t, 1)
	ec384 := newECKey(t, elliptic.P384())
	path := writeJWKS(t,
		rsaJWK(rsa0, "rsa-any", ""),
		rsaJWK(rsa1, "rsa-rs256-only", "RS256"),
		jose.JSONWebKey{Key: ec384, KeyID: "ec-384", Use: "sig"},
	)
	local := newTestIssuer(t, clock.Now)
	v := newTestValidator(t, ValidatorConfig{
		Local:          local,
		LocalAudiences: []string{testAudience},
		Trusted: []TrustedIssuer{{
			Issuer:         extIssuer,
			JWKSFile:       path,
			Audiences:      []string{extAudience},
			PrincipalClaim: "upn",
		}},
		Now: clock.Now,
	})
	claims := extClaims(t0)

	tests := map[string]struct {
		token  string
		reason string // empty: accepted
	}{
		"RS256":                       {signJWT(t, rsa0, jose.RS256, "rsa-any", claims), ""},
		"PS256":                       {signJWT(t, rsa0, jose.PS256, "rsa-any", claims), ""},
		"RS512":                       {signJWT(t, rsa0, jose.RS512, "rsa-any", claims), ""},
		"ES384":                       {signJWT(t, ec384, jose.ES384, "ec-384", claims), ""},
		"RS256 on RS256-only key":     {signJWT(t, rsa1, jose.RS256, "rsa-rs256-only", claims), ""},
		"PS256 on RS256-only key":     {signJWT(t, rsa1, jose.PS256, "rsa-rs256-only", claims), reasonAlgorithm},
		"other RSA key, same kid":     {signJWT(t, rsa1, jose.RS256, "rsa-any", claims), reasonBadSignature},
		"HS256 keyed with modulus":    {signJWT(t, rsa0.N.Bytes(), jose.HS256, "rsa-any", claims), reasonAlgorithm},
		"custom claim missing":        {signJWT(t, rsa0, jose.RS256, "rsa-any", with(claims, "upn", nil)), reasonNoPrincipal},
		"local audience not accepted": {signJWT(t, rsa0, jose.RS256, "rsa-any", with(claims, "aud", testAudience)), reasonWrongAudience},
		"expired":                     {signJWT(t, rsa0, jose.RS256, "rsa-any", with(claims, "exp", t0.Add(-time.Hour).Unix())), reasonExpired},
		"signed by local key as ext":  {signJWT(t, signingKey(t, 0).priv, jose.ES256, signingKey(t, 0).KeyID(), claims), reasonUnknownKey},
		"ext key claiming local iss": {
			signJWT(t, rsa0, jose.RS256, "rsa-any", with(claims, "iss", local.IssuerURL(), "aud", testAudience)),
			reasonUnknownKey,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			caller, err := v.Validate(context.Background(), tc.token)
			if tc.reason != "" {
				wantInvalid(t, caller, err, tc.reason, tc.token)
				return
			}
			if err != nil {
				t.Fatalf("Validate = %v", err)
			}
			want := Caller{
				ObjectID:  extUser,
				TenantID:  "d1b7c2a4-0000-4000-8000-000000000001",
				ClientID:  "client-app",
				Issuer:    extIssuer,
				ExpiresAt: time.Unix(t0.Add(time.Hour).Unix(), 0),
			}
			if !caller.ExpiresAt.Equal(want.ExpiresAt) {
				t.Fatalf("ExpiresAt = %v, want %v", caller.ExpiresAt, want.ExpiresAt)
			}
			caller.ExpiresAt = want.ExpiresAt
			if caller != want {
				t.Fatalf("Caller = %+v, want %+v", caller, want)
			}
		})
	}

	// The file is read again for an unknown kid, at most once a minute.
	ec256 := newECKey(t, elliptic.P256())
	rotated := signJWT(t, ec256, jose.ES256, "new", claims)
	check(t, os.WriteFile(path, jwksBytes(t, rsaJWK(rsa0, "rsa-any", ""), jose.JSONWebKey{Key: ec256, KeyID: "new"}), 0o600))
	c, err := v.Validate(context.Background(), rotated)
	wantInvalid(t, c, err, reasonUnknownKey, rotated)
	clock.Advance(minRefreshInterval)
	if _, err := v.Validate(context.Background(), rotated); err != nil {
		t.Fatalf("new key in the JWKS file not accepted after a minute: %v", err)
	}
	// A broken file later keeps the keys already loaded.
	check(t, os.WriteFile(path, []byte("broken"), 0o600))
	clock.Advance(minRefreshInterval)
	if _, err := v.Validate(context.Background(), rotated); err != nil {
		t.Fatalf("known key rejected after the file broke: %v", err)
	}
	c, err = v.Validate(context.Background(), signJWT(t, rsa0, jose.RS256, "unknown", claims))
	if !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, ErrInvalidToken) || c != (Caller{}) {
		t.Fatalf("Validate with a broken file = %v, want ErrKeysUnavailable and ErrInvalidToken", err)
	}
}

// fakeIdP is an OpenID provider serving a discovery document and a JWKS that
// tests can change.
type fakeIdP struct {
	srv       *httptest.Server
	mu        sync.Mutex
	jwks      []byte
	status    int
	jwksURI   string // overrides the jwks_uri if set
	jwksCount atomic.Int32
}

func newFakeIdP(t *testing.T, keys ...jose.JSONWebKey) *fakeIdP {
	t.Helper()
	idp := &fakeIdP{jwks: jwksBytes(t, keys...), status: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		idp.mu.Lock()
		status, uri := idp.status, idp.jwksURI
		idp.mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "down", status)
			return
		}
		if uri == "" {
			uri = idp.srv.URL + "/discovery/keys"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": idp.srv.URL, "jwks_uri": uri})
	})
	mux.HandleFunc("GET /discovery/keys", func(w http.ResponseWriter, r *http.Request) {
		idp.jwksCount.Add(1)
		idp.mu.Lock()
		body := idp.jwks
		idp.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	idp.srv = httptest.NewUnstartedServer(mux)
	idp.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-certificate case fails handshakes
	idp.srv.StartTLS()
	t.Cleanup(idp.srv.Close)
	return idp
}

func (idp *fakeIdP) setKeys(t *testing.T, keys ...jose.JSONWebKey) {
	t.Helper()
	b := jwksBytes(t, keys...)
	idp.mu.Lock()
	idp.jwks = b
	idp.mu.Unlock()
}

func (idp *fakeIdP) setStatus(status int) {
	idp.mu.Lock()
	idp.status = status
	idp.mu.Unlock()
}

func (idp *fakeIdP) trusted() TrustedIssuer {
	return TrustedIssuer{
		Issuer:       idp.srv.URL,
		DiscoveryURL: idp.srv.URL + "/.well-known/openid-configuration",
		Audiences:    []string{extAudience},
		HTTPClient:   idp.srv.Client(),
	}
}

func TestTrustedIssuerDiscovery(t *testing.T) {
	clock := newClock(t0)
	k1, k2 := rsaKey(t, 0), rsaKey(t, 1)
	ec := newECKey(t, elliptic.P256())
	idp := newFakeIdP(t, rsaJWK(k1, "kid-1", "RS256"))
	v := newTestValidator(t, ValidatorConfig{Trusted: []TrustedIssuer{idp.trusted()}, Now: clock.Now})
	if n := idp.jwksserved(); n != 0 {
		t.Fatalf("NewValidator fetched the JWKS %d times, want 0 (lazy)", n)
	}
	token := func(key any, alg jose.SignatureAlgorithm, kid string) string {
		t.Helper()
		return signJWT(t, key, alg, kid, with(extClaims(clock.Now()), "iss", idp.srv.URL))
	}
	accept := func(tok, what string) {
		t.Helper()
		caller, err := v.Validate(context.Background(), tok)
		if err != nil {
			t.Fatalf("%s: Validate = %v", what, err)
		}
		if caller.ObjectID != "11111111-2222-3333-4444-555555555555" || caller.Issuer != idp.srv.URL || caller.Local {
			t.Fatalf("%s: Caller = %+v", what, caller)
		}
	}
	reject := func(tok, reason, what string) {
		t.Helper()
		c, err := v.Validate(context.Background(), tok)
		if err == nil {
			t.Fatalf("%s: token accepted", what)
		}
		wantInvalid(t, c, err, reason, tok)
	}
	wantFetches := func(n int32, what string) {
		t.Helper()
		if got := idp.jwksserved(); got != n {
			t.Fatalf("%s: JWKS fetched %d times, want %d", what, got, n)
		}
	}

	accept(token(k1, jose.RS256, "kid-1"), "first token")
	wantFetches(1, "first token")
	accept(token(k1, jose.RS256, "kid-1"), "second token")
	wantFetches(1, "cached keys")
	reject(token(k2, jose.RS256, "kid-1"), reasonBadSignature, "forged")

	// Rotation: kid-2 appears. Within the minute it is unknown, after it accepted.
	idp.setKeys(t, rsaJWK(k1, "kid-1", "RS256"), rsaJWK(k2, "kid-2", ""), jose.JSONWebKey{Key: ec, KeyID: "kid-ec"})
	clock.Advance(30 * time.Second)
	reject(token(k2, jose.PS256, "kid-2"), reasonUnknownKey, "new kid within the minute")
	wantFetches(1, "rate limit")
	clock.Advance(30 * time.Second)
	accept(token(k2, jose.PS256, "kid-2"), "new kid after refresh")
	wantFetches(2, "refresh on unknown kid")
	accept(token(ec, jose.ES256, "kid-ec"), "EC key from the same refresh")
	accept(token(k1, jose.RS256, "kid-1"), "old kid still published")
	wantFetches(2, "no refresh for known kids")

	// Random kids cannot make us fetch more than once a minute.
	for i := range 50 {
		reject(token(k1, jose.RS256, "random-"+string(rune('a'+i%26))), reasonUnknownKey, "random kid")
	}
	wantFetches(2, "random kids within the minute")
	clock.Advance(time.Minute)
	reject(token(k1, jose.RS256, "random-z"), reasonUnknownKey, "random kid after a minute")
	wantFetches(3, "one refresh per minute")

	// The IdP withdraws kid-1: after a day the keys are fetched again.
	idp.setKeys(t, rsaJWK(k2, "kid-2", ""))
	clock.Advance(time.Hour)
	accept(token(k1, jose.RS256, "kid-1"), "withdrawn kid before max age")
	clock.Advance(maxKeyAge)
	reject(token(k1, jose.RS256, "kid-1"), reasonUnknownKey, "withdrawn kid after max age")
	accept(token(k2, jose.RS256, "kid-2"), "remaining kid")

	// The IdP is down: known keys keep working, unknown ones report it.
	idp.setStatus(http.StatusInternalServerError)
	clock.Advance(maxKeyAge + time.Minute)
	accept(token(k2, jose.RS256, "kid-2"), "stale key while the IdP is down")
	clock.Advance(time.Minute)
	tok := token(k1, jose.RS256, "kid-3")
	c, err := v.Validate(context.Background(), tok)
	if !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, ErrInvalidToken) || c != (Caller{}) {
		t.Fatalf("Validate while the IdP is down = %v, want ErrKeysUnavailable", err)
	}
	idp.setStatus(http.StatusOK)
	idp.setKeys(t, rsaJWK(k1, "kid-3", ""))
	clock.Advance(time.Minute)
	accept(token(k1, jose.RS256, "kid-3"), "after the IdP recovered")
}

func (idp *fakeIdP) jwksserved() int32 { return idp.jwksCount.Load() }

func TestTrustedIssuerDiscoveryFailures(t *testing.T) {
	k := rsaKey(t, 0)
	tests := map[string]struct {
		setup func(idp *fakeIdP) TrustedIssuer
		// wantLog are substrings of the warning logged for the failure
		// ({url} is the IdP's URL).
		wantLog []string
	}{
		"discovery fails": {func(idp *fakeIdP) TrustedIssuer {
			idp.setStatus(http.StatusNotFound)
			return idp.trusted()
		}, []string{"{url}/.well-known/openid-configuration", "404 Not Found"}},
		"jwks_uri over http": {func(idp *fakeIdP) TrustedIssuer {
			idp.mu.Lock()
			idp.jwksURI = "http" + idp.srv.URL[len("https"):] + "/discovery/keys"
			idp.mu.Unlock()
			return idp.trusted()
		}, []string{"{url}/.well-known/openid-configuration", "jwks_uri must be an absolute https URL"}},
		"untrusted certificate": {func(idp *fakeIdP) TrustedIssuer {
			tr := idp.trusted()
			tr.HTTPClient = nil
			return tr
		}, []string{"{url}/.well-known/openid-configuration", "x509: certificate signed by unknown authority"}},
		"JWKS without usable keys": {func(idp *fakeIdP) TrustedIssuer {
			idp.mu.Lock()
			idp.jwks = []byte(`{"keys":[{"kty":"oct","k":"AAAA","kid":"kid-1"}]}`)
			idp.mu.Unlock()
			return idp.trusted()
		}, []string{"{url}/.well-known/openid-configuration", "no usable signing keys"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			idp := newFakeIdP(t, rsaJWK(k, "kid-1", ""))
			tr := tc.setup(idp)
			var logBuf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logBuf, nil))
			v := newTestValidator(t, ValidatorConfig{Trusted: []TrustedIssuer{tr}, Now: fixedNow(t0), Logger: logger})
			tok := signJWT(t, k, jose.RS256, "kid-1", with(extClaims(t0), "iss", idp.srv.URL))
			c, err := v.Validate(context.Background(), tok)
			if !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Validate = %v, want ErrKeysUnavailable", err)
			}
			wantInvalid(t, c, err, reasonKeysUnavailable, tok)

			// Logged once, with the URL and the cause, and without the token.
			logged := logBuf.String()
			if n := strings.Count(logged, "level=WARN"); n != 1 {
				t.Fatalf("%d warnings, want 1:\n%s", n, logged)
			}
			for _, w := range append(tc.wantLog, "issuer="+idp.srv.URL) {
				if w = strings.ReplaceAll(w, "{url}", idp.srv.URL); !strings.Contains(logged, w) {
					t.Errorf("log lacks %q:\n%s", w, logged)
				}
			}
			if strings.Contains(logged, tok[:20]) {
				t.Fatalf("log contains the token:\n%s", logged)
			}
			// Within the minute: neither another fetch nor another line.
			if _, err := v.Validate(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("second Validate = %v", err)
			}
			if err := v.FetchKeys(context.Background()); err == nil || !strings.Contains(err.Error(), "trusted issuer "+idp.srv.URL) {
				t.Fatalf("FetchKeys = %v, want an error naming the issuer", err)
			}
			if n := strings.Count(logBuf.String(), "level=WARN"); n != 1 {
				t.Fatalf("%d warnings after retries within the minute, want 1:\n%s", n, logBuf.String())
			}
		})
	}
}

// TestShareKeys: the validators of two endpoints accept different audiences
// of the same issuer and fetch its keys once; FetchKeys fetches them ahead
// of the first token, retries after a failure and logs the recovery.
func TestShareKeys(t *testing.T) {
	clock := newClock(t0)
	k := rsaKey(t, 0)
	idp := newFakeIdP(t, rsaJWK(k, "kid-1", ""))
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logBuf, nil))
	armT, hsmT := idp.trusted(), idp.trusted()
	armT.Audiences, hsmT.Audiences = []string{"https://management.example/"}, []string{"https://hsm.example"}
	arm := newTestValidator(t, ValidatorConfig{Trusted: []TrustedIssuer{armT}, Now: clock.Now, Logger: logger})
	hsm := newTestValidator(t, ValidatorConfig{Trusted: []TrustedIssuer{hsmT}, Now: clock.Now, Logger: logger, ShareKeys: arm})

	idp.setStatus(http.StatusServiceUnavailable)
	if err := arm.FetchKeys(context.Background()); err == nil {
		t.Fatal("FetchKeys with the IdP down succeeded")
	}
	idp.setStatus(http.StatusOK)
	if err := arm.FetchKeys(context.Background()); err == nil {
		t.Fatal("FetchKeys within the minute fetched again")
	}
	clock.Advance(time.Minute)
	check(t, arm.FetchKeys(context.Background()))
	check(t, hsm.FetchKeys(context.Background()))
	if n := idp.jwksserved(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}
	if logged := logBuf.String(); strings.Count(logged, "level=WARN") != 1 || !strings.Contains(logged, "signing keys fetched again") {
		t.Fatalf("log:\n%s", logged)
	}

	token := func(aud string) string {
		return signJWT(t, k, jose.RS256, "kid-1", with(extClaims(clock.Now()), "iss", idp.srv.URL, "aud", aud))
	}
	tests := map[string]struct {
		v      *Validator
		aud    string
		reason string
	}{
		"ARM token on ARM": {arm, "https://management.example", ""},
		"HSM token on HSM": {hsm, "https://hsm.example/", ""},
		"HSM token on ARM": {arm, "https://hsm.example", reasonWrongAudience},
		"ARM token on HSM": {hsm, "https://management.example/", reasonWrongAudience},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tok := token(tc.aud)
			c, err := tc.v.Validate(context.Background(), tok)
			if tc.reason != "" {
				wantInvalid(t, c, err, tc.reason, tok)
				return
			}
			check(t, err)
		})
	}
	if n := idp.jwksserved(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}
}

// TestValidateConcurrent validates tokens from many goroutines while the
// trusted issuer rotates its keys (run with -race).
func TestValidateConcurrent(t *testing.T) {
	clock := newClock(t0)
	k1, k2 := rsaKey(t, 0), rsaKey(t, 1)
	idp := newFakeIdP(t, rsaJWK(k1, "kid-1", ""))
	local := newTestIssuer(t, clock.Now)
	v := newTestValidator(t, ValidatorConfig{
		Local: local, LocalAudiences: []string{testAudience},
		Trusted: []TrustedIssuer{idp.trusted()}, Now: clock.Now,
	})
	claims := with(extClaims(t0), "iss", idp.srv.URL)
	ext1 := signJWT(t, k1, jose.RS256, "kid-1", claims)
	ext2 := signJWT(t, k2, jose.RS256, "kid-2", claims)
	own, _, err := local.Issue(testPrincipal("s"), testAudience)
	check(t, err)

	idp.setKeys(t, rsaJWK(k1, "kid-1", ""), rsaJWK(k2, "kid-2", ""))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				for _, tok := range []string{own, ext1, ext2} {
					_, err := v.Validate(context.Background(), tok)
					if err != nil && !(tok == ext2 && errors.Is(err, ErrInvalidToken)) {
						errs <- err
						return
					}
				}
				if g == 0 && i == 10 {
					clock.Advance(time.Second) // stays within the rate limit
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// kid-2 was published before the first fetch, so it is known.
	if _, err := v.Validate(context.Background(), ext2); err != nil {
		t.Fatalf("kid-2: %v", err)
	}
	if n := idp.jwksserved(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}
}
