package identity

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// FuzzValidate checks that Validate never panics, that an error always comes
// with a zero Caller and wraps ErrInvalidToken, and that an accepted token
// names a principal and expires in the future.
func FuzzValidate(f *testing.F) {
	k0 := signingKey(f, 0)
	rsa0 := rsaKey(f, 0)
	iss := newTestIssuer(f, fixedNow(t0), k0)
	path := writeJWKS(f, rsaJWK(rsa0, "rsa", ""))
	v := newTestValidator(f, ValidatorConfig{
		Local:          iss,
		LocalAudiences: []string{testAudience},
		Trusted:        []TrustedIssuer{{Issuer: extIssuer, JWKSFile: path, Audiences: []string{extAudience}}},
		Now:            fixedNow(t0),
	})

	own, _, err := iss.Issue(testPrincipal("s"), testAudience)
	check(f, err)
	seeds := []string{
		own,
		signJWT(f, rsa0, jose.RS256, "rsa", extClaims(t0)),
		signJWT(f, rsa0, jose.PS256, "rsa", extClaims(t0)),
		signJWT(f, k0.priv, jose.ES256, k0.KeyID(), with(localClaims(t0), "exp", nil)),
		rawJWT(f, map[string]any{"alg": "none", "kid": k0.KeyID()}, localClaims(t0), nil),
		signJWT(f, []byte(strings.Repeat("k", 32)), jose.HS256, k0.KeyID(), localClaims(t0)),
		"",
		".",
		"..",
		"a.b.c",
		"eyJhbGciOiJFUzI1NiJ9.e30.",
		own[:strings.LastIndexByte(own, '.')],
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		caller, err := v.Validate(context.Background(), token)
		if err != nil {
			if caller != (Caller{}) {
				t.Fatalf("error %v with non-zero Caller %+v", err, caller)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			return
		}
		if caller.ObjectID == "" || caller.Issuer == "" || !caller.ExpiresAt.After(t0.Add(-DefaultSkew)) {
			t.Fatalf("accepted token with Caller %+v", caller)
		}
	})
}
