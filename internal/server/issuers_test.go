package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
)

// extIdP is an external OpenID Connect issuer for the tests: it signs tokens
// with an ES256 key it publishes as a JWK Set file.
type extIdP struct {
	key      *ecdsa.PrivateKey
	iss      string
	jwksFile string
}

func newExtIdP(t *testing.T, iss string) *extIdP {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	idp := &extIdP{key: key, iss: iss, jwksFile: filepath.Join(t.TempDir(), "jwks.json")}
	if err := os.WriteFile(idp.jwksFile, idp.jwks(), 0o600); err != nil {
		t.Fatal(err)
	}
	return idp
}

func (idp *extIdP) jwks() []byte {
	pub := jose.JSONWebKey{Key: &idp.key.PublicKey, KeyID: "ext-1", Algorithm: "ES256", Use: "sig"}
	j, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	return j
}

func (idp *extIdP) token(t *testing.T, oid string, aud any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: idp.key, KeyID: "ext-1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	tok, err := jwt.Signed(sig).Claims(map[string]any{"iss": idp.iss, "aud": aud, "oid": oid,
		"exp": now + 600, "nbf": now - 10, "iat": now - 10}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestCrossPlaneTokens: a token for one plane is refused on the other, for
// the region's own tokens (the default and the extra audiences) and for a
// trusted issuer's (armAudiences, hsmAudiences), and each is good on its
// own plane.
func TestCrossPlaneTokens(t *testing.T) {
	const (
		extARM   = "https://management.hsm.example.test/" // a custom cloud's activeDirectoryResourceId
		extHSM   = "https://managedhsm.hsm.example.test"  // its https://{dnsSuffix}
		extraARM = "https://management.extra.example.test/"
		extraHSM = "https://managedhsm.extra.example.test"
		extOID   = "11111111-2222-4333-8444-555555555555"
	)
	idp := newExtIdP(t, "https://login.example.test/planes/v2.0")
	s := servertest.Start(t, func(c *server.Config) {
		c.Identity.TrustedIssuers = []server.TrustedIssuerConfig{{Issuer: idp.iss, JWKSFile: idp.jwksFile,
			ARMAudiences: []string{extARM}, HSMAudiences: []string{extHSM}}}
		c.Identity.RegionAdmins = []string{extOID}
		c.Identity.ExtraARMAudiences = []string{extraARM}
		c.Identity.ExtraHSMAudiences = []string{extraHSM}
	})
	c := newCall(t, s)
	activeHSM(t, s, "planes")
	// The external principal may read keys on the HSM (Crypto User).
	assign(t, c, s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource()), "planes", "/keys", "21dbd100-6940-42c2-9190-5d6cb909625b", extOID)

	local := func(resource string) string { return s.Token(t, s.ClientID, s.ClientSecret, resource) }
	armURL := s.Endpoint + "/subscriptions/" + c.sub() + "/providers/Microsoft.KeyVault/managedHSMs" + armVersion
	hsmURL := s.HSMURL("planes") + "/keys?api-version=7.4"
	tests := map[string]struct {
		token string
		url   string
		want  int
	}{
		"local ARM token on ARM":               {local(s.Endpoint), armURL, 200},
		"local ARM token on HSM":               {local(s.Endpoint), hsmURL, 401},
		"local Azure ARM audience on HSM":      {local("https://management.core.windows.net/"), hsmURL, 401},
		"local HSM token on HSM":               {local(s.HSMResource()), hsmURL, 200},
		"local HSM token on ARM":               {local(s.HSMResource()), armURL, 401},
		"local extra ARM audience on ARM":      {local(extraARM), armURL, 200},
		"local extra ARM audience on HSM":      {local(extraARM), hsmURL, 401},
		"local extra HSM audience on HSM":      {local(extraHSM), hsmURL, 200},
		"local extra HSM audience on ARM":      {local(extraHSM), armURL, 401},
		"trusted ARM token on ARM":             {idp.token(t, extOID, extARM), armURL, 200},
		"trusted ARM token on HSM":             {idp.token(t, extOID, extARM), hsmURL, 401},
		"trusted HSM token on HSM":             {idp.token(t, extOID, extHSM), hsmURL, 200},
		"trusted HSM token on ARM":             {idp.token(t, extOID, extHSM+"/"), armURL, 401},
		"trusted token for the region on ARM":  {idp.token(t, extOID, s.Endpoint), armURL, 401},
		"trusted token for the region on HSM":  {idp.token(t, extOID, s.HSMResource()), hsmURL, 401},
		"trusted token for both planes on ARM": {idp.token(t, extOID, []string{extARM, extHSM}), armURL, 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, hdr, body := c.do("GET", tc.url, tc.token, nil)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			if code == 401 {
				wantError(t, code, body, 401, "")
				if hdr.Get("WWW-Authenticate") == "" {
					t.Fatal("no WWW-Authenticate")
				}
			}
		})
	}
}
