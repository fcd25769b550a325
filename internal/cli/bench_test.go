package cli_test

import (
	"strings"
	"testing"
)

// TestBenchFlagErrors: bad flags are refused with exit code 1 before any
// region is started or contacted. The whole command runs in
// cmd/tresor's TestBenchDev, which has a binary to start as the region.
func TestBenchFlagErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no target":         {nil, "--dev or --hsm-name is required"},
		"both targets":      {[]string{"--dev", "--hsm-name", "h"}, "give --dev or --hsm-name, not both"},
		"admin without dev": {[]string{"--hsm-name", "h", "--admin"}, "--admin needs --dev"},
		"zero duration":     {[]string{"--dev", "--duration", "0s"}, "--duration must be positive"},
		"bad duration":      {[]string{"--dev", "--duration", "ten"}, `invalid argument "ten" for "--duration"`},
		"unknown key":       {[]string{"--dev", "--keys", "RSA-2048,DSA"}, `--keys: unknown key type "DSA"`},
		"unknown op":        {[]string{"--dev", "--ops", "sign,frobnicate"}, `--ops: unknown operation "frobnicate"`},
		"zero concurrency":  {[]string{"--dev", "--concurrency", "1,0"}, "--concurrency: 0 is out of range"},
		"bad concurrency":   {[]string{"--dev", "--concurrency", "x"}, `invalid argument "x" for "--concurrency"`},
		"admin keys":        {[]string{"--dev", "--admin", "--admin-keys", "0"}, "--admin-keys must be at least 1"},
		"arguments":         {[]string{"--dev", "extra"}, `unknown command "extra"`},
	} {
		t.Run(name, func(t *testing.T) {
			res := tresor(t, nil, append([]string{"bench"}, tc.args...)...)
			if res.code != 1 || !strings.Contains(res.stderr, "tresor: error: "+tc.want) || res.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %q", res.code, res.stdout, res.stderr, tc.want)
			}
		})
	}
}
