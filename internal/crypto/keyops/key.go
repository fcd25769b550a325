package keyops

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Key is a private key of one of the three [KeyType]s: an RSA key, an EC key
// on P-256, P-256K, P-384 or P-521, or an AES ("oct") key.
//
// A Key is opaque: its material can only leave through [Key.MarshalBinary],
// for the key store, and its public half through [Key.PublicJWK]. It prints
// as its type only. Keys are created by [Generate], [ImportJWK] and
// [UnmarshalKey], which all validate them; a Key is immutable afterwards and
// safe for concurrent use. Compare keys with [Key.Equal], not ==.
type Key struct {
	_ [0]func() // not comparable with ==

	kty KeyType
	rsa *rsa.PrivateKey       // RSA
	ec  *ecdsa.PrivateKey     // EC on P-256, P-384, P-521
	k1  *secp256k1.PrivateKey // EC on P-256K
	oct []byte                // oct
}

// Type returns the key's type: [RSA], [EC] or [Oct].
func (k *Key) Type() KeyType { return k.kty }

// Size returns the key size in bits: the modulus size of an RSA key (2048,
// 3072 or 4096), the AES key size of an oct key (128, 192 or 256), and the
// curve's size for an EC key (256, 384 or 521).
func (k *Key) Size() int {
	switch {
	case k.rsa != nil:
		return k.rsa.N.BitLen()
	case k.ec != nil:
		return k.ec.Curve.Params().BitSize
	case k.k1 != nil:
		return 256
	default:
		return 8 * len(k.oct)
	}
}

// Curve returns the curve of an EC key in Key Vault's spelling ("P-256",
// "P-256K", "P-384", "P-521"), and "" for other keys.
func (k *Key) Curve() string {
	switch {
	case k.ec != nil:
		return curveName(k.ec.Curve)
	case k.k1 != nil:
		return CurveP256K
	default:
		return ""
	}
}

// String returns "keyops.Key{kty=…}" and nothing secret.
func (k *Key) String() string {
	if k == nil {
		return "keyops.Key(nil)"
	}
	return "keyops.Key{kty=" + string(k.kty) + "}"
}

// GoString is [Key.String], so that %#v prints nothing secret either.
func (k *Key) GoString() string { return k.String() }

// Equal reports whether k and other hold the same key material. It runs in
// time that depends on the keys' types and sizes only.
func (k *Key) Equal(other *Key) bool {
	if k == nil || other == nil {
		return k == other
	}
	a, err1 := k.MarshalBinary()
	b, err2 := other.MarshalBinary()
	defer clear(a)
	defer clear(b)
	return err1 == nil && err2 == nil && subtle.ConstantTimeCompare(a, b) == 1
}

// GenerateOptions describes a key to [Generate]. The zero value of each field
// selects Key Vault's default.
type GenerateOptions struct {
	// Type is the key type; any form NormalizeKeyType accepts ("RSA",
	// "RSA-HSM", …).
	Type KeyType
	// Size is the key size in bits: RSA 2048 (default), 3072 or 4096; oct
	// 128, 192 or 256 (default). For EC it must be 0 or the curve's size.
	Size int
	// PublicExponent is the RSA public exponent. Like a Managed HSM, only
	// 65537 (the default) is accepted. It must be 0 for other types.
	PublicExponent int
	// Curve is the EC curve: "P-256" (default), "P-256K", "P-384" or
	// "P-521". It must be empty for other types.
	Curve string
}

