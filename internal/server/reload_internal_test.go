package server

import (
	"slices"
	"testing"
	"time"
)

// TestConfigChanges: changed keys are split into those a reload applies
// and those that need a restart, named by their config keys.
func TestConfigChanges(t *testing.T) {
	tests := map[string]struct {
		change               func(*Config)
		wantApplied, wantRes []string
	}{
		"nothing":          {func(*Config) {}, nil, nil},
		"listen":           {func(c *Config) { c.Listen = "127.0.0.1:9" }, nil, []string{"listen"}},
		"nested restart":   {func(c *Config) { c.Audit.MaxSizeMB = 7; c.Identity.TokenLifetime = Duration{time.Minute} }, nil, []string{"audit.maxSizeMB", "identity.tokenLifetime"}},
		"rate burst":       {func(c *Config) { c.PrincipalRate.Burst = 9 }, []string{"principalRate"}, nil},
		"both rate fields": {func(c *Config) { c.TokenRatePerClient = Rate{PerSecond: 1, Burst: 1} }, []string{"tokenRatePerClient"}, nil},
		"issuers and admins": {func(c *Config) {
			c.Identity.TrustedIssuers = []TrustedIssuerConfig{{Issuer: "https://x", JWKSFile: "/k", ARMAudiences: []string{"a"}}}
			c.Identity.RegionAdmins = []string{"x"}
		}, []string{"identity.regionAdmins", "identity.trustedIssuers"}, nil},
		"an issuer's audience": {func(c *Config) { c.Identity.TrustedIssuers[0].HSMAudiences = []string{"h"} }, []string{"identity.trustedIssuers"}, nil},
		"mixed":                {func(c *Config) { c.LogLevel = "debug"; c.BackupDirs = []string{"/b"} }, []string{"logLevel"}, []string{"backupDirs"}},
		"funcs are not keys":   {func(c *Config) { c.Clock = time.Now }, nil, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cur := DefaultConfig()
			cur.Identity.TrustedIssuers = []TrustedIssuerConfig{{Issuer: "https://i", JWKSFile: "/j", ARMAudiences: []string{"a"}}}
			next := DefaultConfig()
			next.Identity.TrustedIssuers = []TrustedIssuerConfig{{Issuer: "https://i", JWKSFile: "/j", ARMAudiences: []string{"a"}}}
			tc.change(&next)
			applied, restart, err := configChanges(cur, next)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(applied, tc.wantApplied) || !slices.Equal(restart, tc.wantRes) {
				t.Fatalf("applied %q, needs restart %q; want %q and %q", applied, restart, tc.wantApplied, tc.wantRes)
			}
		})
	}
}
