package server_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
)

// benchHSM starts a region with an active instance holding an RSA-2048,
// a P-256 and an AES-256 key, and returns a request function.
func benchHSM(b *testing.B, opts ...servertest.Option) (do func(path string, body any) []byte) {
	b.Helper()
	s := servertest.Start(b, opts...)
	c := s.HTTPClient(b)
	arm := s.AdminToken(b)
	hsmTok := s.Token(b, s.ClientID, s.ClientSecret, s.HSMResource())
	send := func(method, url, tok string, body any) (int, []byte) {
		var rd io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, url, rd)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	_, rb := send("GET", s.Endpoint+"/tresor/region", "", nil)
	var ri struct {
		SubscriptionID string `json:"subscriptionId"`
	}
	json.Unmarshal(rb, &ri)
	armURL := s.Endpoint + "/subscriptions/" + ri.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.KeyVault/managedHSMs/bench" + armVersion
	if code, body := send("PUT", armURL, arm, createBody(s.ObjectID)); code != 202 {
		b.Fatalf("create: %d %s", code, body)
	}
	base := s.HSMURL("bench")
	cert := func(name string) map[string]any {
		pemBytes, _ := readCustodianCert(name)
		return map[string]any{"kty": "RSA", "x5c": []string{base64.StdEncoding.EncodeToString(pemBytes)}}
	}
	dl := map[string]any{"certificates": []any{cert("sd1"), cert("sd2"), cert("sd3")}, "required": 2}
	if code, body := send("POST", base+"/securitydomain/download?api-version=7.4", hsmTok, dl); code != 202 {
		b.Fatalf("activate: %d %.200s", code, body)
	}
	ra := map[string]any{"properties": map[string]string{"roleDefinitionId": "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b", "principalId": s.ObjectID}}
	if code, body := send("PUT", base+"/providers/Microsoft.Authorization/roleAssignments/6a0b7a58-7b0e-4a56-9f0e-5e0a4f6f0c01?api-version=7.4", hsmTok, ra); code != 201 {
		b.Fatalf("assign: %d %s", code, body)
	}
	for name, body := range map[string]any{
		"rsa": map[string]any{"kty": "RSA-HSM", "key_size": 2048},
		"ec":  map[string]any{"kty": "EC-HSM", "crv": "P-256"},
		"aes": map[string]any{"kty": "oct-HSM", "key_size": 256},
	} {
		if code, out := send("POST", base+"/keys/"+name+"/create?api-version=7.4", hsmTok, body); code != 200 {
			b.Fatalf("create %s: %d %s", name, code, out)
		}
	}
	return func(path string, body any) []byte {
		code, out := send("POST", base+path+"?api-version=7.4", hsmTok, body)
		if code != 200 {
			b.Fatalf("%s: %d %s", path, code, out)
		}
		return out
	}
}

// The benchmarks measure an operation through the whole HTTPS stack
// (TLS with keep-alive, token validation, RBAC, store read, crypto); the
// Local* benchmarks are the bare crypto baseline to compare against.

func BenchmarkSignRS256(b *testing.B) {
	do := benchHSM(b)
	digest := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	b.ResetTimer()
	for b.Loop() {
		do("/keys/rsa/sign", map[string]string{"alg": "RS256", "value": digest})
	}
}

func BenchmarkSignES256(b *testing.B) {
	do := benchHSM(b)
	digest := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	b.ResetTimer()
	for b.Loop() {
		do("/keys/ec/sign", map[string]string{"alg": "ES256", "value": digest})
	}
}

// BenchmarkSignES256QuietLog is SignES256 without the request log
// (logLevel warn): the difference is the request log's cost.
func BenchmarkSignES256QuietLog(b *testing.B) {
	do := benchHSM(b, func(c *server.Config) { c.LogLevel = "warn" })
	digest := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	b.ResetTimer()
	for b.Loop() {
		do("/keys/ec/sign", map[string]string{"alg": "ES256", "value": digest})
	}
}

// BenchmarkSignES256AuditFsyncEach is SignES256 with the audit log fsynced
// before every answer (audit.syncInterval 0s) instead of every 100ms.
func BenchmarkSignES256AuditFsyncEach(b *testing.B) {
	do := benchHSM(b, func(c *server.Config) { c.Audit.SyncInterval.Duration = 0 })
	digest := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	b.ResetTimer()
	for b.Loop() {
		do("/keys/ec/sign", map[string]string{"alg": "ES256", "value": digest})
	}
}

func BenchmarkDecryptRSAOAEP256(b *testing.B) {
	do := benchHSM(b)
	var enc struct {
		Value string `json:"value"`
	}
	json.Unmarshal(do("/keys/rsa/encrypt", map[string]string{"alg": "RSA-OAEP-256", "value": "c2VjcmV0"}), &enc)
	b.ResetTimer()
	for b.Loop() {
		do("/keys/rsa/decrypt", map[string]string{"alg": "RSA-OAEP-256", "value": enc.Value})
	}
}

func BenchmarkWrapA256KW(b *testing.B) {
	do := benchHSM(b)
	cek := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	b.ResetTimer()
	for b.Loop() {
		do("/keys/aes/wrapkey", map[string]string{"alg": "A256KW", "value": cek})
	}
}

func BenchmarkLocalSignRS256(b *testing.B) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	d := sha256.Sum256(nil)
	for b.Loop() {
		rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
	}
}

func BenchmarkLocalSignES256(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d := sha256.Sum256(nil)
	for b.Loop() {
		ecdsa.SignASN1(rand.Reader, k, d[:])
	}
}

func BenchmarkLocalDecryptRSAOAEP256(b *testing.B) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, []byte("secret"), nil)
	for b.Loop() {
		rsa.DecryptOAEP(sha256.New(), rand.Reader, k, ct, nil)
	}
}
