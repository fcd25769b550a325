package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// SigningKey is the region's ES256 (ECDSA P-256 with SHA-256) token signing
// key. It is opaque: the private key can only leave it through
// [SigningKey.MarshalPKCS8], for sealed storage. A SigningKey is immutable
// and safe for concurrent use. Compare keys with [SigningKey.Equal], not ==.
type SigningKey struct {
	_    [0]func() // not comparable
	priv *ecdsa.PrivateKey
	kid  string
}

// GenerateSigningKey returns a new random P-256 signing key.
func GenerateSigningKey() (*SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate signing key: %w", err)
	}
	return newSigningKey(priv)
}

// ParseSigningKey parses a signing key from its PKCS #8 DER encoding, as made
// by [SigningKey.MarshalPKCS8]. Only ECDSA P-256 keys are accepted.
func ParseSigningKey(pkcs8 []byte) (*SigningKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, errors.New("identity: signing key: not a PKCS #8 private key")
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("identity: signing key: not an ECDSA P-256 key")
	}
	return newSigningKey(priv)
}

func newSigningKey(priv *ecdsa.PrivateKey) (*SigningKey, error) {
	jwk := jose.JSONWebKey{Key: priv.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("identity: signing key thumbprint: %w", err)
	}
	return &SigningKey{priv: priv, kid: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// MarshalPKCS8 returns the private key in PKCS #8 DER form. The result is
// secret: seal it before storing it and drop it after.
func (k *SigningKey) MarshalPKCS8() ([]byte, error) {
	b, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("identity: marshal signing key: %w", err)
	}
	return b, nil
}

// KeyID returns the key's RFC 7638 JWK thumbprint (SHA-256, base64url without
// padding), used as the kid of tokens and of the JWKS entry.
func (k *SigningKey) KeyID() string { return k.kid }

// PublicJWK returns the public key as a JWK with kid, use "sig" and alg
// "ES256". Each call returns a fresh copy.
func (k *SigningKey) PublicJWK() jose.JSONWebKey {
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), mustPublicBytes(k.priv))
	if err != nil {
		panic("identity: signing key has an invalid public key: " + err.Error())
	}
	return jose.JSONWebKey{
		Key:       pub,
		KeyID:     k.kid,
		Algorithm: string(jose.ES256),
		Use:       "sig",
	}
}

// Equal reports whether k and other hold the same private key, in constant
// time.
func (k *SigningKey) Equal(other *SigningKey) bool {
	if k == nil || other == nil {
		return k == other
	}
	return k.priv.Equal(other.priv)
}

// String returns a description naming the key id only.
func (k *SigningKey) String() string { return "identity.SigningKey(kid=" + k.kid + ")" }

// GoString is like String, so that %#v does not print the key either.
func (k *SigningKey) GoString() string { return k.String() }

func mustPublicBytes(priv *ecdsa.PrivateKey) []byte {
	b, err := priv.PublicKey.Bytes()
	if err != nil {
		panic("identity: signing key has an invalid public key: " + err.Error())
	}
	return b
}
