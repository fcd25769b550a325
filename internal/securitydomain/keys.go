package securitydomain

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"tresor/internal/crypto/pemkey"
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
// (PKCS#8 with PBES2: PBKDF2 with HMAC-SHA-1/-256/-384/-512 and AES-CBC);
// see [pemkey.ParsePrivateKey]. Other PEM blocks, such as certificates, are
// skipped; a key that is not RSA is refused. Input without PEM blocks is
// parsed as DER (PKCS#8 or PKCS#1). password is only used for encrypted
// keys: a missing one returns [ErrPasswordRequired], a wrong one
// [ErrIncorrectPassword].
func ParsePrivateKeyPEM(pemBytes []byte, password []byte) (*rsa.PrivateKey, error) {
	key, err := pemkey.ParsePrivateKey(pemBytes, password)
	switch {
	case errors.Is(err, pemkey.ErrNotPEM):
		if key, err := x509.ParsePKCS8PrivateKey(pemBytes); err == nil {
			return rsaKey(key)
		}
		if key, err := x509.ParsePKCS1PrivateKey(pemBytes); err == nil {
			return key, nil
		}
		return nil, errors.New("securitydomain: no PEM or DER private key found")
	case errors.Is(err, pemkey.ErrPasswordRequired):
		return nil, ErrPasswordRequired
	case errors.Is(err, pemkey.ErrIncorrectPassword):
		return nil, ErrIncorrectPassword
	case errors.Is(err, pemkey.ErrNoPrivateKey):
		return nil, errors.New("securitydomain: no private key block in PEM data")
	case err != nil:
		return nil, fmt.Errorf("securitydomain: parsing private key: %w", err)
	}
	return rsaKey(key)
}

// rsaKey returns key if it is an RSA key.
func rsaKey(key crypto.PrivateKey) (*rsa.PrivateKey, error) {
	k, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("securitydomain: private key is not RSA")
	}
	return k, nil
}
