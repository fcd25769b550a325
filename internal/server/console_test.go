package server_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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

	first := c.signIn(s.ClientID, s.ClientSecret)
	ck := c.signIn(s.ClientID, s.ClientSecret) // signing in again ends the first session
	if first.Value == ck.Value {
		t.Fatal("a second sign-in kept the session id")
	}
	stale := newConsoleClient(t, s)
	req, _ := http.NewRequest("GET", s.Endpoint+"/console/region", nil)
	req.AddCookie(&http.Cookie{Name: first.Name, Value: first.Value})
	if r, err := stale.hc.Do(req); err != nil || r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the first session after a second sign-in: %v %v", r, err)
	} else {
		r.Body.Close()
	}
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
	req, _ = http.NewRequest("GET", s.Endpoint+"/console/region", nil)
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

// postMultipart posts a multipart form with files (field → paths).
func (c *consoleClient) postMultipart(path string, fields map[string]string, files map[string][]string) (*http.Response, string) {
	c.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	for field, paths := range files {
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				c.t.Fatal(err)
			}
			fw, _ := mw.CreateFormFile(field, filepath.Base(p))
			_, _ = fw.Write(data)
		}
	}
	mw.Close()
	req, _ := http.NewRequest("POST", c.s.Endpoint+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// action posts a form with the session's CSRF token, follows the 303 and
// returns the page it leads to.
func (c *consoleClient) action(path string, form url.Values) string {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", c.csrf)
	resp, body := c.post(path, form, nil)
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, body)
	}
	_, page := c.get(resp.Header.Get("Location"))
	return page
}

// wantPage fails unless the page contains each of want.
func wantPage(t *testing.T, what, page string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Fatalf("%s: the page lacks %q:\n%s", what, w, page)
		}
	}
}

