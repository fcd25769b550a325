package pemkey_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tresor/internal/crypto/pemkey"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// sd1 returns the RSA key of the sd1-* fixtures, parsed by crypto/x509.
func sd1(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode(readTestdata(t, "sd1-pkcs1.pem"))
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// parse calls ParsePrivateKey and checks that it returns a key or an
// error, never both or neither.
func parse(t *testing.T, data []byte, password string) (crypto.PrivateKey, error) {
	t.Helper()
	key, err := pemkey.ParsePrivateKey(data, []byte(password))
	if (err != nil) == (key != nil) {
		t.Fatalf("key %v with error %v", key != nil, err)
	}
	return key, err
}

func TestParsePrivateKeyRSAFixtures(t *testing.T) {
	want := sd1(t)
	tests := map[string]struct {
		password string
	}{
		"sd1-pkcs8-aes128-sha1.pem": {"secret"},
		"sd1-pkey-aes256.pem":       {"secret"},
		"sd1-legacy-aes256.pem":     {"secret"},
		"sd1-pkcs1.pem":             {""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data := readTestdata(t, name)
			key, err := parse(t, data, tc.password)
			if err != nil {
				t.Fatal(err)
			}
			if k, ok := key.(*rsa.PrivateKey); !ok || !k.Equal(want) {
				t.Error("key differs from sd1-pkcs1.pem")
			}
			if tc.password == "" {
				return
			}
			if _, err := parse(t, data, "wrong"); !errors.Is(err, pemkey.ErrIncorrectPassword) {
				t.Errorf("wrong password: %v", err)
			}
			if _, err := parse(t, data, ""); !errors.Is(err, pemkey.ErrPasswordRequired) {
				t.Errorf("no password: %v", err)
			}
		})
	}
}

// Many wrong passwords: CBC has no MAC, so some pass the padding check;
// they must still give ErrIncorrectPassword, never a key.
func TestParsePrivateKeyManyWrongPasswords(t *testing.T) {
	for _, name := range []string{"sd1-pkcs8-aes128-sha1.pem", "sd1-legacy-aes256.pem", "secp256k1-pkcs8-aes128-sha512.pem"} {
		data := readTestdata(t, name)
		for i := range 300 {
			pw := "wrong-" + strings.Repeat("x", i)
			if _, err := parse(t, data, pw); !errors.Is(err, pemkey.ErrIncorrectPassword) {
				t.Fatalf("%s, password %d: %v", name, i, err)
			}
		}
	}
}

// Keys made here, in every form, come back equal.
func TestParsePrivateKeyForms(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := []crypto.Signer{rsaKey}
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	// A certificate (or any other block) before the key is skipped.
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not parsed")})
	for _, key := range keys {
		pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		label, typ, traditional := "RSA", "RSA PRIVATE KEY", []byte(nil)
		if k, ok := key.(*ecdsa.PrivateKey); ok {
			label, typ = k.Curve.Params().Name, "EC PRIVATE KEY"
			if traditional, err = x509.MarshalECPrivateKey(k); err != nil {
				t.Fatal(err)
			}
		} else {
			traditional = x509.MarshalPKCS1PrivateKey(rsaKey)
		}
		//lint:ignore SA1019 legacy PEM encryption is what openssl -traditional writes; the test makes one
		legacy, err := x509.EncryptPEMBlock(rand.Reader, typ, traditional, []byte("pw"), x509.PEMCipherAES256)
		if err != nil {
			t.Fatal(err)
		}
		pkcs8PEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
		tests := map[string]struct {
			pem      []byte
			password string
		}{
			"PKCS#8":              {pem: pkcs8PEM},
			typ:                   {pem: pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: traditional})},
			"legacy encrypted":    {pem: pem.EncodeToMemory(legacy), password: "pw"},
			"after certificate":   {pem: append(bytes.Clone(cert), pkcs8PEM...)},
			"password not needed": {pem: pkcs8PEM, password: "ignored"},
		}
		for name, tc := range tests {
			t.Run(label+" "+name, func(t *testing.T) {
				got, err := parse(t, tc.pem, tc.password)
				if err != nil {
					t.Fatal(err)
				}
				if k, ok := got.(interface{ Equal(crypto.PrivateKey) bool }); !ok || !k.Equal(key) {
					t.Errorf("got %T, not the key", got)
				}
			})
		}
		legacyPEM := pem.EncodeToMemory(legacy)
		if _, err := parse(t, legacyPEM, "wrong"); !errors.Is(err, pemkey.ErrIncorrectPassword) {
			t.Errorf("%s legacy, wrong password: %v", label, err)
		}
		if _, err := parse(t, legacyPEM, ""); !errors.Is(err, pemkey.ErrPasswordRequired) {
			t.Errorf("%s legacy, no password: %v", label, err)
		}
	}
}

