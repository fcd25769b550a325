package barrier

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"tresor/internal/atomicfile"
)

// Seal protects root keys at rest. Implementations are safe for concurrent use.
type Seal interface {
	// Wrap encrypts a root key; aad names what is wrapped (e.g. the instance).
	Wrap(plaintext, aad []byte) ([]byte, error)
	// Unwrap reverses Wrap; it returns ErrOpen if the value or aad differ.
	Unwrap(wrapped, aad []byte) ([]byte, error)
}

var _ Seal = (*FileSeal)(nil)

// FileSeal is a [Seal] whose AES-256-GCM key sits in a file of mode 0600.
type FileSeal struct {
	aead cipher.AEAD
}

// OpenFileSeal reads the seal key at path. With create, a missing file is
// made with a fresh random key (mode 0600). A key file readable by group or
// others is refused.
func OpenFileSeal(path string, create bool) (*FileSeal, error) {
	key, err := readKeyFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		key = make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, key); err != nil {
			return nil, fmt.Errorf("barrier: seal key: %w", err)
		}
		if err := atomicfile.WriteNew(path, key, 0o600); err != nil {
			return nil, fmt.Errorf("barrier: write seal key: %w", err)
		}
	case err != nil:
		return nil, err
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("barrier: seal key file %s must hold 32 bytes, holds %d", path, len(key))
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &FileSeal{aead: aead}, nil
}

// Wrap implements [Seal].
func (s *FileSeal) Wrap(plaintext, aad []byte) ([]byte, error) { return seal(s.aead, plaintext, aad) }

// Unwrap implements [Seal].
func (s *FileSeal) Unwrap(wrapped, aad []byte) ([]byte, error) { return open(s.aead, wrapped, aad) }

// readKeyFile reads the seal key file, checking the mode of the file it
// opened (not of whatever is at path a moment later).
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("barrier: read seal key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("barrier: seal key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("barrier: seal key file %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("barrier: seal key file %s must not be readable by group or others (mode %v)", path, st.Mode().Perm())
	}
	if st.Size() != 32 {
		return nil, fmt.Errorf("barrier: seal key file %s must hold 32 bytes, holds %d", path, st.Size())
	}
	key, err := io.ReadAll(io.LimitReader(f, 33))
	if err != nil {
		return nil, fmt.Errorf("barrier: read seal key: %w", err)
	}
	return key, nil
}

// WrapRootKey wraps a root key with seal, bound to name.
func WrapRootKey(s Seal, k *RootKey, name string) ([]byte, error) {
	return s.Wrap(k.bytes(), []byte("tresor/root/"+name))
}

// UnwrapRootKey reverses [WrapRootKey].
func UnwrapRootKey(s Seal, wrapped []byte, name string) (*RootKey, error) {
	b, err := s.Unwrap(wrapped, []byte("tresor/root/"+name))
	if err != nil {
		return nil, err
	}
	return RootKeyFromBytes(b)
}

var _ Seal = (*KeySeal)(nil)

// KeySeal is a [Seal] under an AES-256-GCM key held in memory: a cluster's
// seal, whose key every node keeps wrapped by its own seal (so that the
// root keys in the replicated state open on every node).
type KeySeal struct {
	aead cipher.AEAD
}

// NewKeySeal returns a seal under key (32 bytes).
func NewKeySeal(key []byte) (*KeySeal, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("barrier: a seal key holds 32 bytes, not %d", len(key))
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &KeySeal{aead: aead}, nil
}

// Wrap implements [Seal].
func (s *KeySeal) Wrap(plaintext, aad []byte) ([]byte, error) { return seal(s.aead, plaintext, aad) }

// Unwrap implements [Seal].
func (s *KeySeal) Unwrap(wrapped, aad []byte) ([]byte, error) { return open(s.aead, wrapped, aad) }
