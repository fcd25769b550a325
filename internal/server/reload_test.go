package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
)

const (
	reloadARM = "https://management.reload.example.test/" // the trusted issuers' ARM audience
	reloadOID = "11111111-2222-4333-8444-666666666666"
)

// reloadRegion is a region started from a config file, as `tresor server
// --config FILE --dev --data-dir D --listen L` starts one: Config.Load
// reads the file again and puts the "flags" (dev, dataDir, listen) over it.
type reloadRegion struct {
	*servertest.Server
	file   string
	listen string // the listen key of the first file
	c      *call
}

func startReloadRegion(t *testing.T, file map[string]any) *reloadRegion {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tresor.json")
	dataDir := t.TempDir()
	if _, ok := file["listen"]; !ok {
		file["listen"] = freeAddr(t)
	}
	writeConfigFile(t, path, file)
	var load func() (server.Config, error)
	load = func() (server.Config, error) {
		c := server.DefaultConfig()
		if err := server.LoadConfigFile(path, &c); err != nil {
			return server.Config{}, err
		}
		c.Dev, c.DataDir, c.Load = true, dataDir, load
		return c, nil
	}
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	s := servertest.StartConfig(t, cfg)
	return &reloadRegion{Server: s, file: path, c: newCall(t, s), listen: file["listen"].(string)}
}

// freeAddr is a 127.0.0.1 address with a port that was free.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeConfigFile(t *testing.T, path string, file map[string]any) {
	t.Helper()
	b, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// rewrite writes the config file anew: raw JSON when file is a string.
