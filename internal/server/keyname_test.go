package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"tresor/internal/rbac"
)

// TestKeyNameVariants: a principal with a key-scoped role reaches its key
// and nothing else, whatever the spelling of the path: escaped slashes, dot
// segments, NUL and Unicode letters that fold onto ASCII ones (the Kelvin
// sign K, the long s ſ) are refused with Azure's 400 before authorization,
// and case differences reach the same key only.
func TestKeyNameVariants(t *testing.T) {
	e := newRBACEnv(t, "names")
	e.assign("names", rbac.RoleDefinitionID(rbac.CryptoUserID), e.s.ObjectID, "/")
	for _, k := range []string{"abc", "other", "sk"} {
		if code, _, body := e.c.do("POST", e.url("names", "/keys/"+k+"/create"), e.admin, map[string]any{"kty": "EC-HSM", "crv": "P-256"}); code != 200 {
			t.Fatalf("create %s: %d %s", k, code, body)
		}
	}
	abcOID, abcTok := e.principal("scoped to abc")
	e.assign("names", rbac.RoleDefinitionID(rbac.CryptoUserID), abcOID, "/keys/abc")
	skOID, skTok := e.principal("scoped to sk")
	e.assign("names", rbac.RoleDefinitionID(rbac.CryptoUserID), skOID, "/keys/sk")

	tests := map[string]struct {
		token, path string
		want        int
		wantKey     string // the key answered with 200
	}{
		"own key":                     {abcTok, "/keys/abc", 200, "abc"},
		"own key upper case":          {abcTok, "/keys/ABC", 200, "abc"},
		"other key":                   {abcTok, "/keys/other", 403, ""},
		"other key, other way":        {skTok, "/keys/abc", 403, ""},
		"escaped slash":               {abcTok, "/keys/abc%2F..%2Fother", 400, ""},
		"escaped slash only":          {abcTok, "/keys/abc%2Fother", 400, ""},
		"escaped dot segment":         {abcTok, "/keys/%2e%2e/other", 400, ""},
		"escaped dot segment version": {abcTok, "/keys/abc/%2e%2e%2Fother", 404, ""},
		"dot segment":                 {abcTok, "/keys/abc/../other", 403, ""}, // the mux cleans it to /keys/other
		"long s":                      {skTok, "/keys/%C5%BFk", 400, ""},
		"kelvin sign":                 {skTok, "/keys/s%E2%84%AA", 400, ""},
		"kelvin sign, other scope":    {abcTok, "/keys/s%E2%84%AA", 400, ""},
		"nul":                         {abcTok, "/keys/abc%00", 400, ""},
		"space":                       {abcTok, "/keys/abc%20", 400, ""},
		"too long":                    {abcTok, "/keys/" + string(make128('a')), 400, ""},
		"deleted key escaped slash":   {abcTok, "/deletedkeys/abc%2F..%2Fother", 400, ""},
		"operation escaped":           {abcTok, "/keys/abc%2F..%2Fother/sign", 400, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, body := e.c.do("GET", e.url("names", tc.path), tc.token, nil)
			if tc.path == "/keys/abc%2F..%2Fother/sign" {
				code, _, body = e.c.do("POST", e.url("names", tc.path), tc.token, map[string]string{"alg": "ES256", "value": "AAAA"})
			}
			if code != tc.want {
				t.Fatalf("GET %s: %d %s, want %d", tc.path, code, body, tc.want)
			}
			var eb struct {
				Error struct{ Code, Message string } `json:"error"`
				Key   struct {
					Kid string `json:"kid"`
				} `json:"key"`
			}
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			switch {
			case code == http.StatusBadRequest && (eb.Error.Code != "BadParameter" || eb.Error.Message == ""):
				t.Fatalf("400 body %s, want Azure's error with code BadParameter", body)
			case code == 200 && eb.Key.Kid != e.s.HSMURL("names")+"/keys/"+tc.wantKey+"/"+lastSegment(eb.Key.Kid):
				t.Fatalf("answered with %s, want key %s", eb.Key.Kid, tc.wantKey)
			}
		})
	}
}

func make128(c byte) []byte {
	b := make([]byte, 128)
	for i := range b {
		b[i] = c
	}
	return b
}

func lastSegment(s string) string {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return s[i+1:]
		}
	}
	return s
}
