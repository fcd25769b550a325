package cli_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"tresor/internal/client/clienttest"
	"tresor/internal/wire"
)

// keyFakeHSM answers the key routes of an HSM with canned bodies.
type keyFakeHSM struct {
	mu      sync.Mutex
	answers map[string]any // "METHOD /path" → body; nil → 204
	status  int            // if set, every answer is this error
	code    string
	message string
}

func (f *keyFakeHSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if f.status != 0 {
		w.WriteHeader(f.status)
		_ = json.NewEncoder(w).Encode(wire.Error{Error: wire.ErrorDetail{Code: f.code, Message: f.message}})
		return
	}
	body, ok := f.answers[r.Method+" "+r.URL.Path]
	switch {
	case !ok:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(wire.Error{Error: wire.ErrorDetail{Code: "KeyNotFound", Message: r.Method + " " + r.URL.Path}})
	case body == nil:
		w.WriteHeader(http.StatusNoContent)
	default:
		_ = json.NewEncoder(w).Encode(body)
	}
}

// fail makes every answer an error (status 0: answer normally again).
func (f *keyFakeHSM) fail(status int, code, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.code, f.message = status, code, message
}

// answer sets the answer of a route.
func (f *keyFakeHSM) answer(route string, body any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[route] = body
}

func i64(v int64) *int64 { return &v }
func bptr(v bool) *bool  { return &v }
func iptr(v int) *int    { return &v }

// keySample is a key bundle as the service returns it.
var keySample = wire.KeyBundle{
	Key: wire.JSONWebKey{Kid: "https://hsm1.managedhsm.invalid/keys/k1/0123456789abcdef0123456789abcdef", Kty: "EC-HSM",
		KeyOps: []string{"sign", "verify"}, Crv: "P-256",
		X: "-_8", // bytes fb ff: "+/8=" in standard base64
		Y: "AQID"},
	Attributes: wire.KeyAttributes{Enabled: bptr(true), Created: i64(1668020569), Updated: i64(1668020570),
		Expires: i64(1798761600), RecoverableDays: iptr(7), RecoveryLevel: "CustomizedRecoverable+Purgeable",
		Exportable: bptr(false), HSMPlatform: "2"},
	Tags: map[string]string{"env": "test"},
}

var keyDeletedSample = wire.DeletedKeyBundle{KeyBundle: keySample, RecoveryID: "https://hsm1.managedhsm.invalid/deletedkeys/k1",
	DeletedDate: i64(1668020584), ScheduledPurgeDate: i64(1668625384)}

// keyRegion starts a fake region whose HSMs answer key routes.
func keyRegion(t *testing.T) (*clienttest.Region, *keyFakeHSM, map[string]string) {
	t.Helper()
	r, env := region(t)
	opResult := wire.KeyOperationResult{Kid: keySample.Key.Kid, Value: "aGVsbG8", IV: "AAEC", Tag: "AwQF", AAD: "Bgc"}
	f := &keyFakeHSM{answers: map[string]any{
		"POST /keys/k1/create":         keySample,
		"PUT /keys/k1":                 keySample,
		"GET /keys/k1/":                keySample,
		"GET /keys/k1/v1":              keySample,
		"GET /keys/k1/v2":              keySample,
		"PATCH /keys/k1/":              keySample,
		"PATCH /keys/k1/v1":            keySample,
		"DELETE /keys/k1":              keyDeletedSample,
		"GET /deletedkeys/k1":          keyDeletedSample,
		"POST /deletedkeys/k1/recover": keySample,
		"DELETE /deletedkeys/k1":       nil,
		"POST /keys/k1/backup":         wire.BackupKeyResult{Value: "3q2-7w"},
		"POST /keys/restore":           keySample,
		"POST /keys/k1/rotate":         keySample,
		"GET /keys/k1/rotationpolicy": wire.KeyRotationPolicy{ID: "https://hsm1.managedhsm.invalid/keys/k1/rotationpolicy",
			LifetimeActions: []wire.LifetimeAction{{Trigger: wire.LifetimeActionTrigger{TimeBeforeExpiry: "P30D"}, Action: wire.LifetimeActionType{Type: "Notify"}}},
			Attributes:      &wire.KeyRotationPolicyAttribs{ExpiryTime: "P1Y", Created: i64(1668020569), Updated: i64(1668020570)}},
		"PUT /keys/k1/rotationpolicy": wire.KeyRotationPolicy{ID: "p", LifetimeActions: []wire.LifetimeAction{}},
		"POST /keys/k1/encrypt":       opResult,
		"POST /keys/k1/v1/encrypt":    opResult,
		"POST /keys/k1/decrypt":       opResult,
		"POST /keys/k1/sign":          wire.KeyOperationResult{Kid: keySample.Key.Kid, Value: "-_8"},
		"POST /keys/k1/verify":        wire.KeyVerifyResult{Value: true},
		"POST /rng":                   map[string]string{"value": "-_8"},
		"GET /keys": wire.KeyList{Value: []wire.KeyItem{
			{Kid: "https://hsm1.managedhsm.invalid/keys/k1", Attributes: keySample.Attributes, Tags: map[string]string{"a": "b"}},
			{Kid: "https://hsm1.managedhsm.invalid/keys/cert1", Attributes: keySample.Attributes, Managed: bptr(true)},
		}},
		"GET /keys/k1/versions": wire.KeyList{Value: []wire.KeyItem{{Kid: keySample.Key.Kid, Attributes: keySample.Attributes}}},
		"GET /deletedkeys": wire.DeletedKeyList{Value: []wire.DeletedKeyItem{{
			KeyItem:    wire.KeyItem{Kid: "https://hsm1.managedhsm.invalid/keys/k1", Attributes: keySample.Attributes},
			RecoveryID: keyDeletedSample.RecoveryID, DeletedDate: keyDeletedSample.DeletedDate, ScheduledPurgeDate: keyDeletedSample.ScheduledPurgeDate,
		}}},
	}}
	r.HSM = f
	return r, f, env
}