func (r *reloadRegion) rewrite(t *testing.T, file any) {
	t.Helper()
	if raw, ok := file.(string); ok {
		if err := os.WriteFile(r.file, []byte(raw), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	m := file.(map[string]any)
	if _, ok := m["listen"]; !ok {
		m["listen"] = r.listen
	}
	writeConfigFile(t, r.file, m)
}

// status is the status of a GET of the region's HSM list with token.
func (r *reloadRegion) status(t *testing.T, token string) int {
	t.Helper()
	code, _, _ := r.c.do("GET", r.Endpoint+"/subscriptions/"+r.c.sub()+"/providers/Microsoft.KeyVault/managedHSMs"+armVersion, token, nil)
	return code
}

// trusting is a config file trusting the issuers idps on the region endpoint.
func trusting(idps ...*extIdP) map[string]any {
	var list []map[string]any
	for _, idp := range idps {
		list = append(list, map[string]any{"issuer": idp.iss, "jwksFile": idp.jwksFile, "armAudiences": []string{reloadARM}})
	}
	return map[string]any{"identity": map[string]any{"trustedIssuers": list}}
}

// TestReloadTrustedIssuers: a reload that trusts issuer B instead of A
// makes B's tokens good and A's refused, including A's tokens the region
// had accepted (and cached) before.
func TestReloadTrustedIssuers(t *testing.T) {
	a := newExtIdP(t, "https://login.a.example.test/v2.0")
	b := newExtIdP(t, "https://login.b.example.test/v2.0")
	r := startReloadRegion(t, trusting(a))
	tokA, tokB := a.token(t, reloadOID, reloadARM), b.token(t, reloadOID, reloadARM)
	if got := r.status(t, tokA); got != 200 {
		t.Fatalf("A's token before the reload: %d, want 200", got)
	}
	if got := r.status(t, tokB); got != 401 {
		t.Fatalf("B's token before the reload: %d, want 401", got)
	}

	r.rewrite(t, trusting(b))
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := r.status(t, tokB); got != 200 {
		t.Fatalf("B's token after the reload: %d, want 200", got)
	}
	if got := r.status(t, tokA); got != 401 {
		t.Fatalf("A's (cached) token after the reload: %d, want 401", got)
	}
	if got := r.status(t, a.token(t, reloadOID, reloadARM)); got != 401 {
		t.Fatalf("a new token of A after the reload: %d, want 401", got)
	}
	if logs := r.Logs(); !strings.Contains(logs, `msg="config reloaded" applied=identity.trustedIssuers needsRestart=none`) {
		t.Fatalf("no reload line naming identity.trustedIssuers in the log:\n%s", logs)
	}
}

// TestReloadRegionAdmins: an external principal that a reload names in
// identity.regionAdmins administers the region (may list its principals),
// and no longer once a reload drops it.
func TestReloadRegionAdmins(t *testing.T) {
	a := newExtIdP(t, "https://login.admins.example.test/v2.0")
	file := trusting(a)
	r := startReloadRegion(t, file)
	principals := func() int {
		t.Helper()
		code, _, _ := r.c.do("GET", r.Endpoint+"/tresor/principals", a.token(t, reloadOID, reloadARM), nil)
		return code
	}
	steps := []struct {
		name   string
		admins []string
		want   int
	}{
		{"before", nil, 403},
		{"named", []string{strings.ToUpper(reloadOID)}, 200},
		{"dropped", nil, 403},
	}
	for i, st := range steps {
		if i > 0 {
			file["identity"].(map[string]any)["regionAdmins"] = st.admins
			r.rewrite(t, file)
			if err := r.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if got := principals(); got != st.want {
			t.Fatalf("%s: list principals: %d, want %d", st.name, got, st.want)
		}
	}
	if logs := r.Logs(); strings.Count(logs, "applied=identity.regionAdmins needsRestart=none") != 2 {
		t.Fatalf("want two reload lines naming identity.regionAdmins:\n%s", logs)
	}
}

// TestReloadRateLimit: a principal rate lowered by a reload refuses the
// requests beyond its burst (429 with Retry-After).
func TestReloadRateLimit(t *testing.T) {
	r := startReloadRegion(t, map[string]any{"principalRate": map[string]any{"perSecond": 1000}})
	tok := r.Token(t, r.ClientID, r.ClientSecret, r.Endpoint)
	for i := range 5 {
		if got := r.status(t, tok); got != 200 {
			t.Fatalf("request %d before the reload: %d, want 200", i, got)
		}
	}
	// 0.001 a second: the bucket does not refill during the test.
	r.rewrite(t, map[string]any{"principalRate": map[string]any{"perSecond": 0.001, "burst": 2}})
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, 200, 429, 429} {
		if got := r.status(t, tok); got != want {
			t.Fatalf("request %d after the reload: %d, want %d", i, got, want)
		}
	}
	if logs := r.Logs(); !strings.Contains(logs, "applied=principalRate needsRestart=none") {
		t.Fatalf("no reload line naming principalRate in the log:\n%s", logs)
	}
}

// TestReloadRefused: a config file that does not load or validate is
// refused as a whole: the reason is logged and returned, and the running
// configuration stays (A trusted, B not, the rate limit unchanged).
func TestReloadRefused(t *testing.T) {
	a := newExtIdP(t, "https://login.refused-a.example.test/v2.0")
	b := newExtIdP(t, "https://login.refused-b.example.test/v2.0")
	withB := func(extra map[string]any) map[string]any {
		f := trusting(b)
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	tests := map[string]struct {
		file    any
		wantLog string
	}{
		"not JSON":       {`{"identity": {`, "unexpected EOF"},
		"unknown key":    {withB(map[string]any{"logLevl": "debug"}), `unknown field \"logLevl\"`},
		"negative rate":  {withB(map[string]any{"principalRate": map[string]any{"perSecond": -1}}), "principalRate: perSecond and burst must be 0 or more"},
		"bad log level":  {withB(map[string]any{"logLevel": "loud"}), `logLevel (--log-level) \"loud\" must be debug, info, warn or error`},
		"invalid listen": {withB(map[string]any{"listen": "nowhere"}), "listen (--listen)"},
		"issuer without audiences": {map[string]any{"identity": map[string]any{"trustedIssuers": []map[string]any{
			{"issuer": b.iss, "jwksFile": b.jwksFile}}}}, "identity.trustedIssuers[0] needs armAudiences, hsmAudiences or both"},
		"missing JWKS file": {map[string]any{"identity": map[string]any{"trustedIssuers": []map[string]any{
			{"issuer": b.iss, "jwksFile": filepath.Join(t.TempDir(), "nope.json"), "armAudiences": []string{reloadARM}}}}}, "no such file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := startReloadRegion(t, map[string]any{"identity": trusting(a)["identity"], "principalRate": map[string]any{"perSecond": 1000}})
			r.rewrite(t, tc.file)
			err := r.Reload(context.Background())
			if err == nil {
				t.Fatal("the reload was applied")
			}
			logs := r.Logs()
			if !strings.Contains(logs, `msg="config reload refused; the running configuration stays"`) || !strings.Contains(logs, tc.wantLog) {
				t.Fatalf("the log does not say the reload was refused because %q:\n%s", tc.wantLog, logs)
			}
			if strings.Contains(logs, "config reloaded") {
				t.Fatalf("the log says the config was reloaded:\n%s", logs)
			}
			if got := r.status(t, a.token(t, reloadOID, reloadARM)); got != 200 {
				t.Fatalf("A's token after a refused reload: %d, want 200", got)
			}
			if got := r.status(t, b.token(t, reloadOID, reloadARM)); got != 401 {
				t.Fatalf("B's token after a refused reload: %d, want 401", got)
			}
		})
	}
}

// TestReloadNeedsRestart: keys that a reload does not apply are named in
// the log as needing a restart and change nothing (the region still
// listens where it did); the keys it applies are applied.
func TestReloadNeedsRestart(t *testing.T) {
	a := newExtIdP(t, "https://login.restart.example.test/v2.0")
	b := newExtIdP(t, "https://login.restart-b.example.test/v2.0")
	r := startReloadRegion(t, trusting(a))
	file := trusting(b)
	file["listen"] = "127.0.0.1:1"
	file["maxConnections"] = 7
	file["audit"] = map[string]any{"maxSizeMB": 5}
	r.rewrite(t, file)
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := `msg="config reloaded" applied=identity.trustedIssuers needsRestart=audit.maxSizeMB,listen,maxConnections`
	if logs := r.Logs(); !strings.Contains(logs, want) {
		t.Fatalf("no line %q in the log:\n%s", want, logs)
	}
	if r.Server.Server.Addr() != r.Server.Addr {
		t.Fatalf("the region listens on %s, it did on %s", r.Server.Server.Addr(), r.Server.Addr)
	}
	if got := r.status(t, b.token(t, reloadOID, reloadARM)); got != 200 {
		t.Fatalf("B's token: %d, want 200", got)
	}
	// A second reload of the same file still names the keys that need the
	// restart (they are still not in effect) and applies nothing.
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if logs := r.Logs(); !strings.Contains(logs, `applied=none needsRestart=audit.maxSizeMB,listen,maxConnections`) {
		t.Fatalf("the second reload's line is missing:\n%s", logs)
	}
}

// TestReloadLogLevel: logLevel applies on reload: at "error" the next
// reload's info line is not logged; back at "info" it is.
func TestReloadLogLevel(t *testing.T) {
	r := startReloadRegion(t, map[string]any{})
	r.rewrite(t, map[string]any{"logLevel": "error"})
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(r.Logs(), "config reloaded")
	r.rewrite(t, map[string]any{"logLevel": "error", "principalRate": map[string]any{"perSecond": 10}})
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(r.Logs(), "config reloaded"); n != before {
		t.Fatalf("an info line was logged at logLevel error:\n%s", r.Logs())
	}
	r.rewrite(t, map[string]any{"logLevel": "info"})
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if logs := r.Logs(); !strings.Contains(logs, "applied=logLevel,principalRate needsRestart=none") {
		t.Fatalf("the reload back to info is not logged:\n%s", logs)
	}
}

// TestReloadWithoutConfigFile: a server started without a config file has
// nothing to reload; it says so and keeps running.
func TestReloadWithoutConfigFile(t *testing.T) {
	s := servertest.Start(t)
	if err := s.Reload(context.Background()); !errors.Is(err, server.ErrNoConfigSource) {
		t.Fatalf("Reload: %v, want ErrNoConfigSource", err)
	}
	if !strings.Contains(s.Logs(), "without a config file (--config)") {
		t.Fatalf("the log does not say why:\n%s", s.Logs())
	}
}

// TestReloadConcurrent: reloads that switch the trusted issuer and the
// rate limit back and forth while requests are in flight give each request
// the old or the new configuration: 200 or 401, never anything else (run
// with -race).
func TestReloadConcurrent(t *testing.T) {
	a := newExtIdP(t, "https://login.concurrent-a.example.test/v2.0")
	b := newExtIdP(t, "https://login.concurrent-b.example.test/v2.0")
	r := startReloadRegion(t, trusting(a))
	toks := []string{a.token(t, reloadOID, reloadARM), b.token(t, reloadOID, reloadARM)}
	url := r.Endpoint + "/subscriptions/" + r.c.sub() + "/providers/Microsoft.KeyVault/managedHSMs" + armVersion
	stop := make(chan struct{})
	errs := make(chan string, 4)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			client := r.HTTPClient(t)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Authorization", "Bearer "+toks[(i+n)%2])
				resp, err := client.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 401 {
					errs <- resp.Status
					return
				}
			}
		})
	}
	for i := range 20 {
		f := trusting(a)
		if i%2 == 0 {
			f = trusting(b)
		}
		f["principalRate"] = map[string]any{"perSecond": 1000 + i}
		r.rewrite(t, f)
		if err := r.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// The last reload trusts A.
	if got := r.status(t, toks[0]); got != 200 {
		t.Fatalf("A's token after the last reload: %d, want 200", got)
	}
	if got := r.status(t, toks[1]); got != 401 {
		t.Fatalf("B's token after the last reload: %d, want 401", got)
	}
}
