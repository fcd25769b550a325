package keyops_test

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"tresor/internal/crypto/keyops"
)

var (
	allSignAlgs    = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES256K", "ES384", "ES512"}
	allEncryptAlgs = []string{"RSA1_5", "RSA-OAEP", "RSA-OAEP-256",
		"A128GCM", "A192GCM", "A256GCM", "A128CBC", "A192CBC", "A256CBC", "A128CBCPAD", "A192CBCPAD", "A256CBCPAD"}
	allWrapAlgs = []string{"RSA1_5", "RSA-OAEP", "RSA-OAEP-256", "A128KW", "A192KW", "A256KW"}
)

func TestNormalizeKeyType(t *testing.T) {
	tests := map[string]struct {
		in   string
		want keyops.KeyType
		ok   bool
	}{
		"RSA":      {"RSA", keyops.RSA, true},
		"RSA-HSM":  {"RSA-HSM", keyops.RSA, true},
		"EC":       {"EC", keyops.EC, true},
		"EC-HSM":   {"EC-HSM", keyops.EC, true},
		"oct":      {"oct", keyops.Oct, true},
		"oct-HSM":  {"oct-HSM", keyops.Oct, true},
		"OCT":      {"OCT", "", false},
		"rsa":      {"rsa", "", false},
		"empty":    {"", "", false},
		"OKP":      {"OKP", "", false},
		"RSA-HSM ": {"RSA-HSM ", "", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := keyops.NormalizeKeyType(tc.in)
			if tc.ok {
				if err != nil || got != tc.want {
					t.Fatalf("NormalizeKeyType(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, keyops.ErrInvalidInput) || got != "" {
				t.Fatalf("NormalizeKeyType(%q) = %q, %v; want ErrInvalidInput", tc.in, got, err)
			}
		})
	}
	if keyops.RSA != "RSA-HSM" || keyops.EC != "EC-HSM" || keyops.Oct != "oct-HSM" {
		t.Fatal("KeyType constants do not match Key Vault's names")
	}
}

func TestDefaultKeyOps(t *testing.T) {
	tests := map[keyops.KeyType][]string{
		"RSA":     {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"},
		"RSA-HSM": {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"},
		"EC-HSM":  {"sign", "verify"},
		"oct":     {"encrypt", "decrypt", "wrapKey", "unwrapKey"},
		"bogus":   nil,
	}
	for kty, want := range tests {
		got := keyops.DefaultKeyOps(kty)
		if !slices.Equal(got, want) {
			t.Errorf("DefaultKeyOps(%q) = %q, want %q", kty, got, want)
		}
	}
	// The result is a copy.
	a := keyops.DefaultKeyOps(keyops.RSA)
	a[0] = "changed"
	if keyops.DefaultKeyOps(keyops.RSA)[0] != "encrypt" {
		t.Error("DefaultKeyOps returns shared state")
	}
}

func TestAlgorithms(t *testing.T) {
	filter := func(algs []string) []string {
		if !fips140.Enabled() {
			return algs
		}
		return slices.DeleteFunc(slices.Clone(algs), fipsRefused)
	}
	tests := map[keyops.KeyType]struct{ sign, encrypt, wrap []string }{
		keyops.RSA: {
			filter([]string{"PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}),
			filter([]string{"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"}),
			filter([]string{"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"}),
		},
		"EC": {filter([]string{"ES256", "ES256K", "ES384", "ES512"}), nil, nil},
		keyops.Oct: {nil,
			[]string{"A128GCM", "A192GCM", "A256GCM", "A128CBC", "A192CBC", "A256CBC", "A128CBCPAD", "A192CBCPAD", "A256CBCPAD"},
			[]string{"A128KW", "A192KW", "A256KW"}},
		"nope": {},
	}
	for kty, want := range tests {
		s, e, w := keyops.Algorithms(kty)
		if !slices.Equal(s, want.sign) || !slices.Equal(e, want.encrypt) || !slices.Equal(w, want.wrap) {
			t.Errorf("Algorithms(%q) = %q, %q, %q; want %q, %q, %q", kty, s, e, w, want.sign, want.encrypt, want.wrap)
		}
	}
	// Every algorithm Algorithms lists for a type works with some key of it:
	// the sign/encrypt tables below check each one in detail.
}

func TestGenerate(t *testing.T) {
	type check struct {
		kty   keyops.KeyType
		size  int
		curve string
	}
	tests := map[string]struct {
		key  string // a cached test key made by Generate with these options
		want check
	}{
		"RSA defaults": {"RSA-2048", check{keyops.RSA, 2048, ""}},
		"RSA-3072":     {"RSA-3072", check{keyops.RSA, 3072, ""}},
		"RSA-4096":     {"RSA-4096", check{keyops.RSA, 4096, ""}},
		"EC defaults":  {"P-256", check{keyops.EC, 256, "P-256"}},
		"EC P-256K":    {"P-256K", check{keyops.EC, 256, "P-256K"}},
		"EC P-384":     {"P-384", check{keyops.EC, 384, "P-384"}},
		"EC P-521":     {"P-521", check{keyops.EC, 521, "P-521"}},
		"oct 128":      {"oct-128", check{keyops.Oct, 128, ""}},
		"oct 192":      {"oct-192", check{keyops.Oct, 192, ""}},
		"oct 256":      {"oct-256", check{keyops.Oct, 256, ""}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k := testKey(t, tc.key)
			got := check{k.Type(), k.Size(), k.Curve()}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if j := k.PublicJWK(); j.Kty != string(tc.want.kty) || j.Crv != tc.want.curve {
				t.Fatalf("PublicJWK kty=%q crv=%q", j.Kty, j.Crv)
			}
			if p, ok := stdlibPrivate(t, k).(*rsa.PrivateKey); ok && p.E != 65537 {
				t.Fatalf("public exponent %d", p.E)
			}
		})
	}

	t.Run("oct default size and rand", func(t *testing.T) {
		src := bytes.Repeat([]byte{0x5a, 0xa5, 0x01}, 20)
		k, err := keyops.Generate(keyops.GenerateOptions{Type: "oct-HSM"}, bytes.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		if k.Size() != 256 {
			t.Fatalf("default oct size %d", k.Size())
		}
		got := stdlibPrivate(t, k).([]byte)
		if fips140.Enabled() {
			// In FIPS mode only the module's DRBG is used.
			if bytes.Equal(got, src[:32]) {
				t.Fatal("FIPS mode used the caller's randomness source")
			}
		} else if !bytes.Equal(got, src[:32]) {
			t.Fatal("oct key does not come from the given reader")
		}
		if _, err := keyops.Generate(keyops.GenerateOptions{Type: "oct", Size: 128}, bytes.NewReader(nil)); !fips140.Enabled() && err == nil {
			t.Fatal("Generate with an empty reader succeeded")
		}
	})

	t.Run("P-256K", func(t *testing.T) {
		k, err := keyops.Generate(keyops.GenerateOptions{Type: "EC", Curve: "P-256K"}, nil)
		if fips140.Enabled() {
			if !errors.Is(err, keyops.ErrNotApprovedInFIPSMode) || k != nil {
				t.Fatalf("Generate(P-256K) in FIPS mode = %v, %v; want ErrNotApprovedInFIPSMode", k, err)
			}
			return
		}
		if err != nil || k.Curve() != "P-256K" {
			t.Fatalf("Generate(P-256K) = %v, %v", k, err)
		}
	})

	invalid := map[string]keyops.GenerateOptions{
		"unknown type":        {Type: "OKP"},
		"empty type":          {},
		"RSA 1024":            {Type: "RSA", Size: 1024},
		"RSA 2047":            {Type: "RSA", Size: 2047},
		"RSA 8192":            {Type: "RSA", Size: 8192},
		"RSA e=3":             {Type: "RSA", PublicExponent: 3},
		"RSA e=65539":         {Type: "RSA", PublicExponent: 65539},
		"RSA with curve":      {Type: "RSA", Curve: "P-256"},
		"EC P-224":            {Type: "EC", Curve: "P-224"},
		"EC lower-case curve": {Type: "EC", Curve: "p-256"},
		"EC size mismatch":    {Type: "EC", Curve: "P-384", Size: 256},
		"EC with exponent":    {Type: "EC", PublicExponent: 65537},
		"oct 64":              {Type: "oct", Size: 64},
		"oct 512":             {Type: "oct", Size: 512},
		"oct with curve":      {Type: "oct", Curve: "P-256"},
		"oct with exponent":   {Type: "oct", PublicExponent: 65537},
	}
	for name, opts := range invalid {
		t.Run("invalid/"+name, func(t *testing.T) {
			k, err := keyops.Generate(opts, nil)
			if !errors.Is(err, keyops.ErrInvalidInput) || k != nil {
				t.Fatalf("Generate(%+v) = %v, %v; want nil, ErrInvalidInput", opts, k, err)
			}
		})
	}
}

// hashFor returns the hash of a signature algorithm.
func hashFor(alg string) crypto.Hash {
	switch alg[2:] {
	case "256", "256K":
		return crypto.SHA256
	case "384":
		return crypto.SHA384
	default:
		return crypto.SHA512
	}
}

// signFits reports whether alg is meant to work with the test key kind.
func signFits(key, alg string) bool {
	switch {
	case strings.HasPrefix(key, "RSA-"):
		return alg[0] == 'R' || alg[0] == 'P'
	case key == "P-256":
		return alg == "ES256"
	case key == "P-256K":
		return alg == "ES256K"
	case key == "P-384":
		return alg == "ES384"
	case key == "P-521":
		return alg == "ES512"
	}
	return false
}

// stdlibVerify verifies sig independently of the package under test.
func stdlibVerify(t *testing.T, pub crypto.PublicKey, alg string, digest, sig []byte) bool {
	t.Helper()
	h := hashFor(alg)
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if alg[0] == 'R' {
			return rsa.VerifyPKCS1v15(p, h, digest, sig) == nil
		}
		// Key Vault's PSS salt is as long as the hash: check that exactly.
		return rsa.VerifyPSS(p, h, digest, sig, &rsa.PSSOptions{SaltLength: h.Size()}) == nil
	case *ecdsa.PublicKey:
		size := (p.Curve.Params().N.BitLen() + 7) / 8
		if len(sig) != 2*size {
			t.Fatalf("%s signature is %d bytes, want %d", alg, len(sig), 2*size)
		}
		der, err := asn1.Marshal(struct{ R, S *big.Int }{
			new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])})
		if err != nil {
			t.Fatal(err)
		}
		return ecdsa.VerifyASN1(p, digest, der)
	case *secp256k1.PublicKey:
		if len(sig) != 64 {
			t.Fatalf("ES256K signature is %d bytes, want 64", len(sig))
		}
		var r, s secp256k1.ModNScalar
		r.SetByteSlice(sig[:32])
		s.SetByteSlice(sig[32:])
		der := k1ecdsa.NewSignature(&r, &s).Serialize()
		parsed, err := k1ecdsa.ParseDERSignature(der)
		if err != nil {
			t.Fatalf("ES256K DER: %v", err)
		}
		if s.IsOverHalfOrder() {
			t.Errorf("ES256K signature has a high s")
		}
		return parsed.Verify(digest, p)
	}
	t.Fatalf("unexpected public key %T", pub)
	return false
}

func TestSignVerify(t *testing.T) {
	for _, keyName := range testKeyNames {
		for _, alg := range allSignAlgs {
			t.Run(keyName+"/"+alg, func(t *testing.T) {
				t.Parallel()
				k := testKey(t, keyName)
				h := hashFor(alg)
				digest := make([]byte, h.Size())
				rand.Read(digest)

				if !signFits(keyName, alg) {
					if _, err := k.Sign(alg, digest, nil); !errors.Is(err, keyops.ErrUnsupportedAlgorithm) {
						t.Fatalf("Sign: %v, want ErrUnsupportedAlgorithm", err)
					}
					if _, err := k.Verify(alg, digest, make([]byte, 64)); !errors.Is(err, keyops.ErrUnsupportedAlgorithm) {
						t.Fatalf("Verify: %v, want ErrUnsupportedAlgorithm", err)
					}
					return
				}
				if fips140.Enabled() && fipsRefused(alg) {
					if sig, err := k.Sign(alg, digest, nil); !errors.Is(err, keyops.ErrNotApprovedInFIPSMode) || sig != nil {
						t.Fatalf("Sign in FIPS mode: %x, %v; want ErrNotApprovedInFIPSMode", sig, err)
					}
					if ok, err := k.Verify(alg, digest, make([]byte, 64)); !errors.Is(err, keyops.ErrNotApprovedInFIPSMode) || ok {
						t.Fatalf("Verify in FIPS mode: %v, %v; want ErrNotApprovedInFIPSMode", ok, err)
					}
					return
				}

				sig, err := k.Sign(alg, digest, nil)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				pub := stdlibPublic(t, k.PublicJWK())
				if !stdlibVerify(t, pub, alg, digest, sig) {
					t.Fatal("signature does not verify with the standard library")
				}
				if ok, err := k.Verify(alg, digest, sig); err != nil || !ok {
					t.Fatalf("Verify = %v, %v; want true", ok, err)
				}

				// Wrong signatures give false and no error.
				bad := bytes.Clone(sig)
				bad[len(bad)/2] ^= 0x10
				otherDigest := bytes.Clone(digest)
				otherDigest[0] ^= 1
				for what, c := range map[string]struct{ d, s []byte }{
					"tampered signature": {digest, bad},
					"other digest":       {otherDigest, sig},
					"truncated":          {digest, sig[:len(sig)-1]},
					"extended":           {digest, append(bytes.Clone(sig), 0)},
					"empty":              {digest, nil},
					"zeros":              {digest, make([]byte, len(sig))},
				} {
					if ok, err := k.Verify(alg, c.d, c.s); ok || err != nil {
						t.Errorf("Verify(%s) = %v, %v; want false, nil", what, ok, err)
					}
				}
				if stdlibVerify(t, pub, alg, otherDigest, sig) {
					t.Fatal("standard library verifies a signature over another digest")
				}

				// The digest length must match the hash.
				for _, n := range []int{0, h.Size() - 1, h.Size() + 1, 20} {
					if n == h.Size() {
						continue
					}
					if _, err := k.Sign(alg, make([]byte, n), nil); !errors.Is(err, keyops.ErrInvalidInput) {
						t.Errorf("Sign with a %d-byte digest: %v, want ErrInvalidInput", n, err)
					}
					if _, err := k.Verify(alg, make([]byte, n), sig); !errors.Is(err, keyops.ErrInvalidInput) {
						t.Errorf("Verify with a %d-byte digest: %v, want ErrInvalidInput", n, err)
					}
				}
			})
		}
	}
}

func TestSignUnknownAlgorithms(t *testing.T) {
	k := testKey(t, "P-256")
	for _, alg := range []string{"", "es256", "RSNULL", "EdDSA", "HS256", "A128GCM", "RSA-OAEP", strings.Repeat("X", 1000)} {
		_, err := k.Sign(alg, make([]byte, 32), nil)
		if !errors.Is(err, keyops.ErrUnsupportedAlgorithm) {
			t.Errorf("Sign(%.20q): %v, want ErrUnsupportedAlgorithm", alg, err)
		}
		if err != nil && len(err.Error()) > 120 {
			t.Errorf("error message too long: %d bytes", len(err.Error()))
		}
	}
}

// rsaFits reports whether alg is an RSA encryption algorithm.
func isRSAAlg(alg string) bool { return strings.HasPrefix(alg, "RSA") }

func stdlibRSAEncrypt(t *testing.T, alg string, pub *rsa.PublicKey, msg []byte) []byte {
	t.Helper()
	var ct []byte
	var err error
	fips140.WithoutEnforcement(func() {
		switch alg {
		case "RSA1_5":
			//lint:ignore SA1019 RSA1_5 is an algorithm of the Key Vault API
			ct, err = rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
		case "RSA-OAEP":
			ct, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, msg, nil)
		default:
			ct, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, msg, nil)
		}
	})
	if err != nil {
		t.Fatalf("standard library %s encryption: %v", alg, err)
	}
	return ct
}