// Generate creates a new key as opts describes. RSA and EC keys pass a
// pairwise consistency test (sign and verify, and for RSA encrypt and
// decrypt) before they are returned.
//
// rand is the source of randomness for oct and P-256K keys; nil means
// crypto/rand.Reader. RSA and NIST-curve keys always use the standard
// library's generator (since Go 1.26 it ignores a caller's source), and so
// does everything in FIPS 140-3 mode.
//
// Invalid options give an error wrapping [ErrInvalidInput]; P-256K in FIPS
// 140-3 mode gives [ErrNotApprovedInFIPSMode].
func Generate(opts GenerateOptions, rand io.Reader) (*Key, error) {
	kty, err := NormalizeKeyType(string(opts.Type))
	if err != nil {
		return nil, err
	}
	rand = randOrDefault(rand)
	switch kty {
	case RSA:
		if opts.Curve != "" {
			return nil, errorf(ErrInvalidInput, "curve is only for EC keys")
		}
		size := opts.Size
		if size == 0 {
			size = 2048
		}
		if !validRSASize(size) {
			return nil, errorf(ErrInvalidInput, "RSA key size must be 2048, 3072 or 4096")
		}
		if e := opts.PublicExponent; e != 0 && e != 65537 {
			return nil, errorf(ErrInvalidInput, "RSA public exponent must be 65537")
		}
		priv, err := rsa.GenerateKey(rand, size)
		if err != nil {
			return nil, errorf(ErrInvalidKey, "RSA key generation failed")
		}
		k := &Key{kty: RSA, rsa: priv}
		if err := k.pairwiseConsistencyTest(); err != nil {
			return nil, err
		}
		return k, nil

	case EC:
		if opts.PublicExponent != 0 {
			return nil, errorf(ErrInvalidInput, "public exponent is only for RSA keys")
		}
		crv := opts.Curve
		if crv == "" {
			crv = CurveP256
		}
		name, curve, err := lookupCurve(crv)
		if err != nil {
			return nil, err
		}
		bits := 256
		if curve != nil {
			bits = curve.Params().BitSize
		}
		if opts.Size != 0 && opts.Size != bits {
			return nil, errorf(ErrInvalidInput, "key size does not match curve %s", name)
		}
		var k *Key
		if curve == nil {
			if err := requireFIPSApproved(false, "curve P-256K (secp256k1)"); err != nil {
				return nil, err
			}
			priv, err := secp256k1.GeneratePrivateKeyFromRand(rand)
			if err != nil {
				return nil, errorf(ErrInvalidKey, "P-256K key generation failed")
			}
			k = &Key{kty: EC, k1: priv}
		} else {
			priv, err := ecdsa.GenerateKey(curve, rand)
			if err != nil {
				return nil, errorf(ErrInvalidKey, "EC key generation failed")
			}
			k = &Key{kty: EC, ec: priv}
		}
		if err := k.pairwiseConsistencyTest(); err != nil {
			return nil, err
		}
		return k, nil

	default: // Oct
		if opts.Curve != "" {
			return nil, errorf(ErrInvalidInput, "curve is only for EC keys")
		}
		if opts.PublicExponent != 0 {
			return nil, errorf(ErrInvalidInput, "public exponent is only for RSA keys")
		}
		size := opts.Size
		if size == 0 {
			size = 256
		}
		if size != 128 && size != 192 && size != 256 {
			return nil, errorf(ErrInvalidInput, "oct key size must be 128, 192 or 256")
		}
		b := make([]byte, size/8)
		if _, err := io.ReadFull(rand, b); err != nil {
			return nil, errorf(ErrInvalidKey, "reading random bytes failed")
		}
		return &Key{kty: Oct, oct: b}, nil
	}
}

// randOrDefault returns the randomness source to use: crypto/rand.Reader if
// r is nil or in FIPS 140-3 mode (where only the module's DRBG is approved).
func randOrDefault(r io.Reader) io.Reader {
	if r == nil || fips140.Enabled() {
		return cryptorand.Reader
	}
	return r
}

func validRSASize(bits int) bool {
	return bits == 2048 || bits == 3072 || bits == 4096
}

// lookupCurve maps a curve name to its canonical name and its elliptic.Curve
// (nil for P-256K, which the standard library does not have). "secp256k1",
// the JOSE name, is accepted for P-256K.
func lookupCurve(name string) (string, elliptic.Curve, error) {
	switch name {
	case CurveP256:
		return CurveP256, elliptic.P256(), nil
	case CurveP384:
		return CurveP384, elliptic.P384(), nil
	case CurveP521:
		return CurveP521, elliptic.P521(), nil
	case CurveP256K, "SECP256K1", "secp256k1":
		return CurveP256K, nil, nil
	}
	return "", nil, errorf(ErrInvalidInput, "unsupported curve %s", quote(name))
}

func curveName(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return CurveP256
	case elliptic.P384():
		return CurveP384
	case elliptic.P521():
		return CurveP521
	}
	return ""
}

