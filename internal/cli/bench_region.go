package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// devRegion is the region `tresor bench --dev` runs: `tresor server --dev`
// as a child process of this same binary, on a temporary data directory.
// A child rather than a region in this process, because the figures are
// meant for a region and a client that do not share a Go runtime: in one
// process the load client's goroutines, allocations and garbage
// collections would be charged to the server and the other way round, and
// the server could not be profiled or its memory read on its own.
type devRegion struct {
	cmd     *exec.Cmd
	dir     string
	cfg     client.Config
	admin   string // the admin listener's address
	backups string // the file:// container the region allows
	done    chan struct{}
}

// devRegionConfig is the child's config file: the rate, connection and
// key-count limits that protect a real region would measure themselves
// here, so they are off.
const devRegionConfig = `{"principalRate": {"perSecond": 0}, "maxConnectionsPerClient": 0, "maxKeysPerHsm": 0}`

// startDevRegion starts the child and waits until it serves. Its log goes
// to {dir}/server.log. extraArgs are added to `tresor server`.
func startDevRegion(ctx context.Context, extraArgs ...string) (*devRegion, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tresor-bench-")
	if err != nil {
		return nil, err
	}
	r := &devRegion{dir: dir, done: make(chan struct{})}
	conf := filepath.Join(dir, "bench.json")
	if err := os.WriteFile(conf, []byte(devRegionConfig), 0o600); err != nil {
		r.stop()
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		r.stop()
		return nil, err
	}
	defer logf.Close()
	data := filepath.Join(dir, "data")
	args := append([]string{"server", "--dev", "--data-dir", data, "--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--config", conf}, extraArgs...)
	r.cmd = exec.Command(exe, args...)
	r.cmd.Stderr = logf
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		r.stop()
		return nil, err
	}
	if err := r.cmd.Start(); err != nil {
		r.stop()
		return nil, err
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_ = r.cmd.Wait()
		close(r.done)
	}()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	var ready bool
	for !ready {
		select {
		case l, ok := <-lines:
			if !ok {
				log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
				r.stop()
				return nil, fmt.Errorf("tresor server --dev exited before it served: %s", oneLine(lastLines(string(log), 5)))
			}
			l = strings.TrimSpace(l)
			if v, ok := strings.CutPrefix(l, "admin (http):"); ok {
				r.admin = strings.TrimPrefix(strings.Fields(v)[0], "http://")
			}
			if v, ok := strings.CutPrefix(l, "backups:"); ok {
				r.backups = strings.Fields(v)[0]
			}
			ready = strings.HasPrefix(l, "To use the CLI:")
		case <-timeout.C:
			r.stop()
			return nil, errors.New("tresor server --dev did not start within 60 s")
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		}
	}
	go func() {
		for range lines {
		}
	}()
	env, err := os.ReadFile(filepath.Join(data, "dev.env"))
	if err != nil {
		r.stop()
		return nil, err
	}
	for _, l := range strings.Split(string(env), "\n") {
		k, v, _ := strings.Cut(strings.TrimPrefix(l, "export "), "=")
		switch k {
		case envServer:
			r.cfg.Server = v
		case envCAFile:
			r.cfg.CAFile = v
		case envTenantID:
			r.cfg.TenantID = v
		case envClientID:
			r.cfg.ClientID = v
		case envClientSecret:
			r.cfg.ClientSecret = v
		}
	}
	return r, nil
}

// stop ends the child (SIGTERM, then SIGKILL after 10 s) and removes its
// directory.
func (r *devRegion) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	}
	_ = os.RemoveAll(r.dir)
}

// rssBytes is the child's resident memory (Linux: /proc/{pid}/status).
func (r *devRegion) rssBytes() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// profile fetches the region's CPU profile over the next d (rounded up
// to whole seconds, as pprof takes them) into file, in the background;
// the channel yields the outcome.
func (r *devRegion) profile(ctx context.Context, d time.Duration, file string) <-chan error {
	done := make(chan error, 1)
	secs := int((d + time.Second - 1) / time.Second)
	go func() {
		done <- func() error {
			req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.admin, secs), nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("the region answered %s", resp.Status)
			}
			f, err := os.Create(file)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}()
	}()
	return done
}

