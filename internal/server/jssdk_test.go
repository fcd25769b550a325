package server_test

import (
	"bytes"
	"context"
	"crypto/fips140"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
)

// jsSDKDir holds the JavaScript SDK conformance script, its pinned
// package.json and package-lock.json, and the node_modules that
// scripts/test installs there with npm ci.
var jsSDKDir = filepath.Join("..", "..", "sdktest", "js")

// TestJavaScriptSDK runs the official Azure SDK for JavaScript
// (@azure/keyvault-keys with @azure/identity's ClientSecretCredential, the
// challenge-resource verification on) against a real region: every key
// type, get, paged list, update, sign/verify, encrypt/decrypt, wrap/unwrap,
// rotate, soft delete/recover/purge and backup/restore of one key (see
// sdktest/js/conformance.mjs). Without Node.js or the installed modules it
// fails: scripts/test installs both.
func TestJavaScriptSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("Node.js is required for the JavaScript SDK conformance test (scripts/test installs it): %v", err)
	}
	dir, err := filepath.Abs(jsSDKDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"@azure/keyvault-keys", "@azure/identity"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("%s is not installed: run `npm ci --prefix sdktest/js` (scripts/test does): %v", pkg, err)
		}
	}

	t.Run("conformance", func(t *testing.T) {
		s := servertest.Start(t)
		activeHSM(t, s, "jssdk")
		out := runJS(t, node, dir, s, "")
		if !strings.Contains(out, "checks passed") {
			t.Fatal("conformance.mjs ended without its summary")
		}
	})
	// The verification is on: a challenge whose resource is not the HSM's
	// domain is refused by the SDK before it asks for a token.
	t.Run("challenge resource verification", func(t *testing.T) {
		s := servertest.Start(t, func(c *server.Config) { c.Identity.Resource = "https://elsewhere.example.test" })
		runJS(t, node, dir, s, "challenge-mismatch")
	})
}

// runJS runs conformance.mjs against the HSM "jssdk" of s and returns its
// output; a non-zero exit fails the test.
func runJS(t *testing.T, node, dir string, s *servertest.Server, expect string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "conformance.mjs")
	cmd.Dir = dir
	fips := "0"
	if fips140.Enabled() {
		fips = "1"
	}
	cmd.Env = append(os.Environ(),
		"TRESOR_HSM_URL="+s.HSMURL("jssdk"),
		"TRESOR_AUTHORITY="+s.Endpoint,
		"TRESOR_TENANT_ID="+s.TenantID,
		"TRESOR_CLIENT_ID="+s.ClientID,
		"TRESOR_CLIENT_SECRET="+s.ClientSecret,
		"TRESOR_ADDR="+s.Addr,
		"TRESOR_DNS_SUFFIX="+s.Config.DNSSuffix,
		"TRESOR_FIPS="+fips,
		"TRESOR_EXPECT="+expect,
		"NODE_EXTRA_CA_CERTS="+s.CAFile,
		// The region is reached directly, never through a proxy.
		"NO_PROXY=*", "no_proxy=*",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Log(out.String())
	if strings.Contains(out.String(), s.ClientSecret) {
		t.Error("the script printed the client secret")
	}
	if err != nil {
		t.Fatalf("conformance.mjs: %v", err)
	}
	return out.String()
}
