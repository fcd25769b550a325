package keyops

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/asn1"
	"io"
	"math/big"

	_ "crypto/sha256" // SHA-256 for RS256, PS256, ES256, ES256K
	_ "crypto/sha512" // SHA-384 and SHA-512 for the 384 and 512 variants

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// signAlgFor resolves a signature algorithm for k: it must be known, fit the
// key's type and curve, and be approved when FIPS mode is on.
func (k *Key) signAlgFor(alg string) (signAlg, error) {
	a, ok := signAlgs[alg]
	if !ok {
		if _, isCipher := cipherAlgs[alg]; isCipher {
			return signAlg{}, errorf(ErrUnsupportedAlgorithm, "%s is not a signature algorithm", quote(alg))
		}
		return signAlg{}, errorf(ErrUnsupportedAlgorithm, "unknown algorithm %s", quote(alg))
	}
	switch {
	case k.rsa != nil && (a.kind == kindPKCS1v15 || a.kind == kindPSS):
	case (k.ec != nil || k.k1 != nil) && a.kind == kindECDSA:
		if a.curve != k.Curve() {
			return signAlg{}, errorf(ErrUnsupportedAlgorithm, "%s needs a %s key, not %s", alg, a.curve, k.Curve())
		}
	default:
		return signAlg{}, errorf(ErrUnsupportedAlgorithm, "%s is not valid for %s keys", alg, k.kty)
	}
	if err := requireFIPSApproved(a.fips, alg); err != nil {
		return signAlg{}, err
	}
	return a, nil
}

// Sign signs digest, the hash of the message, with the algorithm named alg:
// RS256, RS384, RS512 (RSASSA-PKCS1-v1_5), PS256, PS384, PS512 (RSASSA-PSS
// with MGF1 of the same hash and a salt as long as the hash, as Key Vault
// does), ES256 (P-256), ES256K (P-256K), ES384 (P-384) or ES512 (P-521). The
// digest length must be the hash's (32, 48 or 64 bytes).
//
// EC signatures are returned in the JWS form (RFC 7518 §3.4): r and s as
// fixed-width big-endian integers, concatenated, not ASN.1. ES256K
// signatures are deterministic (RFC 6979) and have a low s.
//
// rand is the source of randomness for PSS and ECDSA; nil means
// crypto/rand.Reader (and the standard library ignores it since Go 1.26).
// Errors wrap [ErrUnsupportedAlgorithm], [ErrInvalidInput] or
// [ErrNotApprovedInFIPSMode].
func (k *Key) Sign(alg string, digest []byte, rand io.Reader) ([]byte, error) {
	if k == nil {
		return nil, errNoKey
	}
	a, err := k.signAlgFor(alg)
	if err != nil {
		return nil, err
	}
	if len(digest) != a.hash.Size() {
		return nil, errorf(ErrInvalidInput, "%s needs a %d-byte digest", alg, a.hash.Size())
	}
	switch {
	case a.kind == kindPKCS1v15:
		sig, err := rsa.SignPKCS1v15(nil, k.rsa, a.hash, digest)
		if err != nil {
			return nil, errorf(ErrInvalidInput, "RSA signing failed")
		}
		return sig, nil
	case a.kind == kindPSS:
		sig, err := rsa.SignPSS(randOrDefault(rand), k.rsa, a.hash, digest,
			&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			return nil, errorf(ErrInvalidInput, "RSA signing failed")
		}
		return sig, nil
	case k.k1 != nil:
		return signK1(k.k1, digest), nil
	default:
		sig, err := signECDSAWith(randOrDefault(rand), k.ec, digest)
		if err != nil {
			return nil, errorf(ErrInvalidInput, "EC signing failed")
		}
		return sig, nil
	}
}

