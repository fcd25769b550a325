package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "cfg.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := DefaultConfig()
	if err := LoadConfigFile(write(`{"dataDir":"/var/lib/tresor","listen":"127.0.0.1:9443","region":"eu1","dev":true,"purgeInterval":"30s",
		"identity":{"tokenLifetime":"15m","regionAdmins":["11111111-2222-4333-8444-555555555555"],
		"trustedIssuers":[{"issuer":"https://idp.example","jwksFile":"jwks.json","audiences":["tresor"]}]},
		"audit":{"path":"/var/log/tresor/audit.log","maxSizeMB":10}}`), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/tresor" || cfg.Region != "eu1" || cfg.PurgeInterval.Duration != 30*time.Second ||
		cfg.Identity.TokenLifetime.Duration != 15*time.Minute || len(cfg.Identity.TrustedIssuers) != 1 || cfg.DNSSuffix != "managedhsm.localhost" ||
		cfg.Audit != (AuditConfig{Path: "/var/log/tresor/audit.log", MaxSizeMB: 10, FailClosed: true}) {
		t.Fatalf("loaded %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		"unknown key":         `{"dataDir":"d","dev":true,"sealType":"pkcs11"}`,
		"unknown nested key":  `{"identity":{"issuer":"x"}}`,
		"bad duration":        `{"purgeInterval":"soon"}`,
		"duration not string": `{"purgeInterval":30}`,
		"not json":            `{`,
		"unknown audit key":   `{"audit":{"file":"a.log"}}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			if err := LoadConfigFile(write(body), &c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.DataDir, c.Dev = "d", true
		return c
	}
	tests := map[string]struct {
		mod   func(*Config)
		field string
	}{
		"no data dir":         {func(c *Config) { c.DataDir = "" }, "dataDir"},
		"bad listen":          {func(c *Config) { c.Listen = "8443" }, "listen"},
		"region with space":   {func(c *Config) { c.Region = "east us" }, "region"},
		"bad dns suffix":      {func(c *Config) { c.DNSSuffix = ".x" }, "dnsSuffix"},
		"no tls, no dev":      {func(c *Config) { c.Dev = false }, "tlsCert"},
		"cert without key":    {func(c *Config) { c.TLSCert = "c.pem" }, "tlsKey"},
		"zero interval":       {func(c *Config) { c.PurgeInterval.Duration = 0 }, "purgeInterval"},
		"audit log size zero": {func(c *Config) { c.Audit.MaxSizeMB = 0 }, "audit.maxSizeMB"},
		"lifetime too long":   {func(c *Config) { c.Identity.TokenLifetime.Duration = 48 * time.Hour }, "tokenLifetime"},
		"issuer without keys": {func(c *Config) {
			c.Identity.TrustedIssuers = []TrustedIssuerConfig{{Issuer: "https://idp", Audiences: []string{"a"}}}
		}, "trustedIssuers[0]"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.field)
			}
		})
	}
}
