//go:build pkcs11 && cgo

package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"tresor/internal/barrier/pkcs11"
	"tresor/internal/barrier/pkcs11/softhsmtest"
	"tresor/internal/server"
	"tresor/internal/server/servertest"
)

// signES256 signs digest with key name and checks the signature against
// the key's public half.
func signES256(t *testing.T, kc *azkeys.Client, name string, digest []byte) {
	t.Helper()
	ctx := t.Context()
	sig, err := kc.Sign(ctx, name, "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest}, nil)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	k, err := kc.GetKey(ctx, name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(k.Key.X), Y: new(big.Int).SetBytes(k.Key.Y)}
	r, s := new(big.Int).SetBytes(sig.Result[:32]), new(big.Int).SetBytes(sig.Result[32:])
	if !ecdsa.Verify(pub, digest, r, s) {
		t.Fatal("signature does not verify")
	}
}

func TestPKCS11SealRegion(t *testing.T) {
	seal := softhsmtest.NewToken(t, "tresor-seal")
	if err := pkcs11.CreateKey(seal); err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.Dev, cfg.DataDir, cfg.Listen = true, t.TempDir(), "127.0.0.1:0"
	cfg.Seal = server.SealConfig{Type: server.SealPKCS11, Config: seal}

	s1 := servertest.StartConfig(t, cfg)
	activeHSM(t, s1, "hsm1")
	kc := sdkClient(t, s1, "hsm1", s1.ClientID, s1.ClientSecret)
	if _, err := kc.CreateKey(t.Context(), "signer", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM), Curve: to.Ptr(azkeys.CurveNameP256)}, nil); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("before restart"))
	signES256(t, kc, "signer", digest[:])
	s1.Stop()
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "seal.key")); !os.IsNotExist(err) {
		t.Fatalf("a region on the pkcs11 seal made a seal.key (stat: %v)", err)
	}

	s2 := servertest.StartConfig(t, cfg)
	s2.ClientID, s2.ClientSecret, s2.ObjectID = s1.ClientID, s1.ClientSecret, s1.ObjectID
	digest = sha256.Sum256([]byte("after restart"))
	signES256(t, sdkClient(t, s2, "hsm1", s2.ClientID, s2.ClientSecret), "signer", digest[:])
	s2.Stop()

	refused := map[string]struct {
		edit func(*server.Config)
		want string
	}{
		"wrong PIN": {
			edit: func(c *server.Config) { c.Seal.PINFile = softhsmtest.PINFile(t, "000000") },
			want: "CKR_PIN_INCORRECT",
		},
		"missing key": {
			edit: func(c *server.Config) { c.Seal.KeyLabel = "other-seal" },
			want: `no secret key labelled "other-seal"`,
		},
		"other key": {
			edit: func(c *server.Config) {
				c.Seal.KeyLabel = "second-seal"
				if err := pkcs11.CreateKey(c.Seal.Config); err != nil {
					t.Fatal(err)
				}
			},
			want: "region root key does not open with the pkcs11 seal",
		},
		"file seal": {
			edit: func(c *server.Config) { c.Seal = server.SealConfig{} },
			want: "seal key file",
		},
	}
	for name, tc := range refused {
		t.Run(name, func(t *testing.T) {
			c := cfg
			tc.edit(&c)
			srv, err := server.New(context.Background(), c, io.Discard)
			if err == nil {
				srv.Close()
				t.Fatal("the region started")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") || strings.Contains(msg, softhsmtest.PIN) {
				t.Fatalf("start = %q, want one line saying %q and no PIN", msg, tc.want)
			}
		})
	}
}
