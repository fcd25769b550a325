package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLogin(t *testing.T) {
	r, env := region(t)
	dir := filepath.Join(t.TempDir(), "cfg")
	home := map[string]string{"TRESOR_CONFIG_DIR": dir}

	out := ok(t, home, "login", "--service-principal", "-u", r.ClientID, "-p", r.ClientSecret,
		"--tenant", r.Info.TenantID, "--server", r.URL, "--ca-file", r.CAFile)
	accts := decode[[]map[string]any](t, out)
	if len(accts) != 1 {
		t.Fatalf("login printed %v", accts)
	}
	a := accts[0]
	user, _ := a["user"].(map[string]any)
	if a["id"] != r.Info.SubscriptionID || a["tenantId"] != r.Info.TenantID || a["isDefault"] != true ||
		a["state"] != "Enabled" || a["environmentName"] != "tresor" || user["name"] != r.ClientID || user["type"] != "servicePrincipal" {
		t.Errorf("login printed %v", a)
	}

	path := filepath.Join(dir, "profile.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), r.ClientSecret) {
		t.Error("the profile holds the client secret")
	}
	var prof struct {
		Server string
		Tokens []struct {
			Resource  string
			ExpiresOn time.Time
		}
	}
	if err := json.Unmarshal(data, &prof); err != nil {
		t.Fatal(err)
	}
	if prof.Server != r.URL || len(prof.Tokens) != 2 {
		t.Errorf("profile %s", data)
	}
	if runtime.GOOS != "windows" {
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("profile mode %v, want 0600", fi.Mode().Perm())
		}
		if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
			t.Errorf("config dir mode %v, want 0700", fi.Mode().Perm())
		}
	}

	// Later commands need nothing but the profile.
	if got := ok(t, home, "account", "show", "--query", "objectId", "-o", "tsv"); got != r.ObjectID+"\n" {
		t.Errorf("account show from profile = %q", got)
	}
	ok(t, home, "create", "--hsm-name", "h", "-g", "rg", "--administrators", r.ObjectID)

	// Environment variables win over the profile: another principal.
	p := r.AddPrincipal("other", false)
	other := map[string]string{"TRESOR_CONFIG_DIR": dir, "TRESOR_CLIENT_ID": p.ClientID, "TRESOR_CLIENT_SECRET": p.ClientSecret}
	if got := ok(t, other, "account", "show", "--query", "objectId", "-o", "tsv"); got != p.ObjectID+"\n" {
		t.Errorf("account show with env credentials = %q", got)
	}

	// An expired token and no secret: exit 1 with a hint.
	expire(t, path)
	res := tresor(t, home, "account", "show")
	if res.code != 1 || !strings.Contains(res.stderr, "tresor: error: client: no valid token") ||
		!strings.Contains(res.stderr, "tresor: hint: run 'tresor login'") {
		t.Errorf("with expired tokens: %+v", res)
	}
	// …but a secret in the environment renews it.
	withSecret := map[string]string{"TRESOR_CONFIG_DIR": dir, "TRESOR_CLIENT_SECRET": r.ClientSecret}
	ok(t, withSecret, "account", "show")

	// Logging in again with env credentials only, then out.
	ok(t, map[string]string{"TRESOR_CONFIG_DIR": dir, "TRESOR_CLIENT_ID": r.ClientID, "TRESOR_CLIENT_SECRET": r.ClientSecret,
		"TRESOR_SERVER": r.URL, "TRESOR_CA_FILE": env["TRESOR_CA_FILE"]}, "login", "--service-principal", "-o", "none")
	ok(t, home, "logout")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("profile still there after logout: %v", err)
	}
	if res := tresor(t, home, "logout"); res.code != 1 {
		t.Errorf("second logout: %+v", res)
	}
}

func TestLoginFailures(t *testing.T) {
	r, env := region(t)
	tests := map[string]struct {
		args   []string
		code   int
		stderr string
	}{
		"no --service-principal": {args: []string{"login", "-u", r.ClientID, "-p", "x"}, code: 1, stderr: "give --service-principal"},
		"no password":            {args: []string{"login", "--service-principal", "-u", r.ClientID, "--server", r.URL}, code: 1, stderr: "--password are required"},
		"wrong secret": {args: []string{"login", "--service-principal", "-u", r.ClientID, "-p", "wrong", "--server", r.URL, "--ca-file", r.CAFile},
			code: 2, stderr: "tresor: error: invalid_client"},
		"wrong tenant": {args: []string{"login", "--service-principal", "-u", r.ClientID, "-p", r.ClientSecret, "-t", "nope", "--server", r.URL, "--ca-file", r.CAFile},
			code: 2, stderr: "tresor: error: invalid_tenant"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			res := tresor(t, map[string]string{"TRESOR_CONFIG_DIR": dir}, tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.stderr) {
				t.Errorf("got %+v, want exit %d and %q", res, tc.code, tc.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "profile.json")); !os.IsNotExist(err) {
				t.Errorf("a failed login wrote a profile")
			}
		})
	}
	_ = env
}

// expire rewrites the profile's tokens as expired an hour ago.
func expire(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, tok := range m["tokens"].([]any) {
		tok.(map[string]any)["expiresOn"] = time.Now().Add(-time.Hour).Format(time.RFC3339)
	}
	data, _ = json.Marshal(m)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
