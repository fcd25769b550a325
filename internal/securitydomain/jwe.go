package securitydomain

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Compact JWE (RFC 7516) with enc A256CBC-HS512 (RFC 7518 §5.2.5) and alg
// "dir" or "RSA-OAEP-256", the only forms the security domain uses. It is
// written by hand because the MAC must cover the received header text
// verbatim and the header must be emitted exactly as the Azure CLI does.

const (
	algDir        = "dir"
	algRSAOAEP256 = "RSA-OAEP-256"
	encA256CBC    = "A256CBC-HS512"
	// kidNotUsed is the kid the service and the CLI write on RSA-wrapped JWEs.
	kidNotUsed = "not used"

	cekSize = 64 // A256CBC-HS512: 32-byte MAC key ‖ 32-byte AES key
	tagSize = 32
	// minRSABits is the smallest RSA modulus accepted for custodian and
	// exchange certificates and for encryption.
	minRSABits = 2048
)

var b64 = base64.RawURLEncoding

// decodeB64 decodes unpadded base64url, tolerating trailing padding.
func decodeB64(s string) ([]byte, error) {
	return b64.DecodeString(strings.TrimRight(s, "="))
}

// compactJWE is a parsed compact JWE. rawHeader is the first segment as
// received: it is the AAD of the MAC.
type compactJWE struct {
	rawHeader  string
	alg, enc   string
	kid        string
	hasKid     bool
	encKey     []byte
	iv         []byte
	ciphertext []byte
	tag        []byte
}

// parseCompact splits and decodes a compact JWE and checks that its header
// names enc A256CBC-HS512 and alg wantAlg, with no zip or crit.
func parseCompact(s, wantAlg string) (*compactJWE, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 5 {
		return nil, malformed("compact JWE must have 5 parts, has %d", len(parts))
	}
	j := &compactJWE{rawHeader: parts[0]}
	hdr, err := decodeB64(parts[0])
	if err != nil {
		return nil, malformed("JWE header is not base64url")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &m); err != nil || m == nil {
		return nil, malformed("JWE header is not a JSON object")
	}
	for _, f := range []struct {
		name string
		dst  *string
		ok   *bool
	}{{"alg", &j.alg, nil}, {"enc", &j.enc, nil}, {"kid", &j.kid, &j.hasKid}} {
		raw, ok := m[f.name]
		if !ok {
			continue
		}
		if err := unmarshalString(raw, f.dst); err != nil {
			return nil, malformed("JWE header %q is not a string", f.name)
		}
		if f.ok != nil {
			*f.ok = true
		}
	}
	if _, ok := m["zip"]; ok {
		return nil, malformed("JWE compression is not supported")
	}
	if _, ok := m["crit"]; ok {
		return nil, malformed("JWE critical header parameters are not supported")
	}
	if j.alg != wantAlg {
		return nil, malformed("JWE alg must be %q", wantAlg)
	}
	if j.enc != encA256CBC {
		return nil, malformed("JWE enc must be %q", encA256CBC)
	}
	for i, dst := range []*[]byte{&j.encKey, &j.iv, &j.ciphertext, &j.tag} {
		if *dst, err = decodeB64(parts[i+1]); err != nil {
			return nil, malformed("JWE part %d is not base64url", i+2)
		}
	}
	if wantAlg == algDir && len(j.encKey) != 0 {
		return nil, malformed("JWE with alg dir must have an empty encrypted key")
	}
	if wantAlg == algRSAOAEP256 && len(j.encKey) == 0 {
		return nil, malformed("JWE encrypted key is empty")
	}
	if len(j.iv) != aes.BlockSize {
		return nil, malformed("JWE IV must be %d bytes", aes.BlockSize)
	}
	if len(j.ciphertext) == 0 || len(j.ciphertext)%aes.BlockSize != 0 {
		return nil, malformed("JWE ciphertext length must be a non-zero multiple of %d", aes.BlockSize)
	}
	if len(j.tag) != tagSize {
		return nil, malformed("JWE authentication tag must be %d bytes", tagSize)
	}
	return j, nil
}

// unmarshalString decodes a JSON string, refusing null and other types.
func unmarshalString(raw json.RawMessage, dst *string) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return errors.New("not a string")
	}
	return json.Unmarshal(raw, dst)
}

