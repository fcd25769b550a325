package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
// administrator's credentials in TRESOR_*, its object id in ADMIN_OID and
// the region's audit log file in AUDIT_LOG.
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
