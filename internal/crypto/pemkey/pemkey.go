// Package pemkey implements reading RSA and EC private keys from PEM, in
// the forms OpenSSL writes them:
//
//   - "PRIVATE KEY": PKCS#8 ([RFC 5208]);
//   - "ENCRYPTED PRIVATE KEY": PKCS#8 encrypted with PBES2 ([RFC 8018]):
//     PBKDF2 with HMAC-SHA-1, -256, -384 or -512, and AES-128, -192 or
//     -256 in CBC mode (openssl pkcs8 -topk8 -v2 aes-256-cbc, and
//     openssl genpkey -aes256);
//   - "RSA PRIVATE KEY": PKCS#1 ([RFC 8017]);
//   - "EC PRIVATE KEY": SEC 1 ([RFC 5915]).
//
// The last two may carry legacy PEM encryption ("Proc-Type: 4,ENCRYPTED",
// as openssl -traditional writes it). Other PEM blocks, such as
// certificates and public keys, are skipped.
//
// # Which function to use
//
// [ParsePrivateKey] is the one function. It returns what
// [crypto/x509.ParsePKCS8PrivateKey] returns (*rsa.PrivateKey,
// *ecdsa.PrivateKey, ed25519.PrivateKey, …) and, for an EC key on a curve
// that crypto/ecdsa does not implement (secp256k1, for example), an
// [*ECKey] that holds the curve and the private scalar, for a caller that
// has an implementation of that curve. Callers check the type they accept.
//
// # Errors
//
// A missing or a wrong password is reported with [ErrPasswordRequired] or
// [ErrIncorrectPassword]. Input without PEM gives [ErrNotPEM], PEM without a
// private key [ErrNoPrivateKey], and a block of a key type the package
// does not read an [*UnsupportedKeyError]. Errors never contain key
// material or the password.
//
// The package uses the standard library only.
//
// [RFC 5208]: https://www.rfc-editor.org/rfc/rfc5208
// [RFC 8018]: https://www.rfc-editor.org/rfc/rfc8018
// [RFC 8017]: https://www.rfc-editor.org/rfc/rfc8017
// [RFC 5915]: https://www.rfc-editor.org/rfc/rfc5915
package pemkey

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
)

// ErrPasswordRequired is returned by [ParsePrivateKey] for an encrypted key
// when no password is given.
var ErrPasswordRequired = errors.New("pemkey: private key is encrypted and no password was given")

// ErrIncorrectPassword is returned by [ParsePrivateKey] when an encrypted key
// does not decrypt with the password given.
var ErrIncorrectPassword = errors.New("pemkey: incorrect password for private key")

// ErrNotPEM is returned by [ParsePrivateKey] when the input holds no PEM
// block at all (it may be DER, which the caller can try to parse).
var ErrNotPEM = errors.New("pemkey: no PEM data")

// ErrNoPrivateKey is returned by [ParsePrivateKey] when the input holds PEM
// blocks but none of them is a private key (only a certificate or a public
// key, for example).
var ErrNoPrivateKey = errors.New("pemkey: no private key in PEM data")

// UnsupportedKeyError is returned by [ParsePrivateKey] for a PEM block that
// holds a private key of a type the package does not read: "DSA PRIVATE
// KEY" or "OPENSSH PRIVATE KEY".
type UnsupportedKeyError struct {
	// Type is the PEM block's type.
	Type string
}

// Error implements error.
func (e *UnsupportedKeyError) Error() string {
	return fmt.Sprintf("pemkey: unsupported private key (%s)", e.Type)
}

// ECKey is an EC private key on a named curve that crypto/ecdsa does not
// implement, as [ParsePrivateKey] returns it.
type ECKey struct {
	// Curve is the object identifier of the named curve
	// (1.3.132.0.10 for secp256k1).
	Curve asn1.ObjectIdentifier
	// D is the private scalar, big-endian, as the key encodes it (it may
	// have leading zeros). The caller owns it and should clear it after use.
	D []byte
}

// ParsePrivateKey parses the first private key in pemBytes (see the
// package documentation for the forms it reads). password is used for
// encrypted keys only. The key is an *rsa.PrivateKey, an *ecdsa.PrivateKey
// (P-256, P-384 or P-521), an [*ECKey] for other named curves, or another
// type that crypto/x509 reads from PKCS#8 (such as ed25519.PrivateKey).
// On error the key is nil.
func ParsePrivateKey(pemBytes, password []byte) (crypto.PrivateKey, error) {
	rest := pemBytes
	sawPEM := false
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		switch block.Type {
		case "PRIVATE KEY":
			return parsePKCS8(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return parseEncryptedPKCS8(block.Bytes, password)
		case "RSA PRIVATE KEY", "EC PRIVATE KEY":
			return parseTraditional(block, password)
		case "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY":
			return nil, &UnsupportedKeyError{Type: block.Type}
		}
	}
	if sawPEM {
		return nil, ErrNoPrivateKey
	}
	return nil, ErrNotPEM
}

