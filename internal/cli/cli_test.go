package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"tresor/internal/cli"
	"tresor/internal/client/clienttest"
)

// result is what one run of the CLI did.
type result struct {
	code           int
	stdout, stderr string
}

// tresor runs the CLI in-process with exactly env as its environment.
func tresor(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), cli.Env{
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
	}, args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// ok runs the CLI and fails the test unless it exits 0.
func ok(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	r := tresor(t, env, args...)
	if r.code != 0 {
		t.Fatalf("tresor %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// region starts a fake region and returns it with an environment holding
// the bootstrap principal's credentials and a private config directory.
func region(t *testing.T) (*clienttest.Region, map[string]string) {
	t.Helper()
	r := clienttest.New(t)
	env := r.Env()
	env["TRESOR_CONFIG_DIR"] = t.TempDir()
	return r, env
}

// without returns a copy of env without keys.
func without(env map[string]string, keys ...string) map[string]string {
	out := maps.Clone(env)
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return v
}

func TestErrorsAndExitCodes(t *testing.T) {
	r, env := region(t)
	ok(t, env, "create", "--hsm-name", "taken", "-g", "rg", "--administrators", r.ObjectID)
	tests := map[string]struct {
		env    map[string]string
		args   []string
		code   int
		stderr []string
	}{
		"server conflict": {
			env: env, args: []string{"create", "--hsm-name", "taken", "-g", "rg", "--administrators", r.ObjectID},
			code: 2, stderr: []string{"tresor: error: Conflict: A managed HSM named 'taken' already exists.\n"},
		},
		"server not found": {
			env: env, args: []string{"show", "--hsm-name", "nope"},
			code: 2, stderr: []string{"tresor: error: ResourceNotFound: "},
		},
		"bad secret": {
			env:  map[string]string{"TRESOR_SERVER": env["TRESOR_SERVER"], "TRESOR_CA_FILE": env["TRESOR_CA_FILE"], "TRESOR_CLIENT_ID": r.ClientID, "TRESOR_CLIENT_SECRET": "wrong", "TRESOR_CONFIG_DIR": t.TempDir()},
			args: []string{"account", "show"},
			code: 2, stderr: []string{"tresor: error: invalid_client: AADSTS7000215", "tresor: hint: check the credentials"},
		},
		"unknown flag": {
			env: env, args: []string{"create", "--bogus"},
			code: 1, stderr: []string{"tresor: error: unknown flag: --bogus\n", "tresor: hint: see 'tresor create --help'\n"},
		},
		"missing required flag": {
			env: env, args: []string{"create", "--hsm-name", "x", "-g", "rg"},
			code: 1, stderr: []string{"tresor: error: --administrators is required"},
		},
		"retention out of range": {
			env: env, args: []string{"create", "--hsm-name", "x", "-g", "rg", "--administrators", "a", "--retention-days", "5"},
			code: 1, stderr: []string{"--retention-days 5: must be between 7 and 90"},
		},
		"bad output format": {
			env: env, args: []string{"list", "-o", "xml"},
			code: 1, stderr: []string{`invalid --output "xml"`},
		},
		"bad query": {
			env: env, args: []string{"list", "--query", "[?"},
			code: 1, stderr: []string{"invalid --query"},
		},
		"vaults": {
			env: env, args: []string{"list", "--resource-type", "vault"},
			code: 1, stderr: []string{"only has managed HSMs"},
		},
		"stray argument": {
			env: env, args: []string{"list", "extra"},
			code: 1, stderr: []string{"tresor: error: unknown command"},
		},
		"no server": {
			env: map[string]string{"TRESOR_CONFIG_DIR": t.TempDir()}, args: []string{"list"},
			code: 1, stderr: []string{"tresor: error: no server", "tresor: hint: run 'tresor login"},
		},
		"untrusted certificate": {
			env: without(env, "TRESOR_CA_FILE"), args: []string{"list"},
			code: 1, stderr: []string{"tresor: hint: the server's certificate is not trusted"},
		},
		"nothing listening": {
			env: map[string]string{"TRESOR_SERVER": "https://127.0.0.1:1", "TRESOR_CONFIG_DIR": t.TempDir()}, args: []string{"list"},
			code: 1, stderr: []string{"tresor: hint: is a Tresor server running there?"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := tresor(t, tc.env, tc.args...)
			if res.code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", res.code, tc.code, res.stderr)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(res.stderr, s) {
					t.Errorf("stderr %q lacks %q", res.stderr, s)
				}
			}
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	out := ok(t, nil, "--help")
	for _, cmd := range []string{"login", "account", "principal", "create", "show", "list", "update", "delete", "list-deleted", "recover", "purge"} {
		if !strings.Contains(out, "  "+cmd+" ") {
			t.Errorf("help lacks %s:\n%s", cmd, out)
		}
	}
}