// OpenSSL's keys on secp256k1, which crypto/ecdsa does not implement, come
// back as an ECKey with the curve and the scalar.
func TestParsePrivateKeySecp256k1(t *testing.T) {
	secp256k1 := asn1.ObjectIdentifier{1, 3, 132, 0, 10}
	// openssl ec -in secp256k1-sec1.pem -text -noout: priv
	want, _ := hex.DecodeString("3ac5c0a02398e03865f17d232643f1436464dcc4720cee57c371bdb6327cd3bc")
	for name, password := range map[string]string{
		"secp256k1-sec1.pem":                "",
		"secp256k1-pkcs8.pem":               "",
		"secp256k1-pkcs8-aes128-sha512.pem": "k1pw",
	} {
		t.Run(name, func(t *testing.T) {
			key, err := parse(t, readTestdata(t, name), password)
			if err != nil {
				t.Fatal(err)
			}
			k, ok := key.(*pemkey.ECKey)
			if !ok {
				t.Fatalf("got %T, want *pemkey.ECKey", key)
			}
			if !k.Curve.Equal(secp256k1) || !bytes.Equal(k.D, want) {
				t.Errorf("curve %v, D %x; want %v, %x", k.Curve, k.D, secp256k1, want)
			}
		})
	}
}

func TestParsePrivateKeyOpenSSLVectors(t *testing.T) {
	block, _ := pem.Decode(readTestdata(t, "p384-legacy-aes128.pub.pem"))
	p384Pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		password string
		check    func(crypto.PrivateKey) bool
	}{
		"p384-legacy-aes128.pem": {"pw384", func(k crypto.PrivateKey) bool {
			ec, ok := k.(*ecdsa.PrivateKey)
			return ok && ec.PublicKey.Equal(p384Pub)
		}},
		"p256-pkcs8-aes256.pem": {"p256pw", func(k crypto.PrivateKey) bool {
			ec, ok := k.(*ecdsa.PrivateKey)
			return ok && ec.Curve == elliptic.P256()
		}},
		"ec-pkcs8.pem": {"", func(k crypto.PrivateKey) bool {
			ec, ok := k.(*ecdsa.PrivateKey)
			return ok && ec.Curve == elliptic.P256()
		}},
		"ed25519.pem": {"", func(k crypto.PrivateKey) bool {
			_, ok := k.(ed25519.PrivateKey)
			return ok
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			key, err := parse(t, readTestdata(t, name), tc.password)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(key) {
				t.Errorf("unexpected key %T", key)
			}
		})
	}
}

func TestParsePrivateKeyErrors(t *testing.T) {
	block, _ := pem.Decode(readTestdata(t, "sd1-pkcs1.pem"))
	tests := map[string]struct {
		data     []byte
		password string
		is       error
		msg      string
	}{
		"empty":         {data: nil, is: pemkey.ErrNotPEM},
		"junk":          {data: []byte("not a key"), is: pemkey.ErrNotPEM},
		"DER":           {data: block.Bytes, is: pemkey.ErrNotPEM},
		"certificate":   {data: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), is: pemkey.ErrNoPrivateKey},
		"public key":    {data: readTestdata(t, "p384-legacy-aes128.pub.pem"), is: pemkey.ErrNoPrivateKey},
		"no password":   {data: readTestdata(t, "secp256k1-pkcs8-aes128-sha512.pem"), is: pemkey.ErrPasswordRequired},
		"wrong pw":      {data: readTestdata(t, "secp256k1-pkcs8-aes128-sha512.pem"), password: "nope", is: pemkey.ErrIncorrectPassword},
		"legacy no pw":  {data: readTestdata(t, "p384-legacy-aes128.pem"), is: pemkey.ErrPasswordRequired},
		"legacy wrong":  {data: readTestdata(t, "p384-legacy-aes128.pem"), password: "nope", is: pemkey.ErrIncorrectPassword},
		"pkcs8 3des":    {data: readTestdata(t, "sd1-pkcs8-des3.pem"), password: "secret", msg: "only AES-CBC encryption is supported"},
		"pkcs8 pbes1":   {data: readTestdata(t, "sd1-pkcs8-pbes1.pem"), password: "secret", msg: "only PBES2 encryption is supported"},
		"bad PKCS#8":    {data: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), msg: "not a valid PKCS#8 private key"},
		"bad encrypted": {data: []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), password: "secret", msg: "not a valid EncryptedPrivateKeyInfo"},
		"bad PKCS#1":    {data: []byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"), msg: "not a valid PKCS#1 RSA private key"},
		"bad SEC 1":     {data: []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), msg: "not a valid EC private key"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, tc.data, tc.password)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to contain %q", err, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "pemkey: ") {
				t.Errorf("err = %q, want the prefix pemkey:", err)
			}
		})
	}
	for _, typ := range []string{"OPENSSH PRIVATE KEY", "DSA PRIVATE KEY"} {
		data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: []byte("AAAA")})
		var ue *pemkey.UnsupportedKeyError
		if _, err := parse(t, data, ""); !errors.As(err, &ue) || ue.Type != typ {
			t.Errorf("%s: err = %v, want an UnsupportedKeyError", typ, err)
		}
	}
}

func TestErrorsCarryNoSecrets(t *testing.T) {
	for _, name := range []string{"sd1-pkey-aes256.pem", "sd1-legacy-aes256.pem", "sd1-pkcs8-des3.pem"} {
		_, err := pemkey.ParsePrivateKey(readTestdata(t, name), []byte("hunter2-password"))
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

// FuzzParsePrivateKey: the parser (PBES2 included) never panics and
// returns a key or an error, never both.
func FuzzParsePrivateKey(f *testing.F) {
	names, err := filepath.Glob("testdata/*.pem")
	if err != nil || len(names) == 0 {
		f.Fatal("no key fixtures", err)
	}
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "secret")
	}
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		key, err := pemkey.ParsePrivateKey(data, []byte(password))
		if (err != nil) == (key != nil) {
			t.Fatalf("key %v with error %v", key != nil, err)
		}
	})
}