func stdlibRSADecrypt(t *testing.T, alg string, priv *rsa.PrivateKey, ct []byte) []byte {
	t.Helper()
	var pt []byte
	var err error
	fips140.WithoutEnforcement(func() {
		switch alg {
		case "RSA1_5":
			//lint:ignore SA1019 RSA1_5 is an algorithm of the Key Vault API
			pt, err = rsa.DecryptPKCS1v15(nil, priv, ct)
		case "RSA-OAEP":
			pt, err = rsa.DecryptOAEP(sha1.New(), nil, priv, ct, nil)
		default:
			pt, err = rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil)
		}
	})
	if err != nil {
		t.Fatalf("standard library %s decryption: %v", alg, err)
	}
	return pt
}

func TestRSAEncryptDecrypt(t *testing.T) {
	for _, keyName := range []string{"RSA-2048", "RSA-3072", "RSA-4096"} {
		for _, alg := range []string{"RSA1_5", "RSA-OAEP", "RSA-OAEP-256"} {
			for _, op := range []string{"encrypt", "wrapKey"} {
				t.Run(keyName+"/"+alg+"/"+op, func(t *testing.T) {
					t.Parallel()
					k := testKey(t, keyName)
					enc := func(pt []byte) ([]byte, error) {
						if op == "wrapKey" {
							return k.WrapKey(alg, pt, nil)
						}
						r, err := k.Encrypt(alg, keyops.EncryptParams{Plaintext: pt}, nil)
						if err == nil && (r.IV != nil || r.Tag != nil) {
							t.Fatalf("RSA encryption returned an IV or tag")
						}
						return r.Ciphertext, err
					}
					dec := func(ct []byte) ([]byte, error) {
						if op == "wrapKey" {
							return k.UnwrapKey(alg, ct)
						}
						return k.Decrypt(alg, keyops.DecryptParams{Ciphertext: ct})
					}
					msg := []byte("0123456789abcdef0123456789abcdef")
					if fips140.Enabled() && fipsRefused(alg) {
						if ct, err := enc(msg); !errors.Is(err, keyops.ErrNotApprovedInFIPSMode) || ct != nil {
							t.Fatalf("%s in FIPS mode: %v; want ErrNotApprovedInFIPSMode", op, err)
						}
						if pt, err := dec(make([]byte, k.Size()/8)); !errors.Is(err, keyops.ErrNotApprovedInFIPSMode) || pt != nil {
							t.Fatalf("reverse of %s in FIPS mode: %v; want ErrNotApprovedInFIPSMode", op, err)
						}
						return
					}
					pub := stdlibPublic(t, k.PublicJWK()).(*rsa.PublicKey)
					priv := stdlibPrivate(t, k).(*rsa.PrivateKey)

					// Standard library ciphertext → our decryption.
					for _, m := range [][]byte{msg, {}, {0}} {
						ct := stdlibRSAEncrypt(t, alg, pub, m)
						pt, err := dec(ct)
						if err != nil || !bytes.Equal(pt, m) {
							t.Fatalf("decrypting a standard library ciphertext = %x, %v; want %x", pt, err, m)
						}
					}
					// Our ciphertext → standard library decryption.
					ct, err := enc(msg)
					if err != nil {
						t.Fatalf("%s: %v", op, err)
					}
					if len(ct) != k.Size()/8 {
						t.Fatalf("ciphertext is %d bytes, want %d", len(ct), k.Size()/8)
					}
					if pt := stdlibRSADecrypt(t, alg, priv, ct); !bytes.Equal(pt, msg) {
						t.Fatalf("standard library decrypts to %x, want %x", pt, msg)
					}
					ct2, _ := enc(msg)
					if bytes.Equal(ct, ct2) {
						t.Fatal("RSA encryption is deterministic")
					}

					// Tampered ciphertexts fail with the one generic error.
					for _, i := range []int{0, len(ct) / 2, len(ct) - 1} {
						bad := bytes.Clone(ct)
						bad[i] ^= 0x40
						pt, err := dec(bad)
						if alg == "RSA1_5" && err == nil && !bytes.Equal(pt, msg) {
							// PKCS #1 v1.5 has no integrity check: a random
							// ciphertext has a valid padding with probability
							// about 2⁻¹⁶.
							continue
						}
						if err != keyops.ErrDecrypt || pt != nil {
							t.Fatalf("tampered ciphertext (byte %d): %x, %v; want exactly ErrDecrypt", i, pt, err)
						}
					}
					if _, err := dec(ct[1:]); err != keyops.ErrDecrypt {
						t.Fatalf("short ciphertext: %v; want ErrDecrypt", err)
					}
					if _, err := dec(nil); err != keyops.ErrDecrypt {
						t.Fatalf("empty ciphertext: %v; want ErrDecrypt", err)
					}

					// A plaintext longer than the padding allows.
					if _, err := enc(make([]byte, k.Size()/8)); !errors.Is(err, keyops.ErrInvalidInput) {
						t.Fatalf("oversize plaintext: %v; want ErrInvalidInput", err)
					}
					if op == "encrypt" {
						_, err := k.Encrypt(alg, keyops.EncryptParams{Plaintext: msg, IV: make([]byte, 16)}, nil)
						if !errors.Is(err, keyops.ErrInvalidInput) {
							t.Fatalf("Encrypt with an IV: %v; want ErrInvalidInput", err)
						}
						_, err = k.Decrypt(alg, keyops.DecryptParams{Ciphertext: ct, Tag: make([]byte, 16)})
						if !errors.Is(err, keyops.ErrInvalidInput) {
							t.Fatalf("Decrypt with a tag: %v; want ErrInvalidInput", err)
						}
					}
				})
			}
		}
	}
}

