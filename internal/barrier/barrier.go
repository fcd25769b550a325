// Package barrier implements Tresor's encryption at rest: the region seal that
// wraps root keys, and the per-namespace AEAD barrier that seals every stored
// value under keys derived from a root key.
//
// # Layers
//
// A [Seal] protects root keys while they rest in the store, so that a restart
// needs no custodians. [FileSeal] keeps a 256-bit key in a file of mode 0600.
//
// A [RootKey] is a 256-bit secret (an instance's security-domain root, or the
// region's own root). [New] derives from it, with HKDF-SHA-256 and a fixed
// label, an AES-256-GCM key that seals values for one namespace. The
// additional data binds each sealed value to its namespace and path, so a
// value copied to another place, or to another instance, does not open.
//
// # Format
//
// A sealed value is: version byte 0x01 ‖ 12-byte nonce ‖ ciphertext ‖ 16-byte tag.
package barrier

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrOpen is returned when a sealed value does not open: it was tampered
// with, moved to another path or namespace, or sealed under another key.
var ErrOpen = errors.New("barrier: sealed value does not open")

// RootKeySize is the size in bytes of a [RootKey].
const RootKeySize = 32

const formatV1 = 0x01

// RootKey is a 256-bit root secret. Its bytes are reachable only through
// [RootKey.InsecureBytes]; it never prints itself.
type RootKey struct {
	_ [0]func() // not comparable with ==
	// b is behind a pointer so that nothing printing the struct by
	// reflection (fmt's %p and bad-verb output skip String and Format)
	// shows the key: it shows an address.
	b *[RootKeySize]byte
}

// NewRootKey returns a fresh random root key read from r (crypto/rand if nil).
func NewRootKey(r io.Reader) (*RootKey, error) {
	if r == nil {
		r = rand.Reader
	}
	b := new([RootKeySize]byte)
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("barrier: generate root key: %w", err)
	}
	return &RootKey{b: b}, nil
}

// RootKeyFromBytes returns a root key holding a copy of b, which must be
// [RootKeySize] bytes long.
func RootKeyFromBytes(b []byte) (*RootKey, error) {
	if len(b) != RootKeySize {
		return nil, fmt.Errorf("barrier: root key must be %d bytes, got %d", RootKeySize, len(b))
	}
	return &RootKey{b: (*[RootKeySize]byte)(bytes.Clone(b))}, nil
}

// InsecureBytes returns the raw key. Callers must not log or keep it longer
// than needed.
func (k *RootKey) InsecureBytes() []byte { return k.bytes() }

// bytes returns the key; a RootKey not made by this package has none.
func (k *RootKey) bytes() []byte {
	if k.b == nil {
		panic("barrier: use of a RootKey not made by NewRootKey or RootKeyFromBytes")
	}
	return k.b[:]
}

// ID returns a public identifier of the key (hex of a one-way derivation):
// two holders of the same root key compute the same ID.
func (k *RootKey) ID() string {
	id, err := k.Derive("tresor/root-key-id/v1", 16)
	if err != nil {
		panic("barrier: hkdf failed") // cannot happen for 16 bytes
	}
	return hex.EncodeToString(id)
}

// Equal reports in constant time whether k and o hold the same key.
func (k *RootKey) Equal(o *RootKey) bool {
	return subtle.ConstantTimeCompare(k.bytes(), o.bytes()) == 1
}

const redactedRootKey = "barrier.RootKey{REDACTED}"

// String hides the key.
func (RootKey) String() string { return redactedRootKey }

// GoString hides the key.
func (RootKey) GoString() string { return redactedRootKey }

// Format hides the key under every verb (%d, %x, … would otherwise print the
// fields), for a RootKey and a *RootKey alike.
func (RootKey) Format(f fmt.State, verb rune) { io.WriteString(f, redactedRootKey) }

// Derive returns n bytes derived from the root key with HKDF-SHA-256 and the
// given label. Distinct labels give independent keys.
func (k *RootKey) Derive(label string, n int) ([]byte, error) {
	return hkdf.Key(sha256.New, k.bytes(), nil, label, n)
}

// Barrier seals and opens values of one namespace. It is safe for concurrent use.
type Barrier struct {
	aead      cipher.AEAD
	namespace string
}

// Purpose names what a barrier seals. Each purpose derives its own key from
// the root (HKDF-SHA-256 with a distinct label), so a value sealed for one
// purpose never opens under another, even in the same namespace and path.
// The set is closed: only the purposes below exist.
type Purpose struct{ label string }

// The purposes of Tresor's barriers.
var (
	// Storage seals values at rest in the store.
	Storage = Purpose{"tresor/storage/v1"}
	// FullBackup seals the objects of a full HSM backup in blob storage.
	FullBackup = Purpose{"tresor/full-backup/v1"}
	// KeyBackup seals single-key backups (POST /keys/{name}/backup).
	KeyBackup = Purpose{"tresor/key-backup/v1"}
)

// String returns the purpose's HKDF label.
func (p Purpose) String() string { return p.label }

// New returns the barrier of one purpose and namespace (an instance name,
// "region", a backup folder) keyed by root. The namespace must not contain
// a NUL byte, which separates it from the path in the additional data.
func New(root *RootKey, purpose Purpose, namespace string) (*Barrier, error) {
	if purpose.label == "" {
		return nil, errors.New("barrier: no purpose")
	}
	if strings.Contains(namespace, "\x00") {
		return nil, errors.New("barrier: namespace contains a NUL byte")
	}
	key, err := root.Derive(purpose.label, 32)
	if err != nil {
		return nil, fmt.Errorf("barrier: derive %s key: %w", purpose.label, err)
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &Barrier{aead: aead, namespace: namespace}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("barrier: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("barrier: %w", err)
	}
	return aead, nil
}

func (b *Barrier) aad(path string) []byte {
	return []byte(b.namespace + "\x00" + path)
}

// Overhead is how many bytes Seal adds to a plaintext.
const Overhead = 1 + 12 + 16

// Seal encrypts plaintext for the given path.
func (b *Barrier) Seal(path string, plaintext []byte) ([]byte, error) {
	return seal(b.aead, plaintext, b.aad(path))
}

// Open decrypts a value sealed for path. It returns [ErrOpen] if the value
// was not sealed by this barrier for this path.
func (b *Barrier) Open(path string, sealed []byte) ([]byte, error) {
	return open(b.aead, sealed, b.aad(path))
}

func seal(aead cipher.AEAD, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = formatV1
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return nil, fmt.Errorf("barrier: nonce: %w", err)
	}
	return aead.Seal(out, out[1:], plaintext, aad), nil
}

func open(aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != formatV1 {
		return nil, ErrOpen
	}
	pt, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
