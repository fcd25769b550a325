package server_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tresor/internal/securitydomain"
	"tresor/internal/server/servertest"
	"tresor/internal/wire"
)

func custodian(t testing.TB, name string) securitydomain.Custodian {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join("testdata", "custodians", name+".cer"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := securitydomain.ParseCertificatePEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := name + ".pem"
	if name == "exchange" {
		keyFile = "exchange.key"
	}
	keyPEM, err := os.ReadFile(filepath.Join("testdata", "custodians", keyFile))
	if err != nil {
		t.Fatal(err)
	}
	key, err := securitydomain.ParsePrivateKeyPEM(keyPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	return securitydomain.Custodian{Cert: cert, Key: key}
}

func downloadBody(required int, cs ...securitydomain.Custodian) wire.CertificateInfo {
	req := wire.CertificateInfo{Required: &required}
	for _, c := range cs {
		req.Certificates = append(req.Certificates, wire.SecurityDomainJWK{
			Kty: "RSA", Alg: "RSA-OAEP-256", KeyOps: []string{"verify", "encrypt", "wrapKey"},
			X5C: []string{base64.StdEncoding.EncodeToString(c.Cert.DER)}, X5TS256: c.Cert.Thumbprint(),
		})
	}
	return req
}

func activation(t *testing.T, c *call, name, tok string) string {
	t.Helper()
	code, _, body := c.do("GET", c.hsmPath(name), tok, nil)
	if code != 200 {
		t.Fatalf("get %s: %d %s", name, code, body)
	}
	var h wire.ManagedHSM
	_ = json.Unmarshal(body, &h)
	return h.Properties.SecurityDomainProperties.ActivationStatus
}

func TestSecurityDomainDownloadAndRecovery(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	arm := s.AdminToken(t)
	hsm := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	sd1, sd2, sd3, ex := custodian(t, "sd1"), custodian(t, "sd2"), custodian(t, "sd3"), custodian(t, "exchange")
	for _, n := range []string{"original", "rebuilt", "spare"} {
		if code, _, body := c.do("PUT", c.hsmPath(n), arm, createBody(s.ObjectID)); code != 202 {
			t.Fatalf("create %s: %d %s", n, code, body)
		}
	}
	sdURL := func(name, path string) string { return s.HSMURL(name) + "/securitydomain/" + path + "?api-version=7.2" }

	// Bad download requests: clear 400s, nothing changes.
	bad := map[string]wire.CertificateInfo{
		"two certificates": downloadBody(2, sd1, sd2),
		"quorum 1":         downloadBody(1, sd1, sd2, sd3),
		"quorum above N":   downloadBody(4, sd1, sd2, sd3),
		"duplicate":        downloadBody(2, sd1, sd1, sd2),
		"no x5c":           {Certificates: []wire.SecurityDomainJWK{{Kty: "RSA"}, {}, {}}, Required: new(int)},
	}
	for name, req := range bad {
		t.Run("download "+name, func(t *testing.T) {
			code, _, body := c.do("POST", sdURL("spare", "download"), hsm, req)
			wantError(t, code, body, http.StatusBadRequest, "BadParameter")
		})
	}
	if st := activation(t, c, "spare", arm); st != "NotActivated" {
		t.Fatalf("spare is %s after bad downloads", st)
	}

	// Download activates.
	code, hdr, body := c.do("POST", sdURL("original", "download"), hsm, downloadBody(2, sd1, sd2, sd3))
	if code != http.StatusAccepted || hdr.Get("Azure-AsyncOperation") != s.HSMURL("original")+"/securitydomain/download/pending" || hdr.Get("Retry-After") == "" {
		t.Fatalf("download: %d %v %.200s", code, hdr, body)
	}
	var v wire.SecurityDomainValue
	_ = json.Unmarshal(body, &v)
	file, err := securitydomain.ParseFile([]byte(v.Value))
	if err != nil {
		t.Fatalf("downloaded file: %v", err)
	}
	if file.Required != 2 || len(file.Shares) != 3 {
		t.Fatalf("file: required %d, %d shares", file.Required, len(file.Shares))
	}
	// The status routes answer without api-version, as clients poll them.
	for _, p := range []string{"download/pending", "upload/pending"} {
		code, _, body = c.do("GET", s.HSMURL("original")+"/securitydomain/"+p, hsm, nil)
		if code != 200 || !strings.Contains(string(body), `"status":"Success"`) {
			t.Fatalf("%s: %d %s", p, code, body)
		}
	}
	if st := activation(t, c, "original", arm); st != "Active" {
		t.Fatalf("original is %s", st)
	}
	// Upload to an active HSM is refused.
	code, _, body = c.do("GET", sdURL("original", "upload"), hsm, nil)
	wantError(t, code, body, http.StatusConflict, "HSMAlreadyActivated")

	// Recovery: the second instance makes an exchange key.
	code, _, body = c.do("GET", sdURL("rebuilt", "upload"), hsm, nil)
	if code != 200 {
		t.Fatalf("transfer key: %d %s", code, body)
	}
	var tk wire.TransferKey
	_ = json.Unmarshal(body, &tk)
	var jwk wire.SecurityDomainJWK
	if err := json.Unmarshal([]byte(tk.TransferKey), &jwk); err != nil || tk.KeyFormat != "jwk" || len(jwk.X5C) != 1 {
		t.Fatalf("transfer key is not a JWK string: %s", body)
	}
	der, _ := base64.StdEncoding.DecodeString(jwk.X5C[0])
	exCert, err := securitydomain.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	// Asking again gives the same key.
	_, _, body2 := c.do("GET", sdURL("rebuilt", "upload"), hsm, nil)
	if string(body2) != string(body) {
		t.Fatal("a second init-recovery made a new exchange key")
	}

	blobs, err := file.Open([]securitydomain.Custodian{sd3, sd1})
	if err != nil {
		t.Fatal(err)
	}
	upload := func(blob []byte) wire.SecurityDomainStatus {
		t.Helper()
		code, hdr, body := c.do("POST", sdURL("rebuilt", "upload"), hsm, wire.SecurityDomainValue{Value: string(blob)})
		if code != http.StatusAccepted || hdr.Get("Azure-AsyncOperation") == "" {
			t.Fatalf("upload: %d %s", code, body)
		}
		code, _, body = c.do("GET", s.HSMURL("rebuilt")+"/securitydomain/upload/pending", hsm, nil)
		var st wire.SecurityDomainStatus
		if err := json.Unmarshal(body, &st); err != nil || code != 200 {
			t.Fatalf("pending: %d %s", code, body)
		}
		return st
	}
	// Failures: a clear message, and the instance stays as it was.
	wrongEx, err := securitydomain.BuildUploadBlob(blobs, ex.Cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	good, err := securitydomain.BuildUploadBlob(blobs, exCert, nil)
	if err != nil {
		t.Fatal(err)
	}
	tampered := tamperCiphertext(t, good)
	missing, err := securitydomain.BuildUploadBlob(blobs[:2], exCert, nil)
	if err != nil {
		t.Fatal(err)
	}
	failures := map[string]struct {
		blob []byte
		want string
	}{
		"other exchange key": {wrongEx, "another exchange key"},
		"tampered":           {tampered, "tampered"},
		"missing tag":        {missing, "partition_enclave_backup"},
	}
	for name, f := range failures {
		t.Run("upload "+name, func(t *testing.T) {
			st := upload(f.blob)
			if st.Status != "Failed" || !strings.Contains(st.StatusDetails, f.want) {
				t.Fatalf("status %+v, want Failed mentioning %q", st, f.want)
			}
			if a := activation(t, c, "rebuilt", arm); a != "NotActivated" {
				t.Fatalf("rebuilt is %s after a failed upload", a)
			}
		})
	}
	code, _, body = c.do("POST", sdURL("rebuilt", "upload"), hsm, `{"value": 5}`)
	wantError(t, code, body, http.StatusBadRequest, "BadParameter")

	// The good blob activates the instance with the same root.
	if st := upload(good); st.Status != "Success" {
		t.Fatalf("upload: %+v", st)
	}
	if a := activation(t, c, "rebuilt", arm); a != "Active" {
		t.Fatalf("rebuilt is %s", a)
	}
	rootID := func(name string) string {
		in, err := s.Instances.Get(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		root, err := s.Instances.Root(in)
		if err != nil {
			t.Fatal(err)
		}
		return root.ID()
	}
	if rootID("rebuilt") != rootID("original") || rootID("spare") == rootID("original") {
		t.Fatal("the rebuilt instance does not hold the original's root")
	}
	// The re-sealed role assignments still authorize the administrator.
	code, _, body = c.do("POST", sdURL("rebuilt", "download"), hsm, downloadBody(3, sd1, sd2, sd3))
	if code != http.StatusAccepted {
		t.Fatalf("download from rebuilt: %d %s", code, body)
	}
	_ = json.Unmarshal(body, &v)
	again, err := securitydomain.ParseFile([]byte(v.Value))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Open([]securitydomain.Custodian{sd1, sd2}); err == nil {
		t.Fatal("a quorum-3 file opened with 2 keys")
	}
	if _, err := again.Open([]securitydomain.Custodian{sd1, sd2, sd3}); err != nil {
		t.Fatal(err)
	}
}

// tamperCiphertext flips one character of the ciphertext of the first
// EncData JWE.
func tamperCiphertext(t *testing.T, blob []byte) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(blob, &doc); err != nil {
		t.Fatal(err)
	}
	item := doc["EncData"].(map[string]any)["data"].([]any)[0].(map[string]any)
	parts := strings.Split(item["compact_jwe"].(string), ".")
	ct := []byte(parts[3])
	if ct[5] == 'A' {
		ct[5] = 'B'
	} else {
		ct[5] = 'A'
	}
	parts[3] = string(ct)
	item["compact_jwe"] = strings.Join(parts, ".")
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// twinCustodian returns a second self-signed certificate for c's key: a
// different certificate (subject, serial, thumbprint), the same key.
func twinCustodian(t *testing.T, c securitydomain.Custodian) securitydomain.Custodian {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "second certificate, same key"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &c.Key.PublicKey, c.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := securitydomain.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return securitydomain.Custodian{Cert: cert, Key: c.Key}
}

// A download to cert_0, a second certificate for cert_0's key and cert_1 at
// quorum 2 would let cert_0's holder alone rebuild the domain: it is a 400
// and the HSM stays NotActivated.
func TestSecurityDomainDownloadRefusesOneKeyTwice(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	arm := s.AdminToken(t)
	hsm := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	if code, _, body := c.do("PUT", c.hsmPath("quorum"), arm, createBody(s.ObjectID)); code != 202 {
		t.Fatalf("create: %d %s", code, body)
	}
	sd1, sd2, sd3 := custodian(t, "sd1"), custodian(t, "sd2"), custodian(t, "sd3")
	twin := twinCustodian(t, sd1)
	url := s.HSMURL("quorum") + "/securitydomain/download?api-version=7.2"
	tests := map[string]wire.CertificateInfo{
		"cert_0, its twin, cert_1 at quorum 2": downloadBody(2, sd1, twin, sd2),
		"twin last at quorum 3":                downloadBody(3, sd1, sd2, sd3, twin),
		"twin first":                           downloadBody(2, twin, sd2, sd1),
	}
	for name, req := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, body := c.do("POST", url, hsm, req)
			wantError(t, code, body, http.StatusBadRequest, "BadParameter")
			if !strings.Contains(string(body), "different certificates for one RSA key") {
				t.Errorf("the message does not say why: %s", body)
			}
		})
	}
	if st := activation(t, c, "quorum", arm); st != "NotActivated" {
		t.Fatalf("the HSM is %s after the refused downloads", st)
	}
	code, _, body := c.do("GET", s.HSMURL("quorum")+"/securitydomain/download/pending", hsm, nil)
	if code != http.StatusNotFound {
		t.Errorf("a refused download left an operation: %d %s", code, body)
	}
	// Three keys are fine.
	if code, _, body := c.do("POST", url, hsm, downloadBody(2, twin, sd2, sd3)); code != http.StatusAccepted {
		t.Fatalf("download with distinct keys: %d %s", code, body)
	}
}
