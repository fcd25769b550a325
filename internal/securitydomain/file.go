package securitydomain

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Tags of the blobs Tresor keeps in its security domain, the same three the
// Azure service uses.
const (
	TagHSMBackup              = "hsm_backup"
	TagBaseEnclaveBackup      = "base_enclave_backup"
	TagPartitionEnclaveBackup = "partition_enclave_backup"
)

// Limits of the security-domain format.
const (
	MinCertificates = 3  // fewest custodian certificates BuildFile accepts
	MaxCertificates = 10 // most custodian certificates BuildFile accepts
	MinRequired     = 2  // smallest quorum
	MaxRequired     = 10 // largest quorum
	masterKeySize   = 32
)

// Blob is one tagged plaintext carried by a security domain. Data is secret.
type Blob struct {
	// Tag labels the blob; it selects the blob's key (KDF label) and is
	// the kid of its JWE. Tags are unique within a security domain.
	Tag string
	// Data is the plaintext.
	Data []byte
}

// RequireTags checks that blobs holds every tag in want and returns an error
// wrapping [ErrMissingTag] that names the first one absent.
func RequireTags(blobs []Blob, want ...string) error {
	have := make(map[string]bool, len(blobs))
	for _, b := range blobs {
		have[b.Tag] = true
	}
	for _, t := range want {
		if !have[t] {
			return fmt.Errorf("%w: %s", ErrMissingTag, quoteTag(t))
		}
	}
	return nil
}

// checkBlobs validates blobs to be encrypted: at least one, tags non-empty
// and unique.
func checkBlobs(blobs []Blob) error {
	if len(blobs) == 0 {
		return errors.New("securitydomain: no blobs to encrypt")
	}
	seen := make(map[string]bool, len(blobs))
	for i, b := range blobs {
		if b.Tag == "" {
			return fmt.Errorf("%w: blob %d", ErrMissingTag, i)
		}
		if seen[b.Tag] {
			return fmt.Errorf("%w: %s", ErrDuplicateTag, quoteTag(b.Tag))
		}
		seen[b.Tag] = true
	}
	return nil
}

// File is a parsed version-2 security-domain file (the JSON document the
// download operation returns). Its fields hold ciphertext only. Use
// [ParseFile] to read one, [File.Open] to decrypt it with a quorum of
// custodian keys, and [BuildFile] to make a new one.
type File struct {
	// Required is the quorum: how many shares rebuild the master key.
	Required int
	// Shares holds the encrypted Shamir shares, one per custodian
	// certificate, in file order.
	Shares []Share
	// Data holds the encrypted tagged blobs in file order.
	Data []EncryptedBlob
}

// Share is one SharedKeys.enc_shares entry.
type Share struct {
	// X5T256 is the thumbprint of the custodian certificate the share is
	// encrypted to (see [Thumbprint]).
	X5T256 string
	// EncKey is the share as a compact JWE (RSA-OAEP-256, A256CBC-HS512).
	EncKey string
}

// EncryptedBlob is one EncData.data entry.
type EncryptedBlob struct {
	// Tag is the blob's tag.
	Tag string
	// CompactJWE is the blob as a compact JWE (dir, A256CBC-HS512,
	// kid = Tag) under KDF(master key, Tag, "", 512).
	CompactJWE string
}

type fileJSON struct {
	EncData    encDataJSON    `json:"EncData"`
	SharedKeys sharedKeysJSON `json:"SharedKeys"`
	Version    int            `json:"version"`
}

type sharedKeysJSON struct {
	EncShares    []wrappedKeyJSON `json:"enc_shares"`
	KeyAlgorithm string           `json:"key_algorithm"`
	Required     int              `json:"required"`
}

