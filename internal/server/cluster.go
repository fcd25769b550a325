package server

// Cluster mode (docs/cluster.md): the region's store replicated by raft
// over the nodes of one region. What each node keeps in {DataDir}/cluster:
//
//	seal.wrapped   the cluster's seal key, wrapped by the node's own seal
//	node.pem       the node's certificate for the cluster link (cluster CA)
//	node-key.pem   its private key (mode 0600)
//	ca.pem         the cluster CA's certificate
//	raft/          raft's log, stable store and snapshots
//
// The cluster's seal key wraps the root keys in the replicated state (the
// region root and every instance root), so that they open on every node;
// each node keeps that key only wrapped by its own seal (file or PKCS#11)
// and so restarts without anyone's help. A joining node receives it from
// the leader encrypted to an X25519 key it made for the join, inside TLS,
// and receives its certificate for the cluster link signed by the cluster
// CA, whose key lives in the replicated state sealed by the region
// barrier. The join is authorised by a join token that a region
// administrator created; the token is kept only as its hash, sealed.

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"tresor/internal/api"
	"tresor/internal/atomicfile"
	"tresor/internal/barrier"
	"tresor/internal/fault"
	"tresor/internal/store"
	raftstore "tresor/internal/store/raft"
	"tresor/internal/wire"
)

// ClusterConfig configures cluster mode. Without NodeID the region is one
// process (the default).
type ClusterConfig struct {
	// NodeID names this node in the cluster (letters, digits, '.', '_',
	// '-'; at most 64).
	NodeID string `json:"nodeId"`
	// RaftAddr is the host:port the cluster link listens on (raft and the
	// nodes' own calls, mutual TLS).
	RaftAddr string `json:"raftAddr"`
	// RaftAdvertiseAddr is the address other nodes dial (default RaftAddr).
	RaftAdvertiseAddr string `json:"raftAdvertiseAddr"`
	// Bootstrap forms a new cluster with this node as its first voter. It
	// needs a new data directory and is ignored once the node has cluster
	// state.
	Bootstrap bool `json:"bootstrap"`
	// Join is the region endpoint of a member (https://host:port); with
	// JoinToken a new node joins through it. Ignored once the node has
	// cluster state.
	Join      string `json:"join"`
	JoinToken string `json:"joinToken"`
	// JoinCAFile is the CA that the member's region endpoint presents
	// (default: the system's roots).
	JoinCAFile string `json:"joinCaFile"`
	// Lease is how long a follower serves without hearing from a leader
	// (default 5s); beyond it every request answers 503 with Retry-After.
	Lease Duration `json:"lease"`
	// SnapshotThreshold is how many log entries raft lets grow before it
	// snapshots the store (default 8192); TrailingLogs how many it keeps
	// after a snapshot for followers that lag (default 10240). A follower
	// further behind is sent the snapshot.
	SnapshotThreshold uint64 `json:"snapshotThreshold"`
	TrailingLogs      uint64 `json:"trailingLogs"`
	// SnapshotInterval is how often raft checks whether to snapshot
	// (default 2m).
	SnapshotInterval Duration `json:"snapshotInterval"`
}

// Enabled tells whether the region runs as a cluster node.
func (c ClusterConfig) Enabled() bool { return c.NodeID != "" }

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// DefaultLease is a follower's lease.
const DefaultLease = 5 * time.Second

func (c ClusterConfig) validate() error {
	if !c.Enabled() {
		if c.RaftAddr != "" || c.Bootstrap || c.Join != "" || c.JoinToken != "" {
			return errors.New("cluster: --raft-addr, --bootstrap and --join need --node-id (cluster.nodeId)")
		}
		return nil
	}
	if !nodeIDPattern.MatchString(c.NodeID) {
		return fmt.Errorf("cluster: node id %q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", c.NodeID)
	}
	if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
		return fmt.Errorf("cluster: --raft-addr (cluster.raftAddr) must be host:port: %v", err)
	}
	if c.Bootstrap && c.Join != "" {
		return errors.New("cluster: --bootstrap and --join exclude each other: bootstrap the first node, join the others")
	}
	if c.Lease.Duration < 0 || c.Lease.Duration > time.Minute {
		return fmt.Errorf("cluster: lease %s must be between 0 (default %s) and 1m", c.Lease.Duration, DefaultLease)
	}
	return nil
}

