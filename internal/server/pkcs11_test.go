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
	"tresor/internal/cli"
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
	//lint:ignore SA1019 the key comes as JWK coordinates; it is only used to verify
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

// sealCLI runs `tresor seal …` and returns its exit code, stdout and stderr.
func sealCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb strings.Builder
	code := cli.Run(t.Context(), cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, append([]string{"seal"}, args...), server.SealCommand())
	return code, out.String(), errb.String()
}

func TestPKCS11SealMigrate(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Dev, cfg.DataDir, cfg.Listen = true, t.TempDir(), "127.0.0.1:0"
	s1 := servertest.StartConfig(t, cfg)
	activeHSM(t, s1, "hsm1")
	kc := sdkClient(t, s1, "hsm1", s1.ClientID, s1.ClientSecret)
	if _, err := kc.CreateKey(t.Context(), "signer", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM), Curve: to.Ptr(azkeys.CurveNameP256)}, nil); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("on the file seal"))
	signES256(t, kc, "signer", digest[:])
	c := newCall(t, s1)
	for _, name := range []string{"hsm2", "hsm3"} {
		if code, _, body := c.do("PUT", c.hsmPath(name), s1.AdminToken(t), createBody(s1.ObjectID)); code != 202 {
			t.Fatalf("create %s: %d %s", name, code, body)
		}
	}
	if code, _, body := c.do("DELETE", c.hsmPath("hsm3"), s1.AdminToken(t), nil); code != 202 && code != 200 {
		t.Fatalf("delete hsm3: %d %s", code, body)
	}

	seal := softhsmtest.NewToken(t, "tresor-seal")
	flags := func(c pkcs11.Config) []string {
		return []string{"migrate", "--to", "pkcs11", "--data-dir", cfg.DataDir, "--library", c.Library,
			"--token-label", c.TokenLabel, "--pin-file", c.PINFile, "--key-label", c.KeyLabel}
	}
	wrongPIN := seal
	wrongPIN.PINFile = softhsmtest.PINFile(t, "000000")
	refused := map[string]struct {
		args []string
		want string
	}{
		"server running": {append(flags(seal), "--create-key"), "in use by another tresor server"},
		"missing key":    {flags(seal), `no secret key labelled "tresor-seal"`},
		"wrong PIN":      {flags(wrongPIN), "CKR_PIN_INCORRECT"},
		"other target":   {append(flags(seal)[:2], "file"), `--to must be "pkcs11"`},
	}
	for _, name := range []string{"server running", "missing key", "wrong PIN", "other target"} {
		tc := refused[name]
		t.Run(name, func(t *testing.T) {
			if name == "missing key" {
				s1.Stop()
			}
			code, out, errs := sealCLI(t, tc.args...)
			if code != 1 || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, tc.want) || strings.Contains(errs, softhsmtest.PIN) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and one line saying %q", code, out, errs, tc.want)
			}
		})
	}

	code, out, errs := sealCLI(t, append(flags(seal), "--create-key")...)
	if code != 0 || !strings.Contains(out, "and 3 instance roots") || !strings.Contains(out, `"type": "pkcs11"`) {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "seal.key")); err != nil {
		t.Fatalf("migrate removed the old seal key: %v", err)
	}
	if code, _, errs := sealCLI(t, flags(seal)...); code != 1 || !strings.Contains(errs, "already on this seal") {
		t.Fatalf("second migrate: exit %d, %q", code, errs)
	}

	// The file seal no longer opens the region; the PKCS#11 seal does.
	if srv, err := server.New(context.Background(), cfg, io.Discard); err == nil {
		srv.Close()
		t.Fatal("the region still starts on the file seal")
	} else if !strings.Contains(err.Error(), "does not open with the seal key file") {
		t.Fatalf("start on the file seal: %v", err)
	}
	cfg.Seal = server.SealConfig{Type: server.SealPKCS11, Config: seal}
	s2 := servertest.StartConfig(t, cfg)
	s2.ClientID, s2.ClientSecret, s2.ObjectID = s1.ClientID, s1.ClientSecret, s1.ObjectID
	digest = sha256.Sum256([]byte("on the pkcs11 seal"))
	signES256(t, sdkClient(t, s2, "hsm1", s2.ClientID, s2.ClientSecret), "signer", digest[:])
	c2 := newCall(t, s2)
	if code, _, body := c2.do("GET", c2.hsmPath("hsm2"), s2.AdminToken(t), nil); code != 200 {
		t.Fatalf("hsm2 after migrate: %d %s", code, body)
	}
	if code, _, body := c2.do("PUT", c2.hsmPath("hsm4"), s2.AdminToken(t), createBody(s2.ObjectID)); code != 202 {
		t.Fatalf("create on the pkcs11 seal: %d %s", code, body)
	}
}
