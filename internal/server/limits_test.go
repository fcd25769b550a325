package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
	"tresor/internal/wire"
)

// tokenReq posts a client-credentials request and returns status, headers
// and body.
func tokenReq(t *testing.T, c *call, clientID, secret string) (int, http.Header, []byte) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {c.s.Endpoint + "/.default"}}
	resp, err := c.client.PostForm(c.s.Endpoint+"/"+c.s.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// wantThrottled checks a 429 with a whole-seconds Retry-After and, with
// oauth, an OAuth error body, else Azure's error body with code Throttled.
func wantThrottled(t *testing.T, code int, h http.Header, body []byte, oauth bool) {
	t.Helper()
	if code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", code, body)
	}
	if n, err := strconv.Atoi(h.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("Retry-After %q, want whole seconds", h.Get("Retry-After"))
	}
	if oauth {
		var e wire.OAuthError
		if json.Unmarshal(body, &e) != nil || e.Error == "" || e.ErrorDescription == "" {
			t.Fatalf("not an OAuth error body: %s", body)
		}
		return
	}
	wantError(t, code, body, http.StatusTooManyRequests, "Throttled")
}

// TestThrottling: each limit, configured small, answers 429 with
// Retry-After once used up, and only for whom it limits.
func TestThrottling(t *testing.T) {
	tests := map[string]struct {
		cfg func(*server.Config)
		run func(t *testing.T, s *servertest.Server, c *call)
	}{
		"token requests per client address": {
			cfg: func(c *server.Config) { c.TokenRatePerAddress = server.Rate{PerSecond: 0.01, Burst: 3} },
			run: func(t *testing.T, s *servertest.Server, c *call) {
				for i := range 3 {
					if code, _, body := tokenReq(t, c, s.ClientID, s.ClientSecret); code != 200 {
						t.Fatalf("token %d: %d %s", i, code, body)
					}
				}
				code, h, body := tokenReq(t, c, s.ClientID, s.ClientSecret)
				wantThrottled(t, code, h, body, true)
				// Unknown clients from the same address are refused too,
				// before their credentials are looked at.
				code, h, body = tokenReq(t, c, "00000000-0000-4000-8000-000000000000", "x")
				wantThrottled(t, code, h, body, true)
			},
		},
		"token requests per client id": {
			cfg: func(c *server.Config) { c.TokenRatePerClient = server.Rate{PerSecond: 0.01, Burst: 3} },
			run: func(t *testing.T, s *servertest.Server, c *call) {
				for i := range 3 {
					if code, _, body := tokenReq(t, c, s.ClientID, s.ClientSecret); code != 200 {
						t.Fatalf("token %d: %d %s", i, code, body)
					}
				}
				code, h, body := tokenReq(t, c, strings.ToUpper(s.ClientID), s.ClientSecret)
				wantThrottled(t, code, h, body, true)
				if code, _, body := tokenReq(t, c, "00000000-0000-4000-8000-000000000000", "x"); code != 401 {
					t.Fatalf("another client id: %d %s, want 401", code, body)
				}
			},
		},
		"repeated failed sign-ins back off": {
			run: func(t *testing.T, s *servertest.Server, c *call) {
				p := createPrincipal(t, c, s, s.AdminToken(t))
				for i := range 5 {
					if code, _, body := tokenReq(t, c, s.ClientID, "wrong-secret"); code != 401 {
						t.Fatalf("failure %d: %d %s", i, code, body)
					}
				}
				// Blocked now, even with the right secret.
				code, h, body := tokenReq(t, c, s.ClientID, s.ClientSecret)
				wantThrottled(t, code, h, body, true)
				if !strings.Contains(string(body), "AADSTS50053") {
					t.Fatalf("429 does not say why: %s", body)
				}
				// Other clients are not.
				if code, _, body := tokenReq(t, c, p.ClientID, p.ClientSecret); code != 200 {
					t.Fatalf("another client: %d %s", code, body)
				}
			},
		},
		"a success resets the failures": {
			run: func(t *testing.T, s *servertest.Server, c *call) {
				for round := range 3 {
					for i := range 4 {
						if code, _, body := tokenReq(t, c, s.ClientID, "wrong-secret"); code != 401 {
							t.Fatalf("round %d failure %d: %d %s", round, i, code, body)
						}
					}
					if code, _, body := tokenReq(t, c, s.ClientID, s.ClientSecret); code != 200 {
						t.Fatalf("round %d: %d %s", round, code, body)
					}
				}
			},
		},
		"requests per principal on both planes": {
			cfg: func(c *server.Config) { c.PrincipalRate = server.Rate{PerSecond: 0.01, Burst: 6} },
			run: func(t *testing.T, s *servertest.Server, c *call) {
				arm := s.AdminToken(t)
				hsm := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
				if code, _, body := c.do("PUT", c.hsmPath("limited"), arm, createBody(s.ObjectID)); code != 202 { // 1 request (sub() needs no token)
					t.Fatalf("create: %d %s", code, body)
				}
				defs := s.HSMURL("limited") + "/providers/Microsoft.Authorization/roleDefinitions?api-version=7.4"
				for i := range 5 {
					if code, _, body := c.do("GET", defs, hsm, nil); code != 200 {
						t.Fatalf("request %d: %d %s", i, code, body)
					}
				}
				code, h, body := c.do("GET", defs, hsm, nil)
				wantThrottled(t, code, h, body, false)
				code, h, body = c.do("GET", s.Endpoint+"/tresor/account", arm, nil)
				wantThrottled(t, code, h, body, false)
				// Without a token the answer is still the challenge.
				if code, _, _ := c.do("GET", defs, "", nil); code != 401 {
					t.Fatalf("without a token: %d", code)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var opts []servertest.Option
			if tc.cfg != nil {
				opts = append(opts, tc.cfg)
			}
			s := servertest.Start(t, opts...)
			tc.run(t, s, newCall(t, s))
		})
	}
}

// createPrincipal makes a principal with the bootstrap administrator.
func createPrincipal(t *testing.T, c *call, s *servertest.Server, arm string) wire.Principal {
	t.Helper()
	code, _, body := c.do("POST", s.Endpoint+"/tresor/principals", arm, map[string]any{"displayName": "other"})
	if code != 201 {
		t.Fatalf("create principal: %d %s", code, body)
	}
	var p wire.Principal
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFailedSignInLogged: a failed sign-in is logged with the client id,
// the client address and the reason, never with the secret.
func TestFailedSignInLogged(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	const secret = "tsr~not-the-secret-but-never-logged-either"
	tests := map[string]string{"wrong secret": s.ClientID, "unknown client": "7d0c1f3e-0000-4000-8000-00000000abcd"}
	for name, id := range tests {
		t.Run(name, func(t *testing.T) {
			if code, _, body := tokenReq(t, c, id, secret); code != 401 {
				t.Fatalf("%d %s", code, body)
			}
			var line string
			for l := range strings.SplitSeq(s.Logs(), "\n") {
				if strings.Contains(l, "failed sign-in") && strings.Contains(l, id) {
					line = l
				}
			}
			if line == "" {
				t.Fatalf("no failed sign-in logged for %s:\n%s", id, s.Logs())
			}
			for _, want := range []string{"level=WARN", "client=127.0.0.1/32", "AADSTS7000215"} {
				if !strings.Contains(line, want) {
					t.Errorf("log line lacks %q: %s", want, line)
				}
			}
		})
	}
	if strings.Contains(s.Logs(), secret) || strings.Contains(s.Logs(), s.ClientSecret) {
		t.Fatal("a secret is in the log")
	}
}

// TestKeyLimit: an HSM holds at most maxKeysPerHsm keys, deleted ones
// included; creating, importing and restoring beyond it fail with 409
// KeyLimitExceeded and change nothing, new versions do not count.
func TestKeyLimit(t *testing.T) {
	s := servertest.Start(t, func(c *server.Config) { c.MaxKeysPerHsm = 3 })
	activeHSM(t, s, "capped")
	c := newCall(t, s)
	tok := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	u := func(path string) string { return s.HSMURL("capped") + path + "?api-version=7.5" }
	aes := map[string]any{"kty": "oct-HSM", "key_size": 256}
	imported := map[string]any{"key": map[string]any{"kty": "oct-HSM", "k": base64.RawURLEncoding.EncodeToString(make([]byte, 32))}}
	names := func() []string {
		t.Helper()
		var out []string
		for _, path := range []string{"/keys", "/deletedkeys"} {
			code, _, body := c.do("GET", u(path), tok, nil)
			if code != 200 {
				t.Fatalf("list %s: %d %s", path, code, body)
			}
			var l struct{ Value []struct{ Kid string } }
			_ = json.Unmarshal(body, &l)
			for _, k := range l.Value {
				out = append(out, strings.Split(strings.TrimPrefix(k.Kid, s.HSMURL("capped")+"/keys/"), "/")[0])
			}
		}
		return out
	}
	for _, k := range []string{"k1", "k2", "k3"} {
		if code, _, body := c.do("POST", u("/keys/"+k+"/create"), tok, aes); code != 200 {
			t.Fatalf("create %s: %d %s", k, code, body)
		}
	}
	code, _, body := c.do("POST", u("/keys/k2/backup"), tok, nil)
	if code != 200 {
		t.Fatalf("backup k2: %d %s", code, body)
	}
	var backup wire.BackupKeyResult
	_ = json.Unmarshal(body, &backup)

	steps := []struct {
		name         string
		method, path string
		body         any
		want         int
		code         string
	}{
		{"create beyond the limit", "POST", "/keys/k4/create", aes, 409, "KeyLimitExceeded"},
		{"import beyond the limit", "PUT", "/keys/k4", imported, 409, "KeyLimitExceeded"},
		{"a new version does not count", "POST", "/keys/k1/create", aes, 200, ""},
		{"an import of a new version does not count", "PUT", "/keys/k1", imported, 200, ""},
		{"a rotation does not count", "POST", "/keys/k1/rotate", nil, 200, ""},
		{"delete k2", "DELETE", "/keys/k2", nil, 200, ""},
		{"a deleted key still counts", "POST", "/keys/k4/create", aes, 409, "KeyLimitExceeded"},
		{"purge k2", "DELETE", "/deletedkeys/k2", nil, 204, ""},
		{"create after a purge", "POST", "/keys/k4/create", aes, 200, ""},
		{"restore beyond the limit", "POST", "/keys/restore", backup, 409, "KeyLimitExceeded"},
	}
	for _, st := range steps {
		code, _, body := c.do(st.method, u(st.path), tok, st.body)
		if st.code != "" {
			wantError(t, code, body, st.want, st.code)
			if !strings.Contains(string(body), "3 keys") {
				t.Fatalf("%s: the message does not name the limit: %s", st.name, body)
			}
		} else if code != st.want {
			t.Fatalf("%s: %d %s, want %d", st.name, code, body, st.want)
		}
	}
	if got := strings.Join(names(), ","); got != "k1,k3,k4" {
		t.Fatalf("keys %s, want k1,k3,k4", got)
	}
	in, _ := s.Instances.Get(context.Background(), "capped")
	if n, err := s.Keys.CountKeys(context.Background(), in); err != nil || n != 3 {
		t.Fatalf("CountKeys = %d, %v", n, err)
	}
}

// TestFullRestoreBeyondKeyLimit: a full restore of a backup holding more
// keys than the region allows fails before anything is swapped, saying
// why; the HSM keeps its keys (it may hold more than a lowered limit, it
// only gets no new ones).
func TestFullRestoreBeyondKeyLimit(t *testing.T) {
	dir := t.TempDir()
	dest := wire.SASTokenParameter{StorageResourceURI: "file://" + dir}
	d := newDrill(t, withBackupDir(dir))
	d.create("big")
	d.activate("big", "sd1", "sd2", "sd3")
	d.seedKeys("big", 4)
	folder := folderOf(d.backup("big", dest))
	want := d.dump("big")
	dataDir, clientID, secret, oid := d.s.DataDir, d.s.ClientID, d.s.ClientSecret, d.s.ObjectID
	d.s.Stop()

	// The same region restarted with a limit of 3 keys per HSM.
	s := servertest.Start(t, func(c *server.Config) {
		c.DataDir, c.MaxKeysPerHsm = dataDir, 3
		c.BackupDirs = []string{dir}
	})
	s.ClientID, s.ClientSecret, s.ObjectID = clientID, secret, oid
	d = &drill{t: t, s: s, c: newCall(t, s)}
	d.arm = s.AdminToken(t)
	d.hsm = s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	st := d.restore("big", dest, folder)
	e, _ := st["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if st["status"] != "Failed" || !strings.Contains(msg, "holds 4 keys, more than the 3 keys") {
		t.Fatalf("restore: %v", st)
	}
	if diff := diffState(want, d.dump("big")); diff != "" {
		t.Fatalf("the failed restore changed the HSM: %s", diff)
	}
	code, _, body := d.c.do("POST", d.url("big", "/keys/new/create"), d.hsm, map[string]any{"kty": "oct-HSM", "key_size": 256})
	wantError(t, code, body, 409, "KeyLimitExceeded")
}
