package server_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
	"tresor/internal/uuid"
)

// oidcIdP is an OpenID Connect issuer with an authorization endpoint that
// approves at once, and a token endpoint that checks PKCE (S256) and
// answers a refresh token, for the console's issuer sign-in.
type oidcIdP struct {
	*extIdP
	t                  *testing.T
	clientID, oid      string
	armAud, hsmAud     string
	mu                 sync.Mutex
	codes              map[string]oidcCode // code → its request
	refresh            map[string]bool
	lastRedirect       string
	exchanged, renewed int
}

type oidcCode struct{ challenge, redirectURI string }

func newOIDCIdP(t *testing.T, clientID, oid, armAud, hsmAud string) (*oidcIdP, *httptest.Server) {
	idp := &oidcIdP{extIdP: newExtIdP(t, ""), t: t, clientID: clientID, oid: oid, armAud: armAud, hsmAud: hsmAud,
		codes: map[string]oidcCode{}, refresh: map[string]bool{}}
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/keys",
			"authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(idp.jwks()) })
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != clientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
			q.Get("code_challenge") == "" || !strings.Contains(q.Get("scope"), strings.TrimRight(armAud, "/")+"/.default") {
			http.Error(w, "bad authorization request: "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		code := randomHex()
		idp.mu.Lock()
		idp.codes[code] = oidcCode{challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri")}
		to := q.Get("redirect_uri") + "?" + url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
		idp.lastRedirect = to
		idp.mu.Unlock()
		http.Redirect(w, r, to, http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f := r.PostForm
		refuse := func(why string) {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": why})
		}
		if f.Get("client_id") != clientID {
			refuse("unknown client")
			return
		}
		idp.mu.Lock()
		defer idp.mu.Unlock()
		switch f.Get("grant_type") {
		case "authorization_code":
			c, ok := idp.codes[f.Get("code")]
			delete(idp.codes, f.Get("code"))
			sum := sha256.Sum256([]byte(f.Get("code_verifier")))
			if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge || f.Get("redirect_uri") != c.redirectURI {
				refuse("the code, its verifier or its redirect URI do not match")
				return
			}
			idp.exchanged++
			rt := randomHex()
			idp.refresh[rt] = true
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": idp.token(t, oid, armAud), "refresh_token": rt, "expires_in": 600, "token_type": "Bearer"})
		case "refresh_token":
			if !idp.refresh[f.Get("refresh_token")] || f.Get("scope") != strings.TrimRight(hsmAud, "/")+"/.default" {
				refuse("bad refresh token or scope")
				return
			}
			idp.renewed++
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": idp.token(t, oid, hsmAud), "expires_in": 600, "token_type": "Bearer"})
		default:
			refuse("unsupported grant")
		}
	})
	srv = httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	idp.iss = srv.URL
	return idp, srv
}

func randomHex() string { return strings.ReplaceAll(uuid.New(), "-", "") }

// TestConsoleBrowserIssuerSignIn signs in to the console through a trusted
// issuer in the browser: authorization code with PKCE, then a refresh
// token for the HSM audience; the region's API names the external
// principal, and the tokens work on both planes. The fake issuer checks
// the PKCE verifier against the challenge. A second use of the issuer's
// redirect (same state) is refused.
func TestConsoleBrowserIssuerSignIn(t *testing.T) {
	const (
		armAud = "https://management.hsm.example.test/"
		hsmAud = "https://managedhsm.hsm.example.test"
		extOID = "11111111-2222-4333-8444-666666666666"
	)
	idp, srv := newOIDCIdP(t, "tresor-console", extOID, armAud, hsmAud)
	caFile := filepath.Join(t.TempDir(), "idp-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	s := servertest.Start(t, func(c *server.Config) {
		c.Identity.TrustedIssuers = []server.TrustedIssuerConfig{{Issuer: srv.URL, DiscoveryURL: srv.URL + "/.well-known/openid-configuration", CAFile: caFile,
			ARMAudiences: []string{armAud}, HSMAudiences: []string{hsmAud}, ConsoleClientID: "tresor-console"}}
		c.Identity.RegionAdmins = []string{extOID}
	})
	cert, _ := x509.ParseCertificate(srv.Certificate().Raw)
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	b := newBrowser(t, s, base64.StdEncoding.EncodeToString(sum[:]))
	b.base = s.Endpoint // https://localhost:port: the redirect URI's host

	b.open("/console/signin")
	b.wantText("form.issuer", "Sign in with "+srv.URL)
	b.run("sign in through the issuer",
		chromedp.Click(chromedp.CSS("button.oidc")),
		chromedp.WaitVisible(chromedp.CSS("#hsms")),
	)
	b.wantText("#whoami", extOID)
	b.wantText("#whoami", "region administrator")
	idp.mu.Lock()
	exchanged, renewed, again := idp.exchanged, idp.renewed, idp.lastRedirect
	idp.mu.Unlock()
	if exchanged != 1 || renewed != 1 {
		t.Fatalf("code exchanges %d, refreshes %d; want 1 and 1", exchanged, renewed)
	}
	// The HSM token works: create an HSM and see its data plane answer.
	b.run("create HSM",
		chromedp.SendKeys(chromedp.CSS("#hsm-name"), "ext1"),
		chromedp.Click(chromedp.CSS("#create-hsm-submit")),
		chromedp.WaitVisible(chromedp.CSS("#activate-form")),
	)
	b.open("/console/hsm/ext1/roles")
	b.wantText("#assignments", extOID)

	// The issuer's redirect, replayed, is refused: a state works once.
	b.open(strings.TrimPrefix(again, s.Endpoint))
	b.wantText(".flash.error", "SignInStateInvalid")
}
