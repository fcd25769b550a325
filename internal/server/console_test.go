package server_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"tresor/internal/server/servertest"
)

// consoleClient is a cookie-keeping HTTP client of a region's console that
// does not follow redirects (the tests look at them).
type consoleClient struct {
	t    *testing.T
	s    *servertest.Server
	hc   *http.Client
	csrf string
}

func newConsoleClient(t *testing.T, s *servertest.Server) *consoleClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := s.HTTPClient(t)
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &consoleClient{t: t, s: s, hc: hc}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *consoleClient) get(path string) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.hc.Get(c.s.Endpoint + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindStringSubmatch(string(b)); m != nil {
		c.csrf = m[1]
	}
	return resp, string(b)
}

func (c *consoleClient) post(path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.s.Endpoint+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn signs in with the sign-in form and returns the session cookie.
func (c *consoleClient) signIn(clientID, secret string) *http.Cookie {
	c.t.Helper()
	c.get("/console/signin")
	resp, body := c.post("/console/signin", url.Values{"csrf": {c.csrf}, "client_id": {clientID}, "client_secret": {secret}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("sign in: %d %s", resp.StatusCode, body)
	}
	var set string
	for _, h := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(h, "__Host-tresor-console=") {
			set = h
		}
	}
	for _, want := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(set, want) {
			c.t.Errorf("session cookie %q lacks %s", set, want)
		}
	}
	if strings.Contains(set, "Domain=") {
		c.t.Errorf("session cookie %q has a Domain", set)
	}
	u, _ := url.Parse(c.s.Endpoint)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == "__Host-tresor-console" {
			return ck
		}
	}
	c.t.Fatal("no session cookie after sign-in")
	return nil
}

// TestConsoleSessionAndHeaders checks the console's session rules over
// plain HTTP: the cookie's attributes, the security headers, the sign-in
// form's CSRF token, a form without its CSRF token, a cross-site POST, a
// wrong secret, and a session cookie replayed after sign-out.
func TestConsoleSessionAndHeaders(t *testing.T) {
	s := servertest.Start(t)
	c := newConsoleClient(t, s)

	resp, _ := c.get("/console/region")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/signin") {
		t.Fatalf("region page without a session: %d %s, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := c.get("/console/signin")
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'", "X-Frame-Options": "DENY", "Cache-Control": "no-store",
	} {
		if got := resp.Header.Get(k); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
		t.Error("the sign-in page has inline script or style")
	}

	// The sign-in form's own CSRF token (double submit) is checked.
	resp, body = c.post("/console/signin", url.Values{"csrf": {"forged"}, "client_id": {s.ClientID}, "client_secret": {s.ClientSecret}}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRFTokenInvalid") {
		t.Fatalf("sign-in with a wrong CSRF token: %d, want 403 CSRFTokenInvalid", resp.StatusCode)
	}
	// A wrong secret is the token endpoint's refusal, shown with its code.
	c.get("/console/signin")
	resp, body = c.post("/console/signin", url.Values{"csrf": {c.csrf}, "client_id": {s.ClientID}, "client_secret": {"wrong"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "invalid_client") {
		t.Fatalf("sign-in with a wrong secret: %d %s", resp.StatusCode, body)
	}

	ck := c.signIn(s.ClientID, s.ClientSecret)
	resp, body = c.get("/console/region")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Create a managed HSM") {
		t.Fatalf("region page: %d %s", resp.StatusCode, body)
	}

	// A form without the session's CSRF token is refused.
	resp, body = c.post("/console/hsms", url.Values{"name": {"nocsrf"}}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRFTokenInvalid") {
		t.Fatalf("POST without CSRF token: %d, want 403 CSRFTokenInvalid", resp.StatusCode)
	}
	// A cross-site POST is refused before its token is looked at.
	resp, body = c.post("/console/hsms", url.Values{"csrf": {c.csrf}, "name": {"crosssite"}}, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "cross-site request refused") {
		t.Fatalf("cross-site POST: %d %s", resp.StatusCode, body)
	}
	resp, _ = c.post("/console/hsms", url.Values{"csrf": {c.csrf}, "name": {"crossorigin"}}, map[string]string{"Origin": "https://localhost:1"})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST from another origin: %d, want 403", resp.StatusCode)
	}
	adm := s.AdminToken(t)
	call := newCall(t, s)
	for _, n := range []string{"nocsrf", "crosssite", "crossorigin"} {
		if code, _, _ := call.do("GET", call.hsmPath(n), adm, nil); code != http.StatusNotFound {
			t.Errorf("HSM %s exists after a refused form: %d", n, code)
		}
	}

	// Sign out, then replay the old cookie: the session is gone on the server.
	resp, _ = c.post("/console/signout", url.Values{"csrf": {c.csrf}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	replay := newConsoleClient(t, s)
	req, _ := http.NewRequest("GET", s.Endpoint+"/console/region", nil)
	req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	r2, err := replay.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r2.Header.Get("Location"), "/console/signin") {
		t.Fatalf("old session after sign-out: %d %s, want a redirect to sign in", r2.StatusCode, r2.Header.Get("Location"))
	}
}
