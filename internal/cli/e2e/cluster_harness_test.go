package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// clusterLease is the nodes' lease in the cluster tests: a follower cut
// off from its leader refuses to serve after it.
const clusterLease = 2 * time.Second

// node is one `tresor server --dev --node-id …` process of a cluster. Its
// cluster link is advertised through a TCP proxy (linkProxy) that the test
// can cut, so that the node stops hearing from the others.
type node struct {
	t        testing.TB
	id       string
	dataDir  string
	addr     string // region endpoint (host:port)
	admin    string // admin listener (host:port)
	raftAddr string // the real cluster link
	link     *linkProxy
	clients  sync.Map    // principalCred → *client.Client: one keep-alive pool each
	down     atomic.Bool // killed or stopped (for the workload's goroutines)
	extra    []string    // first-start flags (--bootstrap, --join …)
	prefix   []string    // a command to run the server under (taskset -c 0)
	cmd      *exec.Cmd
	done     chan struct{}
	logPath  string
}

func newNode(t testing.TB, id string) *node {
	n := &node{t: t, id: id, dataDir: filepath.Join(t.TempDir(), id), addr: freeAddr(t), admin: freeAddr(t), raftAddr: freeAddr(t),
		logPath: filepath.Join(t.TempDir(), id+".log")}
	n.link = newLinkProxy(t, n.raftAddr)
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			b, _ := os.ReadFile(n.logPath)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("log of node %s (end):\n%s", id, b)
		}
	})
	return n
}

// start starts the process and waits until its /readyz says ready (the
// node knows a leader and has caught up).
func (n *node) start(env ...string) {
	t := n.t
	t.Helper()
	n.clients.Clear() // a node started on a new data directory has a new dev CA
	defer n.down.Store(false)
	log, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"server", "--dev", "--data-dir", n.dataDir, "--listen", n.addr, "--admin-listen", n.admin,
		"--node-id", n.id, "--raft-addr", n.raftAddr, "--raft-advertise-addr", n.link.addr(), "--lease", clusterLease.String(),
		"--raft-snapshot-threshold", "64", "--raft-trailing-logs", "16", "--raft-snapshot-interval", "1s", "--purge-interval", "1s"}, n.extra...)
	argv := append(append(append([]string(nil), n.prefix...), tresorBinary(t)), args...)
	n.cmd = exec.Command(argv[0], argv[1:]...)
	n.cmd.Env = append(os.Environ(), env...)
	n.cmd.Stdout, n.cmd.Stderr = log, log
	if err := n.cmd.Start(); err != nil {
		log.Close()
		t.Fatal(err)
	}
	n.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); log.Close(); close(done) }(n.cmd, n.done)
	n.waitReady(60 * time.Second)
}

func (n *node) waitReady(d time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(d)
	for {
		select {
		case <-n.done:
			b, _ := os.ReadFile(n.logPath)
			n.t.Fatalf("node %s exited while starting:\n%s", n.id, b)
		default:
		}
		if n.ready() {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("node %s not ready within %s", n.id, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready asks the admin listener's /readyz.
func (n *node) ready() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + n.admin + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill ends the process with SIGKILL.
func (n *node) kill() {
	if n.cmd == nil {
		return
	}
	n.down.Store(true)
	_ = n.cmd.Process.Kill()
	<-n.done
	n.cmd = nil
}

// stop ends the process gracefully.
func (n *node) stop() {
	if n.cmd == nil {
		return
	}
	n.down.Store(true)
	_ = n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.done:
	case <-time.After(20 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	n.cmd = nil
}

func (n *node) endpoint() string { return "https://" + n.addr }
func (n *node) caFile() string   { return filepath.Join(n.dataDir, "ca.pem") }

// hsmURL is an HSM's endpoint on this node.
func (n *node) hsmURL(hsm string) string {
	_, port, _ := net.SplitHostPort(n.addr)
	return "https://" + hsm + ".managedhsm.localhost:" + port
}

// devEnv reads the dev.env the bootstrap node wrote.
func (n *node) devEnv() map[string]string {
	n.t.Helper()
	b, err := os.ReadFile(filepath.Join(n.dataDir, "dev.env"))
	if err != nil {
		n.t.Fatal(err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			env[k] = v
		}
	}
	return env
}

// client is an in-process HTTPS client of this node, signed in as cred.
func (n *node) client(tenant string, cred principalCred) *client.Client {
	n.t.Helper()
	if c, ok := n.clients.Load(cred); ok {
		return c.(*client.Client)
	}
	c, err := client.New(client.Config{Server: n.endpoint(), CAFile: n.caFile(), TenantID: tenant, ClientID: cred.clientID, ClientSecret: cred.secret})
	if err != nil {
		n.t.Fatal(err)
	}
	n.clients.Store(cred, c)
	return c
}

type principalCred struct{ objectID, clientID, secret string }

// cli runs the tresor CLI against this node and returns its stdout; it
// fails the test unless the command succeeds.
func (n *node) cli(tenant string, cred principalCred, dir string, args ...string) []byte {
	n.t.Helper()
	out, errOut, err := n.cliExec(tenant, cred, dir, args...)
	if err != nil {
		n.t.Fatalf("node %s: tresor %s: %v\n%s", n.id, strings.Join(args, " "), err, errOut)
	}
	return out
}

func (n *node) cliExec(tenant string, cred principalCred, dir string, args ...string) (stdout, stderr []byte, err error) {
	cfg := filepath.Join(dir, ".cfg-"+n.id+"-"+cred.clientID)
	if err := os.MkdirAll(cfg, 0o700); err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(tresorBinary(n.t), args...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + cfg, "PATH=" + os.Getenv("PATH"), "TRESOR_SERVER=" + n.endpoint(), "TRESOR_CA_FILE=" + n.caFile(),
		"TRESOR_TENANT_ID=" + tenant, "TRESOR_CONFIG_DIR=" + cfg, "TRESOR_CLIENT_ID=" + cred.clientID, "TRESOR_CLIENT_SECRET=" + cred.secret}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// status is GET /tresor/cluster on this node.
func (n *node) status(tenant string, cred principalCred) (wire.ClusterStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := n.client(tenant, cred).ClusterStatus(ctx)
	if err != nil {
		return wire.ClusterStatus{}, err
	}
	return *st, nil
}

// linkProxy forwards TCP connections to a node's cluster link until cut:
// then it drops every connection and refuses new ones, as a lost network
// would (the node's outgoing connections are not touched).
type linkProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

func newLinkProxy(t testing.TB, target string) *linkProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.run()
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	return p
}

func (p *linkProxy) addr() string { return p.ln.Addr().String() }

func (p *linkProxy) run() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

func (p *linkProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *linkProxy) pipe(c net.Conn) {
	if !p.track(c) {
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil || !p.track(up) {
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	go cp(up, c)
	go cp(c, up)
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// setCut cuts (true) or heals (false) the link.
func (p *linkProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

// eventually retries f until it returns nil or d passes.
func eventually(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaderOf asks the nodes for the leader until one names a leader that
// is among them.
func leaderOf(t testing.TB, tenant string, cred principalCred, nodes ...*node) *node {
	t.Helper()
	var leader *node
	eventually(t, 30*time.Second, "a leader", func() error {
		for _, n := range nodes {
			st, err := n.status(tenant, cred)
			if err != nil {
				continue
			}
			for _, m := range nodes {
				if m.id == st.Leader && st.Healthy {
					leader = m
					return nil
				}
			}
		}
		return errors.New("no node names a leader among the running ones")
	})
	return leader
}

func mustJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
}
