//go:build pkcs11 && cgo

package pkcs11

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"tresor/internal/barrier"
)

var _ barrier.Seal = (*Seal)(nil)

// wrapVersion marks a CKM_AES_GCM wrap: version || nonce || ciphertext+tag.
const (
	wrapVersion = 1
	nonceSize   = 12
)

// Seal is a [barrier.Seal] whose AES key stays inside a PKCS#11 token.
// It is safe for concurrent use; crypto11 keeps a pool of sessions.
type Seal struct {
	ctx  *crypto11.Context
	aead cipher.AEAD
}

// Open logs in to the token, finds the seal key by label and checks that
// it wraps and unwraps with CKM_AES_GCM. The errors name the library,
// token and key label, never the PIN.
func Open(cfg Config) (_ *Seal, err error) {
	ctx, err := login(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			ctx.Close()
		}
	}()
	keys, err := ctx.FindKeys(nil, []byte(cfg.KeyLabel))
	if err != nil {
		return nil, fmt.Errorf("pkcs11: find key %q on token %q: %w", cfg.KeyLabel, cfg.TokenLabel, err)
	}
	switch {
	case len(keys) == 0:
		return nil, fmt.Errorf("%w: token %q holds no secret key labelled %q (create it with tresor seal create-key)", ErrKeyNotFound, cfg.TokenLabel, cfg.KeyLabel)
	case len(keys) > 1:
		return nil, fmt.Errorf("pkcs11: token %q holds %d secret keys labelled %q: the seal key's label must be unique", cfg.TokenLabel, len(keys), cfg.KeyLabel)
	}
	key := keys[0]
	aead, err := key.NewGCM()
	if err != nil {
		return nil, fmt.Errorf("%w: key %q on token %q: %v", ErrMechanism, cfg.KeyLabel, cfg.TokenLabel, err)
	}
	s := &Seal{ctx: ctx, aead: aead}
	// One wrap and unwrap now, so that a token without CKM_AES_GCM (or a
	// key not allowed to encrypt) fails at start rather than at first use.
	probe := []byte("tresor/pkcs11/probe")
	w, err := s.Wrap(probe, probe)
	if err == nil {
		var got []byte
		got, err = s.Unwrap(w, probe)
		if err == nil && !bytes.Equal(got, probe) {
			err = errors.New("round trip differs")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: key %q on token %q: %v", ErrMechanism, cfg.KeyLabel, cfg.TokenLabel, err)
	}
	return s, nil
}

// CreateKey generates the seal key inside the token: AES-256, a token
// object, sensitive and not extractable. It refuses a label already used.
func CreateKey(cfg Config) error {
	ctx, err := login(cfg)
	if err != nil {
		return err
	}
	defer ctx.Close()
	keys, err := ctx.FindKeys(nil, []byte(cfg.KeyLabel))
	if err != nil {
		return fmt.Errorf("pkcs11: find key %q on token %q: %w", cfg.KeyLabel, cfg.TokenLabel, err)
	}
	if len(keys) > 0 {
		return fmt.Errorf("%w: token %q already holds a key labelled %q", ErrKeyExists, cfg.TokenLabel, cfg.KeyLabel)
	}
	id := make([]byte, 16)
	if _, err := io.ReadFull(rand.Reader, id); err != nil {
		return err
	}
	if _, err := ctx.GenerateSecretKeyWithLabel(id, []byte(cfg.KeyLabel), 256, crypto11.CipherAES); err != nil {
		return fmt.Errorf("pkcs11: generate key %q on token %q: %w", cfg.KeyLabel, cfg.TokenLabel, err)
	}
	return nil
}

func login(cfg Config) (*crypto11.Context, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pin, err := readPIN(cfg.PINFile)
	if err != nil {
		return nil, err
	}
	ctx, err := crypto11.Configure(&crypto11.Config{
		Path: cfg.Library, TokenLabel: cfg.TokenLabel, Pin: pin, GCMIVLength: nonceSize,
	})
	switch {
	case errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)):
		return nil, fmt.Errorf("%w: token %q refused the PIN in %s (CKR_PIN_INCORRECT)", ErrIncorrectPIN, cfg.TokenLabel, cfg.PINFile)
	case errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_LOCKED)):
		return nil, fmt.Errorf("%w: token %q has locked its PIN (CKR_PIN_LOCKED)", ErrIncorrectPIN, cfg.TokenLabel)
	case err != nil:
		return nil, fmt.Errorf("pkcs11: open token %q with %s: %w", cfg.TokenLabel, cfg.Library, err)
	}
	return ctx, nil
}

// Wrap implements [barrier.Seal] with CKM_AES_GCM inside the token.
func (s *Seal) Wrap(plaintext, aad []byte) (out []byte, err error) {
	nonce := make([]byte, nonceSize)
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, err
	}
	// crypto11's AEAD panics when the token fails; turn that into an error.
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("pkcs11: wrap: %v", r)
		}
	}()
	out = append([]byte{wrapVersion}, nonce...)
	return s.aead.Seal(out, nonce, plaintext, aad), nil
}

// Unwrap implements [barrier.Seal]; it returns [ErrOpen] (and
// [barrier.ErrOpen]) if the wrap or aad differ.
func (s *Seal) Unwrap(wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) < 1+nonceSize+16 || wrapped[0] != wrapVersion {
		return nil, fmt.Errorf("%w: %w: not a PKCS#11 seal wrap", barrier.ErrOpen, ErrOpen)
	}
	pt, err := s.aead.Open(nil, wrapped[1:1+nonceSize], wrapped[1+nonceSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %v", barrier.ErrOpen, ErrOpen, err)
	}
	return pt, nil
}

// Close logs out and closes the token's sessions.
func (s *Seal) Close() error { return s.ctx.Close() }
