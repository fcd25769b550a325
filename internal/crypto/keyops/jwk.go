package keyops

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"math/big"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// JWK is a JSON Web Key as Key Vault's JsonWebKey spells it (RFC 7517 with
// Key Vault's kty values and the key_hsm extension). Binary members are
// base64url strings; this package writes them without padding and accepts
// them with or without.
//
// A JWK may hold private key material (d, p, q, dp, dq, qi, k); its String
// method prints public members only.
type JWK struct {
	Kid    string   `json:"kid,omitempty"`
	Kty    string   `json:"kty"`
	KeyOps []string `json:"key_ops,omitempty"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	D      string   `json:"d,omitempty"`
	DP     string   `json:"dp,omitempty"`
	DQ     string   `json:"dq,omitempty"`
	QI     string   `json:"qi,omitempty"`
	P      string   `json:"p,omitempty"`
	Q      string   `json:"q,omitempty"`
	K      string   `json:"k,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
	KeyHSM string   `json:"key_hsm,omitempty"`
}

// String describes the JWK by its public members, leaving out d, p, q, dp,
// dq, qi, k and key_hsm, so that a JWK that is logged by mistake leaks no
// secret.
func (j JWK) String() string {
	var b strings.Builder
	b.WriteString("keyops.JWK{kty=")
	b.WriteString(j.Kty)
	if j.Kid != "" {
		b.WriteString(" kid=" + j.Kid)
	}
	if j.Crv != "" {
		b.WriteString(" crv=" + j.Crv)
	}
	if j.hasPrivate() {
		b.WriteString(" private=redacted")
	}
	b.WriteString("}")
	return b.String()
}

// GoString is [JWK.String], so that %#v leaks nothing either.
func (j JWK) GoString() string { return j.String() }

func (j JWK) hasPrivate() bool {
	return j.D != "" || j.P != "" || j.Q != "" || j.DP != "" || j.DQ != "" || j.QI != "" || j.K != "" || j.KeyHSM != ""
}

// PublicJWK returns the public half of the key as a JWK: kty with n and e for
// RSA keys, kty with crv, x and y for EC keys, and kty alone for oct keys. It
// never contains d, p, q, dp, dq, qi or k. Kid and KeyOps are left empty for
// the caller, which knows them.
func (k *Key) PublicJWK() JWK {
	if k == nil {
		return JWK{}
	}
	j := JWK{Kty: string(k.kty)}
	switch {
	case k.rsa != nil:
		j.N = b64(k.rsa.N.Bytes())
		j.E = b64(big.NewInt(int64(k.rsa.E)).Bytes())
	case k.ec != nil:
		// Bytes cannot fail for a key of a supported curve.
		u, _ := k.ec.PublicKey.Bytes()
		size := (len(u) - 1) / 2
		j.Crv = k.Curve()
		j.X = b64(u[1 : 1+size])
		j.Y = b64(u[1+size:])
	case k.k1 != nil:
		u := k.k1.PubKey().SerializeUncompressed()
		j.Crv = CurveP256K
		j.X = b64(u[1:33])
		j.Y = b64(u[33:])
	}
	return j
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeB64 decodes a base64url member with or without padding.
func decodeB64(name, s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errorf(ErrInvalidKey, "member %s is not valid base64url", name)
	}
	return b, nil
}

// member decodes a required member.
func member(name, s string) ([]byte, error) {
	if s == "" {
		return nil, errorf(ErrInvalidKey, "member %s is missing", name)
	}
	b, err := decodeB64(name, s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errorf(ErrInvalidKey, "member %s is empty", name)
	}
	return b, nil
}

// forbid reports an error if a member that does not belong to the key type
// is present.
func forbid(kty KeyType, members map[string]string) error {
	for _, name := range []string{"n", "e", "d", "p", "q", "dp", "dq", "qi", "k", "crv", "x", "y"} {
		if v, ok := members[name]; ok && v != "" {
			return errorf(ErrInvalidKey, "member %s does not belong to a %s key", name, kty)
		}
	}
	return nil
}

