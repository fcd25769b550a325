//go:build unix

package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
)

// TestReloadOnSIGHUP runs `tresor server --config FILE` in a child process
// and sends it a real SIGHUP after rewriting FILE: the child reloads it
// with the command line's flags over it again (--region-admin stays in
// effect though the file names no administrator), so issuer B's tokens
// are good and A's refused.
func TestReloadOnSIGHUP(t *testing.T) {
	a := newExtIdP(t, "https://login.hup-a.example.test/v2.0")
	b := newExtIdP(t, "https://login.hup-b.example.test/v2.0")
	dataDir, addr := t.TempDir(), freeAddr(t)
	file := filepath.Join(t.TempDir(), "tresor.json")
	withListen := func(m map[string]any) map[string]any { m["listen"] = addr; return m }
	writeConfigFile(t, file, withListen(trusting(a)))

	args, _ := json.Marshal([]string{"--config", file, "--dev", "--data-dir", dataDir, "--region-admin", reloadOID})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashArgsEnv+"="+string(args))
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, parentEnd, err := os.Pipe() // the child exits when the parent's end closes
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = stdin
	err = cmd.Start()
	stdin.Close()
	if err != nil {
		parentEnd.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); parentEnd.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("child output:\n%s", out.String())
		}
		if strings.Contains(out.String(), "WARNING: DATA RACE") {
			t.Error("the race detector reported a data race in the child")
		}
	})
	// waitFor waits until the child's output holds s (n times).
	waitFor := func(s string, n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for strings.Count(out.String(), s) < n {
			select {
			case <-done:
				t.Fatalf("the server exited while the test waited for %q", s)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the server's output in time", s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("listening on", 1)

	cfg := server.DefaultConfig()
	cfg.Dev, cfg.DataDir, cfg.Listen = true, dataDir, addr
	_, port, _ := strings.Cut(addr, ":")
	s := &servertest.Server{Server: &server.Server{Endpoint: "https://localhost:" + port, CAFile: filepath.Join(dataDir, "ca.pem")},
		Addr: addr, DataDir: dataDir, Config: cfg}
	r := &reloadRegion{Server: s, c: newCall(t, s)}
	principals := func(tok string) int {
		t.Helper()
		code, _, _ := r.c.do("GET", s.Endpoint+"/tresor/principals", tok, nil)
		return code
	}
	if got := principals(a.token(t, reloadOID, reloadARM)); got != 200 {
		t.Fatalf("A's token before SIGHUP: %d, want 200", got)
	}
	if got := principals(b.token(t, reloadOID, reloadARM)); got != 401 {
		t.Fatalf("B's token before SIGHUP: %d, want 401", got)
	}

	writeConfigFile(t, file, withListen(trusting(b)))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(`msg="config reloaded" applied=identity.trustedIssuers needsRestart=none`, 1)
	if got := principals(b.token(t, reloadOID, reloadARM)); got != 200 {
		t.Fatalf("B's token after SIGHUP: %d, want 200", got)
	}
	if got := principals(a.token(t, reloadOID, reloadARM)); got != 401 {
		t.Fatalf("A's token after SIGHUP: %d, want 401", got)
	}

	// A broken file is refused; the child keeps serving as it was.
	if err := os.WriteFile(file, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("config reload refused; the running configuration stays", 1)
	if got := principals(b.token(t, reloadOID, reloadARM)); got != 200 {
		t.Fatalf("B's token after a refused reload: %d, want 200", got)
	}
}