// keyHSMRequests returns the requests that went to HSM hosts.
func keyHSMRequests(r *clienttest.Region) []clienttest.Request {
	var out []clienttest.Request
	for _, q := range r.Requests() {
		if strings.HasPrefix(q.Host, "hsm1.") {
			out = append(out, q)
		}
	}
	return out
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return bytes.Equal(gb, wb)
}

func TestKeyFlagsToRequests(t *testing.T) {
	r, _, env := keyRegion(t)
	dir := t.TempDir()
	backup := filepath.Join(dir, "k1.backup")
	if err := os.WriteFile(backup, []byte{0xde, 0xad, 0xbe, 0xef}, 0o600); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"rotate"}}],"attributes":{"expiryTime":"P1Y"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	hsmURI := "https://hsm1." + clienttest.DNSSuffix + ":" + strings.Split(r.Info.HSMResource, ":")[2]
	kid := hsmURI + "/keys/k1/v2"
	tests := []struct {
		name   string
		args   []string
		method string
		path   string
		query  map[string]string
		body   string // "" = no body
	}{
		{"create RSA", []string{"key", "create", "--hsm-name", "hsm1", "-n", "k1", "--kty", "rsa", "--size", "3072",
			"--ops", "Sign", "VERIFY", "--tags", "a=1", "b", "--disabled", "--expires", "2027-01-01T00:00:00Z", "--not-before", "2026-06-01"},
			"POST", "/keys/k1/create", nil,
			`{"kty":"RSA","key_size":3072,"key_ops":["sign","verify"],"attributes":{"enabled":false,"nbf":1780272000,"exp":1798761600},"tags":{"a":"1","b":""}}`},
		{"create EC from curve, hsm protection", []string{"key", "create", "--hsm-name", "hsm1", "--name", "k1", "--curve", "p-256k", "--protection", "hsm", "--exportable", "false"},
			"POST", "/keys/k1/create", nil, `{"kty":"EC-HSM","crv":"P-256K","attributes":{"enabled":true,"exportable":false}}`},
		{"create default RSA", []string{"key", "create", "--hsm-name", "hsm1", "--name", "k1"},
			"POST", "/keys/k1/create", nil, `{"kty":"RSA","attributes":{"enabled":true}}`},
		{"show current", []string{"key", "show", "--hsm-name", "hsm1", "--name", "k1"}, "GET", "/keys/k1/", nil, ""},
		{"show version", []string{"key", "show", "--hsm-name", "hsm1", "--name", "k1", "-v", "v1"}, "GET", "/keys/k1/v1", nil, ""},
		{"show by id", []string{"key", "show", "--id", kid}, "GET", "/keys/k1/v2", nil, ""},
		{"list", []string{"key", "list", "--hsm-name", "hsm1", "--maxresults", "3"}, "GET", "/keys", map[string]string{"maxresults": "3"}, ""},
		{"list by HSM id", []string{"key", "list", "--id", hsmURI}, "GET", "/keys", map[string]string{"maxresults": ""}, ""},
		{"list-versions", []string{"key", "list-versions", "--hsm-name", "hsm1", "--name", "k1"}, "GET", "/keys/k1/versions", nil, ""},
		{"set-attributes enabled", []string{"key", "set-attributes", "--hsm-name", "hsm1", "--name", "k1", "--enabled", "false"},
			"PATCH", "/keys/k1/", nil, `{"attributes":{"enabled":false}}`},
		{"set-attributes version", []string{"key", "set-attributes", "--hsm-name", "hsm1", "--name", "k1", "--version", "v1",
			"--ops", "sign", "--expires", "2027-01-01T00:00Z", "--tags", "x=y"},
			"PATCH", "/keys/k1/v1", nil, `{"key_ops":["sign"],"attributes":{"exp":1798761600},"tags":{"x":"y"}}`},
		{"set-attributes clears tags", []string{"key", "set-attributes", "--hsm-name", "hsm1", "--name", "k1", "--tags", ""},
			"PATCH", "/keys/k1/", nil, `{"tags":{}}`},
		{"delete", []string{"key", "delete", "--hsm-name", "hsm1", "--name", "k1"}, "DELETE", "/keys/k1", nil, ""},
		{"show-deleted by recovery id", []string{"key", "show-deleted", "--id", hsmURI + "/deletedkeys/k1"}, "GET", "/deletedkeys/k1", nil, ""},
		{"recover", []string{"key", "recover", "--hsm-name", "hsm1", "--name", "k1"}, "POST", "/deletedkeys/k1/recover", nil, ""},
		{"purge", []string{"key", "purge", "--hsm-name", "hsm1", "--name", "k1"}, "DELETE", "/deletedkeys/k1", nil, ""},
		{"restore", []string{"key", "restore", "--hsm-name", "hsm1", "--file", backup}, "POST", "/keys/restore", nil, `{"value":"3q2-7w"}`},
		{"rotate", []string{"key", "rotate", "--hsm-name", "hsm1", "--name", "k1"}, "POST", "/keys/k1/rotate", nil, ""},
		{"encrypt base64", []string{"key", "encrypt", "--hsm-name", "hsm1", "--name", "k1", "-a", "a256gcm", "--value", "+/8=", "--aad", "0A0b"},
			"POST", "/keys/k1/encrypt", nil, `{"alg":"A256GCM","value":"-_8","aad":"Cgs"}`},
		{"encrypt plaintext with iv", []string{"key", "encrypt", "--hsm-name", "hsm1", "--name", "k1", "--version", "v1", "--algorithm", "A128CBCPAD",
			"--value", "-hi", "--data-type", "plaintext", "--iv", "000102030405060708090a0b0c0d0e0f"},
			"POST", "/keys/k1/v1/encrypt", nil, `{"alg":"A128CBCPAD","value":"LWhp","iv":"AAECAwQFBgcICQoLDA0ODw"}`},
		{"decrypt", []string{"key", "decrypt", "--hsm-name", "hsm1", "--name", "k1", "--algorithm", "A256GCM", "--value", "aGVsbG8=",
			"--iv", "000102", "--tag", "030405", "--aad", "0607"},
			"POST", "/keys/k1/decrypt", nil, `{"alg":"A256GCM","value":"aGVsbG8","iv":"AAEC","aad":"Bgc","tag":"AwQF"}`},
		{"sign", []string{"key", "sign", "--hsm-name", "hsm1", "--name", "k1", "--algorithm", "es256", "--digest", "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="},
			"POST", "/keys/k1/sign", nil, `{"alg":"ES256","value":"LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ"}`},
		{"verify", []string{"key", "verify", "--hsm-name", "hsm1", "--name", "k1", "--algorithm", "ES256", "--digest", "AQ==", "--signature", "+/8="},
			"POST", "/keys/k1/verify", nil, `{"alg":"ES256","digest":"AQ","value":"-_8"}`},
		{"random", []string{"key", "random", "--hsm-name", "hsm1", "--count", "16"}, "POST", "/rng", nil, `{"count":16}`},
		{"rotation-policy show", []string{"key", "rotation-policy", "show", "--hsm-name", "hsm1", "--name", "k1"}, "GET", "/keys/k1/rotationpolicy", nil, ""},
		{"rotation-policy update from @file", []string{"key", "rotation-policy", "update", "--hsm-name", "hsm1", "--name", "k1", "--value", "@" + policy},
			"PUT", "/keys/k1/rotationpolicy", nil,
			`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P1Y"}}`},
		{"rotation-policy update from a path", []string{"key", "rotation-policy", "update", "--hsm-name", "hsm1", "--name", "k1", "--value", policy},
			"PUT", "/keys/k1/rotationpolicy", nil,
			`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P1Y"}}`},
		{"rotation-policy update snake_case, inline trigger", []string{"key", "rotation-policy", "update", "--hsm-name", "hsm1", "--name", "k1", "--value",
			`{"lifetime_actions":[{"time_before_expiry":"P30D","action":"Notify"}],"expiry_time":"P2Y"}`},
			"PUT", "/keys/k1/rotationpolicy", nil,
			`{"lifetimeActions":[{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Notify"}}],"attributes":{"expiryTime":"P2Y"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(keyHSMRequests(r))
			ok(t, env, tc.args...)
			reqs := keyHSMRequests(r)[before:]
			if len(reqs) != 1 {
				t.Fatalf("%d requests to the HSM, want 1", len(reqs))
			}
			q := reqs[0]
			if q.Method != tc.method || q.Path != tc.path {
				t.Errorf("request %s %s, want %s %s", q.Method, q.Path, tc.method, tc.path)
			}
			if q.Query.Get("api-version") == "" {
				t.Error("no api-version")
			}
			for k, v := range tc.query {
				if got := q.Query.Get(k); got != v {
					t.Errorf("query %s = %q, want %q", k, got, v)
				}
			}
			switch {
			case tc.body == "" && len(q.Body) != 0:
				t.Errorf("body %s, want none", q.Body)
			case tc.body != "" && !sameJSON(t, q.Body, tc.body):
				t.Errorf("body %s\nwant %s", q.Body, tc.body)
			}
		})
	}
}

func TestKeyImportFlags(t *testing.T) {
	r, _, env := keyRegion(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	file := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(file, []byte(pemText), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKey.Bytes()
	d, _ := key.Bytes()
	b64 := base64.RawURLEncoding.EncodeToString
	want := map[string]string{"kty": "EC", "crv": "P-256", "x": b64(pub[1:33]), "y": b64(pub[33:]), "d": b64(d)}

	for name, args := range map[string][]string{
		"pem-string": {"--pem-string", pemText, "--ops", "sign", "--tags", "src=pem", "--protection", "hsm"},
		"pem-file":   {"--pem-file", file, "--ops", "sign", "--tags", "src=pem", "--protection", "hsm"},
	} {
		t.Run(name, func(t *testing.T) {
			out := ok(t, env, append([]string{"key", "import", "--hsm-name", "hsm1", "--name", "k1"}, args...)...)
			if !strings.Contains(out, `"kty": "EC-HSM"`) {
				t.Errorf("output:\n%s", out)
			}
			body := lastBody(t, keyHSMRequests(r), http.MethodPut, "/keys/k1")
			jwk := body["key"].(map[string]any)
			for k, v := range want {
				if jwk[k] != v {
					t.Errorf("key.%s = %v, want %v", k, jwk[k], v)
				}
			}
			if ops := jwk["key_ops"].([]any); len(ops) != 1 || ops[0] != "sign" {
				t.Errorf("key.key_ops = %v", ops)
			}
			if body["Hsm"] != true || body["tags"].(map[string]any)["src"] != "pem" {
				t.Errorf("Hsm %v, tags %v", body["Hsm"], body["tags"])
			}
			if at := body["attributes"].(map[string]any); at["enabled"] != true {
				t.Errorf("attributes %v", at)
			}
		})
	}
}

func TestKeyOutput(t *testing.T) {
	_, _, env := keyRegion(t)
	const bundleJSON = `{
  "attributes": {
    "created": "2022-11-09T19:02:49+00:00",
    "enabled": true,
    "expires": "2027-01-01T00:00:00+00:00",
    "exportable": false,
    "hsmPlatform": "2",
    "notBefore": null,
    "recoverableDays": 7,
    "recoveryLevel": "CustomizedRecoverable+Purgeable",
    "updated": "2022-11-09T19:02:50+00:00"
  },
  "key": {
    "crv": "P-256",
    "d": null,
    "dp": null,
    "dq": null,
    "e": null,
    "k": null,
    "keyOps": [
      "sign",
      "verify"
    ],
    "kid": "https://hsm1.managedhsm.invalid/keys/k1/0123456789abcdef0123456789abcdef",
    "kty": "EC-HSM",
    "n": null,
    "p": null,
    "q": null,
    "qi": null,
    "t": null,
    "x": "+/8=",
    "y": "AQID"
  },
  "managed": null,
  "releasePolicy": null,
  "tags": {
    "env": "test"
  }
}
`
	if out := ok(t, env, "key", "show", "--hsm-name", "hsm1", "--name", "k1"); out != bundleJSON {
		t.Errorf("key show printed\n%s\nwant\n%s", out, bundleJSON)
	}
	for _, cmd := range []string{"create", "set-attributes", "rotate", "recover"} {
		if out := ok(t, env, "key", cmd, "--hsm-name", "hsm1", "--name", "k1"); out != bundleJSON {
			t.Errorf("key %s printed\n%s", cmd, out)
		}
	}
	deleted := decode[map[string]any](t, ok(t, env, "key", "delete", "--hsm-name", "hsm1", "--name", "k1"))
	for k, want := range map[string]any{"deletedDate": "2022-11-09T19:03:04+00:00", "scheduledPurgeDate": "2022-11-16T19:03:04+00:00",
		"recoveryId": "https://hsm1.managedhsm.invalid/deletedkeys/k1"} {
		if deleted[k] != want {
			t.Errorf("delete: %s = %v, want %v", k, deleted[k], want)
		}
	}
	if deleted["key"].(map[string]any)["x"] != "+/8=" {
		t.Errorf("delete: key = %v", deleted["key"])
	}

	// Lists: az's items, managed keys only with --include-managed.
	list := decode[[]map[string]any](t, ok(t, env, "key", "list", "--hsm-name", "hsm1"))
	if len(list) != 1 || list[0]["name"] != "k1" || list[0]["kid"] != "https://hsm1.managedhsm.invalid/keys/k1" ||
		list[0]["releasePolicy"] != nil || list[0]["tags"].(map[string]any)["a"] != "b" {
		t.Errorf("key list = %v", list)
	}
	if at := list[0]["attributes"].(map[string]any); at["created"] != "2022-11-09T19:02:49+00:00" || at["recoveryLevel"] != "CustomizedRecoverable+Purgeable" {
		t.Errorf("key list attributes = %v", at)
	}
	if out := ok(t, env, "key", "list", "--hsm-name", "hsm1", "--include-managed", "--query", "[].name", "-o", "tsv"); out != "k1\ncert1\n" {
		t.Errorf("key list --include-managed: %q", out)
	}
	versions := decode[[]map[string]any](t, ok(t, env, "key", "list-versions", "--hsm-name", "hsm1", "--name", "k1"))
	if len(versions) != 1 || versions[0]["name"] != "k1" || versions[0]["kid"] != keySample.Key.Kid {
		t.Errorf("list-versions = %v", versions)
	}
	del := decode[[]map[string]any](t, ok(t, env, "key", "list-deleted", "--hsm-name", "hsm1"))
	if len(del) != 1 || del[0]["name"] != "k1" || del[0]["recoveryId"] != keyDeletedSample.RecoveryID || del[0]["deletedDate"] != "2022-11-09T19:03:04+00:00" {
		t.Errorf("list-deleted = %v", del)
	}

	// Operations: az's shapes, with IV, tag and AAD in hex.
	enc := ok(t, env, "key", "encrypt", "--hsm-name", "hsm1", "--name", "k1", "--algorithm", "A256GCM", "--value", "aGk=")
	const encJSON = `{
  "aad": "0607",
  "algorithm": "A256GCM",
  "iv": "000102",
  "kid": "https://hsm1.managedhsm.invalid/keys/k1/0123456789abcdef0123456789abcdef",
  "result": "aGVsbG8=",
  "tag": "030405"
}
`
	if enc != encJSON {
		t.Errorf("encrypt printed\n%s\nwant\n%s", enc, encJSON)
	}
	dec := decode[map[string]any](t, ok(t, env, "key", "decrypt", "--hsm-name", "hsm1", "--name", "k1", "--algorithm", "RSA-OAEP", "--value", "AQ=="))
	if dec["result"] != "aGVsbG8=" || dec["algorithm"] != "RSA-OAEP" || dec["kid"] != keySample.Key.Kid || len(dec) != 3 {
		t.Errorf("decrypt = %v", dec)
	}
	if out := ok(t, env, "key", "decrypt", "--hsm-name", "hsm1", "--name", "k1", "--algorithm", "RSA-OAEP", "--value", "AQ==", "--data-type", "plaintext", "--query", "result", "-o", "tsv"); out != "hello\n" {
		t.Errorf("decrypt --data-type plaintext: %q", out)
	}
	sig := decode[map[string]any](t, ok(t, env, "key", "sign", "--hsm-name", "hsm1", "--name", "k1", "--algorithm", "ES256", "--digest", "AQ=="))
	if sig["signature"] != "+/8=" || sig["algorithm"] != "ES256" || sig["keyId"] != keySample.Key.Kid || len(sig) != 3 {
		t.Errorf("sign = %v", sig)
	}
	ver := decode[map[string]any](t, ok(t, env, "key", "verify", "--hsm-name", "hsm1", "--name", "k1", "--algorithm", "ES256", "--digest", "AQ==", "--signature", "AQ=="))
	if ver["isValid"] != true || ver["algorithm"] != "ES256" || !strings.HasSuffix(ver["keyId"].(string), "/keys/k1") || len(ver) != 3 {
		t.Errorf("verify = %v", ver)
	}
	if out := ok(t, env, "key", "random", "--hsm-name", "hsm1", "--count", "2"); out != "{\n  \"value\": \"+/8=\"\n}\n" {
		t.Errorf("random printed %q", out)
	}
	const policyJSON = `{
  "createdOn": "2022-11-09T19:02:49+00:00",
  "expiresIn": "P1Y",
  "id": "https://hsm1.managedhsm.invalid/keys/k1/rotationpolicy",
  "lifetimeActions": [
    {
      "action": "Notify",
      "timeAfterCreate": null,
      "timeBeforeExpiry": "P30D"
    }
  ],
  "updatedOn": "2022-11-09T19:02:50+00:00"
}
`
	if out := ok(t, env, "key", "rotation-policy", "show", "--hsm-name", "hsm1", "--name", "k1"); out != policyJSON {
		t.Errorf("rotation-policy show printed\n%s\nwant\n%s", out, policyJSON)
	}
	// Purge and backup print nothing.
	if out := ok(t, env, "key", "purge", "--hsm-name", "hsm1", "--name", "k1"); out != "" {
		t.Errorf("purge printed %q", out)
	}
}

func TestKeyBackupFile(t *testing.T) {
	r, _, env := keyRegion(t)
	file := filepath.Join(t.TempDir(), "k1.backup")
	if out := ok(t, env, "key", "backup", "--hsm-name", "hsm1", "--name", "k1", "-f", file); out != "" {
		t.Errorf("backup printed %q", out)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, []byte{0xde, 0xad, 0xbe, 0xef}) {
		t.Errorf("backup file holds %x, want the blob's bytes deadbeef", data)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600", fi.Mode().Perm())
	}
	// An existing file is refused before anything is sent.
	before := len(keyHSMRequests(r))
	res := tresor(t, env, "key", "backup", "--hsm-name", "hsm1", "--name", "k1", "--file", file)
	if res.code != 1 || res.stderr != "tresor: error: File named '"+file+"' already exists.\n" {
		t.Errorf("backup to an existing file: %+v", res)
	}
	if len(keyHSMRequests(r)) != before {
		t.Error("backup to an existing file sent a request")
	}
}

func TestKeyUsageErrors(t *testing.T) {
	r, _, env := keyRegion(t)
	dir := t.TempDir()
	existing := filepath.Join(dir, "exists")
	if err := os.WriteFile(existing, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args []string
		msg  string // stderr's first line must contain it
	}{
		"no name":            {[]string{"key", "show", "--hsm-name", "hsm1"}, "incorrect usage: --id ID | --hsm-name HSM --name/-n NAME [--version VERSION]"},
		"no hsm":             {[]string{"key", "delete", "--name", "k1"}, "incorrect usage: --id ID | --hsm-name HSM --name/-n NAME"},
		"id and hsm":         {[]string{"key", "show", "--hsm-name", "hsm1", "--id", "https://hsm1.x/keys/k1"}, "--hsm-name and --id are mutually exclusive."},
		"id and name":        {[]string{"key", "show", "--name", "k1", "--id", "https://hsm1.x/keys/k1"}, "--id names the key"},
		"bad id":             {[]string{"key", "show", "--id", "https://hsm1.x/secrets/k1"}, "is not a key id"},
		"http id":            {[]string{"key", "show", "--id", "http://hsm1.x/keys/k1"}, "is not a key id"},
		"version id":         {[]string{"key", "delete", "--id", "https://hsm1.x/keys/k1/v1"}, "names a version"},
		"recovery id":        {[]string{"key", "show", "--id", "https://hsm1.x/deletedkeys/k1"}, "is not a key id"},
		"list no hsm":        {[]string{"key", "list"}, "--hsm-name (or --id) is required"},
		"list bad id":        {[]string{"key", "list", "--id", "https://hsm1.x/keys"}, "is not an HSM URI"},
		"list maxresults":    {[]string{"key", "list", "--hsm-name", "hsm1", "--maxresults", "0"}, "--maxresults must be at least 1"},
		"kty":                {[]string{"key", "create", "--hsm-name", "hsm1", "-n", "k1", "--kty", "DSA"}, `argument --kty: invalid choice "DSA"`},
		"curve":              {[]string{"key", "create", "--hsm-name", "hsm1", "-n", "k1", "--curve", "P-192"}, `argument --curve: invalid choice "P-192"`},
		"ops":                {[]string{"key", "create", "--hsm-name", "hsm1", "-n", "k1", "--ops", "sign", "fly"}, `argument --ops: invalid choice "fly"`},
		"software hsm type":  {[]string{"key", "create", "--hsm-name", "hsm1", "-n", "k1", "--kty", "RSA-HSM", "--protection", "software"}, "invalid for software protected keys"},
		"date":               {[]string{"key", "create", "--hsm-name", "hsm1", "-n", "k1", "--expires", "next year"}, "argument --expires: Input 'next year' not valid. Valid example: 2000-12-31T12:59:59Z"},
		"tags":               {[]string{"key", "set-attributes", "--hsm-name", "hsm1", "-n", "k1", "--tags", "=v"}, "--tags: invalid tag"},
		"import no source":   {[]string{"key", "import", "--hsm-name", "hsm1", "-n", "k1"}, "supply exactly one: --byok-file, --byok-string, --pem-file, --pem-string"},
		"import two sources": {[]string{"key", "import", "--hsm-name", "hsm1", "-n", "k1", "--pem-file", existing, "--pem-string", "x"}, "supply exactly one"},
		"import password":    {[]string{"key", "import", "--hsm-name", "hsm1", "-n", "k1", "--pem-password", "x"}, "--pem-password must be used with --pem-file or --pem-string"},
		"import byok":        {[]string{"key", "import", "--hsm-name", "hsm1", "-n", "k1", "--byok-file", existing}, "BYOK import (--byok-file, --byok-string) is not supported"},
		"import bad pem":     {[]string{"key", "import", "--hsm-name", "hsm1", "-n", "k1", "--pem-string", "nope"}, "Import failed: no PEM private key found"},
		"import no file":     {[]string{"key", "import", "--hsm-name", "hsm1", "-n", "k1", "--pem-file", filepath.Join(dir, "missing.pem")}, "does not exist."},
		"encrypt no alg":     {[]string{"key", "encrypt", "--hsm-name", "hsm1", "-n", "k1", "--value", "AQ=="}, "--algorithm is required"},
		"encrypt bad alg":    {[]string{"key", "encrypt", "--hsm-name", "hsm1", "-n", "k1", "-a", "ES256", "--value", "AQ=="}, `argument --algorithm: invalid choice "ES256"`},
		"encrypt no value":   {[]string{"key", "encrypt", "--hsm-name", "hsm1", "-n", "k1", "-a", "RSA-OAEP"}, "--value is required"},
		"encrypt bad value":  {[]string{"key", "encrypt", "--hsm-name", "hsm1", "-n", "k1", "-a", "RSA-OAEP", "--value", "not base64!"}, "--value is not base64"},
		"encrypt data-type":  {[]string{"key", "encrypt", "--hsm-name", "hsm1", "-n", "k1", "-a", "RSA-OAEP", "--value", "AQ==", "--data-type", "hex"}, `argument --data-type: invalid choice "hex"`},
		"encrypt bad iv":     {[]string{"key", "encrypt", "--hsm-name", "hsm1", "-n", "k1", "-a", "A128CBC", "--value", "AQ==", "--iv", "xyz"}, `--iv "xyz" is not hexadecimal`},
		"decrypt bad tag":    {[]string{"key", "decrypt", "--hsm-name", "hsm1", "-n", "k1", "-a", "A128GCM", "--value", "AQ==", "--tag", "0"}, `--tag "0" is not hexadecimal`},
		"sign no digest":     {[]string{"key", "sign", "--hsm-name", "hsm1", "-n", "k1", "-a", "ES256"}, "--digest is required"},
		"sign bad alg":       {[]string{"key", "sign", "--hsm-name", "hsm1", "-n", "k1", "-a", "RSA-OAEP", "--digest", "AQ=="}, `argument --algorithm: invalid choice "RSA-OAEP"`},
		"verify no sig":      {[]string{"key", "verify", "--hsm-name", "hsm1", "-n", "k1", "-a", "ES256", "--digest", "AQ=="}, "--signature is required"},
		"random no count":    {[]string{"key", "random", "--hsm-name", "hsm1"}, "--count is required"},
		"backup no file":     {[]string{"key", "backup", "--hsm-name", "hsm1", "-n", "k1"}, "--file is required"},
		"backup existing":    {[]string{"key", "backup", "--hsm-name", "hsm1", "-n", "k1", "-f", existing}, "already exists."},
		"restore missing":    {[]string{"key", "restore", "--hsm-name", "hsm1", "-f", filepath.Join(dir, "nope")}, "does not exist."},
		"policy no value":    {[]string{"key", "rotation-policy", "update", "--hsm-name", "hsm1", "-n", "k1"}, "--value is required"},
		"policy bad json":    {[]string{"key", "rotation-policy", "update", "--hsm-name", "hsm1", "-n", "k1", "--value", "{oops"}, "Failed to parse string as JSON"},
		"policy empty":       {[]string{"key", "rotation-policy", "update", "--hsm-name", "hsm1", "-n", "k1", "--value", "{}"}, "Please specify a valid policy"},
		"policy action":      {[]string{"key", "rotation-policy", "update", "--hsm-name", "hsm1", "-n", "k1", "--value", `{"lifetimeActions":[{"action":{"type":"Delete"}}]}`}, `action.type "Delete": choose Rotate or Notify`},
		"policy missing @":   {[]string{"key", "rotation-policy", "update", "--hsm-name", "hsm1", "-n", "k1", "--value", "@" + filepath.Join(dir, "p.json")}, "does not exist."},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := len(keyHSMRequests(r))
			res := tresor(t, env, tc.args...)
			if res.code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", res.code, res.stderr)
			}
			first, _, _ := strings.Cut(res.stderr, "\n")
			if !strings.HasPrefix(first, "tresor: error: ") || !strings.Contains(first, tc.msg) {
				t.Errorf("stderr %q, want a first line with %q", res.stderr, tc.msg)
			}
			if res.stdout != "" {
				t.Errorf("stdout %q", res.stdout)
			}
			if len(keyHSMRequests(r)) != before {
				t.Error("a request went to the HSM")
			}
		})
	}
}

func TestKeyServerErrors(t *testing.T) {
	_, f, env := keyRegion(t)
	f.fail(http.StatusForbidden, "Forbidden", "Operation sign is not allowed on a disabled key")
	res := tresor(t, env, "key", "sign", "--hsm-name", "hsm1", "--name", "k1", "--algorithm", "ES256", "--digest", "AQ==")
	if res.code != 2 || res.stdout != "" || res.stderr != "tresor: error: Forbidden: Operation sign is not allowed on a disabled key\n" {
		t.Errorf("sign on a disabled key: %+v", res)
	}
	f.fail(http.StatusNotFound, "KeyNotFound", "A key with (name/id) k9 was not found in this key vault")
	res = tresor(t, env, "key", "show", "--hsm-name", "hsm1", "--name", "k9")
	if res.code != 2 || !strings.HasPrefix(res.stderr, "tresor: error: KeyNotFound: ") {
		t.Errorf("show of a missing key: %+v", res)
	}
	// Decrypt to text of bytes that are not UTF-8 is a local error.
	f.fail(0, "", "")
	f.answer("POST /keys/k1/decrypt", wire.KeyOperationResult{Kid: keySample.Key.Kid, Value: "_w"})
	res = tresor(t, env, "key", "decrypt", "--hsm-name", "hsm1", "--name", "k1", "-a", "RSA-OAEP", "--value", "AQ==", "--data-type", "plaintext")
	if res.code != 1 || !strings.Contains(res.stderr, "not UTF-8") || !strings.Contains(res.stderr, "tresor: hint: use --data-type base64") {
		t.Errorf("decrypt of non-UTF-8 as plaintext: %+v", res)
	}
}