// ImportJWK creates a key from a JWK holding its private parts, as a Managed
// HSM's key import does. kty may be any form [NormalizeKeyType] accepts.
//
//   - RSA: n, e, d, p and q are required; dp, dq and qi are optional but, if
//     given, must all be given and match. The modulus must be 2048, 3072 or
//     4096 bits and e odd and at least 65537. The key is validated and must
//     pass a pairwise consistency test (sign/verify and encrypt/decrypt).
//   - EC: crv, x, y and d are required. The point must be on the curve and be
//     d's public point; the key must pass a sign/verify test.
//   - oct: k must be 16, 24 or 32 bytes.
//
// Members of another key type, and key_hsm (BYOK blobs, which need the
// key-exchange key and are handled by the key service), are refused. Kid and
// KeyOps are ignored. Errors wrap [ErrInvalidKey] (or
// [ErrNotApprovedInFIPSMode] for P-256K in FIPS mode), say what is wrong and
// never echo key material; on error the key is nil.
func ImportJWK(j JWK) (*Key, error) {
	kty, err := NormalizeKeyType(j.Kty)
	if err != nil {
		return nil, errorf(ErrInvalidKey, "unknown key type %s", quote(j.Kty))
	}
	if j.KeyHSM != "" {
		return nil, errorf(ErrInvalidKey, "key_hsm (BYOK) blobs cannot be imported as a JWK")
	}
	all := map[string]string{
		"n": j.N, "e": j.E, "d": j.D, "p": j.P, "q": j.Q, "dp": j.DP, "dq": j.DQ, "qi": j.QI,
		"k": j.K, "crv": j.Crv, "x": j.X, "y": j.Y,
	}
	var k *Key
	switch kty {
	case RSA:
		for _, m := range []string{"n", "e", "d", "p", "q", "dp", "dq", "qi"} {
			delete(all, m)
		}
		if err := forbid(kty, all); err != nil {
			return nil, err
		}
		k, err = importRSA(j)
	case EC:
		for _, m := range []string{"crv", "x", "y", "d"} {
			delete(all, m)
		}
		if err := forbid(kty, all); err != nil {
			return nil, err
		}
		k, err = importEC(j)
	default:
		delete(all, "k")
		if err := forbid(kty, all); err != nil {
			return nil, err
		}
		k, err = importOct(j)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

func importRSA(j JWK) (*Key, error) {
	n, err := member("n", j.N)
	if err != nil {
		return nil, err
	}
	N := new(big.Int).SetBytes(n)
	if !validRSASize(N.BitLen()) {
		return nil, errorf(ErrInvalidKey, "RSA modulus must be 2048, 3072 or 4096 bits")
	}
	e, err := member("e", j.E)
	if err != nil {
		return nil, err
	}
	E := new(big.Int).SetBytes(e)
	if E.BitLen() > 31 || E.Int64() < 65537 || E.Bit(0) == 0 {
		return nil, errorf(ErrInvalidKey, "RSA public exponent must be odd, at least 65537 and below 2^31")
	}
	var parts [3]*big.Int
	for i, m := range []struct{ name, v string }{{"d", j.D}, {"p", j.P}, {"q", j.Q}} {
		b, err := member(m.name, m.v)
		if err != nil {
			return nil, err
		}
		x := new(big.Int).SetBytes(b)
		clear(b)
		if x.Sign() == 0 || x.Cmp(N) >= 0 {
			return nil, errorf(ErrInvalidKey, "RSA %s out of range", m.name)
		}
		parts[i] = x
	}
	priv := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: N, E: int(E.Int64())},
		D:         parts[0],
		Primes:    []*big.Int{parts[1], parts[2]},
	}
	// Validate derives dp, dq and qi from d, p and q, and so checks d against
	// e; the given CRT values are only compared afterwards.
	if err := checkRSA(priv); err != nil {
		return nil, err
	}
	crt := []struct{ name, v string }{{"dp", j.DP}, {"dq", j.DQ}, {"qi", j.QI}}
	given := 0
	for _, c := range crt {
		if c.v != "" {
			given++
		}
	}
	if given != 0 && given != 3 {
		return nil, errorf(ErrInvalidKey, "RSA dp, dq and qi must be given together")
	}
	if given == 3 {
		want := []*big.Int{priv.Precomputed.Dp, priv.Precomputed.Dq, priv.Precomputed.Qinv}
		for i, c := range crt {
			b, err := decodeB64(c.name, c.v)
			if err != nil {
				return nil, err
			}
			if !equalBig(b, want[i]) {
				clear(b)
				return nil, errorf(ErrInvalidKey, "RSA %s does not match the key", c.name)
			}
			clear(b)
		}
	}
	k := &Key{kty: RSA, rsa: priv}
	if err := k.pairwiseConsistencyTest(); err != nil {
		return nil, err
	}
	return k, nil
}

