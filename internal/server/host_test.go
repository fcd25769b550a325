package server_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"tresor/internal/rbac"
)

// TestURLsIgnoreForgedHost: the server routes HSM requests by Host without
// case or port, but the URLs it answers with (kid, recoveryId, policy id,
// nextLink) are built from the instance's hsmUri, never from the Host
// header the client sent.
func TestURLsIgnoreForgedHost(t *testing.T) {
	e := newRBACEnv(t, "hosts")
	e.assign("hosts", rbac.RoleDefinitionID(rbac.CryptoUserID), e.s.ObjectID, "/")
	base := e.s.HSMURL("hosts")
	_, port, _ := net.SplitHostPort(e.s.Addr)
	do := func(method, path, host, body string) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, e.url("hosts", path), rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+e.admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	hosts := map[string]string{
		"upper case":   "HOSTS.MANAGEDHSM.LOCALHOST:" + port,
		"other port":   "hosts.managedhsm.localhost:1",
		"no port":      "hosts.managedhsm.localhost",
		"trailing dot": "hosts.managedhsm.localhost.:" + port,
	}
	for name, host := range hosts {
		t.Run(name, func(t *testing.T) {
			key := strings.NewReplacer(" ", "-").Replace(name)
			steps := []struct{ method, path, body string }{
				{"POST", "/keys/" + key + "/create", `{"kty":"EC-HSM","crv":"P-256"}`},
				{"GET", "/keys/" + key, ""},
				{"GET", "/keys?maxresults=1", ""},
				{"GET", "/keys/" + key + "/rotationpolicy", ""},
				{"DELETE", "/keys/" + key, ""},
			}
			for _, st := range steps {
				code, body := do(st.method, st.path, host, st.body)
				if code != 200 {
					t.Fatalf("%s %s (Host %s): %d %s", st.method, st.path, host, code, body)
				}
				var v any
				if err := json.Unmarshal(body, &v); err != nil {
					t.Fatal(err)
				}
				urls := collectURLs(v)
				if len(urls) == 0 {
					t.Fatalf("%s %s: no URL in %s", st.method, st.path, body)
				}
				for _, u := range urls {
					if !strings.HasPrefix(u, base+"/") {
						t.Errorf("%s %s (Host %s): URL %s, want one under %s", st.method, st.path, host, u, base)
					}
				}
			}
		})
	}
}

// collectURLs returns the https URLs among the string values of v.
func collectURLs(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, "https://") {
			out = append(out, x)
		}
	case map[string]any:
		for _, e := range x {
			out = append(out, collectURLs(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, collectURLs(e)...)
		}
	}
	return out
}
