package cli_test

import (
	"strings"
	"testing"
)

// TestRestoreDrillFlagErrors: bad flags are refused before anything is
// contacted (the environment names no server), with exit code 1. The
// drill itself runs against real servers in e2e/testdata/script/restore_drill*.
func TestRestoreDrillFlagErrors(t *testing.T) {
	base := []string{"restore", "drill", "--storage-resource-uri", "file:///var/backups", "-t", "x",
		"--backup-folder", "mhsm-hsm1-2026041915243012", "--sd-file", "sd.json"}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no wrapping keys":   {nil, "Please specify --sd-wrapping-keys"},
		"too many passwords": {[]string{"--sd-wrapping-keys", "a.pem", "--passwords", "p", "q"}, "--passwords: 2 passwords for 1 wrapping keys"},
		"scratch name short": {[]string{"--sd-wrapping-keys", "a.pem", "--scratch-name", "ab"}, `--scratch-name "ab": an HSM name has 3 to 24`},
		"scratch name digit": {[]string{"--sd-wrapping-keys", "a.pem", "--scratch-name", "1drill"}, `--scratch-name "1drill"`},
		"scratch name long":  {[]string{"--sd-wrapping-keys", "a.pem", "--scratch-name", strings.Repeat("d", 25)}, "--scratch-name"},
		"scratch name end":   {[]string{"--sd-wrapping-keys", "a.pem", "--scratch-name", "drill-"}, `--scratch-name "drill-"`},
		"region endpoint":    {[]string{"--sd-wrapping-keys", "a.pem", "--region-endpoint", "http://localhost:8443"}, `--region-endpoint "http://localhost:8443"`},
		"empty group":        {[]string{"--sd-wrapping-keys", "a.pem", "--resource-group", ""}, "--resource-group is empty"},
		"no storage token":   {[]string{"--sd-wrapping-keys", "a.pem", "-t", " "}, "Please specify --storage-container-SAS-token"},
		"SAS in the URI":     {[]string{"--sd-wrapping-keys", "a.pem", "--storage-resource-uri", "https://acct.blob.core.windows.net/c?sig=secret"}, `--storage-resource-uri "https://acct.blob.core.windows.net/c" is not a container URI`},
	} {
		t.Run(name, func(t *testing.T) {
			res := tresor(t, nil, append(append([]string{}, base...), tc.args...)...)
			if res.code != 1 || !strings.Contains(res.stderr, "tresor: error: "+tc.want) || res.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %q", res.code, res.stdout, res.stderr, tc.want)
			}
			if strings.Contains(res.stderr, "secret") {
				t.Errorf("the SAS signature is in the error: %q", res.stderr)
			}
		})
	}
}