// pctDigest is the digest signed by the pairwise consistency tests (a fixed
// arbitrary value; its first 32, 48 or 64 bytes serve as the digest).
var pctDigest = []byte{
	0x6b, 0x86, 0xb2, 0x73, 0xff, 0x34, 0xfc, 0xe1, 0x9d, 0x6b, 0x80, 0x4e, 0xff, 0x5a, 0x3f, 0x57,
	0x47, 0xad, 0xa4, 0xea, 0xa2, 0x2f, 0x1d, 0x49, 0xc0, 0x1e, 0x52, 0xdd, 0xb7, 0x87, 0x5b, 0x4b,
	0x2c, 0x62, 0x4e, 0x7a, 0x51, 0x7a, 0x3c, 0x9e, 0x02, 0x63, 0x44, 0xf8, 0x5f, 0x0c, 0x3a, 0xe5,
	0x3f, 0x1b, 0x2e, 0xd8, 0x9c, 0x71, 0x0a, 0x66, 0xd4, 0x13, 0x85, 0x29, 0xb7, 0x42, 0xe0, 0x91,
}

var errPCT = errorf(ErrInvalidKey, "pairwise consistency test failed")

// pairwiseConsistencyTest signs and verifies a fixed digest with an RSA or
// EC key and, for RSA, encrypts and decrypts a fixed message (FIPS 140-3
// IG 10.3.A). It runs whether or not FIPS mode is on, with FIPS-approved
// algorithms only, so it works for keys that FIPS mode allows.
func (k *Key) pairwiseConsistencyTest() error {
	switch {
	case k.rsa != nil:
		if err := k.rsa.Validate(); err != nil {
			return errPCT
		}
		sig, err := k.Sign("PS256", pctDigest[:32], nil)
		if err != nil {
			return errPCT
		}
		if ok, err := k.Verify("PS256", pctDigest[:32], sig); err != nil || !ok {
			return errPCT
		}
		msg := pctDigest[:32]
		ct, err := rsa.EncryptOAEP(sha256.New(), cryptorand.Reader, &k.rsa.PublicKey, msg, nil)
		if err != nil {
			return errPCT
		}
		if bytes.Equal(ct, msg) {
			return errPCT
		}
		pt, err := k.rsa.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: crypto.SHA256})
		if err != nil || !bytes.Equal(pt, msg) {
			return errPCT
		}
		return nil
	case k.ec != nil || k.k1 != nil:
		alg := ecAlgForCurve(k.Curve())
		a := signAlgs[alg]
		digest := pctDigest[:a.hash.Size()]
		var sig []byte
		var err error
		if k.k1 != nil {
			sig = signK1(k.k1, digest)
		} else {
			sig, err = signECDSA(k.ec, digest)
			if err != nil {
				return errPCT
			}
		}
		var ok bool
		if k.k1 != nil {
			ok = verifyK1(k.k1.PubKey(), digest, sig)
		} else {
			ok = verifyECDSA(&k.ec.PublicKey, digest, sig)
		}
		if !ok {
			return errPCT
		}
		// A signature over another digest must not verify.
		other := bytes.Clone(digest)
		other[0] ^= 1
		if k.k1 != nil {
			ok = verifyK1(k.k1.PubKey(), other, sig)
		} else {
			ok = verifyECDSA(&k.ec.PublicKey, other, sig)
		}
		if ok {
			return errPCT
		}
		return nil
	}
	return nil
}

// ecAlgForCurve returns the signature algorithm of an EC curve.
func ecAlgForCurve(crv string) string {
	switch crv {
	case CurveP256K:
		return "ES256K"
	case CurveP384:
		return "ES384"
	case CurveP521:
		return "ES512"
	default:
		return "ES256"
	}
}

// Storage encoding (see MarshalBinary).
const (
	encodingVersion = 1

	kindRSA  = 1 // PKCS#8 of an RSA key
	kindEC   = 2 // PKCS#8 of a NIST-curve EC key
	kindK1   = 3 // 32-byte big-endian secp256k1 scalar
	kindOct  = 4 // raw AES key
	magic0   = 'T'
	magic1   = 'K'
	hdrBytes = 4
)

