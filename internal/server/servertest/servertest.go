// Package servertest starts real Tresor region servers for tests: the same
// composition root as `tresor server --dev`, over real HTTPS on 127.0.0.1.
package servertest

import (
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
	"strings"
	"sync"
	"testing"
	"time"

	"tresor/internal/server"
)

// Server is a running test region.
type Server struct {
	*server.Server
	Addr         string // 127.0.0.1:port
	DataDir      string
	ClientID     string // the bootstrap administrator
	ClientSecret string
	ObjectID     string
	Config       server.Config
	stop         func()

	mu         sync.Mutex
	transports []*http.Transport
	logs       *logBuffer
}

// Option changes the configuration before start.
type Option func(*server.Config)

// Start starts a dev-mode region on 127.0.0.1:0 in a temporary directory
// and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Dev = true
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	for _, o := range opts {
		o(&cfg)
	}
	s := StartConfig(t, cfg)
	return s
}

// StartConfig starts a region with cfg.
func StartConfig(t testing.TB, cfg server.Config) *Server {
	t.Helper()
	return StartConfigLog(t, cfg, nil)
}

// StartConfigLog starts a region with cfg whose log also goes to logw
// (when not nil), for tests that check what the server logs.
func StartConfigLog(t testing.TB, cfg server.Config, logw io.Writer) *Server {
	t.Helper()
	w := io.Discard
	if logw != nil {
		w = logw
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &logBuffer{}
	srv, err := server.New(ctx, cfg, io.MultiWriter(testWriter{t, logs}, w))
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	s := &Server{Server: srv, Addr: srv.Addr(), DataDir: cfg.DataDir, Config: cfg, logs: logs}
	if b := srv.Bootstrap; b != nil {
		s.ClientID, s.ClientSecret, s.ObjectID = b.ClientID, b.ClientSecret, b.ObjectID
	}
	var once bool
	s.stop = func() {
		if once {
			return
		}
		once = true
		// Close the clients' idle connections first: the server's graceful
		// shutdown waits for connections that never sent a request.
		s.mu.Lock()
		for _, tr := range s.transports {
			tr.CloseIdleConnections()
		}
		s.mu.Unlock()
		cancel()
		if err := <-done; err != nil && err != http.ErrServerClosed {
			t.Errorf("server run: %v", err)
		}
		srv.Close()
	}
	t.Cleanup(s.stop)
	return s
}

// Stop stops the server (also done at the end of the test).
func (s *Server) Stop() { s.stop() }

// Logs returns everything the server has logged so far.
func (s *Server) Logs() string { return s.logs.String() }

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testWriter struct {
	t    testing.TB
	logs *logBuffer
}

func (w testWriter) Write(p []byte) (int, error) {
	w.logs.mu.Lock()
	w.logs.b.Write(p)
	w.logs.mu.Unlock()
	// A fuzz test's server logs every request of its target, where f.Log
	// is not allowed, and a benchmark's every iteration: their lines stay
	// in Logs only.
	switch w.t.(type) {
	case *testing.F, *testing.B:
	default:
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// HTTPClient returns a client that trusts the region CA and dials the
// region address for every host (so {name}.{dnsSuffix} reaches the server
// while keeping its Host and SNI).
func (s *Server) HTTPClient(t testing.TB) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("bad CA file")
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, s.Addr)
		},
		MaxIdleConnsPerHost: 64,
	}
	s.mu.Lock()
	s.transports = append(s.transports, tr)
	s.mu.Unlock()
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// HSMURL is the data-plane URL of an instance.
func (s *Server) HSMURL(name string) string {
	_, port, _ := net.SplitHostPort(s.Addr)
	return fmt.Sprintf("https://%s.%s:%s", name, s.Config.DNSSuffix, port)
}

// HSMResource is the audience of data-plane tokens.
func (s *Server) HSMResource() string {
	_, port, _ := net.SplitHostPort(s.Addr)
	return fmt.Sprintf("https://%s:%s", s.Config.DNSSuffix, port)
}

// Token gets a token for resource with client credentials.
func (s *Server) Token(t testing.TB, clientID, secret, resource string) string {
	t.Helper()
	form := url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"scope": {resource + "/.default"},
	}
	hc := s.HTTPClient(t)
	// A client of its own per token: close its connection afterwards, or
	// tests that fetch many tokens hold many idle connections (and meet
	// the server's per-client connection cap).
	defer hc.CloseIdleConnections()
	resp, err := hc.PostForm(s.Endpoint+"/"+s.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// AdminToken is a control-plane token of the bootstrap administrator.
func (s *Server) AdminToken(t testing.TB) string {
	return s.Token(t, s.ClientID, s.ClientSecret, s.Endpoint)
}