// encodeHeader writes the protected header the way the Azure CLI does:
// keys alg, enc, kid in that order, no spaces.
func encodeHeader(alg, kid string) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(struct {
		Alg string `json:"alg"`
		Enc string `json:"enc"`
		Kid string `json:"kid"`
	}{alg, encA256CBC, kid})
	if err != nil {
		return "", fmt.Errorf("securitydomain: encoding JWE header: %w", err)
	}
	return b64.EncodeToString(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// computeTag returns the A256CBC-HS512 authentication tag.
func computeTag(macKey []byte, rawHeader string, iv, ciphertext []byte) []byte {
	mac := hmac.New(sha512.New, macKey)
	mac.Write([]byte(rawHeader))
	mac.Write(iv)
	mac.Write(ciphertext)
	var al [8]byte
	binary.BigEndian.PutUint64(al[:], uint64(len(rawHeader))*8)
	mac.Write(al[:])
	return mac.Sum(nil)[:tagSize]
}

// seal encrypts plaintext under cek and returns the compact serialization.
func seal(cek []byte, rawHeader string, encKey, plaintext []byte, r io.Reader) (string, error) {
	if len(cek) != cekSize {
		return "", fmt.Errorf("securitydomain: content encryption key must be %d bytes", cekSize)
	}
	block, err := aes.NewCipher(cek[32:])
	if err != nil {
		return "", fmt.Errorf("securitydomain: %w", err)
	}
	iv := make([]byte, aes.BlockSize)
	if _, err := io.ReadFull(randOrDefault(r), iv); err != nil {
		return "", fmt.Errorf("securitydomain: reading randomness: %w", err)
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	ct := make([]byte, len(plaintext)+pad)
	copy(ct, plaintext)
	for i := len(plaintext); i < len(ct); i++ {
		ct[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	tag := computeTag(cek[:32], rawHeader, iv, ct)
	return strings.Join([]string{
		rawHeader, b64.EncodeToString(encKey), b64.EncodeToString(iv),
		b64.EncodeToString(ct), b64.EncodeToString(tag),
	}, "."), nil
}

// open checks the tag, then decrypts. A tag mismatch returns ErrTampered.
func (j *compactJWE) open(cek []byte) ([]byte, error) {
	if len(cek) != cekSize {
		return nil, fmt.Errorf("securitydomain: content encryption key must be %d bytes", cekSize)
	}
	want := computeTag(cek[:32], j.rawHeader, j.iv, j.ciphertext)
	if !hmac.Equal(want, j.tag) {
		return nil, ErrTampered
	}
	block, err := aes.NewCipher(cek[32:])
	if err != nil {
		return nil, fmt.Errorf("securitydomain: %w", err)
	}
	pt := make([]byte, len(j.ciphertext))
	cipher.NewCBCDecrypter(block, j.iv).CryptBlocks(pt, j.ciphertext)
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > aes.BlockSize ||
		subtle.ConstantTimeCompare(pt[len(pt)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) != 1 {
		clear(pt)
		return nil, malformed("JWE plaintext has invalid padding")
	}
	return pt[:len(pt)-pad], nil
}

// EncryptDir encrypts plaintext to a compact JWE with alg "dir" and enc
// A256CBC-HS512 under the 64-byte cek, with header
// {"alg":"dir","enc":"A256CBC-HS512","kid":<kid>}. The IV is read from rand,
// or crypto/rand when rand is nil.
func EncryptDir(cek []byte, kid string, plaintext []byte, rand io.Reader) (string, error) {
	if len(cek) != cekSize {
		return "", fmt.Errorf("securitydomain: content encryption key must be %d bytes", cekSize)
	}
	hdr, err := encodeHeader(algDir, kid)
	if err != nil {
		return "", err
	}
	return seal(cek, hdr, nil, plaintext, rand)
}

// DecryptDir decrypts a compact JWE with alg "dir" and enc A256CBC-HS512
// under the 64-byte cek and returns its plaintext and header kid. The tag is
// checked over the received header text before anything is decrypted; a
// mismatch returns [ErrTampered], a bad shape [ErrMalformed].
func DecryptDir(cek []byte, compact string) (plaintext []byte, kid string, err error) {
	j, err := parseCompact(compact, algDir)
	if err != nil {
		return nil, "", err
	}
	pt, err := j.open(cek)
	if err != nil {
		return nil, "", err
	}
	return pt, j.kid, nil
}

// EncryptRSA encrypts plaintext to a compact JWE with alg RSA-OAEP-256
// (SHA-256, MGF1-SHA-256, empty label) and enc A256CBC-HS512 under a random
// 64-byte CEK, with the header the service writes:
// {"alg":"RSA-OAEP-256","enc":"A256CBC-HS512","kid":"not used"}. pub must be
// at least 2048 bits. Randomness comes from rand, or crypto/rand when nil.
func EncryptRSA(pub *rsa.PublicKey, plaintext []byte, rand io.Reader) (string, error) {
	if pub == nil || pub.N == nil {
		return "", errors.New("securitydomain: nil RSA public key")
	}
	if pub.N.BitLen() < minRSABits {
		return "", fmt.Errorf("securitydomain: RSA key must be at least %d bits", minRSABits)
	}
	r := randOrDefault(rand)
	cek := make([]byte, cekSize)
	defer clear(cek)
	if _, err := io.ReadFull(r, cek); err != nil {
		return "", fmt.Errorf("securitydomain: reading randomness: %w", err)
	}
	encKey, err := rsa.EncryptOAEP(sha256.New(), r, pub, cek, nil)
	if err != nil {
		return "", fmt.Errorf("securitydomain: RSA-OAEP encryption: %w", err)
	}
	hdr, err := encodeHeader(algRSAOAEP256, kidNotUsed)
	if err != nil {
		return "", err
	}
	return seal(cek, hdr, encKey, plaintext, r)
}

// DecryptRSA decrypts a compact JWE with alg RSA-OAEP-256 and enc
// A256CBC-HS512 with priv. An encrypted key that does not decrypt under
// priv, or a tag mismatch, returns [ErrTampered]; a bad shape
// [ErrMalformed].
func DecryptRSA(priv *rsa.PrivateKey, compact string) ([]byte, error) {
	if priv == nil || priv.N == nil {
		return nil, errors.New("securitydomain: nil RSA private key")
	}
	j, err := parseCompact(compact, algRSAOAEP256)
	if err != nil {
		return nil, err
	}
	if len(j.encKey) != priv.Size() {
		return nil, ErrTampered
	}
	cek, err := rsa.DecryptOAEP(sha256.New(), nil, priv, j.encKey, nil)
	if err != nil {
		return nil, ErrTampered
	}
	defer clear(cek)
	if len(cek) != cekSize {
		return nil, malformed("JWE content encryption key must be %d bytes", cekSize)
	}
	return j.open(cek)
}

// Thumbprint returns the x5t_256 of a certificate: the unpadded base64url
// SHA-256 of its DER encoding. The security domain matches shares and
// exchange keys by this value.
func Thumbprint(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return b64.EncodeToString(sum[:])
}
