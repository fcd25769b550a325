package console

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"encoding/xml"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"tresor/internal/client"
	"tresor/internal/pkgdoc"
	"tresor/internal/wire"
)

func TestDocumentation(t *testing.T) { pkgdoc.Check(t, ".") }

// clock is a settable time.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestSessionsExpire(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	tokens := func(exp time.Duration) []client.AccessToken {
		return []client.AccessToken{{Resource: "a", Token: "t", ExpiresOn: clk.t.Add(exp)}}
	}
	tests := map[string]struct {
		tokens  []client.AccessToken
		advance []time.Duration // each followed by a get
		alive   bool
	}{
		"fresh":                     {tokens(time.Hour), []time.Duration{time.Minute}, true},
		"kept alive by use":         {tokens(time.Hour), []time.Duration{20 * time.Minute, 20 * time.Minute, 15 * time.Minute}, true},
		"idle":                      {tokens(time.Hour), []time.Duration{31 * time.Minute}, false},
		"tokens expired":            {tokens(10 * time.Minute), []time.Duration{9 * time.Minute, 2 * time.Minute}, false},
		"max lifetime":              {nil, []time.Duration{25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute}, false},
		"max lifetime not yet over": {nil, []time.Duration{25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk.t = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
			st := newSessions(30*time.Minute, 2*time.Hour, clk.now)
			s, err := st.create(tc.tokens, accountInfo{ObjectID: "o"})
			if err != nil {
				t.Fatal(err)
			}
			alive := true
			for _, d := range tc.advance {
				clk.t = clk.t.Add(d)
				_, alive = st.get(s.id)
				if !alive {
					break
				}
			}
			if alive != tc.alive {
				t.Fatalf("alive %v, want %v", alive, tc.alive)
			}
			if !alive && st.len() != 0 {
				t.Fatal("a dead session stays in the store")
			}
		})
	}
}

func TestSessionIDsAndSignOut(t *testing.T) {
	st := newSessions(time.Hour, time.Hour, time.Now)
	a, _ := st.create(nil, accountInfo{})
	b, _ := st.create(nil, accountInfo{})
	if a.id == b.id || a.csrf == b.csrf || a.id == a.csrf || len(a.id) < 40 || len(a.csrf) < 40 {
		t.Fatalf("ids and CSRF tokens are not distinct random values: %q %q %q %q", a.id, b.id, a.csrf, b.csrf)
	}
	if _, ok := st.get(""); ok {
		t.Fatal("the empty id finds a session")
	}
	st.delete(a.id)
	if _, ok := st.get(a.id); ok {
		t.Fatal("a session lives after sign-out")
	}
	if _, ok := st.get(b.id); !ok {
		t.Fatal("signing one session out ended another")
	}
}

