package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"tresor/internal/audit"
	"tresor/internal/cli"
	"tresor/internal/server"
	"tresor/internal/server/servertest"
	"tresor/internal/wire"
)

// TestAuditLog runs a mixed workload over HTTPS — security-domain
// download, role assignments, principals, key create, import, sign,
// encrypt, delete, purge, a refused operation, an invalid token, backups to
// file:// — and checks the audit log: one line per authenticated request
// with its operation, caller and status; `tresor audit verify` passes, and
// fails naming the first bad line after a line is deleted, edited or
// reordered; no secret of the workload appears in it.
func TestAuditLog(t *testing.T) {
	backups := t.TempDir()
	auditDir := t.TempDir()
	d := newDrill(t, withBackupDir(backups), func(c *server.Config) {
		c.Audit.Path = filepath.Join(auditDir, "audit.log")
		c.Audit.MaxSizeMB = 1
	})
	const name = "audithsm"
	d.create(name)
	sdFile := d.activate(name, "sd1", "sd2", "sd3") // + two role assignments
	var secrets []string                            // nothing of these may reach the log
	secrets = append(secrets, d.s.ClientSecret, d.arm, d.hsm, string(sdFile[len(sdFile)/2:len(sdFile)/2+64]))
	hsmID := "/subscriptions/" + d.c.sub() + "/resourceGroups/rg/providers/Microsoft.KeyVault/managedHSMs/" + name

	// A second principal without roles on the HSM, then with one.
	code, _, body := d.c.do("POST", d.s.Endpoint+"/tresor/principals", d.arm, wire.PrincipalCreate{DisplayName: "auditee"})
	var other wire.Principal
	if code != 201 && code != 200 || json.Unmarshal(body, &other) != nil || other.ClientSecret == "" {
		t.Fatalf("create principal: %d %s", code, body)
	}
	otherTok := d.s.Token(t, other.ClientID, other.ClientSecret, d.s.HSMResource())
	secrets = append(secrets, other.ClientSecret, otherTok)

	b64 := base64.RawURLEncoding.EncodeToString
	// Keys: create, sign, encrypt with an imported AES key, delete, purge.
	if code, _, body := d.c.do("POST", d.url(name, "/keys/signer/create"), d.hsm, map[string]any{"kty": "EC-HSM", "crv": "P-256"}); code != 200 {
		t.Fatalf("create key: %d %s", code, body)
	}
	digest := make([]byte, 32)
	rand.Read(digest)
	code, _, body = d.c.do("POST", d.url(name, "/keys/signer/sign"), d.hsm, map[string]any{"alg": "ES256", "value": b64(digest)})
	var signed wire.KeyOperationResult
	if code != 200 || json.Unmarshal(body, &signed) != nil {
		t.Fatalf("sign: %d %s", code, body)
	}
	aes := make([]byte, 32)
	rand.Read(aes)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	imports := map[string]*wire.JSONWebKey{
		"aes": {Kty: "oct-HSM", K: b64(aes), KeyOps: []string{"encrypt", "decrypt"}},
		"rsa": {Kty: "RSA", N: b64(rk.N.Bytes()), E: b64(big.NewInt(int64(rk.E)).Bytes()), D: b64(rk.D.Bytes()), P: b64(rk.Primes[0].Bytes()),
			Q: b64(rk.Primes[1].Bytes()), DP: b64(rk.Precomputed.Dp.Bytes()), DQ: b64(rk.Precomputed.Dq.Bytes()), QI: b64(rk.Precomputed.Qinv.Bytes())},
	}
	for kn, jwk := range imports {
		if code, _, body := d.c.do("PUT", d.url(name, "/keys/"+kn), d.hsm, wire.KeyImportParameters{Key: jwk}); code != 200 {
			t.Fatalf("import %s: %d %s", kn, code, body)
		}
	}
	secrets = append(secrets, imports["aes"].K, imports["rsa"].D, imports["rsa"].P, imports["rsa"].Q, imports["rsa"].DP, imports["rsa"].QI)
	plain := b64([]byte("the plaintext of an audited encryption"))
	if code, _, body := d.c.do("POST", d.url(name, "/keys/aes/encrypt"), d.hsm, map[string]any{"alg": "A256GCM", "value": plain}); code != 200 {
		t.Fatalf("encrypt: %d %s", code, body)
	}
	secrets = append(secrets, plain)
	for _, step := range []struct{ method, path string }{{"DELETE", "/keys/rsa"}, {"DELETE", "/deletedkeys/rsa"}} {
		if code, _, body := d.c.do(step.method, d.url(name, step.path), d.hsm, nil); code != 200 && code != 204 {
			t.Fatalf("%s %s: %d %s", step.method, step.path, code, body)
		}
	}

	// Refused: the other principal may not sign (403), an invalid token
	// (401, no identity), a backup URI carrying a SAS token in its query.
	if code, _, body := d.c.do("POST", d.url(name, "/keys/signer/sign"), otherTok, map[string]any{"alg": "ES256", "value": b64(digest)}); code != 403 {
		t.Fatalf("sign by a principal without a role: %d %s", code, body)
	}
	if code, _, _ := d.c.do("GET", d.url(name, "/keys"), otherTok[:len(otherTok)-4]+"AAAA", nil); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	if code, _, _ := d.c.do("GET", d.url(name, "/keys"), "", nil); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	// Failed sign-ins: a wrong secret (named by its client id), and a
	// client that swapped its id and secret (named by nobody).
	const wrongSecret = "AuditTestWrongClientSecret0123456789"
	secrets = append(secrets, wrongSecret)
	for _, creds := range [][2]string{{other.ClientID, wrongSecret}, {other.ClientSecret, other.ClientID}} {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {creds[0]}, "client_secret": {creds[1]}, "scope": {d.s.HSMResource() + "/.default"}}
		resp, err := d.c.client.PostForm(d.s.Endpoint+"/"+d.s.TenantID+"/oauth2/v2.0/token", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("token with bad credentials: %d", resp.StatusCode)
		}
	}

	const sas = "sv=2024-08-04&ss=b&srt=co&sp=rwdlac&se=2030-01-01&sig=AuditTestSASSignature0123456789"
	secrets = append(secrets, "AuditTestSASSignature0123456789")
	if code, _, body := d.c.do("POST", d.url(name, "/backup"), d.hsm, wire.SASTokenParameter{StorageResourceURI: "file://" + backups + "?" + sas, Token: sas}); code != 400 {
		t.Fatalf("backup to a URI with a query: %d %s", code, body)
	}
	d.backup(name, wire.SASTokenParameter{StorageResourceURI: "file://" + backups, Token: sas})

	// A role assignment for the other principal, used, then deleted.
	raURL := d.s.HSMURL(name) + "/providers/Microsoft.Authorization/roleAssignments/6d4a0d1c-2a4e-4a0e-9a57-000000000001?api-version=7.4"
	ra := map[string]any{"properties": map[string]string{
		"roleDefinitionId": "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b",
		"principalId":      other.ObjectID,
	}}
	if code, _, body := d.c.do("PUT", raURL, d.hsm, ra); code != 201 {
		t.Fatalf("assign: %d %s", code, body)
	}
	if code, _, body := d.c.do("POST", d.url(name, "/keys/signer/sign"), otherTok, map[string]any{"alg": "ES256", "value": b64(digest)}); code != 200 {
		t.Fatalf("sign with a role: %d %s", code, body)
	}
	if code, _, body := d.c.do("DELETE", raURL, d.hsm, nil); code != 200 {
		t.Fatalf("delete assignment: %d %s", code, body)
	}
	d.s.Stop() // closes the log

	logFile := filepath.Join(auditDir, "audit.log")
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if len(s) < 16 {
			t.Fatalf("secret %q too short to search for", s)
		}
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the audit log holds a secret: %.20s…", s)
		}
	}

	// What the lines say.
	var events []audit.Event
	for line := range bytes.Lines(raw) {
		var e audit.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		events = append(events, e)
	}
	// find finds an event by operation, status and caller: an object id,
	// "app:" and a client id, or "" for none.
	find := func(op string, status int, caller string) *audit.Event {
		for i, e := range events {
			var who string
			switch {
			case e.Identity != nil && e.Identity.Claim.ObjectID != "":
				who = e.Identity.Claim.ObjectID
			case e.Identity != nil:
				who = "app:" + e.Identity.Claim.AppID
			}
			if e.OperationName == op && e.Properties.HTTPStatusCode == status && who == caller {
				return &events[i]
			}
		}
		t.Errorf("no %s event with status %d by %q", op, status, caller)
		return nil
	}
	admin := d.s.ObjectID
	for _, want := range []struct {
		op     string
		status int
		oid    string
	}{
		{"HsmCreateOrUpdate", 202, admin}, {"SecurityDomainDownload", 202, admin}, {"RoleAssignmentCreate", 201, admin},
		{"PrincipalCreate", 201, admin}, {"KeyCreate", 200, admin}, {"KeyImport", 200, admin}, {"KeyEncrypt", 200, admin},
		{"KeyDelete", 200, admin}, {"KeyPurge", 204, admin}, {"KeySign", 403, other.ObjectID}, {"KeySign", 200, other.ObjectID},
		{"KeyList", 401, ""}, {"BackupStart", 400, admin}, {"BackupStart", 202, admin}, {"BackupStatus", 200, admin},
		{"RoleAssignmentDelete", 200, admin},
		{"TokenIssue", 200, "app:" + other.ClientID}, {"TokenIssue", 401, "app:" + other.ClientID}, {"TokenIssue", 401, ""},
	} {
		find(want.op, want.status, want.oid)
	}
	if e := find("KeySign", 200, admin); e != nil {
		if e.Properties.ID != signed.Kid || e.ResourceID != hsmID || e.ResultType != audit.ResultSuccess || e.ResultSignature != "OK" ||
			e.CallerIPAddress != "127.0.0.1" || e.OperationVersion != "7.5" || e.Properties.RequestID == "" || e.Category != "AuditEvent" ||
			e.Identity.Claim.AppID != d.s.ClientID || e.Identity.Claim.TenantID != d.s.TenantID || e.Time.IsZero() {
			t.Errorf("sign event %+v (kid %s, resource %s)", e, signed.Kid, hsmID)
		}
	}
	if e := find("KeySign", 403, other.ObjectID); e != nil && (e.ResultType != audit.ResultFailure || e.ResultSignature != "Forbidden" || e.ResultDescription == "") {
		t.Errorf("refused sign event %+v", e)
	}
	if e := find("TokenIssue", 401, "app:"+other.ClientID); e != nil && (e.ResultDescription != "invalid_client" || e.Identity.Claim.TenantID != d.s.TenantID) {
		t.Errorf("failed sign-in event %+v", e)
	}
	if slices.ContainsFunc(events, func(e audit.Event) bool {
		return e.Properties.HTTPStatusCode == 401 && e.Identity == nil && e.ResultDescription == "Unauthorized"
	}) {
		t.Errorf("a request without a token was audited")
	}

	// tresor audit verify: the log passes; copies with one line deleted,
	// edited or two reordered fail, naming the first bad line.
	verify := func(files ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), cli.Env{Stdout: &out, Stderr: &errb}, append([]string{"audit", "verify"}, files...))
		return code, out.String(), errb.String()
	}
	if code, out, errs := verify(logFile); code != 0 || !strings.Contains(out, `"result": "ok"`) {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errs)
	}
	lines := bytes.SplitAfter(raw, []byte("\n"))
	lines = lines[:len(lines)-1]
	if len(lines) < 20 {
		t.Fatalf("only %d lines", len(lines))
	}
	t.Logf("a line of the audit log: %s", lines[len(lines)-2])
	tests := map[string]struct {
		change func(ls [][]byte) [][]byte
		want   string
	}{
		"line 10 deleted": {func(ls [][]byte) [][]byte { return slices.Delete(ls, 9, 10) }, ": line 10: seq is 11 where 10 was expected (a line was removed, inserted or reordered)"},
		"line 10 edited": {func(ls [][]byte) [][]byte {
			ls[9] = bytes.Replace(ls[9], []byte(`"127.0.0.1"`), []byte(`"10.9.8.7"`), 1)
			return ls
		}, ": line 11: hash does not match line 10 (a line was changed, removed or reordered)"},
		"lines 10 and 11 reordered": {func(ls [][]byte) [][]byte { ls[9], ls[10] = ls[10], ls[9]; return ls }, ": line 10: seq is 11 where 10 was expected (a line was removed, inserted or reordered)"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ls := tt.change(slices.Clone(lines))
			p := filepath.Join(t.TempDir(), "audit.log")
			if err := os.WriteFile(p, bytes.Join(ls, nil), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errs := verify(p)
			if code != cli.ExitLocalError || out != "" || errs != "tresor: error: audit: "+p+tt.want+"\n" {
				t.Errorf("exit %d\nstdout %s\nstderr %s\nwant …%s", code, out, errs, tt.want)
			}
		})
	}
}