// Verify reports whether sig is a valid signature of digest with the
// algorithm alg (see [Key.Sign]) and the key's public half. A wrong or
// malformed signature gives false and no error; errors are for an algorithm
// that does not fit the key ([ErrUnsupportedAlgorithm],
// [ErrNotApprovedInFIPSMode]) and a digest of the wrong length
// ([ErrInvalidInput]).
//
// PS* signatures must use a salt as long as the hash; EC signatures must be
// in the fixed-width JWS form.
func (k *Key) Verify(alg string, digest, sig []byte) (bool, error) {
	if k == nil {
		return false, errNoKey
	}
	a, err := k.signAlgFor(alg)
	if err != nil {
		return false, err
	}
	if len(digest) != a.hash.Size() {
		return false, errorf(ErrInvalidInput, "%s needs a %d-byte digest", alg, a.hash.Size())
	}
	return verifyWith(a, k.public(), digest, sig), nil
}

// public returns the key's public half: *rsa.PublicKey, *ecdsa.PublicKey or
// *secp256k1.PublicKey (nil for oct keys).
func (k *Key) public() any {
	switch {
	case k.rsa != nil:
		return &k.rsa.PublicKey
	case k.ec != nil:
		return &k.ec.PublicKey
	case k.k1 != nil:
		return k.k1.PubKey()
	}
	return nil
}

// verifyWith verifies sig over digest with algorithm a and public key pub.
// The caller has checked that a fits pub and that digest has the hash's
// length.
func verifyWith(a signAlg, pub any, digest, sig []byte) bool {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if a.kind == kindPKCS1v15 {
			return rsa.VerifyPKCS1v15(p, a.hash, digest, sig) == nil
		}
		if a.kind == kindPSS {
			return rsa.VerifyPSS(p, a.hash, digest, sig,
				&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
	case *ecdsa.PublicKey:
		if a.kind == kindECDSA {
			return verifyECDSA(p, digest, sig)
		}
	case *secp256k1.PublicKey:
		if a.kind == kindECDSA {
			return verifyK1(p, digest, sig)
		}
	}
	return false
}

// signECDSA signs with crypto/rand's reader (the default the module
// approves); see signECDSAWith.
func signECDSA(priv *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	return signECDSAWith(randOrDefault(nil), priv, digest)
}

// signECDSAWith signs digest and returns r || s, each as wide as the curve's
// order.
func signECDSAWith(rand io.Reader, priv *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	der, err := ecdsa.SignASN1(rand, priv, digest)
	if err != nil {
		return nil, err
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 {
		return nil, errorf(ErrInvalidInput, "EC signature encoding failed")
	}
	size := orderBytes(priv.Curve.Params().N)
	if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 8*size || rs.S.BitLen() > 8*size {
		return nil, errorf(ErrInvalidInput, "EC signature encoding failed")
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

func orderBytes(n *big.Int) int { return (n.BitLen() + 7) / 8 }

// verifyECDSA verifies a fixed-width r || s signature.
func verifyECDSA(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	size := orderBytes(pub.Curve.Params().N)
	if len(sig) != 2*size {
		return false
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	if r.Sign() == 0 || s.Sign() == 0 {
		return false
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		return false
	}
	return ecdsa.VerifyASN1(pub, digest, der)
}

// signK1 signs digest with a secp256k1 key (RFC 6979, low s) and returns
// r || s, 32 bytes each.
func signK1(priv *secp256k1.PrivateKey, digest []byte) []byte {
	sig := k1ecdsa.Sign(priv, digest)
	r, s := sig.R(), sig.S()
	rb, sb := r.Bytes(), s.Bytes()
	return append(rb[:], sb[:]...)
}

// verifyK1 verifies a 64-byte r || s secp256k1 signature. r and s must be in
// [1, n−1]; a high s is accepted, as in standard ECDSA.
func verifyK1(pub *secp256k1.PublicKey, digest, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	var r, s secp256k1.ModNScalar
	if r.SetByteSlice(sig[:32]) || s.SetByteSlice(sig[32:]) {
		return false // overflow: not below the group order
	}
	if r.IsZero() || s.IsZero() {
		return false
	}
	return k1ecdsa.NewSignature(&r, &s).Verify(digest, pub)
}
