package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"tresor/internal/bench"
	"tresor/internal/client"
	"tresor/internal/wire"
)

// The bare ceiling: a Go HTTPS server with no auth, no store, no logging
// and minimal JSON that does the same operation on the same key. It runs
// as a child process of the bench tool (`tresor bench bare-server`), as
// the region does, so that both servers are measured the same way: their
// own process and their own Go runtime on the same cores, driven by the
// same load client over the same kind of connection.

// bareKey is one key the bare server holds, as its stdin gives it.
type bareKey struct {
	Spec string          `json:"spec"`
	Name string          `json:"name"`
	JWK  wire.JSONWebKey `json:"jwk"`
}

// bareServerCommand is the hidden `tresor bench bare-server`: it reads
// its keys (a JSON array of bareKey) from stdin, listens on 127.0.0.1 with
// a fresh self-signed ECDSA P-256 certificate (the kind the region's dev
// certificate is), prints "listening on {addr}" and "cert {base64 DER}"
// and serves until stdin closes.
func (a *app) bareServerCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "bare-server",
		Short:  "The bare HTTPS ceiling server of tresor bench (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := bufio.NewReader(a.env.Stdin)
			var keys []bareKey
			if err := json.NewDecoder(in).Decode(&keys); err != nil {
				return fmt.Errorf("bare-server: reading the keys: %w", err)
			}
			h, err := newBareHandler(keys)
			if err != nil {
				return err
			}
			pair, der, err := selfSignedCert()
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
				ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
			fmt.Fprintf(a.env.Stdout, "listening on %s\ncert %s\n", ln.Addr(), base64.StdEncoding.EncodeToString(der))
			done := make(chan struct{})
			go func() { // the parent closes stdin (or dies): stop
				_, _ = io.Copy(io.Discard, in)
				close(done)
			}()
			go func() {
				select {
				case <-done:
				case <-cmd.Context().Done():
				}
				_ = srv.Close()
			}()
			if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
}

// newBareHandler routes each workload's method and path to its Serve.
func newBareHandler(keys []bareKey) (http.Handler, error) {
	routes := map[string]*bench.Workload{}
	add := func(w *bench.Workload) {
		path, _, _ := strings.Cut(w.Path, "?")
		routes[w.Method+" "+path] = w
	}
	add(bench.EmptyWorkload())
	for _, bk := range keys {
		spec, ok := bench.LookupKeySpec(bk.Spec)
		if !ok {
			return nil, fmt.Errorf("bare-server: unknown key spec %q", bk.Spec)
		}
		k, err := bench.KeyFromJWK(spec, bk.JWK)
		if err != nil {
			return nil, err
		}
		for _, op := range bench.Ops {
			if !spec.Supports(op) {
				continue
			}
			w, err := k.Workload(op, bk.Name)
			if err != nil {
				return nil, err
			}
			add(w)
		}
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w := routes[r.Method+" "+bareRoute(r.URL.Path)]
		if w == nil {
			http.Error(rw, `{"error":{"code":"NotFound"}}`, http.StatusNotFound)
			return
		}
		out, err := w.Serve(body)
		if err != nil {
			http.Error(rw, `{"error":{"code":"BadParameter"}}`, http.StatusBadRequest)
			return
		}
		rw.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = rw.Write(out)
	}), nil
}

// bareRoute maps the path of a create, /keys/{name}-new-{number}/create,
// to its workload's /keys/{name}-new-{n}/create; other paths stay.
func bareRoute(path string) string {
	rest, ok := strings.CutSuffix(path, "/create")
	i := strings.LastIndex(rest, "-new-")
	if !ok || i < 0 {
		return path
	}
	return rest[:i] + "-new-" + bench.NewKeyPlaceholder + "/create"
}

// selfSignedCert makes a certificate for 127.0.0.1.
func selfSignedCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tresor bench bare server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der, nil
}

// bareServer is a running bare-server child.
type bareServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	roots *x509.CertPool
}

