package securitydomain

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Certificate is an X.509 certificate with an RSA public key of at least
// 2048 bits: a custodian (wrapping) certificate or an exchange (transfer)
// certificate. Make one with [ParseCertificate] or [ParseCertificatePEM];
// functions that take a Certificate parse DER again and refuse a value whose
// Public key does not match it.
type Certificate struct {
	// DER is the certificate's DER encoding; its SHA-256 is the x5t_256.
	DER []byte
	// Public is the certificate's RSA public key.
	Public *rsa.PublicKey
}

// Thumbprint returns the certificate's x5t_256 (see [Thumbprint]).
func (c *Certificate) Thumbprint() string { return Thumbprint(c.DER) }

// ParseCertificate parses a DER certificate and checks that it holds an RSA
// key of at least 2048 bits. Validity dates are not checked: custodian
// certificates routinely outlive their notAfter (Azure does not check them
// either). The DER bytes are copied.
func ParseCertificate(der []byte) (*Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("securitydomain: parsing certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("securitydomain: certificate key is not RSA")
	}
	if pub.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("securitydomain: certificate RSA key is %d bits, need at least %d", pub.N.BitLen(), minRSABits)
	}
	return &Certificate{DER: bytes.Clone(der), Public: pub}, nil
}

// checkCertificate re-parses c.DER and checks c.Public against it, so that
// a hand-built Certificate cannot smuggle in a key or thumbprint mismatch.
func checkCertificate(c *Certificate) (*Certificate, error) {
	if c == nil {
		return nil, errors.New("securitydomain: nil certificate")
	}
	parsed, err := ParseCertificate(c.DER)
	if err != nil {
		return nil, err
	}
	if c.Public != nil && !c.Public.Equal(parsed.Public) {
		return nil, errors.New("securitydomain: certificate public key does not match its DER")
	}
	return parsed, nil
}

// ParseCertificatePEM parses the first CERTIFICATE block of a PEM file (any
// line length, as az init-recovery writes 65-character lines). Input that
// holds no PEM block is parsed as DER.
func ParseCertificatePEM(pemBytes []byte) (*Certificate, error) {
	rest := pemBytes
	sawPEM := false
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		if block.Type == "CERTIFICATE" {
			return ParseCertificate(block.Bytes)
		}
	}
	if sawPEM {
		return nil, errors.New("securitydomain: no CERTIFICATE block in PEM data")
	}
	return ParseCertificate(pemBytes)
}

// CertificatePEM encodes a DER certificate the way az keyvault
// security-domain init-recovery writes the exchange key: a BEGIN line, the
// standard base64 text cut into 65-character lines, an END line, joined by
// "\n" with no trailing newline.
func CertificatePEM(der []byte) []byte {
	const lineLen = 65
	text := base64.StdEncoding.EncodeToString(der)
	var b strings.Builder
	b.WriteString("-----BEGIN CERTIFICATE-----")
	for len(text) > 0 {
		n := min(lineLen, len(text))
		b.WriteString("\n")
		b.WriteString(text[:n])
		text = text[n:]
	}
	b.WriteString("\n-----END CERTIFICATE-----")
	return []byte(b.String())
}

// ParsePrivateKeyPEM parses an RSA private key from PEM as openssl writes
// it: "PRIVATE KEY" (PKCS#8), "RSA PRIVATE KEY" (PKCS#1, optionally with
// legacy "Proc-Type: 4,ENCRYPTED" encryption) or "ENCRYPTED PRIVATE KEY"
// (PKCS#8 with PBES2: PBKDF2 with HMAC-SHA-1/-256/-384/-512 and AES-CBC).
// Other PEM blocks, such as certificates, are skipped. Input without PEM
// blocks is parsed as DER (PKCS#8 or PKCS#1). password is only used for
// encrypted keys: a missing one returns [ErrPasswordRequired], a wrong one
// [ErrIncorrectPassword].
func ParsePrivateKeyPEM(pemBytes []byte, password []byte) (*rsa.PrivateKey, error) {
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
		case "RSA PRIVATE KEY":
			return parseRSAPrivateKeyBlock(block, password)
		case "ENCRYPTED PRIVATE KEY":
			return parseEncryptedPKCS8(block.Bytes, password)
		case "EC PRIVATE KEY", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY":
			return nil, errors.New("securitydomain: private key is not an RSA key in PKCS#1 or PKCS#8 form")
		}
	}
	if sawPEM {
		return nil, errors.New("securitydomain: no private key block in PEM data")
	}
	if key, err := parsePKCS8(pemBytes); err == nil {
		return key, nil
	}
	if key, err := x509.ParsePKCS1PrivateKey(pemBytes); err == nil {
		return key, nil
	}
	return nil, errors.New("securitydomain: no PEM or DER private key found")
}

func parsePKCS8(der []byte) (*rsa.PrivateKey, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("securitydomain: parsing PKCS#8 private key: %w", err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("securitydomain: private key is not RSA")
	}
	return rsaKey, nil
}

func parseRSAPrivateKeyBlock(block *pem.Block, password []byte) (*rsa.PrivateKey, error) {
	der := block.Bytes
	//lint:ignore SA1019 legacy PEM encryption is insecure but openssl -traditional still writes it; we only read it
	if x509.IsEncryptedPEMBlock(block) {
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
			return nil, fmt.Errorf("securitydomain: decrypting legacy PEM private key: %w", err)
		}
		defer clear(der)
		key, err := x509.ParsePKCS1PrivateKey(der)
		if err != nil {
			// Legacy encryption has no MAC: a wrong password usually shows up
			// here as garbage that passed the padding check.
			return nil, ErrIncorrectPassword
		}
		return key, nil
	}
	key, err := x509.ParsePKCS1PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("securitydomain: parsing PKCS#1 private key: %w", err)
	}
	return key, nil
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
func unmarshalDER(der []byte, out any) error {
	rest, err := asn1.Unmarshal(der, out)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("trailing data")
	}
	return nil
}

func parseEncryptedPKCS8(der, password []byte) (*rsa.PrivateKey, error) {
	bad := func(what string) error {
		return fmt.Errorf("securitydomain: encrypted private key: %s", what)
	}
	var info encryptedPrivateKeyInfo
	if err := unmarshalDER(der, &info); err != nil {
		return nil, bad("invalid EncryptedPrivateKeyInfo")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, bad("only PBES2 encryption is supported (use openssl pkcs8 -v2 aes-256-cbc)")
	}
	var params pbes2Params
	if err := unmarshalDER(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		return nil, bad("invalid PBES2 parameters")
	}
	if !params.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2) {
		return nil, bad("only PBKDF2 key derivation is supported")
	}
	var kdf pbkdf2Params
	if err := unmarshalDER(params.KeyDerivationFunc.Parameters.FullBytes, &kdf); err != nil {
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
		return nil, bad("PBKDF2 key length does not match the cipher")
	}
	var iv []byte
	if err := unmarshalDER(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(iv) != aes.BlockSize {
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
	priv, err := x509.ParsePKCS8PrivateKey(pt[:len(pt)-pad])
	if err != nil {
		// CBC without a MAC: a wrong password passes the padding check
		// about once in 256 tries and then fails here.
		return nil, ErrIncorrectPassword
	}
	rsaKey, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("securitydomain: private key is not RSA")
	}
	return rsaKey, nil
}