// MarshalBinary returns the private key for storage: a four-byte header
// ('T', 'K', format version 1, kind) followed by, for RSA and NIST-curve EC
// keys, the PKCS#8 DER encoding of the private key; for P-256K keys the
// 32-byte big-endian private scalar; for oct keys the raw AES key.
//
// The result is key material in the clear: it is meant to be sealed by the
// storage barrier at once. [UnmarshalKey] reverses it.
func (k *Key) MarshalBinary() ([]byte, error) {
	var kind byte
	var body []byte
	switch {
	case k.rsa != nil:
		der, err := x509.MarshalPKCS8PrivateKey(k.rsa)
		if err != nil {
			return nil, errorf(ErrInvalidKey, "encoding RSA key failed")
		}
		kind, body = kindRSA, der
	case k.ec != nil:
		der, err := x509.MarshalPKCS8PrivateKey(k.ec)
		if err != nil {
			return nil, errorf(ErrInvalidKey, "encoding EC key failed")
		}
		kind, body = kindEC, der
	case k.k1 != nil:
		b := k.k1.Key.Bytes()
		kind, body = kindK1, b[:]
	case k.oct != nil:
		kind, body = kindOct, k.oct
	default:
		return nil, errorf(ErrInvalidKey, "empty key")
	}
	out := make([]byte, 0, hdrBytes+len(body))
	out = append(out, magic0, magic1, encodingVersion, kind)
	out = append(out, body...)
	if kind != kindOct {
		clear(body)
	}
	return out, nil
}

// UnmarshalKey parses the output of [Key.MarshalBinary]. It checks the
// encoding and the key's structure (RSA key consistency, sizes, curve points)
// but, to keep loading cheap, runs no pairwise consistency test. P-256K keys
// load in FIPS 140-3 mode too, so that their public parts can be served, but
// every operation with them fails there. Errors wrap [ErrInvalidKey] and
// carry no key material; on error the key is nil.
func UnmarshalKey(b []byte) (*Key, error) {
	if len(b) < hdrBytes || b[0] != magic0 || b[1] != magic1 {
		return nil, errorf(ErrInvalidKey, "not a keyops key encoding")
	}
	if b[2] != encodingVersion {
		return nil, errorf(ErrInvalidKey, "unsupported key encoding version %d", b[2])
	}
	body := b[hdrBytes:]
	switch b[3] {
	case kindRSA, kindEC:
		parsed, err := x509.ParsePKCS8PrivateKey(body)
		if err != nil {
			return nil, errorf(ErrInvalidKey, "malformed PKCS#8 key")
		}
		switch p := parsed.(type) {
		case *rsa.PrivateKey:
			if b[3] != kindRSA {
				break
			}
			if err := checkRSA(p); err != nil {
				return nil, err
			}
			return &Key{kty: RSA, rsa: p}, nil
		case *ecdsa.PrivateKey:
			if b[3] != kindEC {
				break
			}
			if curveName(p.Curve) == "" {
				return nil, errorf(ErrInvalidKey, "unsupported curve")
			}
			return &Key{kty: EC, ec: p}, nil
		}
		return nil, errorf(ErrInvalidKey, "PKCS#8 key of the wrong kind")
	case kindK1:
		priv, err := parseK1Scalar(body)
		if err != nil {
			return nil, err
		}
		return &Key{kty: EC, k1: priv}, nil
	case kindOct:
		if !validAESKeyLen(len(body)) {
			return nil, errorf(ErrInvalidKey, "oct key must be 16, 24 or 32 bytes")
		}
		return &Key{kty: Oct, oct: bytes.Clone(body)}, nil
	}
	return nil, errorf(ErrInvalidKey, "unknown key kind %d", b[3])
}

func validAESKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// checkRSA checks what this package requires of every RSA key: two primes,
// a 2048-, 3072- or 4096-bit modulus, a public exponent of at least 65537,
// and consistent parameters.
func checkRSA(p *rsa.PrivateKey) error {
	if len(p.Primes) != 2 {
		return errorf(ErrInvalidKey, "RSA key must have exactly two primes")
	}
	if !validRSASize(p.N.BitLen()) {
		return errorf(ErrInvalidKey, "RSA modulus must be 2048, 3072 or 4096 bits")
	}
	if p.E < 65537 || p.E%2 == 0 {
		return errorf(ErrInvalidKey, "RSA public exponent must be odd and at least 65537")
	}
	if err := p.Validate(); err != nil {
		return errorf(ErrInvalidKey, "RSA key parameters are inconsistent")
	}
	p.Precompute()
	return nil
}

// parseK1Scalar parses a 32-byte big-endian secp256k1 private scalar in
// [1, n−1].
func parseK1Scalar(b []byte) (*secp256k1.PrivateKey, error) {
	if len(b) != secp256k1.PrivKeyBytesLen {
		return nil, errorf(ErrInvalidKey, "P-256K private key must be 32 bytes")
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(b); overflow || s.IsZero() {
		return nil, errorf(ErrInvalidKey, "P-256K private key out of range")
	}
	return secp256k1.NewPrivateKey(&s), nil
}

var errNoKey = errorf(ErrInvalidKey, "nil key")
