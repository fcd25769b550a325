package server_test

import (
	"context"
	"crypto/fips140"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"tresor/internal/server"
)

// startLogged starts a region whose log the test reads.
func startLogged(t *testing.T) (*server.Server, *lockedBuffer) {
	t.Helper()
	logs := new(lockedBuffer)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, regionConfig(t.TempDir()), logs)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Close()
	})
	return s, logs
}

func caPool(t *testing.T, s *server.Server) *x509.CertPool {
	t.Helper()
	pemBytes, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	return pool
}

// TestTLS12Suites: in TLS 1.2 the server agrees only to ECDHE with AEAD
// ciphers; a client that offers only CBC suites gets no connection.
func TestTLS12Suites(t *testing.T) {
	s, _ := startLogged(t)
	pool := caPool(t, s)
	tests := map[string]struct {
		suites []uint16
		ok     bool
	}{
		"ECDHE-ECDSA AES-128-GCM": {[]uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, true},
		"ECDHE-ECDSA AES-256-GCM": {[]uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}, true},
		"ECDHE-ECDSA ChaCha20":    {[]uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}, !fips140.Enabled()}, // not approved in FIPS 140-3 mode
		"CBC-SHA1 only": {[]uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}, false},
		"ECDSA CBC-SHA256 only": {[]uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}, false},
		"RSA key exchange only": {[]uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: pool, ServerName: "localhost",
				MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: tc.suites})
			if err == nil {
				defer conn.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("handshake: %v, want success %v", err, tc.ok)
			}
		})
	}
}

// TestFailedHandshakesLoggedRateLimited: 100 clients that do not trust the
// certificate leave a few log lines, not 100.
func TestFailedHandshakesLoggedRateLimited(t *testing.T) {
	s, logs := startLogged(t)
	for range 100 {
		conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12}) // no CA: refuses the certificate
		if err == nil {
			conn.Close()
			t.Fatal("a client without the CA completed the handshake")
		}
	}
	// The server logs the failures from the connections' goroutines: wait
	// for the first line (the count below can only grow later).
	count := func() int { return strings.Count(logs.String(), "TLS handshake error") }
	for deadline := time.Now().Add(10 * time.Second); count() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	// One more handshake after all others, to let the stragglers land.
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
	}
	if n := count(); n < 1 || n > 3 {
		t.Fatalf("%d handshake failure lines for 100 failed handshakes, want 1 to 3:\n%s", n, logs.String())
	}
}