// aesFits reports whether an AES algorithm matches the test key kind.
func aesFits(key, alg string) bool {
	return strings.HasPrefix(key, "oct-") && strings.HasPrefix(alg, "A"+strings.TrimPrefix(key, "oct-"))
}

func pkcs7(b []byte) []byte {
	n := 16 - len(b)%16
	return append(bytes.Clone(b), bytes.Repeat([]byte{byte(n)}, n)...)
}

func TestEncryptAlgorithmKeyMatrix(t *testing.T) {
	// Every key × every algorithm: only the matching ones are accepted.
	for _, keyName := range testKeyNames {
		for _, alg := range allEncryptAlgs {
			t.Run("encrypt/"+keyName+"/"+alg, func(t *testing.T) {
				t.Parallel()
				k := testKey(t, keyName)
				fits := (isRSAAlg(alg) && strings.HasPrefix(keyName, "RSA-")) || aesFits(keyName, alg)
				p := keyops.EncryptParams{Plaintext: make([]byte, 16)}
				if strings.Contains(alg, "CBC") {
					p.IV = make([]byte, 16)
				}
				_, err := k.Encrypt(alg, p, nil)
				switch {
				case !fits:
					if !errors.Is(err, keyops.ErrUnsupportedAlgorithm) {
						t.Fatalf("Encrypt: %v, want ErrUnsupportedAlgorithm", err)
					}
					_, err = k.Decrypt(alg, keyops.DecryptParams{Ciphertext: make([]byte, 16), IV: p.IV})
					if !errors.Is(err, keyops.ErrUnsupportedAlgorithm) {
						t.Fatalf("Decrypt: %v, want ErrUnsupportedAlgorithm", err)
					}
				case fips140.Enabled() && fipsRefused(alg):
					if !errors.Is(err, keyops.ErrNotApprovedInFIPSMode) {
						t.Fatalf("Encrypt: %v, want ErrNotApprovedInFIPSMode", err)
					}
				default:
					if err != nil {
						t.Fatalf("Encrypt: %v", err)
					}
				}
			})
		}
		for _, alg := range allWrapAlgs {
			t.Run("wrap/"+keyName+"/"+alg, func(t *testing.T) {
				t.Parallel()
				k := testKey(t, keyName)
				fits := (isRSAAlg(alg) && strings.HasPrefix(keyName, "RSA-")) || aesFits(keyName, alg)
				_, err := k.WrapKey(alg, make([]byte, 32), nil)
				switch {
				case !fits:
					if !errors.Is(err, keyops.ErrUnsupportedAlgorithm) {
						t.Fatalf("WrapKey: %v, want ErrUnsupportedAlgorithm", err)
					}
					if _, err := k.UnwrapKey(alg, make([]byte, 40)); !errors.Is(err, keyops.ErrUnsupportedAlgorithm) {
						t.Fatalf("UnwrapKey: %v, want ErrUnsupportedAlgorithm", err)
					}
				case fips140.Enabled() && fipsRefused(alg):
					if !errors.Is(err, keyops.ErrNotApprovedInFIPSMode) {
						t.Fatalf("WrapKey: %v, want ErrNotApprovedInFIPSMode", err)
					}
				default:
					if err != nil {
						t.Fatalf("WrapKey: %v", err)
					}
				}
			})
		}
	}
	// Algorithms for the wrong operation.
	k := testKey(t, "oct-256")
	for _, alg := range []string{"A256KW"} {
		if _, err := k.Encrypt(alg, keyops.EncryptParams{Plaintext: make([]byte, 32)}, nil); !errors.Is(err, keyops.ErrUnsupportedAlgorithm) {
			t.Errorf("Encrypt(%s): %v, want ErrUnsupportedAlgorithm", alg, err)
		}
		if _, err := k.Decrypt(alg, keyops.DecryptParams{Ciphertext: make([]byte, 40)}); !errors.Is(err, keyops.ErrUnsupportedAlgorithm) {
			t.Errorf("Decrypt(%s): %v, want ErrUnsupportedAlgorithm", alg, err)
		}
	}
	for _, alg := range []string{"A256GCM", "A256CBC", "A256CBCPAD", "ES256", "nope", ""} {
		if _, err := k.WrapKey(alg, make([]byte, 32), nil); !errors.Is(err, keyops.ErrUnsupportedAlgorithm) {
			t.Errorf("WrapKey(%s): %v, want ErrUnsupportedAlgorithm", alg, err)
		}
		if _, err := k.UnwrapKey(alg, make([]byte, 40)); !errors.Is(err, keyops.ErrUnsupportedAlgorithm) {
			t.Errorf("UnwrapKey(%s): %v, want ErrUnsupportedAlgorithm", alg, err)
		}
	}
	for _, alg := range []string{"PS256", "RSNULL", "a256gcm"} {
		if _, err := k.Encrypt(alg, keyops.EncryptParams{}, nil); !errors.Is(err, keyops.ErrUnsupportedAlgorithm) {
			t.Errorf("Encrypt(%s): %v, want ErrUnsupportedAlgorithm", alg, err)
		}
	}
}

