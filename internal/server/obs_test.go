package server_test

import (
	"bufio"
	"crypto/rand"
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

// withAdmin opens the admin listener on a free loopback port and logs JSON
// lines at debug level.
func withAdmin(c *server.Config) {
	c.AdminListen = "127.0.0.1:0"
	c.LogFormat = "json"
	c.LogLevel = "debug"
}

// adminGet fetches path from the admin listener (plain HTTP).
func adminGet(t *testing.T, s *servertest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.AdminAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scrape reads /metrics into series → value ("name{labels}" as exposed).
func scrape(t *testing.T, s *servertest.Server) map[string]float64 {
	t.Helper()
	code, body := adminGet(t, s, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsAndRequestLog(t *testing.T) {
	backups := t.TempDir()
	d := newDrill(t, withBackupDir(backups), withAdmin)
	const name = "obshsm"
	before := scrape(t, d.s)

	d.create(name)
	sdFile := d.activate(name, "sd1", "sd2", "sd3")
	secrets := []string{d.s.ClientSecret, d.arm, d.hsm, string(sdFile[len(sdFile)/2 : len(sdFile)/2+64])}

	code, _, body := d.c.do("POST", d.s.Endpoint+"/tresor/principals", d.arm, wire.PrincipalCreate{DisplayName: "observer"})
	var other wire.Principal
	if code != 201 && code != 200 || json.Unmarshal(body, &other) != nil || other.ClientSecret == "" {
		t.Fatalf("create principal: %d %s", code, body)
	}
	otherTok := d.s.Token(t, other.ClientID, other.ClientSecret, d.s.HSMResource())
	secrets = append(secrets, other.ClientSecret, otherTok)

	b64 := base64.RawURLEncoding.EncodeToString
	for kn, kty := range map[string]map[string]any{"ec": {"kty": "EC-HSM", "crv": "P-256"}, "rsa": {"kty": "RSA-HSM", "key_size": 2048}} {
		if code, _, body := d.c.do("POST", d.url(name, "/keys/"+kn+"/create"), d.hsm, kty); code != 200 {
			t.Fatalf("create %s: %d %s", kn, code, body)
		}
	}
	digest := make([]byte, 32)
	rand.Read(digest)
	signs := []struct{ key, alg string }{{"ec", "ES256"}, {"ec", "ES256"}, {"rsa", "RS256"}}
	for _, s := range signs {
		code, _, body := d.c.do("POST", d.url(name, "/keys/"+s.key+"/sign"), d.hsm, map[string]any{"alg": s.alg, "value": b64(digest)})
		if code != 200 {
			t.Fatalf("sign %s: %d %s", s.alg, code, body)
		}
		var res wire.KeyOperationResult
		_ = json.Unmarshal(body, &res)
		secrets = append(secrets, res.Value)
	}
	// A 403 (no role), a refused sign (wrong algorithm: not counted as a
	// key operation), a bad token, no token, a failed sign-in, a 404.
	code, forbiddenHdr, _ := d.c.do("POST", d.url(name, "/keys/ec/sign"), otherTok, map[string]any{"alg": "ES256", "value": b64(digest)})
	if code != 403 {
		t.Fatalf("sign without a role: %d", code)
	}
	if code, _, _ := d.c.do("POST", d.url(name, "/keys/ec/sign"), d.hsm, map[string]any{"alg": "RS256", "value": b64(digest)}); code != 400 {
		t.Fatalf("sign with the wrong algorithm: %d", code)
	}
	code, _, body = d.c.do("GET", d.url(name, "/keys"), otherTok[:len(otherTok)-4]+"AAAA", nil)
	if code != 401 || !strings.Contains(string(body), "bad signature") {
		t.Fatalf("bad token: %d %s", code, body)
	}
	if code, _, _ := d.c.do("GET", d.url(name, "/keys"), "", nil); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	const wrongSecret = "ObsTestWrongClientSecret0123456789"
	secrets = append(secrets, wrongSecret)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {other.ClientID}, "client_secret": {wrongSecret}, "scope": {d.s.HSMResource() + "/.default"}}
	resp, err := d.c.client.PostForm(d.s.Endpoint+"/"+d.s.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("token with a wrong secret: %d", resp.StatusCode)
	}
	if code, _, _ := d.c.do("GET", d.s.Endpoint+"/no/such/route", d.arm, nil); code != 404 {
		t.Fatalf("unknown route: %d", code)
	}
	const sig = "ObsTestSASSignature0123456789"
	secrets = append(secrets, sig)
	d.backup(name, wire.SASTokenParameter{StorageResourceURI: "file://" + backups, Token: "sv=2024-08-04&sp=rwl&se=2030-01-01&sig=" + sig})

	after := scrape(t, d.s)
	const signRoute = `route="POST /keys/{name}/sign"`
	want := map[string]float64{
		`tresor_key_operations_total{algorithm="ES256",operation="KeySign"}`:                     2,
		`tresor_key_operations_total{algorithm="RS256",operation="KeySign"}`:                     1,
		`tresor_http_requests_total{hsm="obshsm",` + signRoute + `,status="200"}`:                3,
		`tresor_http_requests_total{hsm="obshsm",` + signRoute + `,status="403"}`:                1,
		`tresor_http_requests_total{hsm="obshsm",` + signRoute + `,status="400"}`:                1,
		`tresor_http_requests_total{hsm="obshsm",route="POST /keys/{name}/create",status="200"}`: 2,
		`tresor_http_requests_total{hsm="",route="unmatched",status="404"}`:                      1,
		`tresor_http_request_duration_seconds_count{` + signRoute + `}`:                          5,
		`tresor_tokens_issued_total`:                                  1, // the other principal's
		`tresor_token_requests_refused_total{error="invalid_client"}`: 1,
		`tresor_tokens_refused_total{reason="bad signature"}`:         1,
		`tresor_tokens_refused_total{reason="missing"}`:               1,
		`tresor_backup_jobs_total{kind="backup",result="Succeeded"}`:  1,
		`tresor_backup_job_duration_seconds_count{kind="backup"}`:     1,
	}
	for series, n := range want {
		if got := after[series] - before[series]; got != n {
			t.Errorf("%s: the workload added %v, want %v", series, got, n)
		}
	}
	if after["tresor_store_size_bytes"] <= 0 {
		t.Errorf("tresor_store_size_bytes = %v", after["tresor_store_size_bytes"])
	}

	// The log: one line per request with every field, none of the secrets.
	logs := d.s.Logs()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("the log holds a secret (%.12s…)", s)
		}
	}
	if strings.Contains(logs, "sig=") || strings.Contains(logs, "client_secret") {
		t.Error("the log holds a SAS token or a client secret field")
	}
	ids := map[string]int{}
	var forbidden, refused map[string]any
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			t.Fatalf("not a JSON log line: %.200s", line)
		}
		if m["msg"] == "bearer token refused" {
			refused = m
		}
		if m["msg"] != "request" {
			continue
		}
		lines++
		for _, f := range []string{"time", "requestId", "method", "route", "hsm", "status", "errorCode", "durationMs", "callerObjectId", "clientIp"} {
			if _, ok := m[f]; !ok {
				t.Errorf("request line without %s: %s", f, line)
			}
		}
		id, _ := m["requestId"].(string)
		ids[id]++
		if id == forbiddenHdr.Get("x-ms-request-id") {
			forbidden = m
		}
	}
	var total float64
	for series, v := range after {
		if strings.HasPrefix(series, "tresor_http_requests_total{") {
			total += v
		}
	}
	if float64(lines) != total || len(ids) != lines {
		t.Errorf("%d request lines with %d request ids for %v requests", lines, len(ids), total)
	}
	wantForbidden := map[string]any{"method": "POST", "route": "POST /keys/{name}/sign", "hsm": name, "status": 403.0,
		"errorCode": "Forbidden", "callerObjectId": other.ObjectID, "clientIp": "127.0.0.1"}
	for k, v := range wantForbidden {
		if forbidden[k] != v {
			t.Errorf("the 403's line: %s = %v, want %v (%v)", k, forbidden[k], v, forbidden)
		}
	}
	if refused == nil || refused["reason"] != "bad signature" || !strings.HasSuffix(refused["iss"].(string), "/v2.0") || refused["kid"] == "" {
		t.Errorf("the refused token's debug line: %v", refused)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	dir := t.TempDir()
	start := func() *servertest.Server {
		return servertest.Start(t, withAdmin, func(c *server.Config) { c.DataDir = dir })
	}
	s := start()
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ok\n"} {
		if code, body := adminGet(t, s, path); code != 200 || body != want {
			t.Fatalf("%s: %d %q", path, code, body)
		}
	}
	// The store closed under the running server: not ready, alive.
	if err := s.Store().Close(); err != nil {
		t.Fatal(err)
	}
	if code, body := adminGet(t, s, "/readyz"); code != 503 || body != "not ready: the store is closed\n" {
		t.Fatalf("/readyz with the store closed: %d %q", code, body)
	}
	if code, _ := adminGet(t, s, "/healthz"); code != 200 {
		t.Fatalf("/healthz with the store closed: %d", code)
	}
	s.Stop()
	if err := s.Ready(t.Context()); err != server.ErrClosing {
		t.Fatalf("Ready after Close: %v", err)
	}
	// Started again on the same data directory: ready.
	s = start()
	if code, body := adminGet(t, s, "/readyz"); code != 200 || body != "ok\n" {
		t.Fatalf("/readyz after a restart: %d %q", code, body)
	}
}
