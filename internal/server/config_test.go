package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tresor/internal/barrier/pkcs11"
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
		"trustedIssuers":[{"issuer":"https://idp.example","jwksFile":"jwks.json","armAudiences":["tresor-arm"],"hsmAudiences":["tresor-hsm"]}]},
		"audit":{"path":"/var/log/tresor/audit.log","maxSizeMB":10}}`), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/tresor" || cfg.Region != "eu1" || cfg.PurgeInterval.Duration != 30*time.Second ||
		cfg.Identity.TokenLifetime.Duration != 15*time.Minute || len(cfg.Identity.TrustedIssuers) != 1 || cfg.DNSSuffix != "managedhsm.localhost" ||
		cfg.Audit != (AuditConfig{Path: "/var/log/tresor/audit.log", MaxSizeMB: 10, FailClosed: true, SyncInterval: Duration{100 * time.Millisecond}}) {
		t.Fatalf("loaded %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	limits := DefaultConfig()
	if err := LoadConfigFile(write(`{"maxConnections":100,"maxConnectionsPerClient":0,"requestBodyTimeout":"5s","responseTimeout":"1m",
		"tokenRatePerAddress":{"perSecond":1.5,"burst":3},"principalRate":{"perSecond":0},"maxKeysPerHsm":10}`), &limits); err != nil {
		t.Fatal(err)
	}
	if limits.MaxConnections != 100 || limits.MaxConnectionsPerClient != 0 || limits.RequestBodyTimeout.Duration != 5*time.Second ||
		limits.TokenRatePerAddress != (Rate{PerSecond: 1.5, Burst: 3}) || limits.TokenRatePerClient != DefaultConfig().TokenRatePerClient ||
		limits.PrincipalRate != (Rate{}) || limits.MaxKeysPerHsm != 10 {
		t.Fatalf("loaded limits %+v", limits)
	}
	obs := DefaultConfig()
	if err := LoadConfigFile(write(`{"logFormat":"json","logLevel":"debug","adminListen":"127.0.0.1:9090"}`), &obs); err != nil {
		t.Fatal(err)
	}
	if obs.LogFormat != "json" || obs.LogLevel != "debug" || obs.AdminListen != "127.0.0.1:9090" || DefaultConfig().LogFormat != "text" || DefaultConfig().LogLevel != "info" {
		t.Fatalf("loaded %q %q %q", obs.LogFormat, obs.LogLevel, obs.AdminListen)
	}
	sealed := DefaultConfig()
	if err := LoadConfigFile(write(`{"dataDir":"d","dev":true,"seal":{"type":"pkcs11","library":"/usr/lib/softhsm/libsofthsm2.so",
		"tokenLabel":"tresor","pinFile":"/etc/tresor/pin","keyLabel":"tresor-seal"}}`), &sealed); err != nil {
		t.Fatal(err)
	}
	if want := (SealConfig{Type: SealPKCS11, Config: pkcs11.Config{Library: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "tresor",
		PINFile: "/etc/tresor/pin", KeyLabel: "tresor-seal"}}); sealed.Seal != want || sealed.Validate() != nil {
		t.Fatalf("loaded seal %+v (%v)", sealed.Seal, sealed.Validate())
	}
	tests := map[string]string{
		"unknown seal key":    `{"seal":{"type":"pkcs11","pin":"1234"}}`,
		"unknown rate key":    `{"principalRate":{"perMinute":5}}`,
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
		"no data dir":                    {func(c *Config) { c.DataDir = "" }, "dataDir"},
		"bad log format":                 {func(c *Config) { c.LogFormat = "xml" }, "logFormat"},
		"bad log level":                  {func(c *Config) { c.LogLevel = "trace" }, "logLevel"},
		"bad admin listen":               {func(c *Config) { c.AdminListen = "9443" }, "adminListen"},
		"bad listen":                     {func(c *Config) { c.Listen = "8443" }, "listen"},
		"region with space":              {func(c *Config) { c.Region = "east us" }, "region"},
		"bad dns suffix":                 {func(c *Config) { c.DNSSuffix = ".x" }, "dnsSuffix"},
		"no tls, no dev":                 {func(c *Config) { c.Dev = false }, "tlsCert"},
		"cert without key":               {func(c *Config) { c.TLSCert = "c.pem" }, "tlsKey"},
		"zero interval":                  {func(c *Config) { c.PurgeInterval.Duration = 0 }, "purgeInterval"},
		"lifetime too long":              {func(c *Config) { c.Identity.TokenLifetime.Duration = 48 * time.Hour }, "tokenLifetime"},
		"no connections":                 {func(c *Config) { c.MaxConnections = 0 }, "maxConnections"},
		"negative per-client cap":        {func(c *Config) { c.MaxConnectionsPerClient = -1 }, "maxConnectionsPerClient"},
		"no body timeout":                {func(c *Config) { c.RequestBodyTimeout.Duration = 0 }, "requestBodyTimeout"},
		"response before body":           {func(c *Config) { c.ResponseTimeout.Duration = time.Second }, "responseTimeout"},
		"negative rate":                  {func(c *Config) { c.PrincipalRate.PerSecond = -1 }, "principalRate"},
		"negative burst":                 {func(c *Config) { c.TokenRatePerClient.Burst = -1 }, "tokenRatePerClient"},
		"negative key limit":             {func(c *Config) { c.MaxKeysPerHsm = -1 }, "maxKeysPerHsm"},
		"display name of another region": {func(c *Config) { c.Region, c.RegionDisplayName = "eastus2", "East US" }, "regionDisplayName"},
		"tenant with slash":              {func(c *Config) { c.Identity.TenantID = "a/b" }, "identity.tenantId"},
		"issuer tenant empty": {func(c *Config) {
			c.Identity.TrustedIssuers = []TrustedIssuerConfig{{Issuer: "https://idp", JWKSFile: "j", ARMAudiences: []string{"a"}, TenantIDs: []string{""}}}
		}, "trustedIssuers[0].tenantIds[0]"},
		"display name with slash": {func(c *Config) { c.RegionDisplayName = "lo/cal" }, "regionDisplayName"},
		"unknown seal type":       {func(c *Config) { c.Seal.Type = "vault" }, "seal.type"},
		"pkcs11 seal without key label": {func(c *Config) {
			c.Seal = SealConfig{Type: SealPKCS11, Config: pkcs11.Config{Library: "l", TokenLabel: "t", PINFile: "p"}}
		}, "seal.keyLabel"},
		"pkcs11 seal with key file": {func(c *Config) {
			c.SealKeyFile = "k"
			c.Seal = SealConfig{Type: SealPKCS11, Config: pkcs11.Config{Library: "l", TokenLabel: "t", PINFile: "p", KeyLabel: "k"}}
		}, "sealKeyFile"},
		"file seal with token":         {func(c *Config) { c.Seal.TokenLabel = "t" }, "seal.tokenLabel"},
		"audit log size zero":          {func(c *Config) { c.Audit.MaxSizeMB = 0 }, "audit.maxSizeMB"},
		"audit sync interval negative": {func(c *Config) { c.Audit.SyncInterval.Duration = -time.Second }, "audit.syncInterval"},
		"issuer without keys": {func(c *Config) {
			c.Identity.TrustedIssuers = []TrustedIssuerConfig{{Issuer: "https://idp", ARMAudiences: []string{"a"}}}
		}, "trustedIssuers[0]"},
		"issuer with both-plane audiences": {func(c *Config) {
			c.Identity.TrustedIssuers = []TrustedIssuerConfig{{Issuer: "https://idp", JWKSFile: "j", Audiences: []string{"a"}}}
		}, "trustedIssuers[0].audiences is no longer accepted (its tokens were good on both planes): split it into armAudiences"},
		"issuer without audiences": {func(c *Config) {
			c.Identity.TrustedIssuers = []TrustedIssuerConfig{{Issuer: "https://idp", JWKSFile: "j"}}
		}, "trustedIssuers[0] needs armAudiences, hsmAudiences or both"},
		"issuer with an empty audience": {func(c *Config) {
			c.Identity.TrustedIssuers = []TrustedIssuerConfig{{Issuer: "https://idp", JWKSFile: "j", ARMAudiences: []string{"a"}, HSMAudiences: []string{""}}}
		}, "trustedIssuers[0].hsmAudiences[0] is empty"},
		"caFile with jwksFile": {func(c *Config) {
			c.Identity.TrustedIssuers = []TrustedIssuerConfig{{Issuer: "https://idp", JWKSFile: "j", CAFile: "ca.pem", HSMAudiences: []string{"h"}}}
		}, "trustedIssuers[0].caFile goes with discoveryUrl"},
		"console sign-in without discovery": {func(c *Config) {
			c.Identity.TrustedIssuers = []TrustedIssuerConfig{{Issuer: "https://idp", JWKSFile: "j", ARMAudiences: []string{"a"}, HSMAudiences: []string{"h"}, ConsoleClientID: "c"}}
		}, "trustedIssuers[0].consoleClientId needs discoveryUrl, armAudiences and hsmAudiences"},
		"console sign-in with one plane": {func(c *Config) {
			c.Identity.TrustedIssuers = []TrustedIssuerConfig{{Issuer: "https://idp", DiscoveryURL: "https://idp/.well-known/openid-configuration", ARMAudiences: []string{"a"}, ConsoleClientID: "c"}}
		}, "trustedIssuers[0].consoleClientId needs discoveryUrl, armAudiences and hsmAudiences"},
		"extra audiences on both planes": {func(c *Config) { c.Identity.ExtraAudiences = []string{"https://managedhsm.azure.net"} },
			"identity.extraAudiences is no longer accepted"},
		"empty extra ARM audience": {func(c *Config) { c.Identity.ExtraARMAudiences = []string{" "} }, "identity.extraArmAudiences[0] is empty"},
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

func TestConfigDisplayName(t *testing.T) {
	tests := map[string]struct {
		region, display, want string
	}{
		"Azure region":           {"eastus2", "", "East US 2"},
		"Azure region, any case": {"WestEurope", "", "West Europe"},
		"own region":             {"local", "", "local"},
		"configured":             {"dc1", "DC 1", "DC 1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			c.DataDir, c.Dev, c.Region, c.RegionDisplayName = "d", true, tc.region, tc.display
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := c.DisplayName(); got != tc.want {
				t.Fatalf("DisplayName() = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestExampleTrustedIssuerConfig loads the trusted-issuer example of the
// docs: it must stay a valid config file.
func TestExampleTrustedIssuerConfig(t *testing.T) {
	cfg := DefaultConfig()
	if err := LoadConfigFile(filepath.Join("..", "..", "docs", "examples", "trusted-issuer.json"), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Identity.TrustedIssuers) == 0 {
		t.Fatal("the example trusts no issuer")
	}
	for i, ti := range cfg.Identity.TrustedIssuers {
		if len(ti.ARMAudiences) == 0 || len(ti.HSMAudiences) == 0 || ti.CAFile == "" {
			t.Errorf("trustedIssuers[%d] should show both planes' audiences and a caFile: %+v", i, ti)
		}
	}
}

func TestSealFlagsOverlayConfigFile(t *testing.T) {
	cmd := Command()
	args := []string{"--seal-type", "pkcs11", "--seal-library", "/l.so", "--seal-token-label", "tok",
		"--seal-pin-file", "/pin", "--seal-key-label", "key"}
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	flags := DefaultConfig()
	for name, dst := range map[string]*string{"seal-type": &flags.Seal.Type, "seal-library": &flags.Seal.Library,
		"seal-token-label": &flags.Seal.TokenLabel, "seal-pin-file": &flags.Seal.PINFile, "seal-key-label": &flags.Seal.KeyLabel} {
		*dst = cmd.Flags().Lookup(name).Value.String()
	}
	file := DefaultConfig()
	file.Seal = SealConfig{Type: SealFile}
	overlayFlags(cmd, &file, flags)
	want := SealConfig{Type: SealPKCS11, Config: pkcs11.Config{Library: "/l.so", TokenLabel: "tok", PINFile: "/pin", KeyLabel: "key"}}
	if file.Seal != want {
		t.Fatalf("overlaid seal %+v, want %+v", file.Seal, want)
	}
}