func TestAES(t *testing.T) {
	lengths := []int{0, 1, 15, 16, 17, 31, 32, 33, 100}
	for _, size := range []int{128, 192, 256} {
		keyBytes := make([]byte, size/8)
		for i := range keyBytes {
			keyBytes[i] = byte(3*i + size)
		}
		block, err := aes.NewCipher(keyBytes)
		if err != nil {
			t.Fatal(err)
		}
		prefix := fmt.Sprintf("A%d", size)
		for _, mode := range []string{"GCM", "CBC", "CBCPAD"} {
			alg := prefix + mode
			for _, n := range lengths {
				if mode == "CBC" && n%16 != 0 {
					continue
				}
				t.Run(fmt.Sprintf("%s/%d", alg, n), func(t *testing.T) {
					t.Parallel()
					k := octKey(t, keyBytes)
					pt := make([]byte, n)
					rand.Read(pt)
					iv := make([]byte, 16)
					rand.Read(iv)
					var aad []byte
					if mode == "GCM" {
						iv = nil
						aad = []byte("additional data")
					}
					res, err := k.Encrypt(alg, keyops.EncryptParams{Plaintext: pt, IV: iv, AAD: aad}, nil)
					if err != nil {
						t.Fatalf("Encrypt: %v", err)
					}
					// The same computation with crypto/aes directly.
					var want []byte
					switch mode {
					case "GCM":
						if len(res.IV) != 12 || len(res.Tag) != 16 {
							t.Fatalf("GCM IV %d bytes, tag %d bytes; want 12 and 16", len(res.IV), len(res.Tag))
						}
						var g cipher.AEAD
						fips140.WithoutEnforcement(func() { g, err = cipher.NewGCM(block) })
						if err != nil {
							t.Fatal(err)
						}
						sealed := g.Seal(nil, res.IV, pt, aad)
						want = sealed[:len(sealed)-16]
						if !bytes.Equal(res.Tag, sealed[len(sealed)-16:]) {
							t.Fatalf("tag %x, want %x", res.Tag, sealed[len(sealed)-16:])
						}
					case "CBC", "CBCPAD":
						want = pt
						if mode == "CBCPAD" {
							want = pkcs7(pt)
						}
						want = bytes.Clone(want)
						cipher.NewCBCEncrypter(block, iv).CryptBlocks(want, want)
						if !bytes.Equal(res.IV, iv) || res.Tag != nil {
							t.Fatalf("CBC result IV %x tag %x; want the caller's IV and no tag", res.IV, res.Tag)
						}
					}
					if !bytes.Equal(res.Ciphertext, want) {
						t.Fatalf("ciphertext %x, want %x", res.Ciphertext, want)
					}
					got, err := k.Decrypt(alg, keyops.DecryptParams{Ciphertext: res.Ciphertext, IV: res.IV, AAD: aad, Tag: res.Tag})
					if err != nil || !bytes.Equal(got, pt) {
						t.Fatalf("Decrypt = %x, %v; want %x", got, err, pt)
					}
				})
			}
		}
	}
	t.Run("GCM IVs differ", func(t *testing.T) {
		k := testKey(t, "oct-256")
		a, _ := k.Encrypt("A256GCM", keyops.EncryptParams{Plaintext: []byte("x")}, nil)
		b, _ := k.Encrypt("A256GCM", keyops.EncryptParams{Plaintext: []byte("x")}, nil)
		if bytes.Equal(a.IV, b.IV) {
			t.Fatal("two GCM encryptions used the same IV")
		}
	})
}

