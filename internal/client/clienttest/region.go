// Package clienttest runs a fake Tresor region for tests of the client side
// (packages client and cli) while no real server is at hand, or where a test
// must see exactly what the client sent.
//
// [New] starts an HTTPS server on 127.0.0.1 with its own CA, whose
// certificate covers 127.0.0.1, localhost and *.{dnsSuffix}. It answers
// GET /tresor/region, the client-credentials token endpoint (tokens are
// unsigned JWT-shaped strings carrying aud, oid and exp), and an in-memory
// control plane: managed HSMs in ARM's shape (create, get, patch, delete,
// lists, deleted HSMs, purge, recover, answering long operations with an
// Azure-AsyncOperation status URL), subscriptions, locations, principals
// and the account. Every route but the region info and the token endpoint
// demands a bearer token issued by the fake for the right audience, and
// every ARM route an api-version. Requests to HSM hosts go to [Region.HSM].
//
// The fake is no reference for the server's behaviour: it knows only what
// the client tests need.
package clienttest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// DNSSuffix is the fake region's HSM DNS suffix. It lies under .invalid, so
// that no resolver knows it and only dialing the region address reaches it.
const DNSSuffix = "managedhsm.invalid"

// Request is what the fake recorded of one request.
type Request struct {
	Method string
	Host   string // the HTTP Host header
	SNI    string // the TLS server name
	Path   string
	Query  url.Values
	Body   []byte
	// Audience is the aud of the request's valid bearer token, if any.
	Audience string
}

// Region is a running fake region. Its exported fields may be changed by
// the test before the requests they affect.
type Region struct {
	// URL is the region endpoint, https://127.0.0.1:{port}.
	URL string
	// CAPEM is the fake's CA certificate, also written to CAFile.
	CAPEM  []byte
	CAFile string
	// Info is what GET /tresor/region answers.
	Info wire.RegionInfo
	// ClientID, ClientSecret and ObjectID are the credentials of a
	// principal that exists from the start (a region administrator).
	ClientID, ClientSecret, ObjectID string
	// TokenTTL is the lifetime of issued tokens; one hour by default.
	TokenTTL time.Duration
	// AsyncPolls is how many times an operation's status URL answers
	// InProgress before Succeeded; 1 by default.
	AsyncPolls int
	// Intercept, if set, sees every request first (after recording) and
	// answers it by returning true.
	Intercept func(w http.ResponseWriter, r *http.Request) bool
	// PageSize, if positive, splits lists into pages of that many items
	// linked by nextLink.
	PageSize int
	// HSM serves authenticated requests to HSM hosts ({name}.{DNSSuffix});
	// by default they get 404.
	HSM http.Handler

	srv    *httptest.Server
	routes *http.ServeMux

	mu         sync.Mutex
	requests   []Request
	tokens     map[string]tokenInfo
	principals map[string]*principal // by client id
	hsms       map[string]*wire.ManagedHSM
	deleted    map[string]*wire.DeletedManagedHSM
	ops        map[string]*operation
}

type tokenInfo struct {
	aud, oid string
	exp      time.Time
}

type principal struct {
	wire.Principal
	secret string
}

type operation struct {
	remaining int
	done      func()
}

// New starts a fake region; it stops at the end of the test.
func New(t testing.TB) *Region {
	t.Helper()
	caPEM, leaf := newCert(t)
	r := &Region{
		CAPEM:      caPEM,
		TokenTTL:   time.Hour,
		AsyncPolls: 1,
		tokens:     map[string]tokenInfo{},
		principals: map[string]*principal{},
		hsms:       map[string]*wire.ManagedHSM{},
		deleted:    map[string]*wire.DeletedManagedHSM{},
		ops:        map[string]*operation{},
	}
	r.routes = r.mux()
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are expected in tests
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	r.URL = r.srv.URL
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(r.URL, "https://"))
	r.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(r.CAFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	r.Info = wire.RegionInfo{
		Region:             "local",
		DNSSuffix:          DNSSuffix,
		TenantID:           uuid(),
		Endpoint:           r.URL,
		Authority:          r.URL,
		SubscriptionID:     uuid(),
		HSMResource:        "https://" + DNSSuffix + ":" + port,
		ManagementResource: r.URL,
	}
	admin := r.AddPrincipal("bootstrap-admin", true)
	r.ClientID, r.ClientSecret, r.ObjectID = admin.ClientID, admin.ClientSecret, admin.ObjectID
	return r
}

// Config returns a client configuration for the bootstrap principal.
func (r *Region) Config() client.Config {
	return client.Config{
		Server:       r.URL,
		CAPEM:        r.CAPEM,
		ClientID:     r.ClientID,
		ClientSecret: r.ClientSecret,
		PollInterval: time.Millisecond,
	}
}

// Env returns the TRESOR_* environment for the bootstrap principal.
func (r *Region) Env() map[string]string {
	return map[string]string{
		"TRESOR_SERVER":        r.URL,
		"TRESOR_CA_FILE":       r.CAFile,
		"TRESOR_TENANT_ID":     r.Info.TenantID,
		"TRESOR_CLIENT_ID":     r.ClientID,
		"TRESOR_CLIENT_SECRET": r.ClientSecret,
	}
}

// AddPrincipal adds a service principal and returns it with its secret.
func (r *Region) AddPrincipal(name string, admin bool) wire.Principal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addPrincipalLocked(name, admin)
}

