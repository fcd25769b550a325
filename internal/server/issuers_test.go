package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
)

// extIdP is an external OpenID Connect issuer for the tests: it signs tokens
// with an ES256 key it publishes as a JWK Set file and, once served, through
// a discovery document over HTTPS on its own (httptest) CA.
type extIdP struct {
	key      *ecdsa.PrivateKey
	iss      string
	jwksFile string
	srv      *httptest.Server // nil until serve
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

// serve publishes the keys over HTTPS; the issuer becomes the server's URL.
// It returns the discovery URL and a PEM file of the server's CA.
func (idp *extIdP) serve(t *testing.T) (discoveryURL, caFile string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": idp.iss, "jwks_uri": idp.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(idp.jwks())
	})
	idp.srv = httptest.NewUnstartedServer(mux)
	idp.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the cases without the CA fail handshakes
	idp.srv.StartTLS()
	t.Cleanup(idp.srv.Close)
	idp.iss = idp.srv.URL
	caFile = filepath.Join(t.TempDir(), "idp-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idp.srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return idp.srv.URL + "/.well-known/openid-configuration", caFile
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

// TestTrustedIssuerTLS: a trusted issuer on a private CA works with its
// caFile; without it the server logs why (the URL and the TLS error) and
// refuses the issuer's tokens, or with strictIssuers refuses to start.
func TestTrustedIssuerTLS(t *testing.T) {
	const oid = "11111111-2222-4333-8444-555555555555"
	// otherCA is a CA that did not sign the issuer's certificate (every
	// httptest server has the same one).
	otherCA := func(t *testing.T) string {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return writeTemp(t, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	}
	tests := map[string]struct {
		caFile   func(t *testing.T, ca string) string
		strict   bool
		want     int      // status of a token of the issuer on ARM; 0: the server must not start
		wantLogs []string // in the server log or the start error ({url} is the issuer's)
	}{
		"caFile":                 {func(_ *testing.T, ca string) string { return ca }, false, 200, nil},
		"caFile, strict":         {func(_ *testing.T, ca string) string { return ca }, true, 200, nil},
		"no caFile":              {func(*testing.T, string) string { return "" }, false, 401, []string{"{url}/.well-known/openid-configuration", "x509: certificate signed by unknown authority"}},
		"another CA":             {func(t *testing.T, _ string) string { return otherCA(t) }, false, 401, []string{"{url}/.well-known/openid-configuration", "x509: certificate signed by unknown authority"}},
		"no caFile, strict":      {func(*testing.T, string) string { return "" }, true, 0, []string{"trusted issuer {url}", "{url}/.well-known/openid-configuration", "x509: certificate signed by unknown authority"}},
		"another CA, strict":     {func(t *testing.T, _ string) string { return otherCA(t) }, true, 0, []string{"trusted issuer {url}", "x509: certificate signed by unknown authority"}},
		"caFile not a PEM file":  {func(t *testing.T, _ string) string { return writeTemp(t, "not a certificate") }, false, 0, []string{"identity.trustedIssuers[0].caFile", "holds no PEM certificate"}},
		"caFile missing, strict": {func(t *testing.T, _ string) string { return filepath.Join(t.TempDir(), "nope.pem") }, true, 0, []string{"identity.trustedIssuers[0].caFile", "no such file"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			idp := newExtIdP(t, "")
			discovery, ca := idp.serve(t)
			cfg := server.DefaultConfig()
			cfg.Dev, cfg.DataDir, cfg.Listen = true, t.TempDir(), "127.0.0.1:0"
			cfg.StrictIssuers = tc.strict
			cfg.Identity.RegionAdmins = []string{oid}
			cfg.Identity.TrustedIssuers = []server.TrustedIssuerConfig{{Issuer: idp.iss, DiscoveryURL: discovery,
				CAFile: tc.caFile(t, ca), ARMAudiences: []string{"api://tresor-arm"}, HSMAudiences: []string{"api://tresor-hsm"}}}
			wantIn := func(what, text string) {
				t.Helper()
				for _, w := range tc.wantLogs {
					if w = strings.ReplaceAll(w, "{url}", idp.iss); !strings.Contains(text, w) {
						t.Errorf("%s lacks %q:\n%s", what, w, text)
					}
				}
			}
			if tc.want == 0 {
				srv, err := server.New(context.Background(), cfg, io.Discard)
				if err == nil {
					srv.Close()
					t.Fatal("the server started")
				}
				wantIn("start error", err.Error())
				if strings.Contains(err.Error(), "less than a minute ago") {
					t.Errorf("the start error reports the shared issuer twice: %v", err)
				}
				return
			}
			var logs lockedBuffer
			s := servertest.StartConfigLog(t, cfg, &logs)
			c := newCall(t, s)
			listURL := s.Endpoint + "/subscriptions/" + c.sub() + "/providers/Microsoft.KeyVault/managedHSMs" + armVersion
			tok := idp.token(t, oid, "api://tresor-arm")
			for range 2 {
				code, _, body := c.do("GET", listURL, tok, nil)
				if code != tc.want {
					t.Fatalf("status %d, want %d: %s", code, tc.want, body)
				}
			}
			logged := logs.String()
			wantIn("server log", logged)
			warnings := strings.Count(logged, "cannot fetch signing keys")
			if tc.want == 200 && warnings != 0 || tc.want == 401 && warnings != 1 {
				t.Fatalf("%d fetch warnings:\n%s", warnings, logged)
			}
			if strings.Contains(logged, tok[strings.LastIndexByte(tok, '.')+1:]) {
				t.Fatal("the server logged the token")
			}
		})
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServerCommandStrictIssuers: `tresor server --strict-issuers` refuses
// to start when a trusted issuer of its config file cannot be reached, and
// says which and why.
func TestServerCommandStrictIssuers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	discovery := "https://" + ln.Addr().String() + "/.well-known/openid-configuration"
	ln.Close() // nothing listens there any more: the connection is refused
	cfg := map[string]any{"identity": map[string]any{"trustedIssuers": []any{map[string]any{
		"issuer": "https://idp.example.test", "discoveryUrl": discovery, "armAudiences": []string{"api://tresor"}}}}}
	b, _ := json.Marshal(cfg)
	file := writeTemp(t, string(b))
	cmd := server.Command()
	cmd.SetArgs([]string{"--dev", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--config", file, "--strict-issuers"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage = true
	err = cmd.ExecuteContext(context.Background())
	if err == nil {
		t.Fatal("the server started")
	}
	for _, w := range []string{"strict issuers", "trusted issuer https://idp.example.test", discovery, "connection refused"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
}