// heapAfterGC is the region's Go heap in use right after a collection:
// the heap profile endpoint collects first (?gc=1, so the region needs
// --pprof), then /metrics tells go_memstats_heap_inuse_bytes. Unlike the
// resident size, it does not depend on when the last collection ran.
func (r *devRegion) heapAfterGC(ctx context.Context) (int64, error) {
	get := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+r.admin+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", path, resp.Status)
		}
		return io.ReadAll(resp.Body)
	}
	if _, err := get("/debug/pprof/heap?gc=1"); err != nil {
		return 0, err
	}
	b, err := get("/metrics")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	return 0, errors.New("no go_memstats_heap_inuse_bytes in /metrics")
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// Built-in role the bench principal needs on its keys.
const benchCryptoUserGUID = "21dbd100-6940-42c2-9190-5d6cb909625b" // Managed HSM Crypto User

// setupHSM creates the HSM name in resource group "bench" with the signed-in
// principal as administrator, activates it (security domain to three fresh
// custodian certificates, quorum 2) and assigns the principal Managed HSM
// Crypto User at "/". It returns the HSM's URL and how long the
// security-domain download took.
func setupHSM(ctx context.Context, c *client.Client, name string) (string, time.Duration, error) {
	acct, err := c.Account(ctx)
	if err != nil {
		return "", 0, err
	}
	region, err := c.Region(ctx)
	if err != nil {
		return "", 0, err
	}
	soft, purge, retention := true, false, 7
	_, err = c.CreateHSM(ctx, "bench", name, wire.ManagedHSM{
		Location: region.Region,
		SKU:      &wire.SKU{Family: "B", Name: "Standard_B1"},
		Properties: wire.ManagedHSMProps{InitialAdminObjectIDs: []string{acct.ObjectID}, EnableSoftDelete: &soft,
			SoftDeleteRetentionInDays: &retention, EnablePurgeProtection: &purge, CreateMode: "default"},
	})
	if err != nil {
		return "", 0, fmt.Errorf("creating HSM %s: %w", name, err)
	}
	hsmURL, err := c.HSMURL(ctx, name)
	if err != nil {
		return "", 0, err
	}
	var jwks []wire.SecurityDomainJWK
	for i := range 3 {
		der, err := custodianCert(i)
		if err != nil {
			return "", 0, err
		}
		j, err := client.CustodianJWK(der)
		if err != nil {
			return "", 0, err
		}
		jwks = append(jwks, j)
	}
	t0 := time.Now()
	_, op, err := c.BeginDownloadSecurityDomain(ctx, hsmURL, jwks, 2)
	if err != nil {
		return "", 0, fmt.Errorf("security domain download: %w", err)
	}
	if _, err := op.Wait(ctx, nil); err != nil {
		return "", 0, fmt.Errorf("security domain download: %w", err)
	}
	sd := time.Since(t0)
	if _, err := c.CreateRoleAssignment(ctx, hsmURL, "/", newRBACGUID(), client.RoleDefinitionIDPrefix+benchCryptoUserGUID, acct.ObjectID); err != nil {
		return "", 0, fmt.Errorf("assigning Managed HSM Crypto User: %w", err)
	}
	return hsmURL, sd, nil
}

// custodianCert makes a throwaway custodian certificate (RSA-2048); its
// private key is dropped, so the security domain it encrypts is lost with
// the benchmark's region, as intended.
func custodianCert(i int) ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: fmt.Sprintf("bench custodian %d", i)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
}

// dialAddrFor returns the host:port the load client dials for the HSMs of
// the region at server: the region endpoint's (as package client does).
func dialAddrFor(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", err
	}
	host := u.Host
	if u.Port() == "" {
		host += ":443"
	}
	return host, nil
}

// readCAPool reads the CA file for the load client (the system roots
// when there is none).
func readCAPool(file string) (*x509.CertPool, error) {
	if file == "" {
		return x509.SystemCertPool()
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}