func TestSessionsBounded(t *testing.T) {
	st := newSessions(time.Hour, time.Hour, time.Now)
	for range MaxSessions {
		if _, err := st.create(nil, accountInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.create(nil, accountInfo{}); err != errTooManySessions {
		t.Fatalf("session beyond the bound: %v", err)
	}
}

func TestCSRF(t *testing.T) {
	s := &session{csrf: "abc"}
	for tok, want := range map[string]bool{"abc": true, "": false, "abd": false, "ab": false, "abcd": false} {
		if got := s.checkCSRF(tok); got != want {
			t.Errorf("checkCSRF(%q) = %v", tok, got)
		}
	}
	if (&session{}).checkCSRF("") {
		t.Error("an empty token matches an empty session token")
	}
}

func TestDownloadsOnce(t *testing.T) {
	now := time.Now()
	s := &session{}
	id := s.addDownload("sd.json", "application/json", []byte("x"), now)
	if got := s.pendingDownloads(now); got[id] != "sd.json" {
		t.Fatalf("pending %v", got)
	}
	if _, ok := s.takeDownload(id, now); !ok {
		t.Fatal("first download refused")
	}
	if _, ok := s.takeDownload(id, now); ok {
		t.Fatal("second download served")
	}
	id = s.addDownload("late", "text/plain", nil, now)
	if _, ok := s.takeDownload(id, now.Add(downloadLifetime+time.Second)); ok {
		t.Fatal("expired download served")
	}
}

func TestCrossSite(t *testing.T) {
	tests := map[string]struct {
		hdr  map[string]string
		want bool // refused
	}{
		"no headers":              {nil, false},
		"same origin":             {map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://region.example:8443"}, false},
		"same site":               {map[string]string{"Sec-Fetch-Site": "same-site"}, true},
		"cross site":              {map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
		"user typed (none)":       {map[string]string{"Sec-Fetch-Site": "none"}, true},
		"other origin":            {map[string]string{"Origin": "https://evil.example"}, true},
		"other port":              {map[string]string{"Origin": "https://region.example:9443"}, true},
		"http origin":             {map[string]string{"Origin": "http://region.example:8443"}, true},
		"null origin":             {map[string]string{"Origin": "null"}, true},
		"origin case-insensitive": {map[string]string{"Origin": "https://REGION.example:8443"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "https://region.example:8443/console/hsms", nil)
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			if got := crossSite(r) != ""; got != tc.want {
				t.Fatalf("refused %v, want %v (%s)", got, tc.want, crossSite(r))
			}
		})
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/console/hsm/a":     "/console/hsm/a",
		"":                   "/console/region",
		"https://evil/":      "/console/region",
		"//evil/console/":    "/console/region",
		"/console\\..\\x":    "/console/region",
		"/consolex":          "/console/region",
		"/tresor/principals": "/console/region",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func newTestConsole(t *testing.T, api http.Handler) *Console {
	t.Helper()
	c, err := New(Config{API: api, Endpoint: "https://region.example:8443", DNSSuffix: "managedhsm.example"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigValidate(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no API":      {Endpoint: "https://x"},
		"no endpoint": {API: http.NotFoundHandler()},
		"http":        {API: http.NotFoundHandler(), Endpoint: "http://x"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestWrap: /console on the region host reaches the console; an HSM host
// and every other path reach the API.
func TestWrap(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Api", "1") })
	h := Wrap(api, newTestConsole(t, api))
	for target, console := range map[string]bool{
		"https://region.example:8443/console":                     true,
		"https://region.example:8443/console/signin":              true,
		"https://region.example:8443/consolex":                    false,
		"https://region.example:8443/healthz":                     false,
		"https://hsm1.managedhsm.example:8443/console/signin":     false,
		"https://HSM1.MANAGEDHSM.EXAMPLE.:8443/console/signin":    false,
		"https://region.example:8443/subscriptions/x/console/abc": false,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		if got := rec.Header().Get("X-Api") == ""; got != console {
			t.Errorf("%s: console %v, want %v", target, got, console)
		}
		if console && !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: no CSP", target)
		}
	}
}

// TestPagesRender renders every page with full data and checks the
// markup: no inline script, no style attributes (the CSP forbids both),
// every POST form carries the CSRF token, and data is escaped.
func TestPagesRender(t *testing.T) {
	c := newTestConsole(t, http.NotFoundHandler())
	s := &session{csrf: "CSRF-TOKEN", account: accountInfo{ObjectID: "oid", DisplayName: "<b>admin</b>", RegionAdmin: true}}
	yes, n90 := true, 90
	ts := int64(1764849600)
	evil := `<script>alert(1)</script>`
	hsm := wire.ManagedHSM{ID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/managedHSMs/h1", Name: "h1", Location: "local",
		Properties: wire.ManagedHSMProps{EnablePurgeProtection: &yes, SoftDeleteRetentionInDays: &n90, HsmURI: "https://h1.managedhsm.example:8443/",
			StatusMessage: evil, SecurityDomainProperties: &wire.SecurityDomainProperties{ActivationStatus: "NotActivated"}}}
	active := hsm
	active.Properties.SecurityDomainProperties = &wire.SecurityDomainProperties{ActivationStatus: "Active"}
	key := wire.KeyItem{Kid: "https://h1.managedhsm.example:8443/keys/k1/v1", Attributes: wire.KeyAttributes{Enabled: &yes, Created: &ts}, Tags: map[string]string{"a": evil}}
	st := client.JobStatus{Status: wire.JobFailed, JobID: "j1", Error: &wire.ErrorDetail{Code: "RestoreFailed", Message: evil}}
	pages := map[string]any{
		"signin":   signinData{Pre: "PRE", Next: "/console/region"},
		"continue": "/console/region",
		"region":   regionData{HSMs: []wire.ManagedHSM{hsm}, Deleted: []wire.DeletedManagedHSM{{Name: "gone", Properties: wire.DeletedManagedHSMProps{Location: "local"}}}},
		"hsm":      hsmData{Name: "h1", HSM: &hsm},
		"keys":     keysData{Name: "h1", Keys: []wire.KeyItem{key}, Total: 1, Page: 1, Pages: 1, Deleted: []wire.DeletedKeyItem{{KeyItem: key}}},
		"key":      keyData{HSM: "h1", Name: "k1", Key: &wire.KeyBundle{Key: wire.JSONWebKey{Kid: key.Kid, Kty: "RSA-HSM"}, Tags: key.Tags}, Versions: []wire.KeyItem{key}, Policy: &wire.KeyRotationPolicy{}},
		"roles":    rolesData{Name: "h1", Assignments: []assignmentRow{{RoleName: evil}}, Definitions: []wire.RoleDefinition{{Name: "r", Properties: wire.RoleDefinitionProperties{RoleName: "Managed HSM Crypto User"}}}},
		"backups":  backupsData{Name: "h1", Jobs: []jobRow{{jobRef: jobRef{ID: "j1", Kind: kindBackup}, Status: &st}}, Drills: []jobRow{{jobRef: jobRef{ID: "j2", Kind: kindDrill, Folder: "f"}, Status: &st}}},
		"error":    nil,
	}
	activeHSM := hsmData{Name: "h1", HSM: &active, Active: true, Timeline: timelineSVG(bucket(nil, time.Now()))}
	postForm := regexp.MustCompile(`(?s)<form method="post"[^>]*>.*?</form>`)
	check := func(name string, body string) {
		t.Helper()
		if strings.Contains(body, "<script>") || strings.Contains(body, evil) {
			t.Errorf("%s: inline or unescaped script", name)
		}
		if regexp.MustCompile(`\sstyle=`).MatchString(body) || strings.Contains(body, "<style") {
			t.Errorf("%s: inline style", name)
		}
		if strings.Contains(body, "onclick=") || strings.Contains(body, "javascript:") {
			t.Errorf("%s: inline event handler", name)
		}
		for _, f := range postForm.FindAllString(body, -1) {
			if !strings.Contains(f, `name="csrf" value="CSRF-TOKEN"`) && !strings.Contains(f, `name="csrf" value="PRE"`) {
				t.Errorf("%s: a POST form without the CSRF token: %.120s", name, f)
			}
		}
	}
	for name, data := range pages {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "https://region.example:8443/console/x", nil)
		sess := s
		if name == "signin" {
			sess = nil
		}
		c.render(rec, r, sess, http.StatusOK, name, view{Title: name, HSM: "h1", Data: data})
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
		}
		check(name, rec.Body.String())
	}
	rec := httptest.NewRecorder()
	c.render(rec, httptest.NewRequest("GET", "/", nil), s, 200, "hsm", view{Data: activeHSM})
	check("hsm active", rec.Body.String())
	if !strings.Contains(rec.Body.String(), `<svg class="timeline"`) {
		t.Error("the active HSM page has no timeline")
	}
}

func TestTimeTag(t *testing.T) {
	ts := int64(1764849600) // 2025-12-04T12:00:00Z
	s := "2025-12-04T12:00:00Z"
	want := template.HTML(`<time datetime="2025-12-04T12:00:00Z">2025-12-04 12:00:00 UTC</time>`)
	tm := time.Unix(ts, 0).In(time.FixedZone("x", 3600))
	for _, v := range []any{ts, &ts, s, &s, tm, &tm} {
		if got := timeTag(v); got != want {
			t.Errorf("timeTag(%T) = %s", v, got)
		}
	}
	var nilTS *int64
	for _, v := range []any{nilTS, "", "garbage", time.Time{}} {
		if got := timeTag(v); got != "—" {
			t.Errorf("timeTag(%v) = %s, want a dash", v, got)
		}
	}
}

func TestBucketAndTimeline(t *testing.T) {
	now := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	events := []event{
		{At: now.Add(-time.Hour), Kind: "backup", OK: true},
		{At: now.Add(-2 * time.Hour), Kind: "backup", OK: false},
		{At: now.AddDate(0, 0, -1), Kind: "backup", OK: true},
		{At: now.AddDate(0, 0, -1), Kind: "drill", OK: true},
		{At: now.AddDate(0, 0, -2), Kind: "drill", OK: false},
		{At: now.AddDate(0, 0, -29), Kind: "key"},
		{At: now.AddDate(0, 0, -29), Kind: "key"},
		{At: now.AddDate(0, 0, -30), Kind: "key"}, // too old
		{At: now.AddDate(0, 0, 1), Kind: "key"},   // in the future
	}
	days := bucket(events, now)
	if len(days) != timelineDays {
		t.Fatalf("%d days", len(days))
	}
	last := days[len(days)-1]
	if !last.Date.Equal(time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)) || last.BackupsOK != 1 || last.BackupsFailed != 1 {
		t.Fatalf("today: %+v", last)
	}
	if d := days[len(days)-2]; d.BackupsOK != 1 || d.DrillsPass != 1 {
		t.Fatalf("yesterday: %+v", d)
	}
	if d := days[len(days)-3]; d.DrillsFail != 1 {
		t.Fatalf("two days ago: %+v", d)
	}
	total := 0
	for _, d := range days {
		total += d.KeyChanges
	}
	if days[0].KeyChanges != 2 || total != 2 {
		t.Fatalf("key changes: first day %d, total %d", days[0].KeyChanges, total)
	}

	svg := string(timelineSVG(days))
	for sel, want := range map[string]int{`class="backups-fail"`: 1, `class="backups-ok"`: 1, `class="drills-ok"`: 1, `class="drills-fail"`: 1, `class="keys"`: 1} {
		if got := strings.Count(svg, sel); got != want {
			t.Errorf("%s: %d marks, want %d", sel, got, want)
		}
	}
	if !strings.HasPrefix(svg, "<svg ") || !strings.HasSuffix(svg, "</svg>") || strings.Contains(svg, "style=") || strings.Contains(svg, "<script") {
		t.Fatalf("not a clean inline SVG: %.200s", svg)
	}
	if !strings.Contains(svg, "2 backups succeeded, 1 failed; 1 drills passed, 1 failed; 2 key changes") {
		t.Errorf("the text alternative does not sum up: %.300s", svg)
	}
	// It is well-formed XML.
	if err := xmlWellFormed(svg); err != nil {
		t.Fatal(err)
	}
}

func TestCertificates(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 1, 2}})
	if _, err := certificates(append(certPEM, keyPEM...)); err == nil || !strings.Contains(err.Error(), "never takes a custodian private key") {
		t.Fatalf("a file with a private key: %v", err)
	}
	if got, err := certificates(append(certPEM, certPEM...)); err != nil || len(got) != 2 {
		t.Fatalf("two PEM certificates: %d %v", len(got), err)
	}
	if got, err := certificates([]byte{0x30, 3, 4}); err != nil || len(got) != 1 {
		t.Fatalf("DER: %d %v", len(got), err)
	}
	if _, err := certificates([]byte("hello")); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := certificates(bytes.Repeat([]byte{0x30}, maxCertFile+1)); err == nil {
		t.Fatal("an oversized file accepted")
	}
}

func TestParseTags(t *testing.T) {
	got, err := parseTags(" a = 1, b=2\nc=")
	if err != nil || len(got) != 3 || got["a"] != "1" || got["b"] != "2" || got["c"] != "" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := parseTags("novalue"); err == nil {
		t.Fatal("a tag without = accepted")
	}
	if joinTags(map[string]string{"b": "2", "a": "1"}) != "a=1, b=2" {
		t.Fatal("joinTags")
	}
}

func TestKeyIDParts(t *testing.T) {
	kid := "https://h1.managedhsm.example:8443/keys/" + url.PathEscape("k-1") + "/abc"
	if keyName(kid) != "k-1" || keyVersion(kid) != "abc" || keyVersion("https://h/keys/k") != "" {
		t.Fatal("key id parts")
	}
}

func xmlWellFormed(s string) error {
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