// equalBig compares a big-endian byte string, ignoring leading zeros, with
// x, in time depending on lengths only.
func equalBig(b []byte, x *big.Int) bool {
	size := max(len(b), (x.BitLen()+7)/8)
	want := x.FillBytes(make([]byte, size))
	got := make([]byte, size)
	copy(got[size-len(b):], b)
	ok := subtle.ConstantTimeCompare(got, want) == 1
	clear(want)
	clear(got)
	return ok
}

// leftPad returns b left-padded with zeros to size bytes; it fails if b is
// longer (after its own leading zeros) than size.
func leftPad(name string, b []byte, size int) ([]byte, error) {
	for len(b) > size && b[0] == 0 {
		b = b[1:]
	}
	if len(b) > size {
		return nil, errorf(ErrInvalidKey, "member %s is too long for the curve", name)
	}
	out := make([]byte, size)
	copy(out[size-len(b):], b)
	return out, nil
}

func importEC(j JWK) (*Key, error) {
	if j.Crv == "" {
		return nil, errorf(ErrInvalidKey, "member crv is missing")
	}
	crv, curve, err := lookupCurve(j.Crv)
	if err != nil {
		return nil, errorf(ErrInvalidKey, "unsupported curve %s", quote(j.Crv))
	}
	if curve == nil {
		if err := requireFIPSApproved(false, "curve P-256K (secp256k1)"); err != nil {
			return nil, err
		}
	}
	size := 32
	if curve != nil {
		size = (curve.Params().BitSize + 7) / 8
	}
	var xyd [3][]byte
	for i, m := range []struct{ name, v string }{{"x", j.X}, {"y", j.Y}, {"d", j.D}} {
		b, err := member(m.name, m.v)
		if err != nil {
			return nil, err
		}
		if xyd[i], err = leftPad(m.name, b, size); err != nil {
			return nil, err
		}
	}
	uncompressed := append(append([]byte{4}, xyd[0]...), xyd[1]...)
	d := xyd[2]
	defer clear(d)
	var k *Key
	if curve == nil {
		pub, err := secp256k1.ParsePubKey(uncompressed)
		if err != nil {
			return nil, errorf(ErrInvalidKey, "EC point is not on curve %s", crv)
		}
		priv, err := parseK1Scalar(d)
		if err != nil {
			return nil, errorf(ErrInvalidKey, "EC private key out of range")
		}
		if !priv.PubKey().IsEqual(pub) {
			return nil, errorf(ErrInvalidKey, "EC private key does not match x and y")
		}
		k = &Key{kty: EC, k1: priv}
	} else {
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, uncompressed)
		if err != nil {
			return nil, errorf(ErrInvalidKey, "EC point is not on curve %s", crv)
		}
		priv, err := ecdsa.ParseRawPrivateKey(curve, d)
		if err != nil {
			return nil, errorf(ErrInvalidKey, "EC private key out of range")
		}
		if !priv.PublicKey.Equal(pub) {
			return nil, errorf(ErrInvalidKey, "EC private key does not match x and y")
		}
		k = &Key{kty: EC, ec: priv}
	}
	if err := k.pairwiseConsistencyTest(); err != nil {
		return nil, err
	}
	return k, nil
}

func importOct(j JWK) (*Key, error) {
	b, err := member("k", j.K)
	if err != nil {
		return nil, err
	}
	if !validAESKeyLen(len(b)) {
		clear(b)
		return nil, errorf(ErrInvalidKey, "oct key must be 16, 24 or 32 bytes")
	}
	return &Key{kty: Oct, oct: b}, nil
}
