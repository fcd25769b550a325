package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildTresor builds the binary once per test binary.
var buildTresor = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tresor-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tresor")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

type proc struct {
	cmd      *exec.Cmd
	addr     string
	endpoint string
	caFile   string
	tenant   string
}

var listenRE = regexp.MustCompile(`listening on (\S+)`)

// startServer runs `tresor server --dev` on a free port and waits until it
// prints its address.
func startServer(t *testing.T, dataDir string) *proc {
	t.Helper()
	return startServerArgs(t, "server", "--dev", "--data-dir", dataDir, "--listen", "127.0.0.1:0")
}

// startServerArgs runs the binary with args and waits until it listens.
func startServerArgs(t *testing.T, args ...string) *proc {
	t.Helper()
	bin, err := buildTresor()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &proc{cmd: cmd}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(20 * time.Second)
	for p.addr == "" || p.tenant == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("server exited before it listened")
			}
			if m := listenRE.FindStringSubmatch(l); m != nil {
				p.addr = m[1]
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "region endpoint:"); ok {
				p.endpoint = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "CA certificate:"); ok {
				p.caFile = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "tenant:"); ok {
				p.tenant = strings.TrimSpace(v)
			}
		case <-deadline:
			t.Fatal("server did not start within 20 s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return p
}

func (p *proc) client(t *testing.T) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(p.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	d := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, n, _ string) (net.Conn, error) {
			return d.DialContext(ctx, n, p.addr)
		},
		MaxIdleConnsPerHost: 128,
	}}
}

func devCredentials(t *testing.T, dataDir string) (id, secret string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "dev.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "export TRESOR_CLIENT_ID="); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(l, "export TRESOR_CLIENT_SECRET="); ok {
			secret = v
		}
	}
	return id, secret
}

func (p *proc) token(t *testing.T, c *http.Client, id, secret string) string {
	t.Helper()
	resp, err := c.PostForm(p.endpoint+"/"+p.tenant+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "scope": {p.endpoint + "/.default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

func (p *proc) objectID(t *testing.T, c *http.Client, tok string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", p.endpoint+"/tresor/account", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var acc struct {
		ObjectID            string `json:"objectId"`
		DefaultSubscription string `json:"defaultSubscription"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&acc)
	return acc.ObjectID + "|" + acc.DefaultSubscription
}

func hsmURL(p *proc, sub, name string) string {
	return p.endpoint + "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/managedHSMs/" + name + "?api-version=2023-07-01"
}

// TestKillDuringCreates kills the server with SIGKILL while 100 creates run:
// every create that was answered with success must exist after a restart.
func TestKillDuringCreates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dataDir := t.TempDir()
	p := startServer(t, dataDir)
	c := p.client(t)
	id, secret := devCredentials(t, dataDir)
	tok := p.token(t, c, id, secret)
	oid, sub, _ := strings.Cut(p.objectID(t, c, tok), "|")

	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			name := fmt.Sprintf("kill%03d", i)
			body := fmt.Sprintf(`{"location":"local","properties":{"initialAdminObjectIds":[%q]}}`, oid)
			req, _ := http.NewRequest("PUT", hsmURL(p, sub, name), strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := c.Do(req)
			if err != nil {
				return // killed
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
			}
		}()
	}
	close(start)
	// Kill once some creates were answered, while others are in flight.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 10 {
			break
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no create was acknowledged before the kill")
	}
	t.Logf("%d of 100 creates acknowledged before SIGKILL", len(acked))

	p2 := startServer(t, dataDir)
	c2 := p2.client(t)
	tok2 := p2.token(t, c2, id, secret)
	for _, name := range acked {
		req, _ := http.NewRequest("GET", hsmURL(p2, sub, name), nil)
		req.Header.Set("Authorization", "Bearer "+tok2)
		resp, err := c2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("acknowledged create %s is lost after the kill: %d", name, resp.StatusCode)
		}
	}
}

// TestGracefulShutdown: SIGTERM stops the server with exit status 0.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dataDir := t.TempDir()
	p := startServer(t, dataDir)
	c := p.client(t)
	resp, err := c.Get(p.endpoint + "/tresor/region")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop within 20 s of SIGTERM")
	}
	if st, err := os.Stat(filepath.Join(dataDir, "dev.env")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("dev.env: %v %v", st, err)
	}
}

// TestConfigFile: `tresor server --config` reads the file's keys, flags on
// the command line win, and unknown keys are refused.
func TestConfigFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tresor.json")
	body := fmt.Sprintf(`{"dataDir": %q, "dev": true, "region": "eu1", "listen": "127.0.0.1:1"}`, filepath.Join(dir, "data"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServerArgs(t, "server", "--config", cfg, "--listen", "127.0.0.1:0")
	resp, err := p.client(t).Get(p.endpoint + "/tresor/region")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ri struct {
		Region string `json:"region"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ri); err != nil || ri.Region != "eu1" {
		t.Fatalf("region %q, %v", ri.Region, err)
	}

	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"dataDir": "x", "dev": true, "colour": "blue"}`), 0o600)
	bin, _ := buildTresor()
	out, err := exec.Command(bin, "server", "--config", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "colour") {
		t.Fatalf("unknown config key: %v %s", err, out)
	}
}
