// Package pkcs11 implements a [barrier.Seal] whose key never leaves a
// PKCS#11 token (a hardware HSM; SoftHSM2 in tests), over
// github.com/ThalesGroup/crypto11 and github.com/miekg/pkcs11.
//
// The seal wraps the region's root keys with CKM_AES_GCM inside the token,
// under a 256-bit AES secret key found by its label (CKA_LABEL), with the
// root's name as additional authenticated data. A wrap is
// version (1 byte) || nonce (12 bytes) || ciphertext and tag; the nonce is
// drawn from crypto/rand. The token must offer CKM_AES_GCM with caller
// supplied IVs; tokens that offer only CKM_AES_KEY_WRAP_PAD are refused at
// [Open] with [ErrMechanism].
//
// # Build
//
// The bindings need cgo, so the implementation is behind the build tag
// pkcs11: `go build -tags pkcs11 ./cmd/tresor`. Without the tag (the
// default, CGO-free static build) [Open] and [CreateKey] return
// [ErrNotBuilt].
//
// # Use
//
// [Open] a seal from a [Config] at start; it logs in with the PIN read
// from Config.PINFile, finds the key and checks once that it wraps and
// unwraps. [CreateKey] makes the key inside the token (sensitive, not
// extractable); a seal never creates a missing key itself.
package pkcs11

import (
	"errors"
	"fmt"
)

// Config names the token, its PIN and the seal key.
type Config struct {
	// Library is the path of the token's PKCS#11 module (.so).
	Library string `json:"library"`
	// TokenLabel selects the token by its label.
	TokenLabel string `json:"tokenLabel"`
	// PINFile holds the user PIN (one line; mode 0600).
	PINFile string `json:"pinFile"`
	// KeyLabel is the CKA_LABEL of the AES-256 seal key.
	KeyLabel string `json:"keyLabel"`
}

// Validate reports the first missing field, named as in the config file.
func (c Config) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"seal.library", c.Library}, {"seal.tokenLabel", c.TokenLabel},
		{"seal.pinFile", c.PINFile}, {"seal.keyLabel", c.KeyLabel},
	} {
		if f.v == "" {
			return fmt.Errorf("config: %s is required for a pkcs11 seal", f.name)
		}
	}
	return nil
}

var (
	// ErrNotBuilt is returned by [Open] and [CreateKey] in a build without
	// the pkcs11 tag.
	ErrNotBuilt = errors.New("pkcs11: this tresor was built without PKCS#11 support: build it with -tags pkcs11 (needs cgo)")
	// ErrIncorrectPIN is returned when the token refuses the PIN.
	ErrIncorrectPIN = errors.New("pkcs11: incorrect PIN")
	// ErrKeyNotFound is returned by [Open] when the token holds no secret
	// key with the configured label.
	ErrKeyNotFound = errors.New("pkcs11: seal key not found")
	// ErrKeyExists is returned by [CreateKey] when the label is taken.
	ErrKeyExists = errors.New("pkcs11: a key with this label exists")
	// ErrMechanism is returned by [Open] when the key does not wrap with
	// CKM_AES_GCM.
	ErrMechanism = errors.New("pkcs11: the seal key does not work with CKM_AES_GCM")
	// ErrOpen is returned by Unwrap when a wrap does not open under the
	// key and name.
	ErrOpen = errors.New("pkcs11: wrapped value does not open")
)