func TestAESNegative(t *testing.T) {
	k := testKey(t, "oct-128")
	iv := make([]byte, 16)
	gcm, err := k.Encrypt("A128GCM", keyops.EncryptParams{Plaintext: []byte("secret message"), AAD: []byte("aad")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := keyops.DecryptParams{Ciphertext: gcm.Ciphertext, IV: gcm.IV, AAD: []byte("aad"), Tag: gcm.Tag}
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }

	// A CBCPAD ciphertext whose plaintext ends in an invalid padding.
	keyBytes := stdlibPrivate(t, k).([]byte)
	block, _ := aes.NewCipher(keyBytes)
	badPad := func(last []byte) []byte {
		b := make([]byte, 32)
		copy(b[32-len(last):], last)
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(b, b)
		return b
	}

	decryptTests := map[string]struct {
		alg  string
		p    keyops.DecryptParams
		want error
	}{
		"GCM good":                 {"A128GCM", good, nil},
		"GCM tag mismatch":         {"A128GCM", keyops.DecryptParams{Ciphertext: good.Ciphertext, IV: good.IV, AAD: good.AAD, Tag: flip(good.Tag, 15)}, keyops.ErrDecrypt},
		"GCM tampered ciphertext":  {"A128GCM", keyops.DecryptParams{Ciphertext: flip(good.Ciphertext, 0), IV: good.IV, AAD: good.AAD, Tag: good.Tag}, keyops.ErrDecrypt},
		"GCM wrong IV":             {"A128GCM", keyops.DecryptParams{Ciphertext: good.Ciphertext, IV: flip(good.IV, 3), AAD: good.AAD, Tag: good.Tag}, keyops.ErrDecrypt},
		"GCM wrong AAD":            {"A128GCM", keyops.DecryptParams{Ciphertext: good.Ciphertext, IV: good.IV, AAD: []byte("aaD"), Tag: good.Tag}, keyops.ErrDecrypt},
		"GCM missing AAD":          {"A128GCM", keyops.DecryptParams{Ciphertext: good.Ciphertext, IV: good.IV, Tag: good.Tag}, keyops.ErrDecrypt},
		"GCM truncated ciphertext": {"A128GCM", keyops.DecryptParams{Ciphertext: good.Ciphertext[1:], IV: good.IV, AAD: good.AAD, Tag: good.Tag}, keyops.ErrDecrypt},
		"GCM 11-byte IV":           {"A128GCM", keyops.DecryptParams{Ciphertext: good.Ciphertext, IV: good.IV[:11], AAD: good.AAD, Tag: good.Tag}, keyops.ErrInvalidInput},
		"GCM 16-byte IV":           {"A128GCM", keyops.DecryptParams{Ciphertext: good.Ciphertext, IV: make([]byte, 16), AAD: good.AAD, Tag: good.Tag}, keyops.ErrInvalidInput},
		"GCM no IV":                {"A128GCM", keyops.DecryptParams{Ciphertext: good.Ciphertext, AAD: good.AAD, Tag: good.Tag}, keyops.ErrInvalidInput},
		"GCM 12-byte tag":          {"A128GCM", keyops.DecryptParams{Ciphertext: good.Ciphertext, IV: good.IV, AAD: good.AAD, Tag: good.Tag[:12]}, keyops.ErrInvalidInput},
		"GCM no tag":               {"A128GCM", keyops.DecryptParams{Ciphertext: good.Ciphertext, IV: good.IV, AAD: good.AAD}, keyops.ErrInvalidInput},
		"CBC 15-byte IV":           {"A128CBC", keyops.DecryptParams{Ciphertext: make([]byte, 16), IV: iv[:15]}, keyops.ErrInvalidInput},
		"CBC no IV":                {"A128CBC", keyops.DecryptParams{Ciphertext: make([]byte, 16)}, keyops.ErrInvalidInput},
		"CBC 17-byte ciphertext":   {"A128CBC", keyops.DecryptParams{Ciphertext: make([]byte, 17), IV: iv}, keyops.ErrInvalidInput},
		"CBC with AAD":             {"A128CBC", keyops.DecryptParams{Ciphertext: make([]byte, 16), IV: iv, AAD: []byte("a")}, keyops.ErrInvalidInput},
		"CBC with tag":             {"A128CBC", keyops.DecryptParams{Ciphertext: make([]byte, 16), IV: iv, Tag: make([]byte, 16)}, keyops.ErrInvalidInput},
		"CBCPAD empty":             {"A128CBCPAD", keyops.DecryptParams{IV: iv}, keyops.ErrInvalidInput},
		"CBCPAD 20-byte":           {"A128CBCPAD", keyops.DecryptParams{Ciphertext: make([]byte, 20), IV: iv}, keyops.ErrInvalidInput},
		"CBCPAD pad byte 0":        {"A128CBCPAD", keyops.DecryptParams{Ciphertext: badPad([]byte{0}), IV: iv}, keyops.ErrDecrypt},
		"CBCPAD pad byte 17":       {"A128CBCPAD", keyops.DecryptParams{Ciphertext: badPad([]byte{17}), IV: iv}, keyops.ErrDecrypt},
		"CBCPAD pad byte 255":      {"A128CBCPAD", keyops.DecryptParams{Ciphertext: badPad([]byte{255}), IV: iv}, keyops.ErrDecrypt},
		"CBCPAD inconsistent":      {"A128CBCPAD", keyops.DecryptParams{Ciphertext: badPad([]byte{3, 2, 3}), IV: iv}, keyops.ErrDecrypt},
		"CBCPAD inconsistent 16":   {"A128CBCPAD", keyops.DecryptParams{Ciphertext: badPad(append([]byte{15}, bytes.Repeat([]byte{16}, 15)...)), IV: iv}, keyops.ErrDecrypt},
		"CBCPAD pad 17 consistent": {"A128CBCPAD", keyops.DecryptParams{Ciphertext: badPad(bytes.Repeat([]byte{17}, 17)), IV: iv}, keyops.ErrDecrypt},
		"CBCPAD good 16":           {"A128CBCPAD", keyops.DecryptParams{Ciphertext: badPad(bytes.Repeat([]byte{16}, 16)), IV: iv}, nil},
		"CBCPAD good 1":            {"A128CBCPAD", keyops.DecryptParams{Ciphertext: badPad([]byte{1}), IV: iv}, nil},
	}
	for name, tc := range decryptTests {
		t.Run("Decrypt/"+name, func(t *testing.T) {
			pt, err := k.Decrypt(tc.alg, tc.p)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Decrypt: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || pt != nil {
				t.Fatalf("Decrypt = %x, %v; want nil, %v", pt, err, tc.want)
			}
			if tc.want == keyops.ErrDecrypt && err != keyops.ErrDecrypt {
				t.Fatalf("decryption failure %q carries detail", err)
			}
		})
	}

	encryptTests := map[string]struct {
		alg string
		p   keyops.EncryptParams
	}{
		"GCM with a caller IV":  {"A128GCM", keyops.EncryptParams{Plaintext: []byte("x"), IV: make([]byte, 12)}},
		"CBC without IV":        {"A128CBC", keyops.EncryptParams{Plaintext: make([]byte, 16)}},
		"CBC 12-byte IV":        {"A128CBC", keyops.EncryptParams{Plaintext: make([]byte, 16), IV: make([]byte, 12)}},
		"CBC 15-byte plaintext": {"A128CBC", keyops.EncryptParams{Plaintext: make([]byte, 15), IV: iv}},
		"CBC with AAD":          {"A128CBC", keyops.EncryptParams{Plaintext: make([]byte, 16), IV: iv, AAD: []byte("a")}},
		"CBCPAD 17-byte IV":     {"A128CBCPAD", keyops.EncryptParams{Plaintext: []byte("x"), IV: make([]byte, 17)}},
		"CBCPAD with AAD":       {"A128CBCPAD", keyops.EncryptParams{Plaintext: []byte("x"), IV: iv, AAD: []byte("a")}},
	}
	for name, tc := range encryptTests {
		t.Run("Encrypt/"+name, func(t *testing.T) {
			res, err := k.Encrypt(tc.alg, tc.p, nil)
			if !errors.Is(err, keyops.ErrInvalidInput) || res.Ciphertext != nil {
				t.Fatalf("Encrypt = %x, %v; want ErrInvalidInput", res.Ciphertext, err)
			}
		})
	}
}

// rfc3394 are the RFC 3394 §4 vectors (KEK, key data, wrapped key).
var rfc3394 = []struct{ alg, kek, key, wrapped string }{
	{"A128KW", "000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF", "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},
	{"A192KW", "000102030405060708090A0B0C0D0E0F1011121314151617", "00112233445566778899AABBCCDDEEFF", "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"},
	{"A256KW", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF", "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"},
	{"A192KW", "000102030405060708090A0B0C0D0E0F1011121314151617", "00112233445566778899AABBCCDDEEFF0001020304050607", "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2"},
	{"A256KW", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF0001020304050607", "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"},
	{"A256KW", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F", "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
}

func TestAESKeyWrapRFC3394(t *testing.T) {
	for i, v := range rfc3394 {
		t.Run(fmt.Sprintf("%d/%s", i+1, v.alg), func(t *testing.T) {
			t.Parallel()
			k := octKey(t, unhex(t, v.kek))
			key, want := unhex(t, v.key), unhex(t, v.wrapped)
			got, err := k.WrapKey(v.alg, key, nil)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("WrapKey = %X, %v; want %X", got, err, want)
			}
			back, err := k.UnwrapKey(v.alg, want)
			if err != nil || !bytes.Equal(back, key) {
				t.Fatalf("UnwrapKey = %X, %v; want %X", back, err, key)
			}
			bad := bytes.Clone(want)
			bad[len(bad)-1] ^= 1
			if out, err := k.UnwrapKey(v.alg, bad); err != keyops.ErrDecrypt || out != nil {
				t.Fatalf("UnwrapKey(tampered) = %X, %v; want exactly ErrDecrypt", out, err)
			}
			for _, n := range []int{0, 8, 15, 17} {
				if _, err := k.WrapKey(v.alg, make([]byte, n), nil); !errors.Is(err, keyops.ErrInvalidInput) {
					t.Errorf("WrapKey(%d bytes): %v, want ErrInvalidInput", n, err)
				}
			}
			for _, n := range []int{0, 16, 23, 25} {
				if _, err := k.UnwrapKey(v.alg, make([]byte, n)); !errors.Is(err, keyops.ErrInvalidInput) {
					t.Errorf("UnwrapKey(%d bytes): %v, want ErrInvalidInput", n, err)
				}
			}
		})
	}
}

func TestPublicJWK(t *testing.T) {
	private := []string{"d", "p", "q", "dp", "dq", "qi", "k", "key_hsm"}
	for _, name := range testKeyNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k := testKey(t, name)
			j := k.PublicJWK()
			b, err := json.Marshal(j)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for _, p := range private {
				if _, ok := m[p]; ok {
					t.Errorf("public JWK has private member %q: %s", p, b)
				}
			}
			if m["kty"] != string(k.Type()) {
				t.Errorf("kty = %v, want %s", m["kty"], k.Type())
			}
			for _, v := range m {
				if s, ok := v.(string); ok && (strings.ContainsAny(s, "=+/")) {
					t.Errorf("member value %q is not unpadded base64url", s)
				}
			}
			switch k.Type() {
			case keyops.RSA:
				if len(m) != 3 || j.E != "AQAB" || len(decodeMember(t, "n", j.N)) != k.Size()/8 {
					t.Errorf("RSA public JWK %s", b)
				}
			case keyops.EC:
				size := (k.Size() + 7) / 8
				if len(m) != 4 || len(decodeMember(t, "x", j.X)) != size || len(decodeMember(t, "y", j.Y)) != size {
					t.Errorf("EC public JWK %s: coordinates must be %d bytes", b, size)
				}
			case keyops.Oct:
				if len(m) != 1 {
					t.Errorf("oct public JWK %s: want kty only", b)
				}
			}
		})
	}
}

func TestMarshalBinary(t *testing.T) {
	for _, name := range testKeyNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k := testKey(t, name)
			b, err := k.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			k2, err := keyops.UnmarshalKey(b)
			if err != nil {
				t.Fatalf("UnmarshalKey: %v", err)
			}
			if !k.Equal(k2) || !k2.Equal(k) {
				t.Fatal("round trip changed the key")
			}
			if k2.Type() != k.Type() || k2.Size() != k.Size() || k2.Curve() != k.Curve() {
				t.Fatal("round trip changed type, size or curve")
			}
			if !reflect.DeepEqual(k.PublicJWK(), k2.PublicJWK()) {
				t.Fatal("round trip changed the public key")
			}
			b2, _ := k2.MarshalBinary()
			if !bytes.Equal(b, b2) {
				t.Fatal("MarshalBinary is not deterministic")
			}
			// Every strict prefix is refused.
			for _, n := range []int{0, 1, 3, 4, len(b) / 2, len(b) - 1} {
				if k3, err := keyops.UnmarshalKey(b[:n]); !errors.Is(err, keyops.ErrInvalidKey) || k3 != nil {
					t.Fatalf("UnmarshalKey(%d-byte prefix) = %v, %v; want ErrInvalidKey", n, k3, err)
				}
			}
		})
	}
	k1 := func(scalar []byte) []byte { return append([]byte{'T', 'K', 1, 3}, scalar...) }
	n := secp256k1.Params().N.Bytes()
	bad := map[string][]byte{
		"wrong magic":           {'X', 'K', 1, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		"wrong version":         append([]byte{'T', 'K', 2, 4}, make([]byte, 16)...),
		"unknown kind":          append([]byte{'T', 'K', 1, 9}, make([]byte, 16)...),
		"oct 17 bytes":          append([]byte{'T', 'K', 1, 4}, make([]byte, 17)...),
		"oct empty":             {'T', 'K', 1, 4},
		"P-256K zero":           k1(make([]byte, 32)),
		"P-256K order":          k1(n),
		"P-256K 31 bytes":       k1(make([]byte, 31)),
		"RSA kind with EC body": append([]byte{'T', 'K', 1, 1}, mustMarshal(t, testKey(t, "P-256"))[4:]...),
		"EC kind with RSA body": append([]byte{'T', 'K', 1, 2}, mustMarshal(t, testKey(t, "RSA-2048"))[4:]...),
		"garbage PKCS#8":        append([]byte{'T', 'K', 1, 1}, 0x30, 0x03, 1, 2, 3),
		"RSA e=3":               append([]byte{'T', 'K', 1, 1}, pkcs8(t, rsaKeyWithE3(t))...),
	}
	if k1024, err := rsa.GenerateKey(rand.Reader, 1024); err == nil {
		bad["RSA 1024"] = append([]byte{'T', 'K', 1, 1}, pkcs8(t, k1024)...)
	}
	if p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader); err == nil {
		bad["EC P-224"] = append([]byte{'T', 'K', 1, 2}, pkcs8(t, p224)...)
	}
	for name, b := range bad {
		t.Run("invalid/"+name, func(t *testing.T) {
			k, err := keyops.UnmarshalKey(b)
			if !errors.Is(err, keyops.ErrInvalidKey) || k != nil {
				t.Fatalf("UnmarshalKey = %v, %v; want nil, ErrInvalidKey", k, err)
			}
		})
	}
}

