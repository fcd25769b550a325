package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"tresor/internal/atomicfile"
)

// devTLS makes (once) a development CA and a server certificate for
// localhost, 127.0.0.1, ::1, the DNS suffix and *.{dnsSuffix}. It returns the
// paths of the CA certificate, the server certificate and its key.
func devTLS(dir, dnsSuffix string) (caFile, certFile, keyFile string, err error) {
	caFile = filepath.Join(dir, "ca.pem")
	caKeyFile := filepath.Join(dir, "ca-key.pem")
	certFile = filepath.Join(dir, "tls.pem")
	keyFile = filepath.Join(dir, "tls-key.pem")

	caCert, caKey, err := loadPair(caFile, caKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		caCert, caKey, err = makeCA(caFile, caKeyFile)
	}
	if err != nil {
		return "", "", "", fmt.Errorf("dev CA: %w", err)
	}
	names := []string{"localhost", dnsSuffix, "*." + dnsSuffix}
	leaf, _, err := loadPair(certFile, keyFile)
	if err == nil && slices.Equal(leaf.DNSNames, names) && leaf.CheckSignatureFrom(caCert) == nil && time.Now().Before(leaf.NotAfter) {
		return caFile, certFile, keyFile, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", "", "", fmt.Errorf("server certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"Tresor development"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	if err := writePair(certFile, keyFile, der, key); err != nil {
		return "", "", "", err
	}
	return caFile, certFile, keyFile, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func makeCA(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Tresor development CA", Organization: []string{"Tresor development"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(certFile, keyFile, der, key); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func writePair(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return atomicfile.Write(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func loadPair(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		if _, serr := os.Stat(certFile); errors.Is(serr, fs.ErrNotExist) {
			return nil, nil, serr
		}
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not an ECDSA key", keyFile)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	return cert, key, err
}

// tlsConfig is the servers' TLS configuration: TLS 1.2 or 1.3, and in TLS
// 1.2 only ECDHE key exchange with AEAD ciphers (no CBC, no SHA-1 MACs, no
// RSA key exchange). TLS 1.3 suites are not configurable and all AEAD.
func tlsConfig(pair tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: tls12Suites,
	}
}

var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// handshakeLog is the http.Server's error log: it passes lines to the
// region's logger, and TLS handshake failures (port scanners, clients that
// do not trust the CA) at most once per interval, with the number of
// failures it left out since the line before.
type handshakeLog struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu         sync.Mutex
	next       time.Time // no handshake line before this
	suppressed int
}

func newHandshakeLog(l *slog.Logger, interval time.Duration, now func() time.Time) *log.Logger {
	return log.New(&handshakeLog{log: l, interval: interval, now: now}, "", 0)
}

func (h *handshakeLog) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	if !strings.Contains(msg, "TLS handshake error") {
		h.log.Warn(msg)
		return len(p), nil
	}
	h.mu.Lock()
	now := h.now()
	if now.Before(h.next) {
		h.suppressed++
		h.mu.Unlock()
		return len(p), nil
	}
	n := h.suppressed
	h.suppressed, h.next = 0, now.Add(h.interval)
	h.mu.Unlock()
	h.log.Warn(msg, "suppressedSinceLast", n, "logEvery", h.interval.String())
	return len(p), nil
}