// parseTraditional parses an "RSA PRIVATE KEY" (PKCS#1) or "EC PRIVATE
// KEY" (SEC 1) block, decrypting legacy PEM encryption with password.
func parseTraditional(block *pem.Block, password []byte) (crypto.PrivateKey, error) {
	der := block.Bytes
	//lint:ignore SA1019 legacy PEM encryption is insecure but openssl -traditional still writes it; we only read it
	encrypted := x509.IsEncryptedPEMBlock(block)
	if encrypted {
		if len(password) == 0 {
			return nil, ErrPasswordRequired
		}
		var err error
		//lint:ignore SA1019 see above
		der, err = x509.DecryptPEMBlock(block, password)
		if err != nil {
			if errors.Is(err, x509.IncorrectPasswordError) {
				return nil, ErrIncorrectPassword
			}
			return nil, fmt.Errorf("pemkey: decrypting legacy PEM private key: %w", err)
		}
		defer clear(der)
	}
	var (
		key crypto.PrivateKey
		err error
	)
	if block.Type == "RSA PRIVATE KEY" {
		rsaKey, perr := x509.ParsePKCS1PrivateKey(der)
		if perr != nil {
			err = fmt.Errorf("pemkey: not a valid PKCS#1 RSA private key: %w", perr)
		} else {
			key = rsaKey
		}
	} else {
		key, err = parseSEC1(der, nil)
	}
	if err != nil {
		if encrypted {
			// Legacy encryption has no MAC: a wrong password usually
			// shows up here as garbage that passed the padding check.
			return nil, ErrIncorrectPassword
		}
		return nil, err
	}
	return key, nil
}

// pkcs8Info is PKCS#8's PrivateKeyInfo (RFC 5208).
type pkcs8Info struct {
	Version    int
	Algo       pkix.AlgorithmIdentifier
	PrivateKey []byte
}

// parsePKCS8 parses PKCS#8 DER: with crypto/x509 where it knows the key,
// here for EC keys on other curves.
func parsePKCS8(der []byte) (crypto.PrivateKey, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err == nil {
		return key, nil
	}
	var info pkcs8Info
	if !unmarshalDER(der, &info) {
		return nil, fmt.Errorf("pemkey: not a valid PKCS#8 private key: %w", err)
	}
	defer clear(info.PrivateKey)
	if !info.Algo.Algorithm.Equal(oidECPublicKey) {
		return nil, fmt.Errorf("pemkey: unsupported private key: %w", err)
	}
	var curve asn1.ObjectIdentifier
	if !unmarshalDER(info.Algo.Parameters.FullBytes, &curve) {
		return nil, errors.New("pemkey: not a valid PKCS#8 EC private key: bad curve parameters")
	}
	return parseSEC1(info.PrivateKey, curve)
}

// Object identifiers of EC keys.
var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidCurveP256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidCurveP384   = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidCurveP521   = asn1.ObjectIdentifier{1, 3, 132, 0, 35}
)

// ecPrivateKey is SEC 1's ECPrivateKey.
type ecPrivateKey struct {
	Version       int
	PrivateKey    []byte
	NamedCurveOID asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey     asn1.BitString        `asn1:"optional,explicit,tag:1"`
}

// parseSEC1 parses SEC 1 DER; curve (from PKCS#8) is used when the key
// names none. Keys on curves that crypto/ecdsa does not implement are
// returned as an [*ECKey].
func parseSEC1(der []byte, curve asn1.ObjectIdentifier) (crypto.PrivateKey, error) {
	var k ecPrivateKey
	if !unmarshalDER(der, &k) {
		return nil, errors.New("pemkey: not a valid EC private key")
	}
	if len(k.NamedCurveOID) > 0 {
		curve = k.NamedCurveOID
	}
	var c elliptic.Curve
	switch {
	case curve.Equal(oidCurveP256):
		c = elliptic.P256()
	case curve.Equal(oidCurveP384):
		c = elliptic.P384()
	case curve.Equal(oidCurveP521):
		c = elliptic.P521()
	case len(curve) == 0:
		clear(k.PrivateKey)
		return nil, errors.New("pemkey: the EC private key names no curve")
	default:
		return &ECKey{Curve: curve, D: k.PrivateKey}, nil
	}
	defer clear(k.PrivateKey)
	size := (c.Params().BitSize + 7) / 8
	d := k.PrivateKey
	for len(d) > size && d[0] == 0 {
		d = d[1:]
	}
	if len(d) > size {
		return nil, errors.New("pemkey: the EC private key is too long for its curve")
	}
	padded := make([]byte, size)
	copy(padded[size-len(d):], d)
	defer clear(padded)
	priv, err := ecdsa.ParseRawPrivateKey(c, padded)
	if err != nil {
		return nil, errors.New("pemkey: the EC private key is out of range for its curve")
	}
	return priv, nil
}

