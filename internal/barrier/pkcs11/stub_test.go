//go:build !pkcs11 || !cgo

package pkcs11_test

import (
	"errors"
	"testing"

	"tresor/internal/barrier/pkcs11"
)

func TestWithoutTagNotBuilt(t *testing.T) {
	cfg := pkcs11.Config{Library: "/x.so", TokenLabel: "t", PINFile: "/p", KeyLabel: "k"}
	if _, err := pkcs11.Open(cfg); !errors.Is(err, pkcs11.ErrNotBuilt) {
		t.Fatalf("Open = %v, want ErrNotBuilt", err)
	}
	if err := pkcs11.CreateKey(cfg); !errors.Is(err, pkcs11.ErrNotBuilt) {
		t.Fatalf("CreateKey = %v, want ErrNotBuilt", err)
	}
}
