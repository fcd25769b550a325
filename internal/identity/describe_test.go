package identity_test

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"tresor/internal/identity"
)

func TestDescribeToken(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	jwt := func(hdr, claims string) string { return enc(hdr) + "." + enc(claims) + ".c2lnbmF0dXJl" }
	long := strings.Repeat("a", 300)
	tests := map[string]struct {
		token string
		want  identity.TokenLabels
	}{
		"one audience":   {jwt(`{"alg":"ES256","kid":"k1"}`, `{"iss":"https://idp/v2.0","aud":"https://hsm","oid":"x"}`), identity.TokenLabels{Issuer: "https://idp/v2.0", Audience: []string{"https://hsm"}, KeyID: "k1"}},
		"audiences":      {jwt(`{"kid":"k2"}`, `{"iss":"i","aud":["a","b"]}`), identity.TokenLabels{Issuer: "i", Audience: []string{"a", "b"}, KeyID: "k2"}},
		"clipped":        {jwt(`{"kid":"`+long+`"}`, `{"iss":"`+long+`"}`), identity.TokenLabels{Issuer: long[:200], KeyID: long[:200]}},
		"bad claims":     {jwt(`{"kid":"k3"}`, `not json`), identity.TokenLabels{KeyID: "k3"}},
		"not a JWS":      {"opaque-token", identity.TokenLabels{}},
		"bad base64":     {"!!.!!.!!", identity.TokenLabels{}},
		"five JWE parts": {"a.b.c.d.e", identity.TokenLabels{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := identity.DescribeToken(tc.token)
			if got.Issuer != tc.want.Issuer || got.KeyID != tc.want.KeyID || !slices.Equal(got.Audience, tc.want.Audience) {
				t.Fatalf("DescribeToken = %+v, want %+v", got, tc.want)
			}
		})
	}
}
