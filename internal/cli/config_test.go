package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tresor/internal/client"
)

// TestClientConfigAccessToken: TRESOR_ACCESS_TOKEN is the only credential
// when set (client credentials and the profile's tokens are ignored), and
// without it the client credentials and the profile apply as before.
func TestClientConfigAccessToken(t *testing.T) {
	dir := t.TempDir()
	prof := `{"server":"https://r:1","tenantId":"t","clientId":"c1","tokens":[{"resource":"https://r:1","accessToken":"profile-token"}]}`
	if err := os.WriteFile(filepath.Join(dir, profileName), []byte(prof), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		env        map[string]string
		token      string
		hsmToken   string
		clientID   string
		secret     string
		profileTok bool
	}{
		"token only":              {env: map[string]string{envAccessToken: "ext-token"}, token: "ext-token"},
		"one token per plane":     {env: map[string]string{envAccessToken: "arm-token", envHSMAccessToken: "hsm-token"}, token: "arm-token", hsmToken: "hsm-token"},
		"token beats credentials": {env: map[string]string{envAccessToken: " ext-token\n", envClientID: "c2", envClientSecret: "s"}, token: "ext-token"},
		"credentials":             {env: map[string]string{envClientID: "c2", envClientSecret: "s"}, clientID: "c2", secret: "s"},
		"profile":                 {env: map[string]string{}, clientID: "c1", profileTok: true},
		"empty token is unset":    {env: map[string]string{envAccessToken: "  "}, clientID: "c1", profileTok: true},
	}
	t.Run("hsm token alone", func(t *testing.T) {
		a := &app{env: Env{Getenv: func(k string) string {
			return map[string]string{envConfigDir: dir, envHSMAccessToken: "hsm-token"}[k]
		}}}
		if _, err := a.clientConfig(); err == nil || !strings.Contains(err.Error(), "TRESOR_ACCESS_TOKEN is not") {
			t.Fatalf("err = %v", err)
		}
	})
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.env[envConfigDir] = dir
			a := &app{env: Env{Getenv: func(k string) string { return tc.env[k] }}}
			cfg, err := a.clientConfig()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Server != "https://r:1" || cfg.Token != tc.token || cfg.HSMToken != tc.hsmToken || cfg.ClientID != tc.clientID || cfg.ClientSecret != tc.secret {
				t.Errorf("config %+v", redacted(cfg))
			}
			if got := len(cfg.Tokens) > 0; got != tc.profileTok {
				t.Errorf("profile tokens used: %v, want %v", got, tc.profileTok)
			}
		})
	}
}

func redacted(c client.Config) client.Config {
	if c.ClientSecret != "" {
		c.ClientSecret = "…"
	}
	return c
}
