//go:build pkcs11 && cgo

// Package softhsmtest makes SoftHSM2 tokens for tests of the PKCS#11 seal.
//
// [NewToken] initialises a fresh token (its own label, user PIN 1234) in a
// token directory of the test process, named by SOFTHSM2_CONF, and returns
// a [pkcs11.Config] for it with a PIN file. SoftHSM2 must be installed
// (Debian package softhsm2); a missing library or softhsm2-util fails the
// test rather than skipping it.
package softhsmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"tresor/internal/barrier/pkcs11"
)

// Library is where Debian's softhsm2 package puts the PKCS#11 module.
const Library = "/usr/lib/softhsm/libsofthsm2.so"

// PIN is the user PIN of every token [NewToken] makes.
const PIN = "1234"

var (
	once    sync.Once
	confErr error
	counter atomic.Int64
)

// setup points SOFTHSM2_CONF at a token directory of this process, once:
// the library reads it when first loaded.
func setup() {
	dir, err := os.MkdirTemp("", "tresor-softhsm-")
	if err != nil {
		confErr = err
		return
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		confErr = err
		return
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		confErr = err
		return
	}
	confErr = os.Setenv("SOFTHSM2_CONF", conf)
}

// NewToken initialises a new token and returns the seal config for it,
// with keyLabel as the seal key's label (the key itself is not made).
func NewToken(t testing.TB, keyLabel string) pkcs11.Config {
	t.Helper()
	if _, err := os.Stat(Library); err != nil {
		t.Fatalf("SoftHSM2 is not installed (apt-get install softhsm2): %v", err)
	}
	once.Do(setup)
	if confErr != nil {
		t.Fatalf("softhsm config: %v", confErr)
	}
	label := fmt.Sprintf("tresor-%d-%d", os.Getpid(), counter.Add(1))
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", "5678").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v: %s", err, out)
	}
	return pkcs11.Config{Library: Library, TokenLabel: label, PINFile: PINFile(t, PIN), KeyLabel: keyLabel}
}

// PINFile writes pin to a mode 0600 file and returns its path.
func PINFile(t testing.TB, pin string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(p, []byte(pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
