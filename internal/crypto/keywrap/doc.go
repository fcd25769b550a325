// Package keywrap implements the AES Key Wrap algorithm of [RFC 3394]
// (NIST SP 800-38F "KW") and its padded variant of [RFC 5649]
// (SP 800-38F "KWP").
//
// Key wrapping protects key material under a key-encryption key (KEK) with a
// deterministic, authenticated construction: unwrapping either returns the
// original key or fails with [ErrUnwrap]. It is what Key Vault calls
// A128KW, A192KW and A256KW, depending on the size of the KEK.
//
// # Which function to use
//
//   - [Wrap] and [Unwrap] for RFC 3394: the wrapped data must be a multiple of
//     8 bytes and at least 16 bytes long (an AES key, for example).
//   - [WrapPad] and [UnwrapPad] for RFC 5649, which takes data of any length
//     from 1 byte (an RSA private key in PKCS#8 form, for example), as used by
//     PKCS#11's CKM_RSA_AES_KEY_WRAP.
//
// The KEK is an AES key of 16, 24 or 32 bytes. The functions never keep
// references to their arguments and are safe for concurrent use.
//
// # Errors
//
// Bad sizes are reported with [ErrInvalidKeySize] and [ErrInvalidLength];
// every integrity failure is reported with the single [ErrUnwrap], which
// carries no detail, so that callers cannot build an oracle from it.
//
// The package is built on crypto/aes only and keeps working when the Go
// Cryptographic Module runs in FIPS 140-3 mode (GODEBUG=fips140=on).
//
// [RFC 3394]: https://www.rfc-editor.org/rfc/rfc3394
// [RFC 5649]: https://www.rfc-editor.org/rfc/rfc5649
package keywrap
