package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
	"tresor/internal/store"
	"tresor/internal/wire"
)

// policy reads the backup policy of name: the status and the body.
func (d *drill) policy(name string) (int, wire.BackupPolicy, string) {
	d.t.Helper()
	code, _, body := d.c.do("GET", d.url(name, "/backup/policy"), d.hsm, nil)
	var p wire.BackupPolicy
	if code == 200 {
		if err := json.Unmarshal(body, &p); err != nil {
			d.t.Fatal(err)
		}
	}
	return code, p, string(body)
}

func (d *drill) setPolicy(name string, p wire.BackupPolicyParameters) wire.BackupPolicy {
	d.t.Helper()
	code, _, body := d.c.do("PUT", d.url(name, "/backup/policy"), d.hsm, p)
	if code != 200 {
		d.t.Fatalf("PUT /backup/policy of %s: %d %s", name, code, body)
	}
	var out wire.BackupPolicy
	if err := json.Unmarshal(body, &out); err != nil {
		d.t.Fatal(err)
	}
	return out
}

// TestBackupPolicyValidation: bad policies are refused over HTTPS with a
// 400 (403 for a caller without the backup role, 409 on an HSM that is not
// activated) in Azure's error body, and leave the policy in place as it
// was; no answer holds the SAS token.
func TestBackupPolicyValidation(t *testing.T) {
	root := t.TempDir()
	d := newDrill(t, withBackupDir(root))
	d.create("hsm1")
	d.activate("hsm1", "sd1", "sd2", "sd3")
	d.create("fresh") // not activated
	if err := os.Mkdir(filepath.Join(root, "c"), 0o700); err != nil {
		t.Fatal(err)
	}
	uri := "file://" + filepath.Join(root, "c")
	disabled := false
	good := wire.BackupPolicyParameters{StorageResourceURI: uri, Token: "se=2099-01-01&sig=topsecret", Every: "6h", Keep: 28, Enabled: &disabled}
	if code, _, body := d.policy("hsm1"); code != 404 || !strings.Contains(body, `"code":"BackupPolicyNotFound"`) {
		t.Fatalf("GET without a policy: %d %s", code, body)
	}
	d.setPolicy("hsm1", good)
	_, before, beforeBody := d.policy("hsm1")
	if before.Every != "PT6H" || !before.TokenSet || before.TokenExpiry == nil || *before.TokenExpiry != "2099-01-01T00:00:00Z" || before.NextRun != nil {
		t.Fatalf("policy: %s", beforeBody)
	}

	re := &rbacEnv{t: t, s: d.s, c: d.c, arm: d.arm}
	reader, readerTok := re.principal("reader")
	assign(t, d.c, d.hsm, "hsm1", "/", "21dbd100-6940-42c2-9190-5d6cb909625b", reader) // Crypto User: no backup actions

	with := func(f func(*wire.BackupPolicyParameters)) wire.BackupPolicyParameters {
		p := good
		f(&p)
		return p
	}
	tests := map[string]struct {
		hsm    string
		token  string
		body   any
		status int
		code   string
		msg    string
	}{
		"bad every":          {body: with(func(p *wire.BackupPolicyParameters) { p.Every = "soon" }), status: 400, code: "BadParameter", msg: "every: "},
		"sub-second every":   {body: with(func(p *wire.BackupPolicyParameters) { p.Every = "1500ms" }), status: 400, code: "BadParameter", msg: "whole number of seconds"},
		"every too short":    {body: with(func(p *wire.BackupPolicyParameters) { p.Every = "0s" }), status: 400, code: "BadParameter", msg: "at least 1 second"},
		"every too long":     {body: with(func(p *wire.BackupPolicyParameters) { p.Every = "P400D" }), status: 400, code: "BadParameter", msg: "at most 366 days"},
		"no every":           {body: with(func(p *wire.BackupPolicyParameters) { p.Every = "" }), status: 400, code: "BadParameter", msg: "every is required"},
		"keep 0":             {body: with(func(p *wire.BackupPolicyParameters) { p.Keep = 0 }), status: 400, code: "BadParameter", msg: "keep must be between 1 and 1000"},
		"keep 1001":          {body: with(func(p *wire.BackupPolicyParameters) { p.Keep = 1001 }), status: 400, code: "BadParameter", msg: "keep must be between 1 and 1000"},
		"missing token":      {body: with(func(p *wire.BackupPolicyParameters) { p.Token = "" }), status: 400, code: "BadParameter", msg: "token is required"},
		"expired token":      {body: with(func(p *wire.BackupPolicyParameters) { p.Token = "se=2001-01-01&sig=topsecret" }), status: 400, code: "BadParameter", msg: "expired at 2001-01-01T00:00:00Z"},
		"outside backupDirs": {body: with(func(p *wire.BackupPolicyParameters) { p.StorageResourceURI = "file:///etc" }), status: 400, code: "BadParameter", msg: "must be inside one of the region's backup directories"},
		"not JSON":           {body: json.RawMessage(`{"keep":"many"}`), status: 400, code: "BadParameter", msg: "keep"},
		"not activated":      {hsm: "fresh", body: good, status: 409, code: "HSMNotActivated"},
		"wrong role":         {token: readerTok, body: good, status: 403, code: "Forbidden"},
		"wrong role delete":  {token: readerTok, status: 403, code: "Forbidden"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			hsm, tok, method := cmpOr(tc.hsm, "hsm1"), cmpOr(tc.token, d.hsm), "PUT"
			if tc.body == nil {
				method = "DELETE"
			}
			code, _, body := d.c.do(method, d.url(hsm, "/backup/policy"), tok, tc.body)
			var e wire.Error
			_ = json.Unmarshal(body, &e)
			if code != tc.status || e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.msg) {
				t.Fatalf("%s: %d %s, want %d %s %q", method, code, body, tc.status, tc.code, tc.msg)
			}
			if strings.Contains(string(body), "topsecret") {
				t.Fatalf("the answer holds the token: %s", body)
			}
			if _, _, after := d.policy("hsm1"); after != beforeBody {
				t.Fatalf("the policy changed:\n%s\nwas\n%s", after, beforeBody)
			}
			if code, _, _ := d.policy("fresh"); code != 409 {
				t.Fatalf("GET on the HSM that is not activated: %d", code)
			}
		})
	}
	// Reading needs the backup status action: the Crypto User may not.
	if code, _, _ := d.c.do("GET", d.url("hsm1", "/backup/policy"), readerTok, nil); code != 403 {
		t.Fatalf("GET as Crypto User: %d", code)
	}
	if code, _, body := d.c.do("DELETE", d.url("hsm1", "/backup/policy"), d.hsm, nil); code != 204 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if code, _, _ := d.policy("hsm1"); code != 404 {
		t.Fatalf("GET after DELETE: %d", code)
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestBackupPolicyLifecycle: the policy is region-local state: it is in
// no full backup, survives a restart and a full restore into the HSM
// (which replaces the HSM's buckets), keeps working after them (its token
// still opens), and is gone once the HSM is purged. (A security-domain
// upload never meets a policy through the API: it needs an HSM that is
// not activated, a policy an active one; storetest's BackupPolicies
// checks that whole-instance replaces of every kind leave it.)
func TestBackupPolicyLifecycle(t *testing.T) {
	root := t.TempDir()
	cfg := server.DefaultConfig()
	cfg.Dev, cfg.DataDir, cfg.Listen = true, t.TempDir(), "127.0.0.1:0"
	cfg.BackupDirs = []string{root}
	cfg.PurgeInterval.Duration = time.Hour
	s1 := servertest.StartConfig(t, cfg)
	d := &drill{t: t, s: s1, c: newCall(t, s1)}
	d.arm, d.hsm = s1.AdminToken(t), s1.Token(t, s1.ClientID, s1.ClientSecret, s1.HSMResource())
	d.create("hsm1")
	d.activate("hsm1", "sd1", "sd2", "sd3")
	for _, c := range []string{"manual", "sched"} {
		if err := os.Mkdir(filepath.Join(root, c), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	manual := wire.SASTokenParameter{StorageResourceURI: "file://" + filepath.Join(root, "manual"), Token: "x"}
	off := false
	set := d.setPolicy("hsm1", wire.BackupPolicyParameters{StorageResourceURI: "file://" + filepath.Join(root, "sched"),
		Token: "sig=topsecret", Every: "PT6H", Keep: 2, Enabled: &off})
	folder := d.backup("hsm1", manual)
	// The backup does not carry the policy (nor its token).
	if err := filepath.Walk(filepath.Join(root, "manual"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			data, _ := os.ReadFile(p)
			if strings.Contains(string(data), "topsecret") || strings.Contains(string(data), "sched") {
				t.Errorf("%s holds the policy", p)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	same := func(what string) {
		t.Helper()
		code, got, body := d.policy("hsm1")
		if code != 200 || got.StorageResourceURI != set.StorageResourceURI || got.Every != "PT6H" || got.Keep != 2 || got.Updated != set.Updated {
			t.Fatalf("%s: %d %s", what, code, body)
		}
	}

	// Restart on the same data directory and port (tokens name the port).
	cfg.Listen = s1.Addr
	s1.Stop()
	s2 := servertest.StartConfig(t, cfg)
	s2.ClientID, s2.ClientSecret, s2.ObjectID = s1.ClientID, s1.ClientSecret, s1.ObjectID
	d.s, d.c = s2, newCall(t, s2)
	same("after a restart")

	// A full restore replaces the HSM's buckets; not the policy.
	if st := d.restore("hsm1", manual, folder[strings.LastIndex(folder, "/")+1:]); st["status"] != "Succeeded" {
		t.Fatalf("restore: %v", st)
	}
	same("after a full restore")

	// It still opens and runs: enable it and let one run happen.
	on := true
	d.setPolicy("hsm1", wire.BackupPolicyParameters{StorageResourceURI: set.StorageResourceURI, Token: "sig=topsecret", Every: "PT6H", Keep: 2, Enabled: &on})
	d.s.Backups.RunDuePolicies(context.Background())
	if _, p, body := d.policy("hsm1"); p.LastSuccess == nil || p.LastFailure != nil {
		t.Fatalf("run after the replaces: %s", body)
	}

	// Soft delete keeps it (recover would bring the schedule back); purge
	// removes it, and a new HSM of the same name has none.
	code, _, body := d.c.do("DELETE", d.c.hsmPath("hsm1"), d.arm, nil)
	if code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	havePolicy := func() bool {
		var err error
		_ = d.s.Store().View(context.Background(), func(r store.Reader) error {
			_, err = r.BackupPolicy("hsm1")
			return nil
		})
		return err == nil
	}
	if !havePolicy() {
		t.Fatal("soft delete removed the policy")
	}
	purge := d.s.Endpoint + "/subscriptions/" + d.c.sub() + "/providers/Microsoft.KeyVault/locations/local/deletedManagedHSMs/hsm1/purge?api-version=2023-07-01"
	if code, _, body := d.c.do("POST", purge, d.arm, nil); code != 202 {
		t.Fatalf("purge: %d %s", code, body)
	}
	if havePolicy() {
		t.Fatal("purge left the policy")
	}
	d.create("hsm1")
	d.activate("hsm1", "sd1", "sd2", "sd3")
	if code, _, body := d.policy("hsm1"); code != 404 {
		t.Fatalf("a new hsm1 has a policy: %d %s", code, body)
	}
}

// TestBackupPolicyScheduled: with the real clock and the purge loop's
// tick an hour away, a policy every 1s keeping 3 runs on its own timer:
// at least 5 scheduled backups, after which the container holds exactly
// the newest 3 complete folders of the HSM. The check reads the container
// only while no job runs and none started during the read (jobs before
// and after are the same), so it sees the state a finished run left.
func TestBackupPolicyScheduled(t *testing.T) {
	root := t.TempDir()
	d := newDrill(t, withBackupDir(root), func(c *server.Config) { c.PurgeInterval.Duration = time.Hour })
	d.create("hsm1")
	d.activate("hsm1", "sd1", "sd2", "sd3")
	dir := filepath.Join(root, "c")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d.setPolicy("hsm1", wire.BackupPolicyParameters{StorageResourceURI: "file://" + dir, Token: "x", Every: "1s", Keep: 3})
	seen := map[string]bool{}
	deadline := time.Now().Add(2 * time.Minute)
	for len(seen) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d scheduled backups in 2 minutes", len(seen))
		}
		_, p, body := d.policy("hsm1")
		if p.LastFailure != nil {
			t.Fatalf("a scheduled backup failed: %s", body)
		}
		if p.LastSuccess != nil {
			seen[p.LastSuccess.JobID] = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	jobs := func() []store.Job {
		var js []store.Job
		if err := d.s.Store().View(context.Background(), func(r store.Reader) error {
			var err error
			js, err = r.Jobs("hsm1")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return js
	}
	for {
		if time.Now().After(deadline) {
			t.Fatal("never saw the container between two runs")
		}
		before := jobs()
		_, p, _ := d.policy("hsm1")
		idle := len(before) > 0 && p.LastSuccess != nil && p.LastSuccess.JobID == before[len(before)-1].ID
		for _, j := range before {
			idle = idle && j.Status != store.JobInProgress
		}
		if !idle {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if after := jobs(); len(after) != len(before) || after[len(after)-1].Status == store.JobInProgress {
			continue
		}
		var complete []string
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), "manifest")); err == nil {
				complete = append(complete, e.Name())
			}
		}
		var want []string
		for _, j := range before[len(before)-3:] {
			want = append(want, "mhsm-hsm1-"+j.Start.UTC().Format("20060102150405")+twoDigits(j.Start.Nanosecond()/10_000_000))
		}
		if strings.Join(complete, ",") != strings.Join(want, ",") {
			t.Fatalf("complete folders %v, want the newest 3 %v", complete, want)
		}
		return
	}
}

func twoDigits(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }
