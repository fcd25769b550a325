package server_test

import (
	"crypto/elliptic"
	"encoding/base64"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
)

// TestRegionTokensLowS: every token of the region's issuer is accepted
// (the issuer emits low S only), and the same token with S' = N - S — still
// a valid ECDSA signature — is refused with 401.
func TestRegionTokensLowS(t *testing.T) {
	// 200 tokens in a row: more than the token endpoint's default rate.
	s := servertest.Start(t, func(c *server.Config) { c.TokenRatePerClient = server.Rate{} })
	c := newCall(t, s)
	n := elliptic.P256().Params().N
	for i := range 200 {
		tok := s.AdminToken(t)
		if code, _, body := c.do("GET", s.Endpoint+"/tresor/account", tok, nil); code != 200 {
			t.Fatalf("token %d: %d %s", i, code, body)
		}
		if i >= 10 {
			continue
		}
		j := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[j+1:])
		if err != nil || len(sig) != 64 {
			t.Fatalf("signature: %v (%d bytes)", err, len(sig))
		}
		hs := new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:]))
		high := tok[:j+1] + base64.RawURLEncoding.EncodeToString(append(sig[:32:32], hs.FillBytes(make([]byte, 32))...))
		code, hdr, body := c.do("GET", s.Endpoint+"/tresor/account", high, nil)
		if code != http.StatusUnauthorized || !strings.Contains(string(body), "high S") || hdr.Get("WWW-Authenticate") == "" {
			t.Fatalf("token %d with high S: %d %s", i, code, body)
		}
	}
}
