package e2e_test

// The harness of the disaster-recovery tests: the built tresor binary run as
// region processes, the CLI run as separate processes with an operator's or
// a principal's credentials, a recording TLS proxy in front of each region
// (to show what the CLI sent), a gate in front of Azurite (to hold a restore
// while it runs), custodian keys from openssl, and tokens of an external
// OIDC issuer that two regions trust.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
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
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// binary is the tresor executable, built once per test binary.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// tresorBinary builds cmd/tresor (once) and returns its path.
func tresorBinary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		binary.dir, binary.err = os.MkdirTemp("", "tresor-e2e-bin")
		if binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "tresor")
		out, err := exec.Command("go", "build", "-o", binary.path, "tresor/cmd/tresor").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

func removeBinary() {
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// region is one `tresor server --dev` process with its own data directory,
// seal and identity, and a recording proxy in front of it.
type region struct {
	t       *testing.T
	name    string // the region (location) name
	dataDir string
	addr    string
	args    []string // extra server flags
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	env     map[string]string // dev.env: TRESOR_SERVER, TRESOR_CLIENT_ID, …
	proxy   *recorder
	caFile  string // the CAs the CLI trusts
	killed  bool
}

// startRegion starts a region named name in dir (created if needed) and
// waits until it answers.
func startRegion(t *testing.T, name, dir string, args ...string) *region {
	t.Helper()
	r := &region{t: t, name: name, dataDir: dir, addr: freeAddr(t), args: args, logPath: filepath.Join(t.TempDir(), name+".log")}
	r.start()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			b, _ := os.ReadFile(r.logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("log of region %s (end):\n%s", name, b)
		}
	})
	return r
}

func (r *region) start() {
	t := r.t
	t.Helper()
	log, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"server", "--dev", "--data-dir", r.dataDir, "--listen", r.addr, "--region", r.name}, r.args...)
	r.cmd = exec.Command(tresorBinary(t), args...)
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		log.Close()
		t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); log.Close(); close(done) }(r.cmd, r.done)

	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(r.dataDir, "dev.env")); err == nil {
			r.env = map[string]string{}
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
					r.env[k] = v
				}
			}
			if r.env["TRESOR_SERVER"] != "" {
				break
			}
		}
		r.wait(deadline, "dev.env")
	}
	ca, err := os.ReadFile(r.env["TRESOR_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	if r.proxy == nil {
		r.proxy = newRecorder(t)
	}
	r.proxy.forward(r.addr, ca)
	// The CLI trusts the proxy and the region: it fetches tokens from the
	// authority the region names (the region itself), and sends everything
	// else through the proxy.
	r.caFile = filepath.Join(r.t.TempDir(), "trust.pem")
	proxyCA, _ := os.ReadFile(r.proxy.caFile)
	if err := os.WriteFile(r.caFile, append(proxyCA, ca...), 0o600); err != nil {
		t.Fatal(err)
	}
	hc := r.proxy.client()
	for {
		resp, err := hc.Get(r.endpoint() + "/tresor/region")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		r.wait(deadline, "the region endpoint")
	}
}

func (r *region) wait(deadline time.Time, what string) {
	r.t.Helper()
	select {
	case <-r.done:
		b, _ := os.ReadFile(r.logPath)
		r.t.Fatalf("region %s exited while starting (waiting for %s):\n%s", r.name, what, b)
	default:
	}
	if time.Now().After(deadline) {
		r.t.Fatalf("region %s did not start in time (waiting for %s)", r.name, what)
	}
	time.Sleep(25 * time.Millisecond)
}

// endpoint is the region endpoint as the CLI sees it: the proxy's.
func (r *region) endpoint() string { return "https://" + r.proxy.addr() }

// kill ends the region's process with SIGKILL, as a lost machine would.
func (r *region) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
	r.killed = true
}

// stop ends the process with SIGTERM (graceful).
func (r *region) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

// log returns what the region's process wrote.
func (r *region) log() []byte {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// identity is how a CLI process signs in: client credentials of a local
// principal, or a token of a trusted external issuer.
type identity struct {
	name     string // for messages
	objectID string
	clientID string
	secret   string
	// token returns a token of a trusted issuer for an audience: one for
	// the region endpoint, one for the HSM endpoints.
	token                    func(aud string) string
	armAudience, hsmAudience string
}

// cliRunner runs the tresor CLI against a region as one identity, each command
// a new process in its own config directory.
type cliRunner struct {
	t   *testing.T
	r   *region
	id  identity
	dir string // the working directory (files of the commands)
	cfg string
}

func (r *region) cli(id identity, dir string) *cliRunner {
	return &cliRunner{t: r.t, r: r, id: id, dir: dir, cfg: r.t.TempDir()}
}

func (c *cliRunner) environ() []string {
	env := []string{
		"HOME=" + c.cfg, "PATH=" + os.Getenv("PATH"),
		"TRESOR_SERVER=" + c.r.endpoint(),
		"TRESOR_CA_FILE=" + c.r.caFile,
		"TRESOR_TENANT_ID=" + c.r.env["TRESOR_TENANT_ID"],
		"TRESOR_CONFIG_DIR=" + c.cfg,
	}
	if c.id.token != nil {
		return append(env, "TRESOR_ACCESS_TOKEN="+c.id.token(c.id.armAudience), "TRESOR_HSM_ACCESS_TOKEN="+c.id.token(c.id.hsmAudience))
	}
	return append(env, "TRESOR_CLIENT_ID="+c.id.clientID, "TRESOR_CLIENT_SECRET="+c.id.secret)
}

// exec runs one command and returns its stdout, stderr and exit code.
func (c *cliRunner) exec(args ...string) (stdout, stderr []byte, code int) {
	c.t.Helper()
	cmd := exec.Command(tresorBinary(c.t), args...)
	cmd.Dir, cmd.Env = c.dir, c.environ()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		c.t.Fatalf("tresor %s: %v", strings.Join(args, " "), err)
	}
	return o.Bytes(), e.Bytes(), code
}

