//go:build !pkcs11 || !cgo

package server_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"tresor/internal/barrier/pkcs11"
	"tresor/internal/server"
)

func TestPKCS11SealNeedsBuildTag(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Dev, cfg.DataDir, cfg.Listen = true, t.TempDir(), "127.0.0.1:0"
	cfg.Seal = server.SealConfig{Type: server.SealPKCS11, Config: pkcs11.Config{
		Library: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "tresor", PINFile: "/nonexistent", KeyLabel: "tresor-seal",
	}}
	srv, err := server.New(context.Background(), cfg, io.Discard)
	if err == nil {
		srv.Close()
		t.Fatal("a pkcs11 seal started in a build without the pkcs11 tag")
	}
	if !strings.Contains(err.Error(), "-tags pkcs11") {
		t.Fatalf("start = %q, want it to say to build with -tags pkcs11", err)
	}
}
