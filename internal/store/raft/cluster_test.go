package raft

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"tresor/internal/store"
)

// The cluster tests run real raft over real TLS on 127.0.0.1, with
// certificates from a throwaway CA.

var (
	caOnce sync.Once
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPool *x509.CertPool
)

func testCA(t testing.TB) {
	t.Helper()
	caOnce.Do(func() { caCert, caKey, caPool = newCA() })
}

// newCA makes a throwaway CA.
func newCA() (*x509.Certificate, *ecdsa.PrivateKey, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test cluster CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return cert, key, pool
}

// foreignTLS is a node configuration under a CA of its own.
func foreignTLS(t testing.TB) *tls.Config {
	t.Helper()
	cert, key, pool := newCA()
	return issue(t, "stranger", cert, key, pool)
}

var serial = struct {
	sync.Mutex
	n int64
}{n: 100}

// nodeTLS returns a node's TLS configuration: a certificate for 127.0.0.1
// issued by the test CA.
func nodeTLS(t testing.TB, name string) *tls.Config {
	t.Helper()
	testCA(t)
	return issue(t, name, caCert, caKey, caPool)
}

func issue(t testing.TB, name string, caCert *x509.Certificate, caKey *ecdsa.PrivateKey, caPool *x509.CertPool) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial.Lock()
	serial.n++
	sn := serial.n
	serial.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(sn),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      caPool,
		ClientCAs:    caPool,
	}
}

// timing is raft's timing for the tests: short, but loose enough for -race
// on two cores.
type timing struct {
	heartbeat, election, leaderLease, lease time.Duration
	snapshotThreshold, trailingLogs         uint64
	snapshotInterval                        time.Duration
}

var fast = timing{heartbeat: 200 * time.Millisecond, election: 200 * time.Millisecond, leaderLease: 200 * time.Millisecond, lease: time.Second}

// steady is for the conformance suite, whose subtests cannot tell a
// leadership lost under CPU starvation (the machine is shared) from a
// failure: a longer leader lease (the defaults'). Its clusters are built ahead, so the
// slower first election costs little.
var steady = timing{heartbeat: 500 * time.Millisecond, election: 500 * time.Millisecond, leaderLease: 500 * time.Millisecond, lease: 2 * time.Second}

// node is a cluster member: its Bolt, raft directory and Store.
type node struct {
	id   string
	dir  string // holds bolt.db and raft/
	addr string // its cluster address (kept across reopenings)
	bolt *store.Bolt
	s    *Store
}

type cluster struct {
	t      testing.TB
	timing timing
	nodes  []*node
	// dialer, if set, maps (from node id, to address) to the address the
	// node dials.
	dialer func(from, to string) string
}

func logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("test", t.Name())
	}
	return nil
}

// newCluster starts n nodes: the first bootstraps, the others join it.
func newCluster(t testing.TB, n int, tm timing) *cluster {
	t.Helper()
	return startCluster(&cluster{t: t, timing: tm}, n)
}

// startCluster starts c's n nodes.
func startCluster(c *cluster, n int) *cluster {
	t := c.t
	t.Helper()
	for i := range n {
		c.nodes = append(c.nodes, &node{id: fmt.Sprintf("n%d", i), dir: t.TempDir(), addr: "127.0.0.1:0"})
	}
	t.Cleanup(c.close) // before the directories are removed
	for i, nd := range c.nodes {
		c.start(nd, i == 0)
		if i == 0 {
			c.waitLeader(nd)
		} else {
			c.join(nd)
		}
	}
	c.waitConverged()
	return c
}

// start opens nd's Bolt (if not open) and Store.
func (c *cluster) start(nd *node, bootstrap bool) {
	c.t.Helper()
	if nd.bolt == nil {
		b, err := store.OpenBolt(filepath.Join(nd.dir, "bolt.db"))
		if err != nil {
			c.t.Fatal(err)
		}
		nd.bolt = b
	}
	cfg := Config{
		NodeID:             nd.id,
		Dir:                filepath.Join(nd.dir, "raft"),
		BindAddr:           nd.addr,
		TLS:                nodeTLS(c.t, nd.id),
		Bootstrap:          bootstrap,
		Lease:              c.timing.lease,
		Logger:             logger(c.t),
		HeartbeatTimeout:   c.timing.heartbeat,
		ElectionTimeout:    c.timing.election,
		LeaderLeaseTimeout: c.timing.leaderLease,
		SnapshotThreshold:  c.timing.snapshotThreshold,
		TrailingLogs:       c.timing.trailingLogs,
		SnapshotInterval:   c.timing.snapshotInterval,
	}
	if c.dialer != nil {
		id := nd.id
		cfg.dialer = func(to string) string { return c.dialer(id, to) }
	}
	s, err := Open(nd.bolt, cfg)
	if err != nil {
		c.t.Fatalf("Open %s: %v", nd.id, err)
	}
	nd.s = s
	nd.addr = s.Addr()
}

