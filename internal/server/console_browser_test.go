package server_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"tresor/internal/client"
	"tresor/internal/server/servertest"
	"tresor/internal/wire"
)

// The console's browser tests drive a real region's console in headless
// Chromium (Debian's chromium; ./scripts/test installs it). Without a
// Chromium they skip, unless TRESOR_REQUIRE_CHROMIUM is set.

// chromiumPath finds the browser.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("TRESOR_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("TRESOR_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium not found (install Debian's chromium, or set TRESOR_CHROMIUM)")
	}
	t.Skip("chromium not found: the console's browser tests need it (./scripts/test installs it)")
	return ""
}

// browser is a headless Chromium tab on a region's console.
type browser struct {
	t    *testing.T
	s    *servertest.Server
	ctx  context.Context
	base string // https://127.0.0.1:port
}

// spkiHash is the base64 SHA-256 of the region's TLS certificate's public
// key, for --ignore-certificate-errors-spki-list: the browser accepts that
// one certificate and no other.
func spkiHash(t *testing.T, s *servertest.Server) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.DataDir, "tls.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func newBrowser(t *testing.T, s *servertest.Server, extraSPKI ...string) *browser {
	t.Helper()
	exe := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		// The viewer is in Berlin: pages show times in that zone.
		chromedp.Env("TZ=Europe/Berlin"),
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(append([]string{spkiHash(t, s)}, extraSPKI...), ",")),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	// The first call starts the browser: no timeout on its context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, s: s, ctx: ctx, base: "https://" + s.Addr}
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot("failure-" + regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(t.Name(), "_"))
		}
	})
	return b
}

// artefactDir is where screenshots of failed browser tests go.
func artefactDir() string {
	if d := os.Getenv("TRESOR_TEST_ARTIFACTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "tresor-console-artifacts")
}

// screenshot writes a full-page PNG into the artefact directory.
func (b *browser) screenshot(name string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	dir := artefactDir()
	_ = os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("screenshot: %s", p)
	return p
}

// stepTimeout bounds each step of a browser test.
const stepTimeout = 20 * time.Second

func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v (page: %s)", what, err, b.text("body"))
	}
}

// text returns the text of the first element matching sel ("" if none).
func (b *browser) text(sel string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	return s
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// open navigates to a console path.
func (b *browser) open(path string) {
	b.t.Helper()
	b.run("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

// wantText fails unless the element sel shows want.
func (b *browser) wantText(sel, want string) {
	b.t.Helper()
	if got := b.text(sel); !strings.Contains(got, want) {
		b.t.Fatalf("%s shows %q, want %q", sel, got, want)
	}
}

// waitText reloads the page until sel shows want (jobs run in the background).
func (b *browser) waitText(sel, want string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(b.text(sel), want) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never showed %q (last: %q)", sel, want, b.text(sel))
		}
		time.Sleep(300 * time.Millisecond)
		// Navigate to the page's address again rather than Reload: the
		// page may be a form post's answer, which Reload would post again
		// (and which, on a loaded machine, detached the page).
		ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
		loc, err := chromedp.Run(ctx, chromedp.Location())
		cancel()
		if err != nil {
			b.t.Fatalf("location: %v", err)
		}
		b.run("reload", chromedp.Navigate(loc), chromedp.WaitReady(chromedp.CSS("body")))
	}
}

func (b *browser) signIn(clientID, secret string) {
	b.t.Helper()
	b.open("/console/")
	b.run("sign in",
		chromedp.WaitVisible(chromedp.CSS("#client_id")),
		chromedp.SendKeys(chromedp.CSS("#client_id"), clientID),
		chromedp.SendKeys(chromedp.CSS("#client_secret"), secret),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#hsms")),
	)
}

func (b *browser) signOut() {
	b.t.Helper()
	b.run("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
}

// sessionCookie returns the session cookie's value as the browser holds it.
func (b *browser) sessionCookie() string {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/"}})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "__Host-tresor-console" {
			if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict {
				b.t.Errorf("session cookie: httpOnly %v secure %v sameSite %s", c.HTTPOnly, c.Secure, c.SameSite)
			}
			return c.Value
		}
	}
	b.t.Fatal("no session cookie")
	return ""
}

