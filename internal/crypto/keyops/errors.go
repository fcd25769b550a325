package keyops

import (
	"errors"
	"fmt"
)

// ErrUnsupportedAlgorithm is returned when an algorithm name is unknown, or
// is not valid for the key's type, size or curve (A256GCM with a 128-bit key,
// ES384 with a P-256 key, RS256 with an EC key), or for the operation
// (A128KW for Encrypt, A128GCM for WrapKey).
var ErrUnsupportedAlgorithm = errors.New("keyops: unsupported algorithm")

// ErrInvalidInput is returned when a parameter is malformed independently of
// any secret: a digest whose length does not match the algorithm's hash, an
// IV or tag of the wrong length, a CBC ciphertext that is not a whole number
// of blocks, a plaintext too long for the RSA key, or invalid
// [GenerateOptions].
var ErrInvalidInput = errors.New("keyops: invalid input")

// ErrDecrypt is returned by [Key.Decrypt] and [Key.UnwrapKey] for every
// failure that depends on the ciphertext's content: a GCM tag mismatch, bad
// CBC padding, a bad RSA padding, an AES key wrap integrity failure. It never
// says which, so that it cannot serve as a padding or tag oracle.
var ErrDecrypt = errors.New("keyops: decryption failed")

// ErrNotApprovedInFIPSMode is returned when the Go Cryptographic Module runs
// in FIPS 140-3 mode (see [crypto/fips140.Enabled]) and the request needs an
// algorithm the module does not approve: the secp256k1 curve (P-256K,
// ES256K), RSAES-PKCS1-v1_5 (RSA1_5) and RSA-OAEP with SHA-1 (RSA-OAEP).
var ErrNotApprovedInFIPSMode = errors.New("keyops: not approved in FIPS 140-3 mode")

// ErrInvalidKey is returned by [ImportJWK], [UnmarshalKey] and [Generate]
// when key material is missing, malformed, of an unsupported size or curve,
// or inconsistent (an RSA private exponent that does not belong to the
// modulus, an EC point that is not on the curve or does not match the
// private scalar, a failed pairwise consistency test). The message says what
// is wrong, never the values.
var ErrInvalidKey = errors.New("keyops: invalid key")

// errorf wraps sentinel with a detail that must never contain key material,
// plaintext or other secret input.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}

// quote returns an attacker-supplied name (an algorithm, a curve) for an error
// message, shortened so that errors stay small.
func quote(s string) string {
	const max = 24
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", s)
}
