package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"tresor/internal/blob/azuritetest"
	"tresor/internal/cli"
	"tresor/internal/server"
	"tresor/internal/server/servertest"
)

func TestMain(m *testing.M) {
	testscript.Main(cleanupAfter{m}, map[string]func(){
		"tresor": func() {
			os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

// cleanupAfter runs the tests, then stops Azurite and removes the built
// tresor binary of the disaster-recovery tests.
type cleanupAfter struct{ m *testing.M }

func (c cleanupAfter) Run() int {
	code := c.m.Run()
	azuritetest.Stop()
	removeBinary()
	return code
}

// TestScripts runs the end-to-end scripts of testdata/script against a
// real region (servertest), one per script, with the bootstrap
// administrator's credentials in TRESOR_*, its object id in ADMIN_OID,
// the HSMs' token audience in HSM_RESOURCE and the region's audit log file
// in AUDIT_LOG.
func TestScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end scripts start servers")
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// setenv-stdout NAME sets NAME to the last command's stdout, trimmed.
			"setenv-stdout": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: setenv-stdout NAME")
				}
				ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile("stdout")))
			},
			// azurite-container NAME creates the container NAME in the test
			// binary's Azurite (started on first use) and sets AZURITE_CONTAINER
			// to its URL and AZURITE_SAS to a SAS token with all permissions.
			"azurite-container": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: azurite-container NAME")
				}
				az := azuritetest.Start(t)
				ts.Setenv("AZURITE_CONTAINER", az.CreateContainer(t, args[0]))
				ts.Setenv("AZURITE_SAS", az.SAS(t, args[0], "racwdl", time.Now().Add(time.Hour)))
			},
			// flip-byte FILE flips the bits of the byte in the middle of FILE.
			"flip-byte": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: flip-byte FILE")
				}
				path := ts.MkAbs(args[0])
				data, err := os.ReadFile(path)
				ts.Check(err)
				if len(data) == 0 {
					ts.Fatalf("flip-byte: %s is empty", args[0])
				}
				data[len(data)/2] ^= 0xff
				ts.Check(os.WriteFile(path, data, 0o600))
			},
		},
		Setup: func(env *testscript.Env) error {
			// file:// backups may go anywhere in the script's directory.
			s := servertest.Start(scriptTB{TB: t, env: env}, func(c *server.Config) { c.BackupDirs = []string{env.WorkDir} })
			env.Setenv("TRESOR_SERVER", s.Endpoint)
			env.Setenv("TRESOR_CA_FILE", s.CAFile)
			env.Setenv("TRESOR_TENANT_ID", s.TenantID)
			env.Setenv("TRESOR_CLIENT_ID", s.ClientID)
			env.Setenv("TRESOR_CLIENT_SECRET", s.ClientSecret)
			env.Setenv("TRESOR_CONFIG_DIR", filepath.Join(env.WorkDir, ".tresor"))
			env.Setenv("ADMIN_OID", s.ObjectID)
			env.Setenv("HSM_RESOURCE", s.HSMResource())
			env.Setenv("AUDIT_LOG", s.AuditLog)
			return nil
		},
	})
}

// scriptTB lets servertest run inside one script: cleanups, temporary
// directories, logs and fatal failures belong to the script; other errors
// (which may come from cleanups) fail the outer test; everything else is
// the outer test's.
type scriptTB struct {
	testing.TB
	env *testscript.Env
}

func (s scriptTB) Helper()                 {}
func (s scriptTB) Cleanup(f func())        { s.env.Defer(f) }
func (s scriptTB) Log(args ...any)         { s.env.T().Log(args...) }
func (s scriptTB) Logf(f string, a ...any) { s.env.T().Log(fmt.Sprintf(f, a...)) }
func (s scriptTB) Error(args ...any) {
	s.TB.Error(append([]any{filepath.Base(s.env.WorkDir) + ":"}, args...)...)
}
func (s scriptTB) Errorf(f string, a ...any) { s.TB.Errorf(filepath.Base(s.env.WorkDir)+": "+f, a...) }
func (s scriptTB) Fatal(args ...any)         { s.env.T().Fatal(args...) }
func (s scriptTB) Fatalf(f string, a ...any) { s.env.T().Fatal(fmt.Sprintf(f, a...)) }

func (s scriptTB) TempDir() string {
	d, err := os.MkdirTemp(s.env.WorkDir, ".tmp")
	if err != nil {
		s.env.T().Fatal(err)
	}
	return d
}
