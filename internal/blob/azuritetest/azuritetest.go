// Package azuritetest implements the Azurite test server of the blob
// tests: one azurite-blob (the Azure Storage emulator's blob service) per
// test binary, started on first use on a free loopback port with in-memory
// storage, and the helpers to create containers and sign SAS tokens for the
// well-known development account.
//
// Tests never mock Azure: they call [Start] and talk to Azurite through the
// real SDK. The binary is found through the environment variable
// TRESOR_AZURITE_BLOB or else at .cache/azurite/node_modules/.bin/azurite-blob
// under the module root, where ./scripts/test installs it. When it is
// missing, the test fails (it does not skip).
//
// A package that uses it should stop the server from TestMain:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		azuritetest.Stop()
//		os.Exit(code)
//	}
//
// Without that, the server still dies with the test binary (on Linux it
// gets SIGKILL when its parent exits).
package azuritetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// Account and Key are Azurite's well-known development account and its
// published key.
const (
	Account = "devstoreaccount1"
	Key     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// EnvBinary names the environment variable that holds the path of the
// azurite-blob executable.
const EnvBinary = "TRESOR_AZURITE_BLOB"

// Version is the Azurite version ./scripts/test installs.
const Version = "3.37.0"

// Server is a running azurite-blob. Its methods are safe for concurrent use.
type Server struct {
	addr   string // 127.0.0.1:port
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	out    *syncBuffer
	cred   *container.SharedKeyCredential
}

var shared struct {
	mu  sync.Mutex
	srv *Server
	err error
}

// Start returns the test binary's Azurite server, starting it on first use.
// It fails t when Azurite is not installed or does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = start()
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// Stop kills the server, if one was started, and waits for it to exit.
// Tests call it from TestMain after m.Run.
func Stop() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		shared.srv.kill()
		shared.srv = nil
	}
	shared.err = errors.New("azuritetest: the server was stopped")
}

// Binary returns the path of azurite-blob: $TRESOR_AZURITE_BLOB, or the
// copy ./scripts/test installs under the module root.
func Binary() (string, error) {
	missing := fmt.Errorf("azurite is not installed: run ./scripts/test (it installs azurite@%s into .cache/azurite)", Version)
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w (%s=%s: %v)", missing, EnvBinary, p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".cache", "azurite", "node_modules", ".bin", "azurite-blob")
			if _, err := os.Stat(p); err != nil {
				return "", missing
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", missing
		}
		dir = parent
	}
}

func start() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	cred, err := container.NewSharedKeyCredential(Account, Key)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // a free port may be taken before Azurite binds it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), out: &syncBuffer{}, cred: cred}
		s.cmd = exec.Command(bin,
			"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
			"--inMemoryPersistence", "--silent", "--skipApiVersionCheck", "--loose",
			"--disableTelemetry")
		s.cmd.Dir = os.TempDir()
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		s.cmd.SysProcAttr = sysProcAttr()
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("azuritetest: start %s: %v", bin, err)
		}
		s.exited = make(chan struct{})
		go func() { s.cmd.Wait(); close(s.exited) }()
		if lastErr = s.wait(30 * time.Second); lastErr == nil {
			return s, nil
		}
		s.kill()
	}
	return nil, lastErr
}

// wait polls the server until it answers HTTP.
func (s *Server) wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("azuritetest: azurite-blob exited: %s", s.out.String())
		default:
		}
		resp, err := client.Get(s.URL() + "?comp=list")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("azuritetest: azurite-blob did not answer on %s within %v: %v; output: %s", s.addr, timeout, err, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) kill() {
	killGroup(s.cmd.Process) // node and anything it started
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL returns the account's path-style blob endpoint,
// "http://127.0.0.1:PORT/devstoreaccount1".
func (s *Server) URL() string { return "http://" + s.addr + "/" + Account }

// Addr returns the server's "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// CreateContainer creates the container name (with the account key) and
// returns its URL, "http://127.0.0.1:PORT/devstoreaccount1/{name}". The
// container is deleted when t ends.
func (s *Server) CreateContainer(t testing.TB, name string) string {
	t.Helper()
	u := s.URL() + "/" + name
	c, err := container.NewClientWithSharedKeyCredential(u, s.cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), nil); err != nil {
		t.Fatalf("azuritetest: create container %s: %v", name, err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), nil) })
	return u
}

// SAS returns a service SAS query string (without '?') for the container,
// signed with the development account's key, with the permissions perms
// (container permission letters such as "crwd" or "rl") and the expiry.
// Its start time is an hour before the earlier of now and expiry.
func (s *Server) SAS(t testing.TB, container string, perms string, expiry time.Time) string {
	t.Helper()
	start := time.Now()
	if expiry.Before(start) {
		start = expiry
	}
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		StartTime:     start.Add(-time.Hour).UTC(),
		ExpiryTime:    expiry.UTC(),
		Permissions:   perms,
		ContainerName: container,
	}.SignWithSharedKey(s.cred)
	if err != nil {
		t.Fatalf("azuritetest: sign SAS: %v", err)
	}
	return qp.Encode()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 64<<10 {
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