// TestConsoleKeysBackupsAndLifecycle drives the rest of the console over
// HTTP: recovery and the exchange certificate, key paging and filter, a
// key's rotate, disable, enable, tags, rotation policy, delete, recover and
// purge, role removal, the backup policy, a selective key restore and a
// full restore, and deleting, recovering and purging an HSM.
func TestConsoleKeysBackupsAndLifecycle(t *testing.T) {
	s := servertest.Start(t)
	c := newConsoleClient(t, s)
	c.signIn(s.ClientID, s.ClientSecret)
	c.get("/console/region")

	// An HSM in recovery: its exchange certificate downloads once.
	page := c.action("/console/hsms", url.Values{"name": {"rec1"}})
	wantPage(t, "create rec1", page, "Created the HSM rec1", "NotActivated")
	page = c.action("/console/hsm/rec1/recovery", nil)
	wantPage(t, "recovery", page, "Recovery started for rec1", "rec1-exchange.cer")
	dl := regexp.MustCompile(`href="(/console/download/[^"]+)"`).FindStringSubmatch(page)
	if dl == nil {
		t.Fatal("no download link")
	}
	resp, cert := c.get(dl[1])
	if resp.StatusCode != 200 || !strings.Contains(cert, "BEGIN CERTIFICATE") || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("exchange certificate: %d %q", resp.StatusCode, cert)
	}
	if resp, _ := c.get(dl[1]); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second download: %d", resp.StatusCode)
	}

	// Create and activate an HSM; a private key among the files is refused.
	c.action("/console/hsms", url.Values{"name": {"keys1"}})
	certs := []string{filepath.Join("testdata", "custodians", "sd1.cer"), filepath.Join("testdata", "custodians", "sd2.cer"), filepath.Join("testdata", "custodians", "sd3.cer")}
	resp, _ = c.postMultipart("/console/hsm/keys1/activate", map[string]string{"csrf": c.csrf, "quorum": "2"},
		map[string][]string{"certs": append(certs[:2:2], filepath.Join("testdata", "custodians", "sd1.pem"))})
	_, page = c.get(resp.Header.Get("Location"))
	wantPage(t, "activate with a private key", page, "never takes a custodian private key", "NotActivated")
	resp, _ = c.postMultipart("/console/hsm/keys1/activate", map[string]string{"csrf": c.csrf, "quorum": "2"}, map[string][]string{"certs": certs[:2]})
	_, page = c.get(resp.Header.Get("Location"))
	wantPage(t, "activate with two certificates", page, "NotActivated", `class="flash error"`)
	resp, _ = c.postMultipart("/console/hsm/keys1/activate", map[string]string{"csrf": c.csrf, "quorum": "2"}, map[string][]string{"certs": certs})
	_, page = c.get(resp.Header.Get("Location"))
	wantPage(t, "activate", page, "Activated keys1", `badge active`)
	c.action("/console/hsm/keys1/roles", url.Values{"role": {"Managed HSM Crypto Officer"}, "principal": {s.ObjectID}, "scope": {"/"}})
	page = c.action("/console/hsm/keys1/roles", url.Values{"role": {"Managed HSM Crypto User"}, "principal": {s.ObjectID}, "scope": {"/keys"}})
	wantPage(t, "assign", page, "Managed HSM Crypto Officer", "Managed HSM Crypto User", "<code>/keys</code>")

	// Paging and filter: 27 keys, 25 a page.
	for i := range 27 {
		page = c.action("/console/hsm/keys1/keys", url.Values{"name": {fmt.Sprintf("k%02d", i)}, "kty": {"EC-HSM"}, "curve": {"P-256"}, "tags": {"env=test"}})
	}
	wantPage(t, "create key", page, "Key k26", "EC-HSM", "env=test")
	_, page = c.get("/console/hsm/keys1/keys")
	wantPage(t, "keys page 1", page, "27 keys · page 1 of 2", ">k00<", ">k24<", `id="next"`)
	if strings.Contains(page, ">k25<") {
		t.Fatal("page 1 shows the 26th key")
	}
	_, page = c.get("/console/hsm/keys1/keys?page=2")
	wantPage(t, "keys page 2", page, "page 2 of 2", ">k25<", ">k26<", `id="prev"`)
	_, page = c.get("/console/hsm/keys1/keys?filter=k1")
	wantPage(t, "filter", page, "10 keys · page 1 of 1", ">k10<", ">k19<")

	// A key's lifecycle.
	page = c.action("/console/hsm/keys1/keys/k01/rotate", nil)
	wantPage(t, "rotate", page, "Rotated the key k01")
	if n := strings.Count(page[strings.Index(page, `id="versions"`):], "<tr><td><code>"); n != 2 {
		t.Fatalf("versions after a rotation: %d", n)
	}
	page = c.action("/console/hsm/keys1/keys/k01/disable", nil)
	wantPage(t, "disable", page, `<dd id="key-enabled">no</dd>`)
	page = c.action("/console/hsm/keys1/keys/k01/enable", nil)
	wantPage(t, "enable", page, `<dd id="key-enabled">yes</dd>`)
	page = c.action("/console/hsm/keys1/keys/k01/tags", url.Values{"tags": {"owner=ops, tier=1"}})
	wantPage(t, "tags", page, `<dd id="key-tags">owner=ops, tier=1</dd>`)
	page = c.action("/console/hsm/keys1/keys/k01/rotationpolicy", url.Values{"rotate_after": {"P90D"}, "expiry": {"P1Y"}})
	wantPage(t, "rotation policy", page, "Rotate P90D after creation", "versions expire P1Y after creation")
	page = c.action("/console/hsm/keys1/keys/k01/rotationpolicy", url.Values{"rotate_after": {"soon"}})
	wantPage(t, "bad rotation policy", page, `class="flash error"`, "BadParameter")
	page = c.action("/console/hsm/keys1/keys/k02/delete", nil)
	wantPage(t, "delete", page, "Deleted the key k02", `/deletedkeys/k02/recover`)
	page = c.action("/console/hsm/keys1/deletedkeys/k02/recover", nil)
	wantPage(t, "recover", page, "Recovered the key k02")
	c.action("/console/hsm/keys1/keys/k03/delete", nil)
	page = c.action("/console/hsm/keys1/deletedkeys/k03/purge", nil)
	wantPage(t, "purge", page, "Purged the key k03")
	if strings.Contains(page, ">k03<") {
		t.Fatal("a purged key is still listed")
	}

	// Backups: a backup, a selective key restore, a full restore, the policy.
	storage := "file://" + s.BackupDir
	page = c.action("/console/hsm/keys1/backups/start", url.Values{"storage": {storage}})
	wantPage(t, "backup", page, "Started a backup of keys1")
	folder := ""
	for deadline := time.Now().Add(20 * time.Second); folder == ""; {
		_, page = c.get("/console/hsm/keys1/backups")
		if m := regexp.MustCompile(`<code class="folder">([^<]+)</code>`).FindStringSubmatch(page); m != nil {
			folder = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("backup never succeeded:\n%s", page)
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	c.action("/console/hsm/keys1/keys/k04/delete", nil)
	c.action("/console/hsm/keys1/deletedkeys/k04/purge", nil)
	page = c.action("/console/hsm/keys1/backups/restorekey", url.Values{"storage": {storage}, "folder": {folder}, "key": {"k04"}})
	wantPage(t, "key restore", page, "Started restoring the key k04")
	waitJob := func(kind string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; {
			_, page = c.get("/console/hsm/keys1/backups")
			i := strings.Index(page, "<tr><td>"+kind)
			if i >= 0 && strings.Contains(page[i:i+300], "Succeeded") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the %s job never succeeded:\n%s", kind, page)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitJob("key restore")
	_, page = c.get("/console/hsm/keys1/keys/k04")
	wantPage(t, "restored key", page, "Key k04", "EC-HSM")
	c.action("/console/hsm/keys1/keys/k05/delete", nil)
	c.action("/console/hsm/keys1/deletedkeys/k05/purge", nil)
	page = c.action("/console/hsm/keys1/backups/restore", url.Values{"storage": {storage}, "folder": {folder}})
	wantPage(t, "full restore", page, "Started a full restore of keys1")
	waitJob("restore")
	_, page = c.get("/console/hsm/keys1/keys/k05")
	wantPage(t, "restored by the full restore", page, "Key k05")
	page = c.action("/console/hsm/keys1/backups/policy", url.Values{"storage": {storage}, "token": {"x"}, "every": {"6h"}, "keep": {"3"}, "enabled": {"on"}})
	wantPage(t, "policy", page, "Set the backup policy", "PT6H", "3 folders")
	page = c.action("/console/hsm/keys1/backups/deletepolicy", nil)
	wantPage(t, "delete policy", page, "Deleted the backup policy")

	// Remove a role assignment.
	_, page = c.get("/console/hsm/keys1/roles")
	m := regexp.MustCompile(`action="/console/hsm/keys1/roles/([0-9a-f-]+)/delete"`).FindAllStringSubmatch(page, -1)
	before := len(m)
	page = c.action("/console/hsm/keys1/roles/"+m[len(m)-1][1]+"/delete", nil)
	wantPage(t, "remove role", page, "Removed the role assignment")
	if after := len(regexp.MustCompile(`action="/console/hsm/keys1/roles/([0-9a-f-]+)/delete"`).FindAllString(page, -1)); after != before-1 {
		t.Fatalf("assignments %d → %d", before, after)
	}

	// Delete the HSM, see it soft-deleted with its purge date, recover it,
	// delete it again and purge it.
	page = c.action("/console/hsm/rec1/delete", nil)
	wantPage(t, "delete HSM", page, "Deleted the HSM rec1", "/console/deleted/")
	page = c.action("/console/deleted/"+s.Config.Region+"/rec1/recover", nil)
	wantPage(t, "recover HSM", page, "Recovered the HSM rec1")
	c.action("/console/hsm/rec1/delete", nil)
	page = c.action("/console/deleted/"+s.Config.Region+"/rec1/purge", nil)
	wantPage(t, "purge HSM", page, "Purged the HSM rec1")
	if strings.Contains(page, "<td>rec1</td>") {
		t.Fatal("a purged HSM is still listed")
	}
}
