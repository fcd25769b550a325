package keyops_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"tresor/internal/crypto/keyops"
)

// testKeyNames are the key kinds every table test runs over.
var testKeyNames = []string{
	"RSA-2048", "RSA-3072", "RSA-4096",
	"P-256", "P-256K", "P-384", "P-521",
	"oct-128", "oct-192", "oct-256",
}

var (
	testKeysMu sync.Mutex
	testKeys   = map[string]*keyOnce{}
)

type keyOnce struct {
	once sync.Once
	key  *keyops.Key
	err  error
}

// k1Scalar is a fixed secp256k1 private key, used where P-256K keys cannot be
// generated (FIPS 140-3 mode).
var k1Scalar = mustB64("vvB_2ZxHv1v9HEcvC8ZkD6mr2zbc-qyxqjQ4hE5bRRU")

// testKey returns the key of the given kind, generated once per test binary
// (RSA key generation is slow) with keyops.Generate.
func testKey(t testing.TB, name string) *keyops.Key {
	t.Helper()
	testKeysMu.Lock()
	o, ok := testKeys[name]
	if !ok {
		o = &keyOnce{}
		testKeys[name] = o
	}
	testKeysMu.Unlock()
	o.once.Do(func() {
		var opts keyops.GenerateOptions
		switch {
		case name == "RSA-2048":
			// The defaults: RSA-2048 with e = 65537.
			opts = keyops.GenerateOptions{Type: "RSA"}
		case strings.HasPrefix(name, "RSA-"):
			opts.Type = keyops.RSA
			fmt.Sscanf(name, "RSA-%d", &opts.Size)
		case name == "P-256":
			opts = keyops.GenerateOptions{Type: "EC"} // default curve
		case name == "P-256K" && fips140.Enabled():
			o.key, o.err = keyops.UnmarshalKey(append([]byte{'T', 'K', 1, 3}, k1Scalar...))
			return
		case strings.HasPrefix(name, "P-"):
			opts = keyops.GenerateOptions{Type: keyops.EC, Curve: name}
		case strings.HasPrefix(name, "oct-"):
			opts.Type = "oct"
			fmt.Sscanf(name, "oct-%d", &opts.Size)
		default:
			o.err = fmt.Errorf("unknown test key %q", name)
			return
		}
		o.key, o.err = keyops.Generate(opts, nil)
	})
	if o.err != nil {
		t.Fatalf("test key %s: %v", name, o.err)
	}
	return o.key
}

func mustB64(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		panic(err)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeMember decodes a JWK member with or without padding, independently of
// the package under test.
func decodeMember(t testing.TB, name, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		t.Fatalf("JWK member %s: %v", name, err)
	}
	return b
}

// stdlibPublic decodes the public key of a JWK with the standard library
// (and the secp256k1 module for P-256K) alone.
func stdlibPublic(t testing.TB, j keyops.JWK) crypto.PublicKey {
	t.Helper()
	switch j.Kty {
	case "RSA-HSM":
		n := new(big.Int).SetBytes(decodeMember(t, "n", j.N))
		e := new(big.Int).SetBytes(decodeMember(t, "e", j.E))
		return &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC-HSM":
		x, y := decodeMember(t, "x", j.X), decodeMember(t, "y", j.Y)
		u := append(append([]byte{4}, x...), y...)
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		case "P-256K":
			pub, err := secp256k1.ParsePubKey(u)
			if err != nil {
				t.Fatalf("P-256K public key: %v", err)
			}
			return pub
		default:
			t.Fatalf("unexpected crv %q", j.Crv)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, u)
		if err != nil {
			t.Fatalf("EC public key: %v", err)
		}
		return pub
	}
	t.Fatalf("no public key in a %s JWK", j.Kty)
	return nil
}

// stdlibPrivate returns the key's material decoded with the standard library
// from its documented storage encoding: *rsa.PrivateKey, *ecdsa.PrivateKey, a
// 32-byte secp256k1 scalar or the raw AES key.
func stdlibPrivate(t testing.TB, k *keyops.Key) any {
	t.Helper()
	b, err := k.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	if len(b) < 4 || b[0] != 'T' || b[1] != 'K' || b[2] != 1 {
		t.Fatalf("MarshalBinary header % x", b[:min(4, len(b))])
	}
	switch b[3] {
	case 1, 2:
		p, err := x509.ParsePKCS8PrivateKey(b[4:])
		if err != nil {
			t.Fatalf("MarshalBinary body is not PKCS#8: %v", err)
		}
		return p
	case 3, 4:
		return b[4:]
	}
	t.Fatalf("unknown kind %d", b[3])
	return nil
}

// privateJWK builds a JWK with private parts for k, from its storage encoding.
func privateJWK(t testing.TB, k *keyops.Key) keyops.JWK {
	t.Helper()
	j := k.PublicJWK()
	switch p := stdlibPrivate(t, k).(type) {
	case *rsa.PrivateKey:
		j.D = b64(p.D.Bytes())
		j.P = b64(p.Primes[0].Bytes())
		j.Q = b64(p.Primes[1].Bytes())
		j.DP = b64(p.Precomputed.Dp.Bytes())
		j.DQ = b64(p.Precomputed.Dq.Bytes())
		j.QI = b64(p.Precomputed.Qinv.Bytes())
	case *ecdsa.PrivateKey:
		d, err := p.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		j.D = b64(d)
	case []byte:
		if k.Type() == keyops.Oct {
			j.K = b64(p)
		} else {
			j.D = b64(p)
		}
	}
	return j
}

// octKey imports an AES key with the given bytes.
func octKey(t testing.TB, key []byte) *keyops.Key {
	t.Helper()
	k, err := keyops.ImportJWK(keyops.JWK{Kty: "oct", K: b64(key)})
	if err != nil {
		t.Fatalf("ImportJWK(oct): %v", err)
	}
	return k
}

// fipsRefused reports whether alg (or curve) is refused in FIPS mode.
func fipsRefused(name string) bool {
	switch name {
	case "ES256K", "P-256K", "RSA1_5", "RSA-OAEP":
		return true
	}
	return false
}
