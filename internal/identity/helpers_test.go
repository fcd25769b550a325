package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	testAuthority = "https://localhost:8443"
	testTenant    = "6f1c4d2e-8a3b-4c5d-9e0f-112233445566"
	testAudience  = "https://managedhsm.local:8443"
	testOID       = "0b7e4a0c-1d2e-4f3a-8b9c-aabbccddeeff"
	testClientID  = "c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8"
)

// t0 is the tests' fixed "now".
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testClock is a settable clock, safe for concurrent use.
type testClock struct{ unix atomic.Int64 }

func newClock(t time.Time) *testClock {
	c := &testClock{}
	c.unix.Store(t.UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.unix.Load()).UTC() }
func (c *testClock) Advance(d time.Duration) { c.unix.Add(int64(d)) }
func (c *testClock) Set(t time.Time)         { c.unix.Store(t.UnixNano()) }
func fixedNow(t time.Time) func() time.Time  { return func() time.Time { return t } }
func b64(b []byte) string                    { return base64.RawURLEncoding.EncodeToString(b) }
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	check(t, err)
	return b
}
func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Pre-generated keys, shared by tests to keep them fast.
var (
	keysOnce          sync.Once
	sharedSigningKeys [3]*SigningKey
	sharedRSAKeys     [2]*rsa.PrivateKey
)

func signingKey(t testing.TB, n int) *SigningKey {
	t.Helper()
	genKeys(t)
	return sharedSigningKeys[n]
}

func rsaKey(t testing.TB, n int) *rsa.PrivateKey {
	t.Helper()
	genKeys(t)
	return sharedRSAKeys[n]
}

func genKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		for i := range sharedSigningKeys {
			k, err := GenerateSigningKey()
			if err != nil {
				panic(err)
			}
			sharedSigningKeys[i] = k
		}
		for i := range sharedRSAKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			sharedRSAKeys[i] = k
		}
	})
}

func newTestIssuer(t testing.TB, now func() time.Time, keys ...*SigningKey) *Issuer {
	t.Helper()
	if len(keys) == 0 {
		keys = []*SigningKey{signingKey(t, 0)}
	}
	iss, err := NewIssuer(IssuerConfig{Authority: testAuthority, TenantID: testTenant, Now: now}, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func testPrincipal(secret string) Principal {
	return Principal{
		ObjectID:    testOID,
		ClientID:    testClientID,
		DisplayName: "test app",
		SecretHash:  HashSecret(secret),
		Created:     t0,
	}
}

// signJWT signs claims with key under alg, with header kid (if not empty).
func signJWT(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	// ECDSA tokens in low-S form, as the region's issuer makes them.
	pub, _ := key.(*ecdsa.PrivateKey)
	if j, ok := key.(jose.JSONWebKey); ok {
		pub, _ = j.Key.(*ecdsa.PrivateKey)
	}
	if pub != nil {
		if s, err = lowSCompact(&pub.PublicKey, s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// rawJWT assembles a compact JWS from a header, claims and signature bytes
// without signing.
func rawJWT(t testing.TB, header, claims any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64(h) + "." + b64(c) + "." + b64(sig)
}

// localClaims are valid claims of a token from the test issuer.
func localClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss":   testAuthority + "/" + testTenant + "/v2.0",
		"aud":   testAudience,
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
		"oid":   testOID,
		"sub":   testOID,
		"tid":   testTenant,
		"appid": testClientID,
		"azp":   testClientID,
		"ver":   "2.0",
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

// writeJWKS writes a JWK Set of the public parts of keys to a temporary
// file and returns its path.
func writeJWKS(t testing.TB, keys ...jose.JSONWebKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksBytes(t, keys...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func jwksBytes(t testing.TB, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.Public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rsaJWK(k *rsa.PrivateKey, kid, alg string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: alg, Use: "sig"}
}

func newECKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// memDirectory is an in-memory PrincipalDirectory.
type memDirectory struct {
	principals map[string]Principal
	err        error // returned for every lookup if set
}

func (d memDirectory) PrincipalByClientID(_ context.Context, clientID string) (Principal, error) {
	if d.err != nil {
		return Principal{}, d.err
	}
	p, ok := d.principals[clientID]
	if !ok {
		return Principal{}, ErrPrincipalNotFound
	}
	return p, nil
}