func pkcs8(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// rsaKeyWithE3 builds a consistent 2048-bit RSA key with public exponent 3,
// which this package refuses (crypto/rsa cannot generate one).
func rsaKeyWithE3(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	three := big.NewInt(3)
	prime := func() *big.Int {
		for {
			var p *big.Int
			var err error
			// Test material only: allowed under GODEBUG=fips140=only too.
			fips140.WithoutEnforcement(func() { p, err = rand.Prime(rand.Reader, 1024) })
			if err != nil {
				t.Fatal(err)
			}
			if new(big.Int).Mod(p, three).Int64() == 2 { // gcd(3, p−1) = 1
				return p
			}
		}
	}
	p, q := prime(), prime()
	one := big.NewInt(1)
	pm1, qm1 := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
	lambda := new(big.Int).Div(new(big.Int).Mul(pm1, qm1), new(big.Int).GCD(nil, nil, pm1, qm1))
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 3},
		D:         new(big.Int).ModInverse(three, lambda),
		Primes:    []*big.Int{p, q},
	}
	if k.N.BitLen() != 2048 {
		return rsaKeyWithE3(t)
	}
	if err := k.Validate(); err != nil {
		t.Fatalf("e=3 test key: %v", err)
	}
	k.Precompute()
	return k
}