const (
	clusterDirName  = "cluster"
	fileClusterSeal = "seal.wrapped"
	fileNodeCert    = "node.pem"
	fileNodeKey     = "node-key.pem"
	fileClusterCA   = "ca.pem"

	// Region values of the cluster (replicated).
	keyClusterCA        = "cluster/ca"          // the CA's certificate and key, sealed by the region barrier
	prefixJoinToken     = "cluster/join-token/" // + hex SHA-256 of a token: its expiry, sealed
	prefixNodeEndpoint  = "cluster/node/"       // + node id: the node's region endpoint
	clusterSealAAD      = "tresor/cluster/seal-key"
	joinKeyInfo         = "tresor/cluster/join/v1"
	joinTokenPrefix     = "tresor-join."
	nodeCertLifetime    = 5 * 365 * 24 * time.Hour
	maxJoinTokenTTL     = 24 * time.Hour
	joinAddVoterTimeout = 2 * time.Minute
)

// clusterNode is this process's part of the cluster.
type clusterNode struct {
	cfg  ClusterConfig
	dir  string
	log  *slog.Logger
	bolt *store.Bolt
	raft *raftstore.Store
	// seal is the cluster's seal (root keys); sealKey its key.
	seal    *barrier.KeySeal
	sealKey []byte
	// endpoint is this node's region endpoint.
	endpoint string

	mu       sync.Mutex
	region   *barrier.Barrier  // set once the region is open
	ca       *x509.Certificate // the cluster CA
	caKey    *ecdsa.PrivateKey // known to the node that made it until stored, then read from the store
	newCA    bool              // caKey is to be stored (bootstrap)
	joinedAt uint64            // a new joiner serves once it applied this index

	bg sync.WaitGroup // AddVoter calls after joins
}

