package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tresor/internal/server/servertest"
)

// FuzzRequestBodies sends arbitrary bodies to the routes that parse JSON
// and asserts that the answer is never a server error and that every error
// carries Azure's error body.
func FuzzRequestBodies(f *testing.F) {
	seeds := []string{
		`{"kty":"RSA","key_size":2048}`, `{"kty":"EC","crv":"P-256"}`, `{"kty":"oct","key_size":256}`,
		`{"kty":"RSA","key_size":"big"}`, `{"key":{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA"}}`,
		`{"alg":"RS256","value":"AAAA"}`, `{"alg":"A256GCM","value":"AAAA","iv":"AAAA"}`,
		`{"value":"bm90IGEgYmFja3Vw"}`, `{"count":8}`, `{"count":-1}`, `{"attributes":{"enabled":false}}`,
		`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P90D"}}`,
		`{"properties":{"roleDefinitionId":"21dbd100-6940-42c2-9190-5d6cb909625b","principalId":"x"}}`,
		`{"certificates":[{"x5c":["AAAA"]}],"required":2}`, `{"value":"{}"}`, ``, `null`, `[]`, `{`, "\x00\xff",
	}
	for _, s := range seeds {
		for route := range 12 {
			f.Add(uint8(route), []byte(s))
		}
	}
	s := servertest.Start(f)
	activeHSM(f, s, "fuzz")
	hc := s.HTTPClient(f)
	tok := s.Token(f, s.ClientID, s.ClientSecret, s.HSMResource())
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		c := &call{t: t, s: s, client: hc}
		routes := []struct{ method, path string }{
			{"POST", "/keys/fz/create"}, {"PUT", "/keys/fz"}, {"PATCH", "/keys/fz"}, {"POST", "/keys/fz/sign"},
			{"POST", "/keys/fz/encrypt"}, {"POST", "/keys/fz/verify"}, {"POST", "/keys/restore"}, {"POST", "/rng"},
			{"PUT", "/keys/fz/rotationpolicy"}, {"PUT", "/providers/Microsoft.Authorization/roleAssignments/6a0b7a58-7b0e-4a56-9f0e-5e0a4f6f0c02"},
			{"POST", "/securitydomain/download"}, {"POST", "/securitydomain/upload"},
		}
		rt := routes[int(route)%len(routes)]
		code, _, out := c.do(rt.method, s.HSMURL("fuzz")+rt.path+"?api-version=7.4", tok, string(body))
		if code >= 500 {
			t.Fatalf("%s %s: %d %s", rt.method, rt.path, code, out)
		}
		if code >= 400 {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if json.Unmarshal(out, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s: %d without an Azure error body: %s", rt.method, rt.path, code, out)
			}
		}
		if code == http.StatusOK && strings.Contains(string(out), `"d":`) {
			t.Fatalf("%s %s answered private key material: %s", rt.method, rt.path, out)
		}
	})
}

// FuzzManagedHSMPut sends arbitrary bodies as a PUT on an existing managed
// HSM (an update, as az update-hsm, Terraform and Bicep send it) and to
// checkMhsmNameAvailability, and asserts that the answer is never a server
// error, that every error carries Azure's error body, and that a refused
// update leaves the HSM exactly as it was.
func FuzzManagedHSMPut(f *testing.F) {
	for _, file := range []string{"create.json", "update.json", "check-name.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "az", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(false, b)
		f.Add(true, b)
	}
	for _, s := range []string{`{"location":"local"}`, `{"location":"local","identity":{"type":"UserAssigned"}}`,
		`{"location":"local","identity":{"type":"None","userAssignedIdentities":{"x":{}}}}`,
		`{"location":"local","properties":{"regions":[{"name":7}]}}`, `{"location":"local","properties":{"createMode":"recover"}}`,
		`{"name":"x"}`, `{"name":null}`, ``, `null`, `[]`, `{`, "\x00\xff"} {
		f.Add(false, []byte(s))
		f.Add(true, []byte(s))
	}
	s := servertest.Start(f)
	c0 := newCall(f, s)
	tok := s.AdminToken(f)
	if code, _, body := c0.do("PUT", c0.hsmPath("fuzzput"), tok, createBody(s.ObjectID)); code != http.StatusAccepted {
		f.Fatalf("create: %d %s", code, body)
	}
	sub, hsmURL := c0.sub(), c0.hsmPath("fuzzput")
	hc := s.HTTPClient(f)
	f.Fuzz(func(t *testing.T, checkName bool, body []byte) {
		c := &call{t: t, s: s, client: hc}
		url := hsmURL
		method := "PUT"
		if checkName {
			method, url = "POST", s.Endpoint+"/subscriptions/"+sub+"/providers/Microsoft.KeyVault/checkMhsmNameAvailability"+armVersion
		}
		_, _, before := c.do("GET", hsmURL, tok, nil)
		code, _, out := c.do(method, url, tok, string(body))
		if code >= 500 {
			t.Fatalf("%s: %d %s", method, code, out)
		}
		if code >= 400 {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if json.Unmarshal(out, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s: %d without an Azure error body: %s", method, code, out)
			}
			if _, _, after := c.do("GET", hsmURL, tok, nil); string(after) != string(before) {
				t.Fatalf("a refused %s changed the HSM:\nbefore %s\nafter  %s", method, before, after)
			}
		}
	})
}