// run runs a command that must succeed and returns its stdout.
func (c *cliRunner) run(args ...string) []byte {
	c.t.Helper()
	out, errOut, code := c.exec(args...)
	if code != 0 {
		c.t.Fatalf("%s: tresor %s: exit %d\n%s", c.id.name, strings.Join(args, " "), code, errOut)
	}
	return out
}

// json runs a command that must succeed and decodes its JSON output into v.
func (c *cliRunner) json(v any, args ...string) {
	c.t.Helper()
	out := c.run(args...)
	if err := json.Unmarshal(out, v); err != nil {
		c.t.Fatalf("tresor %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fail runs a command that must fail with exit code 2 (the server said no)
// or 1 (refused on the client's side) and returns its stderr.
func (c *cliRunner) fail(wantCode int, args ...string) string {
	c.t.Helper()
	out, errOut, code := c.exec(args...)
	if code != wantCode {
		c.t.Fatalf("%s: tresor %s: exit %d, want %d\nstdout: %s\nstderr: %s", c.id.name, strings.Join(args, " "), code, wantCode, out, errOut)
	}
	return string(errOut)
}

// parallel runs fn for each item, four at a time, and waits for all.
func parallel[T any](items []T, fn func(T)) {
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(it)
		}()
	}
	wg.Wait()
}

// recorder is a TLS reverse proxy in front of a region that keeps every
// request (line, headers and body) the CLI sent. It presents its own
// certificate (its own CA, for localhost, 127.0.0.1 and the HSM names) and
// forwards to the region over TLS, keeping Host and SNI.
type recorder struct {
	t      *testing.T
	ln     net.Listener
	srv    *http.Server
	caFile string

	mu       sync.Mutex
	target   *httputil.ReverseProxy
	requests [][]byte
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e recording proxy CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost", "*.managedhsm.localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &recorder{t: t, caFile: filepath.Join(t.TempDir(), "proxy-ca.pem")}
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	p.ln, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}})
	if err != nil {
		t.Fatal(err)
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	go func() { _ = p.srv.Serve(p.ln) }()
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *recorder) addr() string { return p.ln.Addr().String() }

// forward points the proxy at a region listening on addr whose CA is caPEM.
func (p *recorder) forward(addr string, caPEM []byte) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2: true,
	}
	_, port, _ := net.SplitHostPort(addr)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			host := pr.In.Host
			if h, _, err := net.SplitHostPort(host); err == nil && !strings.HasSuffix(h, ".managedhsm.localhost") {
				host = net.JoinHostPort(h, port) // the region endpoint, at the region's port
			}
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = "https", host, host
			pr.SetXForwarded()
			pr.Out.Header.Del("X-Forwarded-For")
		},
		Transport: tr,
		ErrorLog:  nil,
	}
	p.mu.Lock()
	p.target = rp
	p.mu.Unlock()
}

func (p *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var rec bytes.Buffer
	fmt.Fprintf(&rec, "%s %s %s\n", req.Method, req.Host, req.URL.RequestURI())
	_ = req.Header.Write(&rec)
	rec.Write(body)
	p.mu.Lock()
	p.requests = append(p.requests, rec.Bytes())
	rp := p.target
	p.mu.Unlock()
	req.Body = io.NopCloser(bytes.NewReader(body))
	rp.ServeHTTP(w, req)
}

// sent returns everything the proxy has seen, requests separated by NUL.
func (p *recorder) sent() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Join(p.requests, []byte{0})
}