// TestAuditFailClosed: with a full disk (/dev/full as the audit log) a
// request whose audit line cannot be written is answered 500 unless the
// region is configured to fail open; a token request is one of them.
func TestAuditFailClosed(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	tests := map[string]struct {
		failClosed bool
		want       int
	}{
		"fail closed": {true, 500},
		"fail open":   {false, 200},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := servertest.Start(t, func(c *server.Config) { c.Audit.Path, c.Audit.FailClosed = "/dev/full", tt.failClosed })
			c := newCall(t, s)
			withheld := func(what string, code int, hdr http.Header, body []byte) {
				t.Helper()
				var e wire.Error
				_ = json.Unmarshal(body, &e)
				if code != tt.want || (code == 500 && (e.Error.Code != "AuditLogUnavailable" || !strings.Contains(e.Error.Message, hdr.Get("x-ms-request-id")))) {
					t.Fatalf("%s with a full audit disk: %d %s", what, code, body)
				}
			}
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID}, "client_secret": {s.ClientSecret}, "scope": {s.Endpoint + "/.default"}}
			resp, err := c.client.PostForm(s.Endpoint+"/"+s.TenantID+"/oauth2/v2.0/token", form)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			withheld("token", resp.StatusCode, resp.Header, body)
			if bytes.Contains(body, []byte("access_token")) != (tt.want == 200) {
				t.Fatalf("token answer %s", body)
			}
			if !tt.failClosed {
				tok := s.AdminToken(t)
				for range 2 {
					code, hdr, body := c.do("GET", s.Endpoint+"/tresor/account", tok, nil)
					withheld("GET /tresor/account", code, hdr, body)
				}
			}
			// Routes without a token are not audited and keep working.
			if code, _, body := c.do("GET", s.Endpoint+"/tresor/region", "", nil); code != 200 {
				t.Errorf("region info: %d %s", code, body)
			}
		})
	}
}
