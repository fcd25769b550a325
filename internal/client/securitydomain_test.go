package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tresor/internal/client"
	"tresor/internal/client/clienttest"
	"tresor/internal/wire"
)

// azureTestdata is the real Azure security-domain test vector.
var azureTestdata = filepath.Join("..", "securitydomain", "testdata", "azure-security-domain")

func readCertDER(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(azureTestdata, name))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", name)
	}
	return block.Bytes
}

// selfSigned makes a self-signed certificate for key (DER).
func selfSigned(t *testing.T, key any, pub any) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCustodianJWK(t *testing.T) {
	der := readCertDER(t, "sd1.cer") // expired in 2021: dates are not checked
	jwk, err := client.CustodianJWK(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pub := cert.PublicKey.(*rsa.PublicKey)
	b64u := base64.RawURLEncoding.EncodeToString
	s1, s256 := sha1.Sum(der), sha256.Sum256(der)
	want := wire.SecurityDomainJWK{
		Kty:     "RSA",
		KeyOps:  []string{"verify", "encrypt", "wrapKey"},
		N:       b64u(pub.N.Bytes()),
		E:       "AQAB",
		X5C:     []string{base64.StdEncoding.EncodeToString(der)},
		X5T:     b64u(s1[:]),
		X5TS256: b64u(s256[:]),
		Alg:     "RSA-OAEP-256",
	}
	got, _ := json.Marshal(jwk)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("JWK\n got %s\nwant %s", got, exp)
	}
	// The thumbprint is the one the Azure file names this certificate by.
	if jwk.X5TS256 != "vODZF4xDVWHyFob2nfI5Li1MPOmEhVJqlnojTK_HuYg" {
		t.Errorf("x5t#S256 = %s", jwk.X5TS256)
	}
	// x5c is standard base64 with padding; n has no leading zero byte.
	if strings.ContainsAny(jwk.X5C[0], "-_") || len(jwk.X5C[0])%4 != 0 {
		t.Errorf("x5c is not padded standard base64: %.40s…", jwk.X5C[0])
	}
	if n, _ := base64.RawURLEncoding.DecodeString(jwk.N); len(n) != 256 || n[0] == 0 {
		t.Errorf("n is %d bytes", len(n))
	}
	// kid and use stay out, as az sends them.
	var m map[string]any
	_ = json.Unmarshal(got, &m)
	for _, k := range []string{"kid", "use"} {
		if _, ok := m[k]; ok {
			t.Errorf("JWK has %s", k)
		}
	}
}

func TestCustodianJWKRefuses(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		der  []byte
		want string
	}{
		"RSA-1024":       {selfSigned(t, small, &small.PublicKey), "1024 bits: only RSA >= 2048 bits"},
		"EC":             {selfSigned(t, ec, &ec.PublicKey), "ECDSA, not RSA"},
		"not a cert":     {[]byte("garbage"), "not an X.509 certificate"},
		"empty":          {nil, "not an X.509 certificate"},
		"truncated cert": {readCertDER(t, "sd2.cer")[:100], "not an X.509 certificate"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := client.CustodianJWK(tc.der)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// fakeSD is a fake HSM's security-domain routes.
type fakeSD struct {
	mu          sync.Mutex
	pendingLeft int    // InProgress answers before the final status
	final       string // final status
	details     string
	transferKey string // body of GET /securitydomain/upload
	downloads   []wire.CertificateInfo
	uploads     []string
	polls       []time.Time
}

func (f *fakeSD) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	write := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	accepted := func(kind string) {
		w.Header().Set("Azure-AsyncOperation", "https://"+r.Host+"/securitydomain/"+kind+"/pending")
		w.Header().Set("Retry-After", "5")
	}
	if !strings.HasSuffix(r.URL.Path, "/pending") && r.URL.Query().Get("api-version") == "" {
		write(400, wire.Error{Error: wire.ErrorDetail{Code: "MissingApiVersionParameter"}})
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "POST /securitydomain/download":
		var req wire.CertificateInfo
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.downloads = append(f.downloads, req)
		accepted("download")
		write(http.StatusAccepted, wire.SecurityDomainValue{Value: `{"EncData":{},"version":2}`})
	case "GET /securitydomain/upload":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(f.transferKey))
	case "POST /securitydomain/upload":
		var req wire.SecurityDomainValue
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.uploads = append(f.uploads, req.Value)
		accepted("upload")
		write(http.StatusAccepted, wire.SecurityDomainStatus{Status: "InProgress", StatusDetails: "uploading"})
	case "GET /securitydomain/download/pending", "GET /securitydomain/upload/pending":
		f.polls = append(f.polls, time.Now())
		if f.pendingLeft > 0 {
			f.pendingLeft--
			write(200, wire.SecurityDomainStatus{Status: "InProgress"})
			return
		}
		write(200, wire.SecurityDomainStatus{Status: f.final, StatusDetails: f.details})
	default:
		write(404, wire.Error{Error: wire.ErrorDetail{Code: "NotFound", Message: r.URL.Path}})
	}
}

func sdRegion(t *testing.T) (*clienttest.Region, *fakeSD, *client.Client, string) {
	t.Helper()
	r := clienttest.New(t)
	f := &fakeSD{final: "Success", details: "done"}
	r.HSM = f
	c := newClient(t, r)
	u, err := c.HSMURL(context.Background(), "hsm1")
	if err != nil {
		t.Fatal(err)
	}
	return r, f, c, u
}