// PKCS#8 EncryptedPrivateKeyInfo with PBES2 (RFC 8018).

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// maxPBKDF2Iterations bounds the work a hostile key file can demand.
const maxPBKDF2Iterations = 10_000_000

type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

// unmarshalDER decodes exactly one DER value into out.
func unmarshalDER(der []byte, out any) bool {
	rest, err := asn1.Unmarshal(der, out)
	return err == nil && len(rest) == 0
}

// parseEncryptedPKCS8 decrypts an EncryptedPrivateKeyInfo (PBES2, PBKDF2,
// AES-CBC) and parses the PKCS#8 key inside.
func parseEncryptedPKCS8(der, password []byte) (crypto.PrivateKey, error) {
	bad := func(what string) error {
		return fmt.Errorf("pemkey: encrypted private key: %s", what)
	}
	var info encryptedPrivateKeyInfo
	if !unmarshalDER(der, &info) {
		return nil, bad("not a valid EncryptedPrivateKeyInfo")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, bad("only PBES2 encryption is supported (openssl pkcs8 -topk8 -v2 aes-256-cbc)")
	}
	var params pbes2Params
	if !unmarshalDER(info.Algorithm.Parameters.FullBytes, &params) {
		return nil, bad("invalid PBES2 parameters")
	}
	if !params.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2) {
		return nil, bad("only PBKDF2 key derivation is supported")
	}
	var kdf pbkdf2Params
	if !unmarshalDER(params.KeyDerivationFunc.Parameters.FullBytes, &kdf) {
		return nil, bad("invalid PBKDF2 parameters")
	}
	if len(kdf.Salt) == 0 || kdf.IterationCount < 1 || kdf.IterationCount > maxPBKDF2Iterations {
		return nil, bad("unsupported PBKDF2 salt or iteration count")
	}
	var newHash func() hash.Hash
	switch prf := kdf.PRF.Algorithm; {
	case len(prf) == 0 || prf.Equal(oidHMACSHA1):
		newHash = sha1.New
	case prf.Equal(oidHMACSHA256):
		newHash = sha256.New
	case prf.Equal(oidHMACSHA384):
		newHash = sha512.New384
	case prf.Equal(oidHMACSHA512):
		newHash = sha512.New
	default:
		return nil, bad("unsupported PBKDF2 PRF")
	}
	var keyLen int
	switch alg := params.EncryptionScheme.Algorithm; {
	case alg.Equal(oidAES128CBC):
		keyLen = 16
	case alg.Equal(oidAES192CBC):
		keyLen = 24
	case alg.Equal(oidAES256CBC):
		keyLen = 32
	default:
		return nil, bad("only AES-CBC encryption is supported")
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != keyLen {
		return nil, bad("the PBKDF2 key length does not match the cipher")
	}
	var iv []byte
	if !unmarshalDER(params.EncryptionScheme.Parameters.FullBytes, &iv) || len(iv) != aes.BlockSize {
		return nil, bad("invalid AES-CBC IV")
	}
	ct := info.EncryptedData
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, bad("invalid encrypted data length")
	}
	if len(password) == 0 {
		return nil, ErrPasswordRequired
	}
	key, err := pbkdf2.Key(newHash, string(password), kdf.Salt, kdf.IterationCount, keyLen)
	if err != nil {
		return nil, bad("key derivation failed")
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, bad("invalid key")
	}
	pt := make([]byte, len(ct))
	defer clear(pt)
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > aes.BlockSize ||
		subtle.ConstantTimeCompare(pt[len(pt)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) != 1 {
		return nil, ErrIncorrectPassword
	}
	plain := pt[:len(pt)-pad]
	// CBC has no MAC: a wrong password passes the padding check about once
	// in 256 tries; what it decrypts to is then no PrivateKeyInfo.
	var probe pkcs8Info
	if !unmarshalDER(plain, &probe) {
		return nil, ErrIncorrectPassword
	}
	clear(probe.PrivateKey)
	return parsePKCS8(plain)
}