// client is an HTTP client that trusts the proxy.
func (p *recorder) client() *http.Client {
	ca, _ := os.ReadFile(p.caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// blobGate is a plain HTTP reverse proxy in front of Azurite that can hold
// the reads of backup objects, so a test can act while a restore runs.
type blobGate struct {
	ln  net.Listener
	srv *http.Server

	mu     sync.Mutex
	closed chan struct{} // non-nil while reads are held
	held   chan struct{} // gets a value when a read is held
}

func newBlobGate(t *testing.T, azuriteAddr string) *blobGate {
	t.Helper()
	g := &blobGate{held: make(chan struct{}, 100)}
	var err error
	if g.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse("http://" + azuriteAddr)
	rp := httputil.NewSingleHostReverseProxy(target)
	g.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/keys-") {
			g.mu.Lock()
			c := g.closed
			g.mu.Unlock()
			if c != nil {
				g.held <- struct{}{}
				<-c
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = g.srv.Serve(g.ln) }()
	t.Cleanup(func() { g.open(); g.srv.Close() })
	return g
}

// url is the gate's address in Azurite's path style (account first).
func (g *blobGate) url(account string) string {
	return "http://" + g.ln.Addr().String() + "/" + account
}

// close holds every later read of a keys-… object until open.
func (g *blobGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed == nil {
		g.closed = make(chan struct{})
	}
}

func (g *blobGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed != nil {
		close(g.closed)
		g.closed = nil
	}
}

// issuer is an external OIDC issuer whose JWKS is a file both regions read
// (identity.trustedIssuers with jwksFile): the test holds its signing key
// and issues tokens for any object id.
type issuer struct {
	key      *ecdsa.PrivateKey
	url      string
	arm, hsm string // the audiences of the two planes
	jwksFile string
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is := &issuer{key: key, url: "https://login.example.test/ops/v2.0", arm: "api://tresor-arm", hsm: "api://tresor-hsm", jwksFile: filepath.Join(t.TempDir(), "jwks.json")}
	pub := jose.JSONWebKey{Key: &key.PublicKey, KeyID: "ops-1", Algorithm: "ES256", Use: "sig"}
	j, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err := os.WriteFile(is.jwksFile, j, 0o600); err != nil {
		t.Fatal(err)
	}
	return is
}

// config writes a server config file that trusts the issuer and makes
// regionAdmins region administrators.
func (is *issuer) config(t *testing.T, regionAdmins ...string) string {
	t.Helper()
	// One audience per plane, as Entra ID has: the CLI gets a token for
	// each (TRESOR_ACCESS_TOKEN, TRESOR_HSM_ACCESS_TOKEN).
	cfg := map[string]any{"identity": map[string]any{
		"regionAdmins":   regionAdmins,
		"trustedIssuers": []any{map[string]any{"issuer": is.url, "jwksFile": is.jwksFile, "armAudiences": []string{is.arm}, "hsmAudiences": []string{is.hsm}}},
	}}
	b, _ := json.Marshal(cfg)
	f := filepath.Join(t.TempDir(), "tresor.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// identity is an external principal with object id oid.
func (is *issuer) identity(name, oid string) identity {
	return identity{name: name, objectID: oid, armAudience: is.arm, hsmAudience: is.hsm, token: func(aud string) string {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: is.key, KeyID: "ops-1"}}, nil)
		if err != nil {
			panic(err)
		}
		now := time.Now()
		tok, err := jwt.Signed(sig).Claims(map[string]any{"iss": is.url, "aud": aud, "oid": oid,
			"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "iat": now.Unix() - 5, "nbf": now.Unix() - 5, "exp": now.Add(time.Hour).Unix()}).Serialize()
		if err != nil {
			panic(err)
		}
		return tok
	}}
}

// custodian is one security-domain custodian: an RSA key pair made with
// openssl, its certificate and its private key in PEM files.
type custodian struct {
	cert, key string
	secrets   [][]byte // encodings of the private key that must never reach a server
}

func newCustodians(t testing.TB, dir string, n int) []custodian {
	t.Helper()
	var cs []custodian
	for i := range n {
		c := custodian{cert: filepath.Join(dir, fmt.Sprintf("cert_%d.cer", i)), key: filepath.Join(dir, fmt.Sprintf("cert_%d.key", i))}
		out, err := exec.Command("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", c.key, "-x509", "-days", "30",
			"-out", c.cert, "-subj", fmt.Sprintf("/CN=custodian %d", i)).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl: %v\n%s", err, out)
		}
		c.secrets = privateKeyEncodings(t, c.key)
		if len(c.secrets) < 20 {
			t.Fatalf("custodian %d: only %d encodings of its private key to look for", i, len(c.secrets))
		}
		cs = append(cs, c)
	}
	return cs
}

// privateKeyEncodings returns the ways a custodian's private key could be
// carried: each base64 line of its PEM file, and its private exponent and
// primes raw, in hex and in both base64 alphabets.
func privateKeyEncodings(t testing.TB, keyFile string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		t.Fatalf("%s: no PEM", keyFile)
	}
	var out [][]byte
	for line := range strings.SplitSeq(string(data), "\n") {
		if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
			out = append(out, []byte(line))
		}
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", keyFile, err)
	}
	rsaKey, ok := k.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("%s: not an RSA key", keyFile)
	}
	for _, n := range []*big.Int{rsaKey.D, rsaKey.Primes[0], rsaKey.Primes[1]} {
		b := n.Bytes()
		out = append(out, b, []byte(hex.EncodeToString(b)),
			[]byte(base64.StdEncoding.EncodeToString(b)[:40]), []byte(base64.RawURLEncoding.EncodeToString(b)[:40]))
	}
	return out
}
