package client_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"tresor/internal/client"
	"tresor/internal/client/clienttest"
	"tresor/internal/wire"
)

// PEM vectors made with OpenSSL 3.0. The parser is tested in
// internal/crypto/pemkey; these check the JWKs made of what it returns.
const (
	// openssl ecparam -name secp256k1 -genkey -noout
	k1SEC1PEM = `-----BEGIN EC PRIVATE KEY-----
MHQCAQEEIDrFwKAjmOA4ZfF9IyZD8UNkZNzEcgzuV8NxvbYyfNO8oAcGBSuBBAAK
oUQDQgAEWuuUQDH4cLghViHuKv9ScEvxJAo6HApWcag6uIX0frIdx2KcSSON8Xjj
YO7KF9XjjoOV4xE23uctESOqLm8Y9Q==
-----END EC PRIVATE KEY-----
`
	// openssl pkcs8 -topk8 -nocrypt of k1SEC1PEM
	k1PKCS8PEM = `-----BEGIN PRIVATE KEY-----
MIGEAgEAMBAGByqGSM49AgEGBSuBBAAKBG0wawIBAQQgOsXAoCOY4Dhl8X0jJkPx
Q2Rk3MRyDO5Xw3G9tjJ807yhRANCAARa65RAMfhwuCFWIe4q/1JwS/EkCjocClZx
qDq4hfR+sh3HYpxJI43xeONg7soX1eOOg5XjETbe5y0RI6oubxj1
-----END PRIVATE KEY-----
`
	// openssl pkcs8 -topk8 -v2 aes-128-cbc -v2prf hmacWithSHA512 of
	// k1SEC1PEM, password "k1pw"
	k1EncPEM = `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAix8jp/fR/LTQICCAAw
DAYIKoZIhvcNAgsFADAdBglghkgBZQMEAQIEEKKe61ZVSvv9V1fLWjGNMhkEgZAS
KZyTa8oP1V8zGTAQFivV7U/cOD92seuTdYd7DbYa0ykyhqZ1jXGTe0qmHUXq1jWQ
Hz3zQ7ud/Ly8mpIH4ZY5rvO9ojcHq4VjB2OpUg7skwtB4Mw5OjBKMC+unvFMQEKQ
cNU1ggct2Yjeot9HQdPCOd2P0h6eloTQF2DAhJmPPy0kBG2KNtnGsOYd3NYPriI=
-----END ENCRYPTED PRIVATE KEY-----
`
	// openssl genpkey -algorithm ed25519
	ed25519PEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIC7Wbt+2uC02ob8fTLWdiWtr17BiAtUV5gMFYvvFlAFm
-----END PRIVATE KEY-----
`
)

func unb64u(t *testing.T, field, s string) []byte {
	t.Helper()
	if s == "" {
		t.Fatalf("JWK member %s is empty", field)
	}
	if strings.ContainsAny(s, "+/=") {
		t.Fatalf("JWK member %s = %q is not unpadded base64url", field, s)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("JWK member %s: %v", field, err)
	}
	return b
}

// checkRSAJWK checks that jwk holds exactly key's members.
func checkRSAJWK(t *testing.T, jwk wire.JSONWebKey, key *rsa.PrivateKey) {
	t.Helper()
	if jwk.Kty != "RSA" || jwk.Crv != "" || jwk.X != "" || jwk.Y != "" || jwk.K != "" {
		t.Fatalf("RSA JWK has kty %q or foreign members: %+v", jwk.Kty, jwk)
	}
	key.Precompute()
	for _, m := range []struct {
		name, v string
		want    *big.Int
	}{
		{"n", jwk.N, key.N}, {"e", jwk.E, big.NewInt(int64(key.E))}, {"d", jwk.D, key.D},
		{"p", jwk.P, key.Primes[0]}, {"q", jwk.Q, key.Primes[1]},
		{"dp", jwk.DP, key.Precomputed.Dp}, {"dq", jwk.DQ, key.Precomputed.Dq}, {"qi", jwk.QI, key.Precomputed.Qinv},
	} {
		b := unb64u(t, m.name, m.v)
		if b[0] == 0 {
			t.Errorf("%s has a leading zero", m.name)
		}
		if new(big.Int).SetBytes(b).Cmp(m.want) != 0 {
			t.Errorf("%s does not match the key", m.name)
		}
	}
}

// checkECJWK checks an EC JWK's curve and sizes, and that x and y are the
// uncompressed point pub (0x04 || x || y).
func checkECJWK(t *testing.T, jwk wire.JSONWebKey, crv string, pub []byte) {
	t.Helper()
	if jwk.Kty != "EC" || jwk.Crv != crv || jwk.N != "" || jwk.P != "" || jwk.K != "" {
		t.Fatalf("EC JWK: kty %q crv %q (want EC %s) or foreign members", jwk.Kty, jwk.Crv, crv)
	}
	size := (len(pub) - 1) / 2
	x, y, d := unb64u(t, "x", jwk.X), unb64u(t, "y", jwk.Y), unb64u(t, "d", jwk.D)
	if len(x) != size || len(y) != size || len(d) != size {
		t.Errorf("member sizes x %d, y %d, d %d; want %d each", len(x), len(y), len(d), size)
	}
	if !bytes.Equal(append(append([]byte{4}, x...), y...), pub) {
		t.Error("x and y are not the key's public point")
	}
}

func TestPrivateKeyJWKRSA(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := client.PrivateKeyJWK(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkRSAJWK(t, jwk, key)
	if jwk.Kid != "" || jwk.KeyOps != nil {
		t.Errorf("kid %q, key_ops %v: want none", jwk.Kid, jwk.KeyOps)
	}
}

func TestPrivateKeyJWKEC(t *testing.T) {
	for _, c := range []struct {
		crv   string
		curve elliptic.Curve
	}{{"P-256", elliptic.P256()}, {"P-384", elliptic.P384()}, {"P-521", elliptic.P521()}} {
		key, err := ecdsa.GenerateKey(c.curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := key.PublicKey.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(c.crv, func(t *testing.T) {
			jwk, err := client.PrivateKeyJWK(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil)
			if err != nil {
				t.Fatal(err)
			}
			checkECJWK(t, jwk, c.crv, pub)
			d, _ := key.Bytes()
			if got := unb64u(t, "d", jwk.D); !bytes.Equal(got, d) {
				t.Error("d does not match the key")
			}
		})
	}
}

// sec1PublicKey returns the public key that a SEC 1 key carries.
func sec1PublicKey(t *testing.T, pemText string) []byte {
	t.Helper()
	block, _ := pem.Decode([]byte(pemText))
	var k struct {
		Version    int
		PrivateKey []byte
		Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
		PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
	}
	if _, err := asn1.Unmarshal(block.Bytes, &k); err != nil {
		t.Fatal(err)
	}
	return k.PublicKey.Bytes
}

// secp256k1 keys, which pemkey returns as they are, become P-256K JWKs.
func TestPrivateKeyJWKSecp256k1(t *testing.T) {
	k1Pub := sec1PublicKey(t, k1SEC1PEM) // OpenSSL's own computation of the point
	tests := map[string]struct {
		pem, password string
	}{
		"SEC 1":            {pem: k1SEC1PEM},
		"PKCS#8":           {pem: k1PKCS8PEM},
		"encrypted PKCS#8": {pem: k1EncPEM, password: "k1pw"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			jwk, err := client.PrivateKeyJWK([]byte(tc.pem), []byte(tc.password))
			if err != nil {
				t.Fatal(err)
			}
			checkECJWK(t, jwk, "P-256K", k1Pub)
		})
	}
}

func TestPrivateKeyJWKErrors(t *testing.T) {
	tests := map[string]struct {
		pem, password string
		is            error
		msg           string
	}{
		"no password":      {pem: k1EncPEM, is: client.ErrPEMPasswordRequired},
		"wrong password":   {pem: k1EncPEM, password: "nope", is: client.ErrPEMIncorrectPassword},
		"not PEM":          {pem: "just text", msg: "no PEM private key found"},
		"certificate only": {pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", msg: "no private key in the PEM data"},
		"Ed25519":          {pem: ed25519PEM, msg: "only RSA and EC keys can be imported"},
		"OpenSSH":          {pem: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", msg: "only RSA and EC keys"},
		"garbage PKCS#8":   {pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", msg: "not a valid PKCS#8 private key"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			jwk, err := client.PrivateKeyJWK([]byte(tc.pem), []byte(tc.password))
			if err == nil {
				t.Fatalf("no error; JWK %+v", jwk)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to contain %q", err, tc.msg)
			}
			if jwk.D != "" || jwk.N != "" {
				t.Error("a failed conversion returned key material")
			}
		})
	}
}

// keysFake answers the key routes of an HSM with canned bodies.
type keysFake struct {
	mu      sync.Mutex
	answers map[string]any // "METHOD /path" → body (200); nil body → 204
}

func (f *keysFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	if r.URL.Query().Get("$skiptoken") != "" {
		key += "?" + r.URL.Query().Get("$skiptoken")
	}
	body, ok := f.answers[key]
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(wire.Error{Error: wire.ErrorDetail{Code: "KeyNotFound", Message: key}})
		return
	}
	if body == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// set sets the answer of a route.
func (f *keysFake) set(route string, body any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[route] = body
}

func keysClient(t *testing.T, answers map[string]any) (*client.Client, *clienttest.Region, string) {
	t.Helper()
	r := clienttest.New(t)
	r.HSM = &keysFake{answers: answers}
	c, err := client.New(r.Config())
	if err != nil {
		t.Fatal(err)
	}
	hsmURL, err := c.HSMURL(context.Background(), "hsm1")
	if err != nil {
		t.Fatal(err)
	}
	return c, r, hsmURL
}

// hsmRequests returns the requests that went to HSM hosts.
func hsmRequests(r *clienttest.Region) []clienttest.Request {
	var out []clienttest.Request
	for _, q := range r.Requests() {
		if strings.HasPrefix(q.Host, "hsm1.") {
			out = append(out, q)
		}
	}
	return out
}

func TestKeyCallsRequests(t *testing.T) {
	bundle := wire.KeyBundle{Key: wire.JSONWebKey{Kid: "https://hsm1/keys/k1/v1", Kty: "RSA-HSM"}}
	opResult := wire.KeyOperationResult{Kid: "https://hsm1/keys/k1/v1", Value: "AQID", IV: "BAU", Tag: "Bgc"}
	answers := map[string]any{
		"POST /keys/k1/create":         bundle,
		"PUT /keys/k1":                 bundle,
		"GET /keys/k1/":                bundle,
		"GET /keys/k1/v1":              bundle,
		"PATCH /keys/k1/":              bundle,
		"PATCH /keys/k1/v1":            bundle,
		"DELETE /keys/k1":              wire.DeletedKeyBundle{KeyBundle: bundle, RecoveryID: "https://hsm1/deletedkeys/k1"},
		"GET /deletedkeys/k1":          wire.DeletedKeyBundle{KeyBundle: bundle},
		"POST /deletedkeys/k1/recover": bundle,
		"DELETE /deletedkeys/k1":       nil,
		"POST /keys/k1/backup":         wire.BackupKeyResult{Value: "3q2-7w"},
		"POST /keys/restore":           bundle,
		"POST /keys/k1/rotate":         bundle,
		"GET /keys/k1/rotationpolicy":  wire.KeyRotationPolicy{ID: "p"},
		"PUT /keys/k1/rotationpolicy":  wire.KeyRotationPolicy{ID: "p"},
		"POST /keys/k1/encrypt":        opResult,
		"POST /keys/k1/v1/decrypt":     opResult,
		"POST /keys/k1/wrapkey":        opResult,
		"POST /keys/k1/unwrapkey":      opResult,
		"POST /keys/k1/sign":           opResult,
		"POST /keys/k1/v1/verify":      wire.KeyVerifyResult{Value: true},
		"POST /rng":                    map[string]string{"value": "AAEC"},
	}
	c, r, hsmURL := keysClient(t, answers)
	ctx := context.Background()
	size := 2048
	tests := []struct {
		name   string
		call   func() error
		method string
		path   string
		body   string // JSON the request body must equal ("" = no body)
	}{
		{"create", func() error {
			_, err := c.CreateKey(ctx, hsmURL, "k1", wire.KeyCreateParameters{Kty: "RSA", KeySize: &size, KeyOps: []string{"sign"}})
			return err
		}, "POST", "/keys/k1/create", `{"kty":"RSA","key_size":2048,"key_ops":["sign"]}`},
		{"import", func() error {
			hsm := true
			_, err := c.ImportKey(ctx, hsmURL, "k1", wire.KeyImportParameters{Key: &wire.JSONWebKey{Kty: "EC", Crv: "P-256", X: "eA", Y: "eQ", D: "ZA"}, HSM: &hsm})
			return err
		}, "PUT", "/keys/k1", `{"key":{"kty":"EC","d":"ZA","crv":"P-256","x":"eA","y":"eQ"},"Hsm":true}`},
		{"get current", func() error { _, err := c.GetKey(ctx, hsmURL, "k1", ""); return err }, "GET", "/keys/k1/", ""},
		{"get version", func() error { _, err := c.GetKey(ctx, hsmURL, "k1", "v1"); return err }, "GET", "/keys/k1/v1", ""},
		{"update clears tags", func() error {
			_, err := c.UpdateKey(ctx, hsmURL, "k1", "", client.KeyUpdate{Tags: map[string]string{}})
			return err
		}, "PATCH", "/keys/k1/", `{"tags":{}}`},
		{"update version", func() error {
			f := false
			_, err := c.UpdateKey(ctx, hsmURL, "k1", "v1", client.KeyUpdate{KeyOps: []string{"verify"}, Attributes: &wire.KeyAttributes{Enabled: &f}})
			return err
		}, "PATCH", "/keys/k1/v1", `{"key_ops":["verify"],"attributes":{"enabled":false}}`},
		{"delete", func() error { _, err := c.DeleteKey(ctx, hsmURL, "k1"); return err }, "DELETE", "/keys/k1", ""},
		{"get deleted", func() error { _, err := c.GetDeletedKey(ctx, hsmURL, "k1"); return err }, "GET", "/deletedkeys/k1", ""},
		{"recover", func() error { _, err := c.RecoverDeletedKey(ctx, hsmURL, "k1"); return err }, "POST", "/deletedkeys/k1/recover", ""},
		{"purge", func() error { return c.PurgeDeletedKey(ctx, hsmURL, "k1") }, "DELETE", "/deletedkeys/k1", ""},
		{"backup", func() error {
			b, err := c.BackupKey(ctx, hsmURL, "k1")
			if err == nil && !bytes.Equal(b, []byte{0xde, 0xad, 0xbe, 0xef}) {
				t.Errorf("backup blob = %x, want deadbeef", b)
			}
			return err
		}, "POST", "/keys/k1/backup", ""},
		{"restore", func() error { _, err := c.RestoreKey(ctx, hsmURL, []byte{0xde, 0xad, 0xbe, 0xef}); return err }, "POST", "/keys/restore", `{"value":"3q2-7w"}`},
		{"rotate", func() error { _, err := c.RotateKey(ctx, hsmURL, "k1"); return err }, "POST", "/keys/k1/rotate", ""},
		{"get policy", func() error { _, err := c.GetKeyRotationPolicy(ctx, hsmURL, "k1"); return err }, "GET", "/keys/k1/rotationpolicy", ""},
		{"put policy", func() error {
			_, err := c.UpdateKeyRotationPolicy(ctx, hsmURL, "k1", wire.KeyRotationPolicy{Attributes: &wire.KeyRotationPolicyAttribs{ExpiryTime: "P1Y"}})
			return err
		}, "PUT", "/keys/k1/rotationpolicy", `{"lifetimeActions":[],"attributes":{"expiryTime":"P1Y"}}`},
		{"encrypt current", func() error {
			res, err := c.Encrypt(ctx, hsmURL, "k1", "", client.KeyOperation{Algorithm: "A128GCM", Value: []byte("hi"), AAD: []byte{1}})
			if err == nil && (!bytes.Equal(res.Value, []byte{1, 2, 3}) || !bytes.Equal(res.IV, []byte{4, 5}) || !bytes.Equal(res.Tag, []byte{6, 7}) || res.Kid != opResult.Kid) {
				t.Errorf("result = %+v", res)
			}
			return err
		}, "POST", "/keys/k1/encrypt", `{"alg":"A128GCM","value":"aGk","aad":"AQ"}`},
		{"decrypt version", func() error {
			_, err := c.Decrypt(ctx, hsmURL, "k1", "v1", client.KeyOperation{Algorithm: "A128GCM", Value: []byte{0xff}, IV: []byte{4}, Tag: []byte{6}})
			return err
		}, "POST", "/keys/k1/v1/decrypt", `{"alg":"A128GCM","value":"_w","iv":"BA","tag":"Bg"}`},
		{"wrap", func() error {
			_, err := c.WrapKey(ctx, hsmURL, "k1", "", client.KeyOperation{Algorithm: "RSA-OAEP", Value: []byte{1}})
			return err
		}, "POST", "/keys/k1/wrapkey", `{"alg":"RSA-OAEP","value":"AQ"}`},
		{"unwrap", func() error {
			_, err := c.UnwrapKey(ctx, hsmURL, "k1", "", client.KeyOperation{Algorithm: "RSA-OAEP", Value: []byte{1}})
			return err
		}, "POST", "/keys/k1/unwrapkey", `{"alg":"RSA-OAEP","value":"AQ"}`},
		{"sign", func() error { _, err := c.Sign(ctx, hsmURL, "k1", "", "ES256", []byte{0xfb, 0xff}); return err }, "POST", "/keys/k1/sign", `{"alg":"ES256","value":"-_8"}`},
		{"verify", func() error {
			ok, err := c.Verify(ctx, hsmURL, "k1", "v1", "ES256", []byte{1}, []byte{2})
			if err == nil && !ok {
				t.Error("verify = false, want true")
			}
			return err
		}, "POST", "/keys/k1/v1/verify", `{"alg":"ES256","digest":"AQ","value":"Ag"}`},
		{"random", func() error {
			b, err := c.GetRandomBytes(ctx, hsmURL, 3)
			if err == nil && !bytes.Equal(b, []byte{0, 1, 2}) {
				t.Errorf("random = %x", b)
			}
			return err
		}, "POST", "/rng", `{"count":3}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(hsmRequests(r))
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			reqs := hsmRequests(r)[before:]
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			q := reqs[0]
			if q.Method != tc.method || q.Path != tc.path {
				t.Errorf("request %s %s, want %s %s", q.Method, q.Path, tc.method, tc.path)
			}
			if v := q.Query.Get("api-version"); v != client.KeysAPIVersion {
				t.Errorf("api-version %q, want %q", v, client.KeysAPIVersion)
			}
			switch {
			case tc.body == "" && len(q.Body) != 0:
				t.Errorf("body %s, want none", q.Body)
			case tc.body != "":
				var got, want any
				_ = json.Unmarshal(q.Body, &got)
				_ = json.Unmarshal([]byte(tc.body), &want)
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(want)
				if !bytes.Equal(gb, wb) {
					t.Errorf("body %s, want %s", q.Body, tc.body)
				}
			}
		})
	}
}