// stop closes nd's Store (its Bolt stays open).
func (c *cluster) stop(nd *node) {
	c.t.Helper()
	if nd.s != nil {
		if err := nd.s.Close(); err != nil {
			c.t.Errorf("Close %s: %v", nd.id, err)
		}
	}
}

// wipe stops nd and deletes its Bolt and raft directory.
func (c *cluster) wipe(nd *node) {
	c.t.Helper()
	c.stop(nd)
	if err := nd.bolt.Close(); err != nil {
		c.t.Fatal(err)
	}
	nd.bolt = nil
	for _, p := range []string{"bolt.db", "raft"} {
		if err := os.RemoveAll(filepath.Join(nd.dir, p)); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *cluster) close() {
	for _, nd := range c.nodes {
		if nd.s != nil {
			_ = nd.s.Close()
		}
	}
	for _, nd := range c.nodes {
		if nd.bolt != nil {
			_ = nd.bolt.Close()
		}
	}
}

// join adds nd as a voter through the leader.
func (c *cluster) join(nd *node) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		l := c.leader()
		err := l.s.AddVoter(ctx, nd.id, nd.addr)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrNotLeader) || ctx.Err() != nil {
			c.t.Fatalf("AddVoter %s: %v", nd.id, err)
		}
	}
}

// leader waits for a leader among the running nodes and returns it.
func (c *cluster) leader() *node {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, nd := range c.nodes {
			if nd.s != nil && !nd.s.closed.Load() && nd.s.IsLeader() {
				return nd
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatal("no leader within 10s")
	return nil
}

func (c *cluster) waitLeader(nd *node) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nd.s.WaitLeader(ctx); err != nil {
		c.t.Fatalf("WaitLeader %s: %v", nd.id, err)
	}
}

// follower returns a running node that is not the leader.
func (c *cluster) follower() *node {
	c.t.Helper()
	l := c.leader()
	for _, nd := range c.nodes {
		if nd != l && nd.s != nil && !nd.s.closed.Load() {
			return nd
		}
	}
	c.t.Fatal("no follower")
	return nil
}

// running returns the nodes whose Store is open.
func (c *cluster) running() []*node {
	var r []*node
	for _, nd := range c.nodes {
		if nd.s != nil && !nd.s.closed.Load() {
			r = append(r, nd)
		}
	}
	return r
}

// waitConverged waits until every running node serves reads and has
// applied what the leader has.
func (c *cluster) waitConverged() {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l := c.leader()
		want := l.s.AppliedIndex()
		ok := true
		var why error
		for _, nd := range c.running() {
			if err := nd.s.Healthy(); err != nil {
				ok, why = false, err
			} else if got := nd.s.AppliedIndex(); got < want {
				ok, why = false, fmt.Errorf("%s applied %d, leader %d", nd.id, got, want)
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster did not converge: %v", why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// proxy is a TCP proxy whose traffic a test can drop.
type proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	blocked bool
	conns   map[net.Conn]struct{}
}

// newProxy starts a proxy to target; its owner closes ln and blocks it.
func newProxy(target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.run()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) run() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

func (p *proxy) pipe(c net.Conn) {
	if !p.add(c) {
		c.Close()
		return
	}
	u, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil || !p.add(u) {
		c.Close()
		if u != nil {
			u.Close()
		}
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
	<-done
	c.Close()
	u.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

func (p *proxy) add(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// block drops every connection and refuses new ones.
func (p *proxy) block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
}

// helpers for reads and writes

func put(s store.Store, key, value string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return s.Apply(ctx, store.PutRegionValue{Key: key, Value: []byte(value)})
}

// mustPut puts a value, retrying while the cluster is unavailable: an
// ambiguous put of the same value is safe to repeat.
func mustPut(t testing.TB, s store.Store, key, value string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := put(s, key, value)
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("put %s: %v", key, err)
		}
	}
}

// onLeader runs op on the leader until it does not fail for want of one.
func (c *cluster) onLeader(op func(*Store) error) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := op(c.leader().s)
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			c.t.Fatal(err)
		}
	}
}

func get(s store.Store, key string) (string, error) {
	var v []byte
	err := s.View(context.Background(), func(r store.Reader) error {
		var err error
		v, err = r.RegionValue(key)
		return err
	})
	return string(v), err
}