// adminClient is an API client of the bootstrap administrator.
func adminClient(t *testing.T, s *servertest.Server) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Server: s.Endpoint, CAFile: s.CAFile, ClientID: s.ClientID, ClientSecret: s.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConsoleBrowser walks the flow in a real browser: sign in,
// create an HSM, activate it by uploading three custodian certificates,
// assign a role, create a key, take a backup and see it succeed, pass a
// drill of that folder, tamper with its manifest and see the next drill
// fail; then the security
// cases: a form without its CSRF token, a cross-site form post, a
// principal without rights, and a session after sign-out. Each step is
// asserted from the rendered page.
func TestConsoleBrowser(t *testing.T) {
	s := servertest.Start(t)
	b := newBrowser(t, s)
	adm := adminClient(t, s)
	ctx := context.Background()
	user, err := adm.CreatePrincipal(ctx, wire.PrincipalCreate{DisplayName: "console crypto user"})
	if err != nil {
		t.Fatal(err)
	}

	// Sign in: the page names the signed-in principal.
	b.signIn(s.ClientID, s.ClientSecret)
	b.wantText("#whoami", "region administrator")

	// Create an HSM from the region page.
	b.run("create HSM",
		chromedp.SendKeys(chromedp.CSS("#hsm-name"), "console1"),
		chromedp.Click(chromedp.CSS("#create-hsm-submit")),
		chromedp.WaitVisible(chromedp.CSS("#activate-form")),
	)
	b.wantText("#activation-status", "NotActivated")

	// Activate it: three custodian certificates, quorum 2.
	var certs []string
	for _, n := range []string{"sd1", "sd2", "sd3"} {
		p, _ := filepath.Abs(filepath.Join("testdata", "custodians", n+".cer"))
		certs = append(certs, p)
	}
	b.run("activate",
		chromedp.SetUploadFiles(chromedp.CSS("#certs"), certs),
		chromedp.SetValue(chromedp.CSS("#quorum"), "2"),
		chromedp.Click(chromedp.CSS("#activate-submit")),
		chromedp.WaitVisible(chromedp.CSS("#timeline")),
	)
	b.wantText("#activation-status", "Active")
	b.wantText(".flash.ok", "encrypted to 3 certificates with a quorum of 2")
	b.wantText("#downloads", "console1-SecurityDomain.json")
	// The security-domain file downloads once, from the session.
	sdText := eval[string](b, `fetch(document.querySelector("#downloads a").href).then(r => r.text())`, chromedp.EvalAwaitPromise)
	if !strings.Contains(sdText, "EncData") {
		t.Fatalf("the downloaded security domain is not one: %.200s", sdText)
	}

	// Assign roles: Crypto User to the second principal and to the
	// administrator itself (Managed HSM Administrator has no key rights).
	assign := func(principal string) {
		b.open("/console/hsm/console1/roles")
		b.run("assign role",
			chromedp.SetValue(chromedp.CSS("#role"), "Managed HSM Crypto User"),
			chromedp.SendKeys(chromedp.CSS("#principal"), principal),
			chromedp.Click(chromedp.CSS("#assign-submit")),
			chromedp.WaitVisible(chromedp.CSS(".flash.ok")),
		)
		b.wantText(".flash.ok", "Assigned Managed HSM Crypto User to "+principal)
		if got := b.text("#assignments"); !regexp.MustCompile(`Managed HSM Crypto User\t`+principal+` \([^)]*\)\t/\t`).MatchString(got) || !strings.Contains(got, "Managed HSM Crypto User") {
			t.Fatalf("assignments table: %q", got)
		}
	}
	assign(user.ObjectID)
	assign(s.ObjectID)

	// Create a key; its page shows it.
	b.open("/console/hsm/console1/keys")
	b.run("create key",
		chromedp.SendKeys(chromedp.CSS("#key-name"), "console-key"),
		chromedp.Click(chromedp.CSS("#create-key-submit")),
		chromedp.WaitVisible(chromedp.CSS("#key-props")),
	)
	b.wantText("h1", "Key console-key")
	b.wantText("#key-props", "RSA-HSM")
	b.wantText("#key-enabled", "yes")
	b.open("/console/hsm/console1/keys")
	b.wantText("#keys", "console-key")

	// Take a backup and see it succeed.
	storage := "file://" + s.BackupDir
	b.open("/console/hsm/console1/backups")
	b.run("start backup",
		chromedp.SetValue(chromedp.CSS("#backup-storage"), storage),
		chromedp.Click(chromedp.CSS("#backup-submit")),
		chromedp.WaitVisible(chromedp.CSS("#jobs")),
	)
	b.waitText("#jobs", "Succeeded", 20*time.Second)
	folder := b.text(".folder")
	if !strings.HasPrefix(folder, "mhsm-console1-") {
		t.Fatalf("backup folder %q", folder)
	}

	// A drill of the folder passes; once its manifest is tampered with, the
	// next drill of it fails.
	drill := func(f string) {
		b.run("drill "+f,
			chromedp.SetValue(chromedp.CSS("#drill-storage"), storage),
			chromedp.SetValue(chromedp.CSS("#drill-folder"), f),
			chromedp.Click(chromedp.CSS("#drill-submit")),
			chromedp.WaitVisible(chromedp.CSS("#drills")),
		)
	}
	drill(folder)
	b.waitText("#drills tbody tr:first-child .result", "pass", 20*time.Second)
	tamper(t, s.BackupDir, folder)
	drill(folder)
	b.waitText("#drills tbody tr:first-child .result", "fail", 20*time.Second)
	b.wantText("#drills tbody tr:first-child", folder)
	b.wantText("#drills tbody tr:first-child", "RestoreFailed")
	b.wantText("#drills tbody tr:nth-child(2) .result", "pass")

	// The HSM page: active, with the timeline; its screenshot is the
	// README's (TRESOR_CONSOLE_SCREENSHOT names where to write it).
	b.open("/console/hsm/console1")
	if got := b.text("#timeline"); !strings.Contains(got, "backups") {
		t.Fatalf("timeline: %q", got)
	}
	ok := eval[int](b, `document.querySelectorAll("#timeline .backups-ok").length`)
	fail := eval[int](b, `document.querySelectorAll("#timeline .drills-fail").length`)
	if ok != 1 || fail != 1 {
		t.Fatalf("timeline marks: %d days with good backups, %d with failed drills; want 1 and 1", ok, fail)
	}
	// Times are rewritten in the viewer's time zone (Berlin, see
	// newBrowser) by console.js; the server's UTC text moves to the title.
	title := eval[string](b, `document.querySelector("#hsm-props time").title`)
	shown := eval[string](b, `document.querySelector("#hsm-props time").textContent`)
	if !strings.HasSuffix(title, " UTC") || shown == title || !(strings.Contains(shown, "GMT+1") || strings.Contains(shown, "CET")) {
		t.Fatalf("time element not rewritten by console.js: title %q, text %q", title, shown)
	}
	t.Logf("time shown as %q (server: %q)", shown, title)
	if p := os.Getenv("TRESOR_CONSOLE_SCREENSHOT"); p != "" {
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Security: a form whose CSRF token was removed is refused.
	b.open("/console/region")
	b.run("post without CSRF token",
		chromedp.SendKeys(chromedp.CSS("#hsm-name"), "nocsrf"),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector("#create-hsm input[name=csrf]").remove()`))
			return err
		}),
		chromedp.Click(chromedp.CSS("#create-hsm-submit")),
		chromedp.WaitVisible(chromedp.CSS(".flash.error")),
	)
	b.wantText(".flash.error", "CSRFTokenInvalid")

	// Security: a form on another site posting to the console is refused.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/go.js" {
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprint(w, `document.forms[0].submit();`)
			return
		}
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/console/hsms"><input name="name" value="crosssite"><input name="csrf" value="guess"></form><script src="/go.js"></script>`, b.base)
	}))
	defer evil.Close()
	b.run("cross-site post", chromedp.Navigate(evil.URL), chromedp.WaitReady(chromedp.CSS("body")))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.text("body"), "cross-site request refused") {
		if time.Now().After(deadline) {
			t.Fatalf("cross-site post: page %q", b.text("body"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, n := range []string{"nocsrf", "crosssite"} {
		if _, err := adm.FindHSM(ctx, n); err == nil {
			t.Errorf("HSM %s exists after a refused form", n)
		}
	}

	// Security: a session after sign-out is gone on the server.
	old := b.sessionCookie()
	b.open("/console/region")
	b.signOut()
	yes := true
	if _, err := chromedp.Call(b.ctx, network.SetCookie, network.SetCookieParams{Name: "__Host-tresor-console", Value: old, URL: b.base + "/",
		Path: "/", Secure: &yes, HTTPOnly: &yes, SameSite: network.CookieSameSiteStrict}); err != nil {
		t.Fatal(err)
	}
	b.open("/console/hsm/console1")
	b.run("signed out", chromedp.WaitVisible(chromedp.CSS("#signin-form")))

	// Security: a principal without the right is refused, and the page says why.
	b.signIn(user.ClientID, user.ClientSecret)
	b.open("/console/hsm/console1/keys")
	b.wantText("#keys", "console-key") // Crypto User may read keys
	b.open("/console/hsm/console1/backups")
	b.run("forbidden backup",
		chromedp.SetValue(chromedp.CSS("#backup-storage"), storage),
		chromedp.Click(chromedp.CSS("#backup-submit")),
		chromedp.WaitVisible(chromedp.CSS(".flash.error")),
	)
	b.wantText(".flash.error .code", "Forbidden")
	b.wantText(".flash.error .message", "backup/start")
}

// tamper flips one byte of the sealed part of a backup folder's manifest,
// in place.
func tamper(t *testing.T, root, folder string) {
	t.Helper()
	p := filepath.Join(root, folder, "manifest")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-10] ^= 0x01
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