func TestSecurityDomainDownload(t *testing.T) {
	_, f, c, hsmURL := sdRegion(t)
	f.pendingLeft = 2
	ctx := context.Background()
	jwk, err := client.CustodianJWK(readCertDER(t, "sd1.cer"))
	if err != nil {
		t.Fatal(err)
	}
	file, op, err := c.BeginDownloadSecurityDomain(ctx, hsmURL, []wire.SecurityDomainJWK{jwk, jwk, jwk}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if string(file) != `{"EncData":{},"version":2}` {
		t.Errorf("file = %s", file)
	}
	if len(f.downloads) != 1 || *f.downloads[0].Required != 2 || len(f.downloads[0].Certificates) != 3 {
		t.Fatalf("download request %+v", f.downloads)
	}
	if op.Done() || op.Kind() != client.SecurityDomainDownload || op.Status().Status != "InProgress" {
		t.Fatalf("operation before polling: done %v, %s, %+v", op.Done(), op.Kind(), op.Status())
	}
	var seen []string
	start := time.Now()
	st, err := op.Wait(ctx, func(s string) { seen = append(seen, s) })
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "Success" || st.StatusDetails != "done" || !op.Done() {
		t.Fatalf("final %+v", st)
	}
	if strings.Join(seen, ",") != "InProgress,InProgress,Success" {
		t.Errorf("progress %v", seen)
	}
	// The 202's Retry-After (5 s) is not waited: the client's interval is.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("waiting took %v", d)
	}
	if len(f.polls) != 3 {
		t.Errorf("%d polls, want 3", len(f.polls))
	}
}

func TestSecurityDomainUploadFailed(t *testing.T) {
	_, f, c, hsmURL := sdRegion(t)
	f.final, f.details = "Failed", "the upload blob was made for another exchange key"
	ctx := context.Background()
	first, op, err := c.BeginUploadSecurityDomain(ctx, hsmURL, []byte(`{"WrappedKey":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != "InProgress" || first.StatusDetails != "uploading" {
		t.Errorf("first status %+v", first)
	}
	if len(f.uploads) != 1 || f.uploads[0] != `{"WrappedKey":{}}` {
		t.Errorf("uploaded %q", f.uploads)
	}
	st, err := op.Wait(ctx, nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != "SecurityDomainUploadFailed" || ce.Message != f.details {
		t.Fatalf("error %v, want SecurityDomainUploadFailed with the details", err)
	}
	if st == nil || st.Status != "Failed" {
		t.Fatalf("final %+v", st)
	}
	// Polling again returns the same error without asking the server.
	n := len(f.polls)
	if err := op.Poll(ctx); !errors.As(err, &ce) || len(f.polls) != n {
		t.Errorf("second Poll: %v, %d polls", err, len(f.polls)-n)
	}
}

func TestSecurityDomainOperationOf(t *testing.T) {
	_, f, c, hsmURL := sdRegion(t)
	f.final = "Succeeded" // older service builds
	if _, err := c.SecurityDomainOperationOf(hsmURL, "restore"); err == nil {
		t.Error("unknown operation accepted")
	}
	op, err := c.SecurityDomainOperationOf(hsmURL, client.SecurityDomainUpload)
	if err != nil {
		t.Fatal(err)
	}
	st, err := op.Wait(context.Background(), nil)
	if err != nil || st.Status != "Succeeded" {
		t.Fatalf("wait: %+v, %v", st, err)
	}
	// A context that ends stops the wait.
	f.pendingLeft = 1000
	op, _ = c.SecurityDomainOperationOf(hsmURL, client.SecurityDomainDownload)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := op.Wait(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with a deadline: %v", err)
	}
}

func TestSecurityDomainTransferKey(t *testing.T) {
	_, f, c, hsmURL := sdRegion(t)
	der := readCertDER(t, "exchange.cer")
	x5c := base64.StdEncoding.EncodeToString(der)
	jwk, _ := json.Marshal(map[string]any{"kty": "RSA", "x5c": []string{x5c}})
	asString, _ := json.Marshal(map[string]any{"key_format": "jwk", "transfer_key": string(jwk)})
	asObject, _ := json.Marshal(map[string]any{"key_format": "jwk", "transfer_key": json.RawMessage(jwk)})
	asPEM, _ := json.Marshal(map[string]any{"key_format": "pem", "transfer_key": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))})
	good := map[string]string{"JWK string": string(asString), "JWK object": string(asObject), "legacy PEM": string(asPEM)}
	for name, body := range good {
		t.Run(name, func(t *testing.T) {
			f.transferKey = body
			got, err := c.SecurityDomainTransferKey(context.Background(), hsmURL)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(der) {
				t.Fatal("wrong certificate")
			}
		})
	}
	bad := map[string]string{
		"no transfer_key": `{"key_format":"jwk"}`,
		"no x5c":          `{"key_format":"jwk","transfer_key":"{\"kty\":\"RSA\"}"}`,
		"not JSON":        `{"key_format":"jwk","transfer_key":"nope"}`,
		"bad base64":      `{"key_format":"jwk","transfer_key":"{\"x5c\":[\"***\"]}"}`,
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			f.transferKey = body
			if _, err := c.SecurityDomainTransferKey(context.Background(), hsmURL); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
