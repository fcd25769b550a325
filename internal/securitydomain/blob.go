package securitydomain

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
)

// The upload ("restore") blob is what a customer sends to a new HSM to
// recover a security domain: the blobs re-encrypted under a fresh master
// key, and that key wrapped to the HSM's exchange certificate:
//
//	{"EncData":{"data":[{"compact_jwe":…,"tag":…},…],"kdf":"sp108_kdf"},
//	 "WrappedKey":{"enc_key":…,"x5t_256":…}}

type uploadBlobJSON struct {
	EncData    encDataJSON    `json:"EncData"`
	WrappedKey wrappedKeyJSON `json:"WrappedKey"`
}

// BuildUploadBlob makes an upload blob, as az keyvault security-domain
// restore-blob does: a fresh 32-byte master key, each blob encrypted under
// KDF(master, tag, "", 512), and the master key wrapped (RSA-OAEP-256,
// A256CBC-HS512) to the exchange certificate, named by its x5t_256. Blobs
// must have unique non-empty tags; the exchange certificate must be RSA
// with at least 2048 bits. Randomness comes from rand, or crypto/rand when
// nil. The result is compact JSON text.
func BuildUploadBlob(blobs []Blob, exchange *Certificate, rand io.Reader) ([]byte, error) {
	if err := checkBlobs(blobs); err != nil {
		return nil, err
	}
	cert, err := checkCertificate(exchange)
	if err != nil {
		return nil, fmt.Errorf("%w (exchange certificate)", err)
	}
	r := randOrDefault(rand)
	master := make([]byte, masterKeySize)
	defer clear(master)
	if _, err := io.ReadFull(r, master); err != nil {
		return nil, fmt.Errorf("securitydomain: reading randomness: %w", err)
	}
	enc, err := encryptBlobs(master, blobs, r)
	if err != nil {
		return nil, err
	}
	wrapped, err := EncryptRSA(cert.Public, master, r)
	if err != nil {
		return nil, err
	}
	return marshalJSON(uploadBlobJSON{
		EncData:    enc,
		WrappedKey: wrappedKeyJSON{EncKey: wrapped, X5T256: cert.Thumbprint()},
	})
}

// OpenUploadBlob decrypts an upload blob with the exchange key, as the
// server does on upload. It accepts the compact output of [BuildUploadBlob]
// and the Python-style output of the Azure CLI, and tolerates JWE fields
// that an old CLI revision base64url-encoded a second time. Errors:
//   - [ErrMalformed]: not JSON, a missing or mistyped field, a bad JWE,
//     kdf other than "sp108_kdf", a JWE kid different from its tag, or a
//     wrapped key that is not 32 bytes;
//   - [ErrMissingTag], [ErrDuplicateTag]: an empty or repeated tag (use
//     [RequireTags] on the result to insist on specific tags);
//   - [ErrWrongExchangeKey]: WrappedKey.x5t_256 is not the thumbprint of
//     the exchange certificate, or exchangeKey does not belong to it;
//   - [*TamperedError] (matching [ErrTampered]): the wrapped key or a blob
//     fails authentication; its Tag names the blob.
//
// Blobs come back in blob order.
func OpenUploadBlob(data []byte, exchangeCertDER []byte, exchangeKey *rsa.PrivateKey) ([]Blob, error) {
	if exchangeKey == nil || exchangeKey.N == nil {
		return nil, errors.New("securitydomain: nil exchange private key")
	}
	cert, err := ParseCertificate(exchangeCertDER)
	if err != nil {
		return nil, fmt.Errorf("%w (exchange certificate)", err)
	}
	root, err := parseObject(data, "")
	if err != nil {
		return nil, err
	}
	items, err := parseEncData(root, true)
	if err != nil {
		return nil, err
	}
	wk, err := root.obj("WrappedKey")
	if err != nil {
		return nil, err
	}
	x5t, err := wk.str("x5t_256")
	if err != nil {
		return nil, err
	}
	encKey, err := wk.str("enc_key")
	if err != nil {
		return nil, err
	}
	if encKey, err = undoubleJWE(encKey); err != nil {
		return nil, atPath("WrappedKey.enc_key", err)
	}
	if _, err := parseCompact(encKey, algRSAOAEP256); err != nil {
		return nil, atPath("WrappedKey.enc_key", err)
	}
	if x5t != cert.Thumbprint() {
		return nil, ErrWrongExchangeKey
	}
	if !cert.Public.Equal(&exchangeKey.PublicKey) {
		return nil, fmt.Errorf("%w: private key does not match the exchange certificate", ErrWrongExchangeKey)
	}
	master, err := DecryptRSA(exchangeKey, encKey)
	if err != nil {
		if errors.Is(err, ErrTampered) {
			return nil, &TamperedError{Field: "WrappedKey.enc_key"}
		}
		return nil, atPath("WrappedKey.enc_key", err)
	}
	defer clear(master)
	if len(master) != masterKeySize {
		return nil, malformed("WrappedKey.enc_key: wrapped key must be %d bytes", masterKeySize)
	}
	return decryptBlobs(master, items)
}
