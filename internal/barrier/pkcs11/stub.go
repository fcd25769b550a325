//go:build !pkcs11 || !cgo

package pkcs11

// Seal is the PKCS#11 seal; in this build it cannot be opened.
type Seal struct{}

// Open returns [ErrNotBuilt]: this build has no PKCS#11 support.
func Open(cfg Config) (*Seal, error) { return nil, ErrNotBuilt }

// CreateKey returns [ErrNotBuilt]: this build has no PKCS#11 support.
func CreateKey(cfg Config) error { return ErrNotBuilt }

// Wrap implements barrier.Seal; it is never reached in this build.
func (s *Seal) Wrap(plaintext, aad []byte) ([]byte, error) { return nil, ErrNotBuilt }

// Unwrap implements barrier.Seal; it is never reached in this build.
func (s *Seal) Unwrap(wrapped, aad []byte) ([]byte, error) { return nil, ErrNotBuilt }

// Close does nothing in this build.
func (s *Seal) Close() error { return nil }