// startBareServer starts `{this binary} bench bare-server` with keys.
func startBareServer(ctx context.Context, keys []bareKey) (*bareServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "bench", "bare-server")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &bareServer{cmd: cmd, stdin: stdin}
	if err := json.NewEncoder(stdin).Encode(keys); err != nil {
		b.stop()
		return nil, fmt.Errorf("bare server: %w", err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for b.roots == nil && sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "listening on "); ok {
			b.addr = v
		}
		if v, ok := strings.CutPrefix(line, "cert "); ok {
			der, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				b.stop()
				return nil, fmt.Errorf("bare server: certificate: %w", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				b.stop()
				return nil, fmt.Errorf("bare server: certificate: %w", err)
			}
			b.roots = x509.NewCertPool()
			b.roots.AddCert(cert)
		}
	}
	if b.addr == "" || b.roots == nil {
		b.stop()
		return nil, fmt.Errorf("bare server did not start: %s", oneLine(stderr.String()))
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return b, nil
}

// stop closes the child's stdin, which ends it, and waits (killing it
// after 5 s).
func (b *bareServer) stop() {
	_ = b.stdin.Close()
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
}

// target is one server the load client drives: the HSM's base URL (its
// host is the HTTP Host and TLS server name), the address to dial, the
// CAs to trust and the bearer token to send (none for the bare server).
type target struct {
	base  string
	dial  string
	roots *x509.CertPool
	token func(ctx context.Context) (string, error)
	pid   int // the server's process, when it is a child (else 0)
}

// loader is the load client of one run: HTTP/1.1 over TLS with
// keep-alive, one connection per worker, the same for Tresor and the bare
// server.
type loader struct {
	t     target
	hc    *http.Client
	runID string       // makes the names of created keys unique to the run
	n     atomic.Int64 // numbers the created keys
}

func newLoader(t target, conns int, runID string) *loader {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: t.roots, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, t.dial)
		},
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     2 * time.Minute,
		// HTTP/1.1: one request at a time per connection, so that the
		// concurrency is the number of connections, as the issue measures.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	return &loader{t: t, hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}, runID: runID}
}

func (l *loader) close() { l.hc.CloseIdleConnections() }

// op returns the bench.Op that sends w's request and expects a 200.
func (l *loader) op(w *bench.Workload) bench.Op {
	u := strings.TrimRight(l.t.base, "/") + w.Path
	fresh := strings.Contains(u, bench.NewKeyPlaceholder)
	return func(ctx context.Context, _ int) error {
		u := u
		if fresh {
			u = strings.Replace(u, bench.NewKeyPlaceholder, l.runID+"-"+strconv.FormatInt(l.n.Add(1), 10), 1)
		}
		var body io.Reader
		if w.Body != nil {
			body = bytes.NewReader(w.Body)
		}
		req, err := http.NewRequestWithContext(ctx, w.Method, u, body)
		if err != nil {
			return err
		}
		if w.Body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if l.t.token != nil {
			tok, err := l.t.token(ctx)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := l.hc.Do(req)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %d %s", w.Method, redactQuery(u), resp.StatusCode, oneLine(string(data[:min(len(data), 300)])))
		}
		return nil
	}
}

// procCPU is the CPU time (user and system) that process pid has used
// (Linux: /proc/{pid}/stat, in clock ticks of 10 ms).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in parens:
	// state is the 3rd field, utime the 14th and stime the 15th.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat format")
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(ut+st) * tick, nil
}

func redactQuery(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Path
}

// tokenSource hands out the HSM token of c, fetching a new one when the
// one it holds expires within five minutes.
type tokenSource struct {
	c   *client.Client
	mu  sync.Mutex
	tok client.AccessToken
}

func (s *tokenSource) token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Token != "" && time.Until(s.tok.ExpiresOn) > 5*time.Minute {
		return s.tok.Token, nil
	}
	t, err := s.c.HSMToken(ctx)
	if err != nil {
		return "", err
	}
	s.tok = t
	return t.Token, nil
}