// ParseFile parses and validates a security-domain file: version 2,
// EncData with kdf "sp108_kdf" and at least one blob with a unique non-empty
// tag whose JWE is dir/A256CBC-HS512 with kid equal to the tag, SharedKeys
// with key_algorithm "shamir_share", required in [2,10], and between
// required and 126 shares, each with a SHA-256 thumbprint and an
// RSA-OAEP-256/A256CBC-HS512 JWE. Unknown fields are ignored. It decrypts
// nothing. Errors wrap [ErrMalformed], [ErrMissingTag] or [ErrDuplicateTag].
func ParseFile(data []byte) (*File, error) {
	root, err := parseObject(data, "")
	if err != nil {
		return nil, err
	}
	version, err := root.integer("version")
	if err != nil {
		return nil, err
	}
	if version != 2 {
		return nil, malformed("unsupported security domain version %d (want 2)", version)
	}
	items, err := parseEncData(root, false)
	if err != nil {
		return nil, err
	}
	sk, err := root.obj("SharedKeys")
	if err != nil {
		return nil, err
	}
	algo, err := sk.str("key_algorithm")
	if err != nil {
		return nil, err
	}
	if algo != "shamir_share" {
		return nil, malformed("SharedKeys.key_algorithm must be \"shamir_share\"")
	}
	required, err := sk.integer("required")
	if err != nil {
		return nil, err
	}
	if required < MinRequired || required > MaxRequired {
		return nil, malformed("SharedKeys.required must be between %d and %d", MinRequired, MaxRequired)
	}
	rawShares, err := sk.array("enc_shares")
	if err != nil {
		return nil, err
	}
	if len(rawShares) < required || len(rawShares) > MaxShares {
		return nil, malformed("SharedKeys.enc_shares must hold between required (%d) and %d entries", required, MaxShares)
	}
	f := &File{Required: required, Shares: make([]Share, len(rawShares)), Data: make([]EncryptedBlob, len(items))}
	for i, raw := range rawShares {
		path := fmt.Sprintf("SharedKeys.enc_shares[%d]", i)
		o, err := parseObject(raw, path)
		if err != nil {
			return nil, err
		}
		s := &f.Shares[i]
		if s.X5T256, err = o.str("x5t_256"); err != nil {
			return nil, err
		}
		if s.EncKey, err = o.str("enc_key"); err != nil {
			return nil, err
		}
		if err := checkThumbprint(s.X5T256); err != nil {
			return nil, atPath(path+".x5t_256", err)
		}
		if _, err := parseCompact(s.EncKey, algRSAOAEP256); err != nil {
			return nil, atPath(path+".enc_key", err)
		}
	}
	for i, it := range items {
		f.Data[i] = EncryptedBlob(it)
	}
	return f, nil
}

// checkThumbprint checks that s is an unpadded base64url SHA-256 digest.
func checkThumbprint(s string) error {
	if d, err := b64.DecodeString(s); err != nil || len(d) != 32 {
		return malformed("not a base64url SHA-256 thumbprint")
	}
	return nil
}

// Marshal encodes f as the service writes a security-domain file: compact
// JSON with keys in sorted order, version 2. Marshal(ParseFile(b)) gives
// back the real Azure file byte for byte. Marshal does not validate f.
func (f *File) Marshal() ([]byte, error) {
	doc := fileJSON{
		EncData: encDataJSON{KDF: "sp108_kdf", Data: make([]blobJSON, len(f.Data))},
		SharedKeys: sharedKeysJSON{
			EncShares:    make([]wrappedKeyJSON, len(f.Shares)),
			KeyAlgorithm: "shamir_share",
			Required:     f.Required,
		},
		Version: 2,
	}
	for i, b := range f.Data {
		doc.EncData.Data[i] = blobJSON{CompactJWE: b.CompactJWE, Tag: b.Tag}
	}
	for i, s := range f.Shares {
		doc.SharedKeys.EncShares[i] = wrappedKeyJSON{EncKey: s.EncKey, X5T256: s.X5T256}
	}
	return marshalJSON(doc)
}

// BuildFile makes a new security-domain file, as the download operation
// does: a fresh 32-byte master key, each blob encrypted under
// KDF(master, tag, "", 512), and the master key split with Shamir into one
// share per certificate (x = 1..n in certificate order) with quorum
// required, each share encrypted to its certificate. It needs 3 to 10
// RSA certificates of at least 2048 bits, no two of them for the same key
// ([ErrDuplicateKey]), 2 <= required <=
// len(certs), and blobs with unique non-empty tags. Randomness comes from
// rand, or crypto/rand when nil. The result is the JSON file text.
func BuildFile(blobs []Blob, certs []*Certificate, required int, rand io.Reader) ([]byte, error) {
	if err := checkBlobs(blobs); err != nil {
		return nil, err
	}
	if len(certs) < MinCertificates || len(certs) > MaxCertificates {
		return nil, fmt.Errorf("securitydomain: need between %d and %d certificates, got %d", MinCertificates, MaxCertificates, len(certs))
	}
	if required < MinRequired || required > MaxRequired || required > len(certs) {
		return nil, fmt.Errorf("securitydomain: required must be between %d and the number of certificates (%d)", MinRequired, len(certs))
	}
	parsed := make([]*Certificate, len(certs))
	for i, c := range certs {
		p, err := checkCertificate(c)
		if err != nil {
			return nil, fmt.Errorf("%w (certificate %d)", err, i)
		}
		if err := checkDistinctKey(parsed[:i], p); err != nil {
			return nil, err
		}
		parsed[i] = p
	}
	r := randOrDefault(rand)
	master := make([]byte, masterKeySize)
	defer clear(master)
	if _, err := io.ReadFull(r, master); err != nil {
		return nil, fmt.Errorf("securitydomain: reading randomness: %w", err)
	}
	shares, err := Split(master, required, len(parsed), r)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range shares {
			clear(s)
		}
	}()
	enc, err := encryptBlobs(master, blobs, r)
	if err != nil {
		return nil, err
	}
	f := &File{Required: required, Shares: make([]Share, len(parsed)), Data: make([]EncryptedBlob, len(enc.Data))}
	for i, c := range parsed {
		jwe, err := EncryptRSA(c.Public, shares[i], r)
		if err != nil {
			return nil, err
		}
		f.Shares[i] = Share{X5T256: c.Thumbprint(), EncKey: jwe}
	}
	for i, d := range enc.Data {
		f.Data[i] = EncryptedBlob{Tag: d.Tag, CompactJWE: d.CompactJWE}
	}
	return f.Marshal()
}