func mustMarshal(t testing.TB, k *keyops.Key) []byte {
	t.Helper()
	b, err := k.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEqual(t *testing.T) {
	a := testKey(t, "oct-256")
	b := octKey(t, stdlibPrivate(t, a).([]byte))
	if !a.Equal(b) {
		t.Error("keys with the same material are not Equal")
	}
	for _, other := range []string{"oct-128", "P-256", "RSA-2048"} {
		if a.Equal(testKey(t, other)) {
			t.Errorf("oct-256 Equal %s", other)
		}
	}
	var nilKey *keyops.Key
	if a.Equal(nil) || nilKey.Equal(a) || !nilKey.Equal(nil) {
		t.Error("Equal mishandles nil")
	}
}

func TestStringHidesSecrets(t *testing.T) {
	for _, name := range testKeyNames {
		k := testKey(t, name)
		j := privateJWK(t, k)
		secrets := []string{j.D, j.P, j.Q, j.DP, j.DQ, j.QI, j.K}
		want := "keyops.Key{kty=" + string(k.Type()) + "}"
		for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(format, k)
			if out != want {
				t.Errorf("%s: Sprintf(%q) = %q, want %q", name, format, out, want)
			}
			jout := fmt.Sprintf(format, j)
			for _, s := range secrets {
				if s != "" && strings.Contains(jout, s) {
					t.Errorf("%s: Sprintf(%q, jwk) shows a private member", name, format)
				}
			}
		}
	}
}