// openCluster opens this node's cluster state over bolt (creating it on a
// bootstrap or a join) and starts raft. It returns once the node knows a
// leader and, after a join, has applied what the leader had applied.
func openCluster(ctx context.Context, cfg Config, nodeSeal barrier.Seal, bolt *store.Bolt, endpoint string, log *slog.Logger) (*clusterNode, error) {
	c := cfg.Cluster
	n := &clusterNode{cfg: c, dir: filepath.Join(cfg.DataDir, clusterDirName), log: log, bolt: bolt, endpoint: endpoint}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	var (
		tlsCert tls.Certificate
		err     error
	)
	wrapped, rerr := os.ReadFile(filepath.Join(n.dir, fileClusterSeal))
	bootstrap := false
	switch {
	case rerr == nil:
		if n.sealKey, err = nodeSeal.Unwrap(wrapped, []byte(clusterSealAAD)); err != nil {
			return nil, fmt.Errorf("cluster: the cluster's seal key in %s does not open with %s: %w", filepath.Join(n.dir, fileClusterSeal), sealName(cfg), err)
		}
		if tlsCert, n.ca, err = n.loadCerts(); err != nil {
			return nil, err
		}
	case !errors.Is(rerr, fs.ErrNotExist):
		return nil, fmt.Errorf("cluster: %w", rerr)
	case c.Bootstrap:
		if idx, err := bolt.AppliedIndex(); err != nil || idx > 0 {
			return nil, fmt.Errorf("cluster: --bootstrap needs a new data directory, and %s holds a single-node region (applied index %d): start the first node on an empty --data-dir and move HSMs in with backup and restore", cfg.DataDir, idx)
		}
		if tlsCert, err = n.bootstrap(); err != nil {
			return nil, err
		}
		bootstrap = true
	case c.Join != "":
		if c.JoinToken == "" {
			return nil, errors.New("cluster: --join needs --join-token or TRESOR_JOIN_TOKEN (create one with tresor cluster join-token)")
		}
		if idx, err := bolt.AppliedIndex(); err != nil || idx > 0 {
			return nil, fmt.Errorf("cluster: a joining node needs a new data directory, and %s holds a region (applied index %d)", cfg.DataDir, idx)
		}
		if tlsCert, err = n.join(ctx, cfg); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("cluster: node %s has no cluster state in %s: give --bootstrap to form a new cluster, or --join https://MEMBER:PORT --join-token TOKEN to join one", c.NodeID, n.dir)
	}
	if n.seal, err = barrier.NewKeySeal(n.sealKey); err != nil {
		return nil, err
	}
	if rerr != nil { // new: the key is stored last, it marks the state complete
		w, err := nodeSeal.Wrap(n.sealKey, []byte(clusterSealAAD))
		if err != nil {
			return nil, fmt.Errorf("cluster: wrap the cluster's seal key: %w", err)
		}
		if err := atomicfile.WriteNew(filepath.Join(n.dir, fileClusterSeal), w, 0o600); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(n.ca)
	lease := c.Lease.Duration
	if lease == 0 {
		lease = DefaultLease
	}
	n.raft, err = raftstore.Open(bolt, raftstore.Config{
		NodeID: c.NodeID, Dir: filepath.Join(n.dir, "raft"), BindAddr: c.RaftAddr, AdvertiseAddr: c.RaftAdvertiseAddr,
		TLS: clusterTLS(tlsCert, pool), Bootstrap: bootstrap, Lease: lease, Logger: log,
		SnapshotThreshold: c.SnapshotThreshold, TrailingLogs: c.TrailingLogs, SnapshotInterval: c.SnapshotInterval.Duration,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := n.waitReady(ctx); err != nil {
		n.raft.Close()
		return nil, err
	}
	return n, nil
}

// clusterTLS is the cluster link's TLS: both sides present a certificate
// of the cluster CA and check the other's against it. Nodes are known by
// certificate, not by host name (they are dialled by address), so the
// chain is verified here rather than by host name.
func clusterTLS(cert tls.Certificate, pool *x509.CertPool) *tls.Config {
	verify := func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
		if len(rawCerts) == 0 {
			return errors.New("cluster: the peer presented no certificate")
		}
		certs := make([]*x509.Certificate, len(rawCerts))
		for i, raw := range rawCerts {
			c, err := x509.ParseCertificate(raw)
			if err != nil {
				return fmt.Errorf("cluster: peer certificate: %w", err)
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}})
		if err != nil {
			return fmt.Errorf("cluster: the peer's certificate is not the cluster's: %w", err)
		}
		return nil
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
		// The server side's chain check is ClientCAs'; the client side's is
		// verify (no host names): InsecureSkipVerify only turns off Go's
		// host-name check, VerifyPeerCertificate still runs.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verify,
	}
}

// waitReady waits for a leader and, on a new joiner, for the state the
// leader had when it answered the join. It logs every few seconds while
// it waits (a cluster that lost its quorum waits here).
func (n *clusterNode) waitReady(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		err := n.raft.WaitLeader(wctx)
		cancel()
		if err == nil && n.raft.AppliedIndex() >= n.joinedAt {
			if err := n.raft.Healthy(); err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cluster: node %s found no leader: %w", n.cfg.NodeID, ctx.Err())
		}
		select {
		case <-tick.C:
			n.log.Warn("waiting for the cluster's leader", "node", n.cfg.NodeID, "applied", n.raft.AppliedIndex(), "want", n.joinedAt)
		default:
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (n *clusterNode) loadCerts() (tls.Certificate, *x509.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(n.dir, fileNodeCert), filepath.Join(n.dir, fileNodeKey))
	if err != nil {
		return pair, nil, fmt.Errorf("cluster: the node's certificate: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(n.dir, fileClusterCA))
	if err != nil {
		return pair, nil, fmt.Errorf("cluster: %w", err)
	}
	ca, err := parseCertPEM(b)
	if err != nil {
		return pair, nil, fmt.Errorf("cluster: %s: %w", fileClusterCA, err)
	}
	return pair, ca, nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// bootstrap makes a new cluster's seal key, CA and this node's certificate.
func (n *clusterNode) bootstrap() (tls.Certificate, error) {
	n.sealKey = make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, n.sealKey); err != nil {
		return tls.Certificate{}, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Tresor cluster CA", Organization: []string{"Tresor"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	if n.ca, err = x509.ParseCertificate(der); err != nil {
		return tls.Certificate{}, err
	}
	n.caKey, n.newCA = caKey, true
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	certDER, err := issueNodeCert(n.ca, caKey, n.cfg.NodeID, &key.PublicKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return n.writeCerts(certDER, key)
}

func (n *clusterNode) writeCerts(certDER []byte, key *ecdsa.PrivateKey) (tls.Certificate, error) {
	if err := atomicfile.Write(filepath.Join(n.dir, fileClusterCA), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: n.ca.Raw}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	if err := writePair(filepath.Join(n.dir, fileNodeCert), filepath.Join(n.dir, fileNodeKey), certDER, key); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(filepath.Join(n.dir, fileNodeCert), filepath.Join(n.dir, fileNodeKey))
}

// issueNodeCert certifies a node's key for the cluster link (server and
// client authentication), naming the node.
func issueNodeCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, nodeID string, pub any) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "tresor node " + nodeID, Organization: []string{"Tresor"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(nodeCertLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	return x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
}

// join asks the member at cfg.Cluster.Join to let this node in, and writes
// what it answered. It follows the answer of a follower to the leader.
func (n *clusterNode) join(ctx context.Context, cfg Config) (tls.Certificate, error) {
	c := cfg.Cluster
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	xk, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	adv := c.RaftAdvertiseAddr
	if adv == "" {
		adv = c.RaftAddr
	}
	req := wire.ClusterJoinRequest{NodeID: c.NodeID, RaftAddr: adv, Token: c.JoinToken, PublicKey: pub, ExchangeKey: xk.PublicKey().Bytes()}
	hc, err := joinClient(c.JoinCAFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	var resp wire.ClusterJoinResponse
	target := strings.TrimSuffix(c.Join, "/")
	deadline := time.Now().Add(time.Minute)
	for {
		leader, err := postJoin(ctx, hc, target, req, &resp)
		if err == nil {
			break
		}
		if leader != "" && leader != target {
			n.log.Info("joining through the leader", "leader", leader)
			target = leader
			continue
		}
		var ue unavailableError
		if !errors.As(err, &ue) || time.Now().After(deadline) {
			return tls.Certificate{}, fmt.Errorf("cluster: join through %s: %w", target, err)
		}
		select {
		case <-ctx.Done():
			return tls.Certificate{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if n.ca, err = parseCertPEM([]byte(resp.CACert)); err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: the join answer's CA: %w", err)
	}
	cert, err := parseCertPEM([]byte(resp.NodeCert))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: the join answer's node certificate: %w", err)
	}
	if err := cert.CheckSignatureFrom(n.ca); err != nil || !cert.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		return tls.Certificate{}, errors.New("cluster: the join answer's node certificate is not for this node's key or not from the cluster CA")
	}
	if n.sealKey, err = openJoinKey(xk, resp.ServerKey, resp.SealedKey, c.NodeID); err != nil {
		return tls.Certificate{}, err
	}
	n.joinedAt = resp.AppliedIndex
	n.log.Info("joined the cluster", "node", c.NodeID, "leader", resp.Leader, "catchUpTo", resp.AppliedIndex)
	return n.writeCerts(cert.Raw, key)
}

type unavailableError struct{ msg string }

func (e unavailableError) Error() string { return e.msg }

// postJoin sends the join request; on an error answer it returns the
// leader endpoint the member named, if any.
func postJoin(ctx context.Context, hc *http.Client, target string, req wire.ClusterJoinRequest, out *wire.ClusterJoinResponse) (leader string, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/tresor/cluster/join", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	hreq.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(hreq)
	if err != nil {
		return "", unavailableError{err.Error()}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if res.StatusCode == http.StatusOK {
		return "", json.Unmarshal(b, out)
	}
	var e wire.Error
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
		msg = e.Error.Code + ": " + e.Error.Message
	}
	if res.StatusCode == http.StatusServiceUnavailable {
		return res.Header.Get(api.LeaderHeader), unavailableError{msg}
	}
	return "", fmt.Errorf("%s (%d)", msg, res.StatusCode)
}

func joinClient(caFile string) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: --join-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("cluster: --join-ca-file %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, Proxy: nil}}, nil
}

// sealJoinKey encrypts the cluster's seal key to a joiner's X25519 key:
// AES-256-GCM under HKDF-SHA-256 of the shared secret, bound to the node id.
func sealJoinKey(peer []byte, key []byte, nodeID string) (serverPub, sealed []byte, err error) {
	pk, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, nil, fault.New(fault.BadParameter, "BadParameter", "exchangeKey is not an X25519 public key")
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	aead, err := joinAEAD(eph, pk, nodeID)
	if err != nil {
		return nil, nil, fault.New(fault.BadParameter, "BadParameter", "exchangeKey is not a usable X25519 public key")
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, nil, err
	}
	return eph.PublicKey().Bytes(), aead.Seal(nonce, nonce, key, []byte(nodeID)), nil
}

func openJoinKey(priv *ecdh.PrivateKey, serverPub, sealed []byte, nodeID string) ([]byte, error) {
	pk, err := ecdh.X25519().NewPublicKey(serverPub)
	if err != nil {
		return nil, errors.New("cluster: the join answer's server key is not X25519")
	}
	aead, err := joinAEAD(priv, pk, nodeID)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("cluster: the join answer's sealed key is too short")
	}
	key, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(nodeID))
	if err != nil || len(key) != 32 {
		return nil, errors.New("cluster: the join answer's sealed key does not open")
	}
	return key, nil
}

func joinAEAD(priv *ecdh.PrivateKey, pub *ecdh.PublicKey, nodeID string) (cipher.AEAD, error) {
	shared, err := priv.ECDH(pub)
	if err != nil {
		return nil, err
	}
	k, err := hkdf.Key(sha256.New, shared, nil, joinKeyInfo+"/"+nodeID, 32)
	if err != nil {
		return nil, err
	}
	blk, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// opened is called once the region is open (its barrier known): the
// bootstrap node stores the cluster CA, and every node its endpoint.
func (n *clusterNode) opened(ctx context.Context, rb *barrier.Barrier) error {
	n.mu.Lock()
	n.region = rb
	newCA, caKey := n.newCA, n.caKey
	n.mu.Unlock()
	if newCA {
		kb, err := x509.MarshalPKCS8PrivateKey(caKey)
		if err != nil {
			return err
		}
		v, err := json.Marshal(caRecord{Cert: n.ca.Raw, Key: kb})
		if err != nil {
			return err
		}
		sealed, err := rb.Seal("region/"+keyClusterCA, v)
		if err != nil {
			return err
		}
		if err := n.raft.Apply(ctx, store.PutRegionValue{Key: keyClusterCA, Value: sealed, IfAbsent: true}); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("cluster: store the cluster CA: %w", err)
		}
		n.mu.Lock()
		n.newCA = false
		n.mu.Unlock()
	}
	var cur []byte
	err := n.raft.View(ctx, func(r store.Reader) error {
		v, err := r.RegionValue(prefixNodeEndpoint + n.cfg.NodeID)
		cur = v
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if string(cur) != n.endpoint {
		if err := n.raft.Apply(ctx, store.PutRegionValue{Key: prefixNodeEndpoint + n.cfg.NodeID, Value: []byte(n.endpoint)}); err != nil {
			return fmt.Errorf("cluster: record the node's endpoint: %w", err)
		}
	}
	return nil
}

type caRecord struct {
	Cert []byte `json:"cert"`
	Key  []byte `json:"key"`
}

// caSigner reads the cluster CA's key from the replicated state.
func (n *clusterNode) caSigner(ctx context.Context) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	n.mu.Lock()
	rb := n.region
	n.mu.Unlock()
	if rb == nil {
		return nil, nil, fault.New(fault.Unavailable, "ServiceUnavailable", "the node is starting")
	}
	var sealed []byte
	err := n.raft.View(ctx, func(r store.Reader) error {
		var err error
		sealed, err = r.RegionValue(keyClusterCA)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: read the cluster CA: %w", err)
	}
	pt, err := rb.Open("region/"+keyClusterCA, sealed)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: open the cluster CA: %w", err)
	}
	var rec caRecord
	if err := json.Unmarshal(pt, &rec); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(rec.Key)
	if err != nil {
		return nil, nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("cluster: the cluster CA's key is not ECDSA")
	}
	return cert, ek, nil
}

func (n *clusterNode) close() error {
	n.bg.Wait()
	if n.raft == nil {
		return nil
	}
	return n.raft.Close()
}

// ---------------------------------------------------------------------------
// api.Cluster

var _ api.Cluster = (*clusterNode)(nil)

// Status implements [api.Cluster].
func (n *clusterNode) Status(ctx context.Context) (wire.ClusterStatus, error) {
	id, _ := n.raft.Leader()
	st := wire.ClusterStatus{NodeID: n.cfg.NodeID, Leader: id, Healthy: true,
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.raft.AppliedIndex(), Members: []wire.ClusterMember{}}
	if err := n.raft.Healthy(); err != nil {
		st.Healthy, st.Message = false, err.Error()
	}
	mctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ms, err := n.raft.Members(mctx)
	if err != nil {
		return st, fmt.Errorf("cluster: members: %w", err)
	}
	for _, m := range ms {
		st.Members = append(st.Members, wire.ClusterMember{ID: m.ID, Address: m.Addr, Voter: m.Voter, Leader: m.Leader,
			Reachable: m.Reachable, LastContactMs: m.LastContact.Milliseconds(), AppliedIndex: m.AppliedIndex})
	}
	return st, nil
}

// NewJoinToken implements [api.Cluster].
func (n *clusterNode) NewJoinToken(ctx context.Context, ttl time.Duration) (wire.ClusterJoinToken, error) {
	if ttl <= 0 || ttl > maxJoinTokenTTL {
		ttl = time.Hour
	}
	raw := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, raw); err != nil {
		return wire.ClusterJoinToken{}, err
	}
	tok := joinTokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	exp := time.Now().Add(ttl).UTC().Truncate(time.Second)
	n.mu.Lock()
	rb := n.region
	n.mu.Unlock()
	key := prefixJoinToken + tokenHash(tok)
	v, _ := json.Marshal(joinTokenRecord{Expires: exp})
	sealed, err := rb.Seal("region/"+key, v)
	if err != nil {
		return wire.ClusterJoinToken{}, err
	}
	if err := n.raft.Apply(ctx, store.PutRegionValue{Key: key, Value: sealed}); err != nil {
		return wire.ClusterJoinToken{}, err
	}
	return wire.ClusterJoinToken{Token: tok, Expires: exp}, nil
}

type joinTokenRecord struct {
	Expires time.Time `json:"expires"`
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func errJoinRefused() error {
	return fault.New(fault.Unauthorized, "InvalidJoinToken", "the join token is not valid: it is unknown or expired (create one with tresor cluster join-token)")
}

// Join implements [api.Cluster]: only the leader lets nodes in.
func (n *clusterNode) Join(ctx context.Context, req wire.ClusterJoinRequest) (wire.ClusterJoinResponse, error) {
	var out wire.ClusterJoinResponse
	if !nodeIDPattern.MatchString(req.NodeID) {
		return out, fault.New(fault.BadParameter, "BadParameter", "nodeId %q must be 1-64 letters, digits, '.', '_' or '-'", req.NodeID)
	}
	if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil {
		return out, fault.New(fault.BadParameter, "BadParameter", "raftAddr %q is not host:port", req.RaftAddr)
	}
	if !strings.HasPrefix(req.Token, joinTokenPrefix) || len(req.Token) > 200 {
		return out, errJoinRefused()
	}
	if !n.raft.IsLeader() {
		return out, fault.New(fault.Unavailable, "NotLeader", "node %s is not the cluster's leader; join through the leader", n.cfg.NodeID)
	}
	n.mu.Lock()
	rb := n.region
	n.mu.Unlock()
	if rb == nil {
		return out, fault.New(fault.Unavailable, "ServiceUnavailable", "the node is starting")
	}
	key := prefixJoinToken + tokenHash(req.Token)
	var sealed []byte
	err := n.raft.View(ctx, func(r store.Reader) error {
		var err error
		sealed, err = r.RegionValue(key)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return out, errJoinRefused()
	}
	if err != nil {
		return out, err
	}
	pt, err := rb.Open("region/"+key, sealed)
	if err != nil {
		return out, fmt.Errorf("cluster: open the join token record: %w", err)
	}
	var rec joinTokenRecord
	if err := json.Unmarshal(pt, &rec); err != nil {
		return out, err
	}
	// The record was found by the token's hash; compare again in constant
	// time for good measure, and check the expiry.
	if subtle.ConstantTimeCompare([]byte(key), []byte(prefixJoinToken+tokenHash(req.Token))) != 1 || !time.Now().Before(rec.Expires) {
		return out, errJoinRefused()
	}
	pub, err := x509.ParsePKIXPublicKey(req.PublicKey)
	if err != nil {
		return out, fault.New(fault.BadParameter, "BadParameter", "publicKey is not a PKIX public key")
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		return out, fault.New(fault.BadParameter, "BadParameter", "publicKey must be an ECDSA key")
	}
	ca, caKey, err := n.caSigner(ctx)
	if err != nil {
		return out, err
	}
	der, err := issueNodeCert(ca, caKey, req.NodeID, pub)
	if err != nil {
		return out, err
	}
	if out.ServerKey, out.SealedKey, err = sealJoinKey(req.ExchangeKey, n.sealKey, req.NodeID); err != nil {
		return out, err
	}
	out.CACert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}))
	out.NodeCert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	out.AppliedIndex = n.raft.AppliedIndex()
	out.Leader = n.cfg.NodeID
	// The new voter is added once the node listens: the configuration
	// change needs it when the cluster has one or two voters.
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		actx, cancel := context.WithTimeout(context.Background(), joinAddVoterTimeout)
		defer cancel()
		for {
			err := n.raft.AddVoter(actx, req.NodeID, req.RaftAddr)
			if err == nil {
				n.log.Info("node joined the cluster", "node", req.NodeID, "raftAddr", req.RaftAddr)
				return
			}
			if actx.Err() != nil {
				n.log.Error("add the joining node as a voter", "node", req.NodeID, "err", err)
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	return out, nil
}

// Remove implements [api.Cluster].
func (n *clusterNode) Remove(ctx context.Context, nodeID string) error {
	if !n.raft.IsLeader() {
		return fault.New(fault.Unavailable, "NotLeader", "node %s is not the cluster's leader: remove nodes through the leader (tresor cluster list names it)", n.cfg.NodeID)
	}
	if nodeID == n.cfg.NodeID {
		return fault.New(fault.Conflict, "Conflict", "the leader cannot remove itself: transfer the leadership first (tresor cluster transfer-leadership)")
	}
	ms, err := n.raft.Members(ctx)
	if err != nil {
		return err
	}
	found := false
	for _, m := range ms {
		found = found || m.ID == nodeID
	}
	if !found {
		return fault.New(fault.NotFound, "NotFound", "the cluster has no node %q", nodeID)
	}
	return n.raft.RemoveServer(ctx, nodeID)
}

// TransferLeadership implements [api.Cluster].
func (n *clusterNode) TransferLeadership(ctx context.Context, to string) error {
	if !n.raft.IsLeader() {
		return fault.New(fault.Unavailable, "NotLeader", "node %s is not the cluster's leader: ask the leader (tresor cluster list names it)", n.cfg.NodeID)
	}
	return n.raft.TransferLeadership(ctx, to)
}

// LeaderEndpoint implements [api.Cluster].
func (n *clusterNode) LeaderEndpoint() string {
	id, _ := n.raft.Leader()
	if id == "" || id == n.cfg.NodeID {
		return ""
	}
	var ep []byte
	_ = n.bolt.View(context.Background(), func(r store.Reader) error {
		var err error
		ep, err = r.RegionValue(prefixNodeEndpoint + id)
		return err
	})
	return string(ep)
}

// apiCluster is the cluster for the API (a nil interface on a single node).
func (s *Server) apiCluster() api.Cluster {
	if s.cluster == nil {
		return nil
	}
	return s.cluster
}

// leaderPoll is how often a cluster node checks whether it leads.
const leaderPoll = 250 * time.Millisecond

// whileLeader runs fn until ctx ends. On a cluster node it runs fn only
// while the node is the leader (the region's background work: automatic
// purges, key rotations, scheduled backups happen once, on the leader),
// cancelling it when the node loses the leadership.
func (s *Server) whileLeader(ctx context.Context, fn func(context.Context)) {
	if s.cluster == nil {
		fn(ctx)
		return
	}
	t := time.NewTicker(leaderPoll)
	defer t.Stop()
	type run struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	var cur *run
	halt := func() {
		if cur != nil {
			cur.cancel()
			<-cur.done
			cur = nil
		}
	}
	defer halt()
	for {
		leader := s.cluster.raft.IsLeader()
		switch {
		case leader && cur == nil:
			lctx, cancel := context.WithCancel(ctx)
			cur = &run{cancel: cancel, done: make(chan struct{})}
			go func(done chan struct{}) {
				defer close(done)
				fn(lctx)
			}(cur.done)
		case !leader && cur != nil:
			halt()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