// checkDistinctKey returns an error wrapping [ErrDuplicateKey] when c holds
// the key of one of the certificates before it. Keys are compared by their
// modulus alone, as numbers: the holder of a private key knows the
// factors of its modulus and so every private exponent for it, and two
// encodings of one key (other certificate fields, signature algorithm,
// exponent) are the same key.
func checkDistinctKey(before []*Certificate, c *Certificate) error {
	for j, b := range before {
		if b.Public.N.Cmp(c.Public.N) != 0 {
			continue
		}
		if b.Thumbprint() == c.Thumbprint() {
			return fmt.Errorf("%w: certificates %d and %d are the same certificate; each custodian needs their own key pair", ErrDuplicateKey, j, len(before))
		}
		return fmt.Errorf("%w: certificates %d and %d are different certificates for one RSA key; each custodian needs their own key pair", ErrDuplicateKey, j, len(before))
	}
	return nil
}

// Custodian is a holder of one security-domain key pair: the certificate
// the share was encrypted to and its private key.
type Custodian struct {
	// Cert is the custodian certificate; its x5t_256 selects the shares.
	Cert *Certificate
	// Key is the certificate's RSA private key.
	Key *rsa.PrivateKey
}

// Open decrypts the file's blobs with custodians' keys. Like the Azure
// CLI, it takes custodians in order, decrypts every share whose x5t_256
// matches the custodian's certificate (skipping a share whose x it already
// holds), stops once it holds Required shares, rebuilds the master key and
// decrypts every blob. The File is validated again first, since its fields
// may have been changed since [ParseFile]. Fewer usable
// shares return [ErrInsufficientShares]; a custodian whose key does not
// belong to its certificate [ErrKeyMismatch]; a share or blob that fails
// authentication a [*TamperedError]. Blobs come back in file order.
func (f *File) Open(custodians []Custodian) ([]Blob, error) {
	master, err := f.masterKey(custodians)
	if err != nil {
		return nil, err
	}
	defer clear(master)
	items := make([]taggedJWE, len(f.Data))
	for i, d := range f.Data {
		items[i] = taggedJWE(d)
	}
	return decryptBlobs(master, items)
}

// masterKey decrypts a quorum of shares and rebuilds the master key.
func (f *File) masterKey(custodians []Custodian) ([]byte, error) {
	if f == nil {
		return nil, errors.New("securitydomain: nil file")
	}
	// Re-validate: the fields are exported and may have been changed.
	data, err := f.Marshal()
	if err != nil {
		return nil, err
	}
	if _, err := ParseFile(data); err != nil {
		return nil, err
	}
	var shares [][]byte
	defer func() {
		for _, s := range shares {
			clear(s)
		}
	}()
	seenX := map[uint16]bool{}
collect:
	for ci, c := range custodians {
		if c.Key == nil || c.Key.N == nil {
			return nil, fmt.Errorf("securitydomain: custodian %d has no private key", ci)
		}
		cert, err := checkCertificate(c.Cert)
		if err != nil {
			return nil, fmt.Errorf("%w (custodian %d)", err, ci)
		}
		if !cert.Public.Equal(&c.Key.PublicKey) {
			return nil, fmt.Errorf("%w (custodian %d)", ErrKeyMismatch, ci)
		}
		tp := cert.Thumbprint()
		for si, s := range f.Shares {
			if s.X5T256 != tp {
				continue
			}
			path := fmt.Sprintf("SharedKeys.enc_shares[%d]", si)
			pt, err := DecryptRSA(c.Key, s.EncKey)
			if err != nil {
				if errors.Is(err, ErrTampered) {
					return nil, &TamperedError{Field: path}
				}
				return nil, atPath(path, err)
			}
			if len(pt) == 0 || len(pt)%2 != 0 {
				clear(pt)
				return nil, malformed("%s: share has odd or zero length", path)
			}
			x := uint16(pt[1]) >> 1 // high byte of the first little-endian word, >> 1: (w >> 9)
			if seenX[x] {
				clear(pt)
				continue
			}
			seenX[x] = true
			shares = append(shares, pt)
			if len(shares) == f.Required {
				break collect
			}
		}
	}
	if len(shares) < f.Required {
		return nil, fmt.Errorf("%w (have %d, need %d)", ErrInsufficientShares, len(shares), f.Required)
	}
	master, err := Combine(shares)
	if err != nil {
		return nil, malformed("shares do not combine: %s", strings.TrimPrefix(err.Error(), "securitydomain: shamir: "))
	}
	return master, nil
}