func TestListKeysPaging(t *testing.T) {
	item := func(n string) wire.KeyItem { return wire.KeyItem{Kid: "https://hsm1/keys/" + n} }
	c, r, hsmURL := keysClient(t, map[string]any{})
	f := r.HSM.(*keysFake)
	next := hsmURL + "/keys?api-version=7.5&$skiptoken=p2"
	f.set("GET /keys", map[string]any{"value": []wire.KeyItem{item("a"), item("b")}, "nextLink": next})
	f.set("GET /keys?p2", map[string]any{"value": []wire.KeyItem{item("c")}, "nextLink": nil})
	f.set("GET /deletedkeys", map[string]any{"value": []wire.DeletedKeyItem{{KeyItem: item("d")}}, "nextLink": nil})
	f.set("GET /keys/k1/versions", map[string]any{"value": []wire.KeyItem{item("k1/v1")}, "nextLink": nil})
	ctx := context.Background()

	all, err := c.ListKeys(ctx, hsmURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, it := range all {
		kids = append(kids, it.Kid)
	}
	if want := []string{"https://hsm1/keys/a", "https://hsm1/keys/b", "https://hsm1/keys/c"}; !slices.Equal(kids, want) {
		t.Errorf("kids %v, want %v", kids, want)
	}
	reqs := hsmRequests(r)
	if len(reqs) != 2 || reqs[0].Query.Get("maxresults") != "" || reqs[1].Query.Get("$skiptoken") != "p2" {
		t.Errorf("requests %+v: want the list, then the nextLink verbatim", reqs)
	}

	// max stops early and asks for pages no larger than it (at most 25).
	before := len(hsmRequests(r))
	two, err := c.ListKeys(ctx, hsmURL, 2)
	if err != nil || len(two) != 2 {
		t.Fatalf("ListKeys max 2: %d items, %v", len(two), err)
	}
	reqs = hsmRequests(r)[before:]
	if len(reqs) != 1 || reqs[0].Query.Get("maxresults") != "2" {
		t.Errorf("requests %+v: want one page of maxresults 2", reqs)
	}
	before = len(hsmRequests(r))
	if _, err := c.ListKeys(ctx, hsmURL, 100); err != nil {
		t.Fatal(err)
	}
	if q := hsmRequests(r)[before]; q.Query.Get("maxresults") != "25" {
		t.Errorf("maxresults %q, want 25", q.Query.Get("maxresults"))
	}

	if d, err := c.ListDeletedKeys(ctx, hsmURL, 0); err != nil || len(d) != 1 {
		t.Errorf("ListDeletedKeys: %v, %v", d, err)
	}
	if v, err := c.ListKeyVersions(ctx, hsmURL, "k1", 0); err != nil || len(v) != 1 {
		t.Errorf("ListKeyVersions: %v, %v", v, err)
	}
}

func TestKeyCallErrors(t *testing.T) {
	c, _, hsmURL := keysClient(t, map[string]any{})
	ctx := context.Background()
	_, err := c.GetKey(ctx, hsmURL, "missing", "")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusNotFound || ce.Code != "KeyNotFound" {
		t.Errorf("GetKey of a missing key: %v, want a 404 KeyNotFound *Error", err)
	}
	if _, err := c.GetKey(ctx, hsmURL, "", ""); err == nil {
		t.Error("GetKey with an empty name: no error")
	}
	if _, err := c.Sign(ctx, hsmURL, "k1", "", "", []byte{1}); err == nil {
		t.Error("Sign without an algorithm: no error")
	}
	if _, err := c.RestoreKey(ctx, hsmURL, nil); err == nil {
		t.Error("RestoreKey of an empty blob: no error")
	}
}
