//go:build pkcs11 && cgo

package pkcs11_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"tresor/internal/barrier"
	"tresor/internal/barrier/pkcs11"
	"tresor/internal/barrier/pkcs11/softhsmtest"
)

func openNew(t *testing.T) (pkcs11.Config, *pkcs11.Seal) {
	t.Helper()
	cfg := softhsmtest.NewToken(t, "tresor-seal")
	if err := pkcs11.CreateKey(cfg); err != nil {
		t.Fatal(err)
	}
	s, err := pkcs11.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return cfg, s
}

func TestSealWrapUnwrap(t *testing.T) {
	cfg, s := openNew(t)
	root, err := barrier.NewRootKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := barrier.WrapRootKey(s, root, "hsm1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := barrier.UnwrapRootKey(s, w, "hsm1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(root) {
		t.Fatal("unwrapped root differs")
	}
	w2, err := barrier.WrapRootKey(s, root, "hsm1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(w, w2) {
		t.Fatal("two wraps of one root are equal: the nonce is not fresh")
	}

	flipped := bytes.Clone(w)
	flipped[len(flipped)-1] ^= 1
	bad := map[string]struct {
		wrapped []byte
		name    string
	}{
		"other name":   {w, "hsm2"},
		"flipped tag":  {flipped, "hsm1"},
		"truncated":    {w[:20], "hsm1"},
		"empty":        {nil, "hsm1"},
		"file seal ct": {append([]byte{0}, w[1:]...), "hsm1"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := barrier.UnwrapRootKey(s, tc.wrapped, tc.name); !errors.Is(err, barrier.ErrOpen) || !errors.Is(err, pkcs11.ErrOpen) {
				t.Fatalf("unwrap = %v, want ErrOpen", err)
			}
		})
	}

	// The key lives in the token: a second session opens the first's wrap.
	s2, err := pkcs11.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := barrier.UnwrapRootKey(s2, w, "hsm1"); err != nil || !got.Equal(root) {
		t.Fatalf("reopened seal: %v", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	cfg := softhsmtest.NewToken(t, "tresor-seal")
	if err := pkcs11.CreateKey(cfg); err != nil {
		t.Fatal(err)
	}
	loosePIN := softhsmtest.PINFile(t, softhsmtest.PIN)
	if err := os.Chmod(loosePIN, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		edit    func(*pkcs11.Config)
		wantErr error
		wantMsg string
	}{
		"wrong PIN": {
			edit:    func(c *pkcs11.Config) { c.PINFile = softhsmtest.PINFile(t, "987654") },
			wantErr: pkcs11.ErrIncorrectPIN, wantMsg: "CKR_PIN_INCORRECT",
		},
		"missing key": {
			edit:    func(c *pkcs11.Config) { c.KeyLabel = "no-such-key" },
			wantErr: pkcs11.ErrKeyNotFound, wantMsg: `no secret key labelled "no-such-key"`,
		},
		"no such token": {
			edit:    func(c *pkcs11.Config) { c.TokenLabel = "no-such-token" },
			wantMsg: `open token "no-such-token"`,
		},
		"PIN file readable by others": {
			edit:    func(c *pkcs11.Config) { c.PINFile = loosePIN },
			wantMsg: "must not be readable by group or others",
		},
		"PIN file missing": {
			edit:    func(c *pkcs11.Config) { c.PINFile = "/nonexistent/pin" },
			wantMsg: "read PIN file",
		},
		"no key label": {
			edit:    func(c *pkcs11.Config) { c.KeyLabel = "" },
			wantMsg: "seal.keyLabel is required",
		},
		"no library": {
			edit:    func(c *pkcs11.Config) { c.Library = "/nonexistent/libpkcs11.so" },
			wantMsg: "/nonexistent/libpkcs11.so",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := cfg
			tc.edit(&c)
			s, err := pkcs11.Open(c)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Open = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Open = %q, want it to say %q", err, tc.wantMsg)
			}
			if strings.Contains(err.Error(), "987654") || strings.Contains(err.Error(), softhsmtest.PIN) {
				t.Errorf("Open error shows a PIN: %q", err)
			}
		})
	}
}

func TestCreateKeyRefusesTakenLabel(t *testing.T) {
	cfg, _ := openNew(t)
	if err := pkcs11.CreateKey(cfg); !errors.Is(err, pkcs11.ErrKeyExists) {
		t.Fatalf("second CreateKey = %v, want ErrKeyExists", err)
	}
}