func TestNilKey(t *testing.T) {
	var k *keyops.Key
	if _, err := k.Sign("ES256", make([]byte, 32), nil); err == nil {
		t.Error("Sign on nil key succeeded")
	}
	if _, err := k.Verify("ES256", make([]byte, 32), nil); err == nil {
		t.Error("Verify on nil key succeeded")
	}
	if _, err := k.Encrypt("A128GCM", keyops.EncryptParams{}, nil); err == nil {
		t.Error("Encrypt on nil key succeeded")
	}
	if _, err := k.Decrypt("A128GCM", keyops.DecryptParams{}); err == nil {
		t.Error("Decrypt on nil key succeeded")
	}
	if _, err := k.WrapKey("A128KW", make([]byte, 16), nil); err == nil {
		t.Error("WrapKey on nil key succeeded")
	}
	if _, err := k.UnwrapKey("A128KW", make([]byte, 24)); err == nil {
		t.Error("UnwrapKey on nil key succeeded")
	}
	if s := k.String(); s != "keyops.Key(nil)" {
		t.Errorf("String = %q", s)
	}
}

func TestSelfTest(t *testing.T) {
	if err := keyops.SelfTest(); err != nil {
		t.Fatal(err)
	}
}

// TestFIPSMode checks the refusals that only FIPS 140-3 mode makes; run the
// tests with GODEBUG=fips140=on to exercise them.
func TestFIPSMode(t *testing.T) {
	if !fips140.Enabled() {
		t.Skip("FIPS 140-3 mode is off; run with GODEBUG=fips140=on")
	}
	k1 := testKey(t, "P-256K") // loaded with UnmarshalKey
	if k1.Curve() != "P-256K" || k1.PublicJWK().X == "" {
		t.Fatal("a stored P-256K key does not load in FIPS mode")
	}
	if _, err := k1.Sign("ES256K", make([]byte, 32), nil); !errors.Is(err, keyops.ErrNotApprovedInFIPSMode) {
		t.Errorf("Sign(ES256K): %v", err)
	}
	j := privateJWK(t, k1)
	if k, err := keyops.ImportJWK(j); !errors.Is(err, keyops.ErrNotApprovedInFIPSMode) || k != nil {
		t.Errorf("ImportJWK(P-256K): %v, %v", k, err)
	}
	if !strings.Contains(keyops.ErrNotApprovedInFIPSMode.Error(), "FIPS") {
		t.Error("the FIPS error does not say FIPS")
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex: %v", err)
	}
	return b
}