func (r *Region) addPrincipalLocked(name string, admin bool) wire.Principal {
	p := &principal{
		Principal: wire.Principal{
			ObjectID:    uuid(),
			ClientID:    uuid(),
			DisplayName: name,
			RegionAdmin: admin,
			Created:     time.Now().UTC().Truncate(time.Second),
		},
		secret: base64.RawURLEncoding.EncodeToString(randBytes(24)),
	}
	r.principals[p.ClientID] = p
	out := p.Principal
	out.ClientSecret = p.secret
	return out
}

// Requests returns the requests recorded so far.
func (r *Region) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// HSMs returns the live managed HSMs, by lower-case name.
func (r *Region) HSMs() map[string]wire.ManagedHSM {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]wire.ManagedHSM{}
	for k, v := range r.hsms {
		out[k] = *v
	}
	return out
}

// IssueToken returns a token for aud issued to the bootstrap principal,
// valid for ttl (negative: already expired).
func (r *Region) IssueToken(aud string, ttl time.Duration) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.issueLocked(aud, r.ObjectID, ttl)
}

func (r *Region) issueLocked(aud, oid string, ttl time.Duration) string {
	exp := time.Now().Add(ttl)
	claims, _ := json.Marshal(map[string]any{"aud": aud, "oid": oid, "tid": r.Info.TenantID, "exp": exp.Unix()})
	tok := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(claims) + "." + base64.RawURLEncoding.EncodeToString(randBytes(16))
	r.tokens[tok] = tokenInfo{aud: aud, oid: oid, exp: exp}
	return tok
}

func (r *Region) serve(w http.ResponseWriter, req *http.Request) {
	body := readBody(req)
	rec := Request{Method: req.Method, Host: req.Host, Path: req.URL.Path, Query: req.URL.Query(), Body: body}
	if req.TLS != nil {
		rec.SNI = req.TLS.ServerName
	}
	tok, ok := r.authenticate(req)
	if ok {
		rec.Audience = tok.aud
	}
	r.mu.Lock()
	r.requests = append(r.requests, rec)
	r.mu.Unlock()
	if r.Intercept != nil && r.Intercept(w, req) {
		return
	}
	host, _, err := net.SplitHostPort(req.Host)
	if err != nil {
		host = req.Host
	}
	if strings.HasSuffix(strings.ToLower(host), "."+DNSSuffix) {
		if !ok || tok.aud != r.Info.HSMResource {
			writeError(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
			return
		}
		if r.HSM == nil {
			writeError(w, http.StatusNotFound, "NotFound", "no such route")
			return
		}
		r.HSM.ServeHTTP(w, req)
		return
	}
	switch {
	case req.Method == http.MethodGet && req.URL.Path == "/tresor/region":
		writeJSON(w, http.StatusOK, r.Info)
		return
	case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/oauth2/v2.0/token"):
		r.token(w, req, body)
		return
	}
	if !ok || tok.aud != r.Info.ManagementResource {
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is missing, invalid or for another audience.")
		return
	}
	if strings.HasPrefix(req.URL.Path, "/subscriptions") && req.URL.Query().Get("api-version") == "" &&
		!strings.HasPrefix(req.URL.Path, "/tresor/") {
		writeError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	}
	r.route(w, req, body, tok)
}

// authenticate checks the request's bearer token.
func (r *Region) authenticate(req *http.Request) (tokenInfo, bool) {
	h := req.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") {
		return tokenInfo{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tokens[strings.TrimPrefix(h, "Bearer ")]
	if !ok || time.Now().After(t.exp) {
		return tokenInfo{}, false
	}
	return t, true
}

func (r *Region) token(w http.ResponseWriter, req *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	if err != nil || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		writeOAuth(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: form body expected")
		return
	}
	tenant := strings.Split(strings.TrimPrefix(req.URL.Path, "/"), "/")[0]
	if tenant != r.Info.TenantID {
		writeOAuth(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant '"+tenant+"' not found.")
		return
	}
	if form.Get("grant_type") != "client_credentials" {
		writeOAuth(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: grant type not supported")
		return
	}
	aud := strings.TrimSuffix(form.Get("scope"), "/.default")
	if aud != r.Info.ManagementResource && aud != r.Info.HSMResource {
		writeOAuth(w, http.StatusBadRequest, "invalid_scope", "AADSTS70011: The provided value for scope "+form.Get("scope")+" is not valid.")
		return
	}
	r.mu.Lock()
	p, ok := r.principals[form.Get("client_id")]
	if !ok || p.secret != form.Get("client_secret") {
		r.mu.Unlock()
		writeOAuth(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	}
	tok := r.issueLocked(aud, p.ObjectID, r.TokenTTL)
	r.mu.Unlock()
	ttl := int(r.TokenTTL / time.Second)
	writeJSON(w, http.StatusOK, wire.Token{TokenType: "Bearer", ExpiresIn: ttl, ExtExpiresIn: ttl, AccessToken: tok})
}

// newCert makes a CA and a leaf certificate for the fake.
func newCert(t testing.TB) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "clienttest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		DNSNames:     []string{"localhost", "*." + DNSSuffix},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func readBody(req *http.Request) []byte {
	if req.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(req.Body, 16<<20))
	req.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, wire.Error{Error: wire.ErrorDetail{Code: code, Message: msg}})
}

func writeOAuth(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, wire.OAuthError{Error: code, ErrorDescription: desc, ErrorCodes: []int{7000215}})
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func uuid() string {
	b := randBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
