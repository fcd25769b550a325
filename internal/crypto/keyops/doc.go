// Package keyops implements the key operations of a Managed HSM: key
// generation and import, and sign, verify, encrypt, decrypt, wrap and unwrap
// with the algorithms of Azure Key Vault's REST API, named exactly as there.
//
// It follows the JSON Web Algorithms of [RFC 7518] as Key Vault uses them,
// JSON Web Keys of [RFC 7517] (with Key Vault's "-HSM" key types), RSA of
// [RFC 8017], ECDSA of [FIPS 186-5], AES-GCM and AES-CBC of NIST SP 800-38D
// and SP 800-38A, and AES key wrap of [RFC 3394] (package keywrap).
//
// # Keys
//
// A [Key] is an opaque private key of one of three types ([KeyType]): [RSA]
// (2048, 3072 or 4096 bits, e = 65537 when generated), [EC] (P-256, P-256K,
// P-384, P-521) and [Oct] (AES, 128, 192 or 256 bits). Reach for
//
//   - [Generate] to create a key,
//   - [ImportJWK] to import one from a JSON Web Key with private parts,
//   - [Key.PublicJWK] for what a Key Vault response may show,
//   - [Key.MarshalBinary] and [UnmarshalKey] to store keys (the output is
//     plaintext key material: seal it at once).
//
// Generated and imported asymmetric keys pass a pairwise consistency test.
//
// # Operations
//
// [Key.Sign] and [Key.Verify] take a digest, not a message: RS256/384/512,
// PS256/384/512 (salt as long as the hash), ES256, ES256K, ES384, ES512 (JWS
// r||s encoding). [Key.Encrypt] and [Key.Decrypt] take RSA1_5, RSA-OAEP,
// RSA-OAEP-256 for RSA keys and A{128,192,256}{GCM,CBC,CBCPAD} for oct keys;
// [Key.WrapKey] and [Key.UnwrapKey] take the RSA algorithms and
// A{128,192,256}KW. [Algorithms] lists what each key type supports and
// [DefaultKeyOps] the key_ops a new key gets.
//
// # Errors
//
// Errors wrap one of the sentinels [ErrUnsupportedAlgorithm],
// [ErrInvalidInput], [ErrDecrypt], [ErrNotApprovedInFIPSMode] and
// [ErrInvalidKey]; match them with errors.Is. Messages never contain key
// material or plaintext, and every content-dependent decryption failure is
// the same [ErrDecrypt].
//
// # FIPS 140-3
//
// The package uses the standard library's Go Cryptographic Module for
// everything but secp256k1 (github.com/decred/dcrd/dcrec/secp256k1/v4). When
// the module runs in FIPS 140-3 mode ([crypto/fips140.Enabled], for example
// with GODEBUG=fips140=on), the algorithms the module does not approve are
// refused with [ErrNotApprovedInFIPSMode]: P-256K keys and ES256K, RSA1_5
// (PKCS #1 v1.5 encryption) and RSA-OAEP (OAEP with SHA-1). Stored P-256K
// keys still load, so that their public parts can be shown. Everything else
// works in that mode, including under GODEBUG=fips140=only. [SelfTest] runs
// known-answer tests of this package's own constructions.
//
// This package is pure: no storage, network or logging. Keys and functions
// are safe for concurrent use.
//
// [RFC 7518]: https://www.rfc-editor.org/rfc/rfc7518
// [RFC 7517]: https://www.rfc-editor.org/rfc/rfc7517
// [RFC 8017]: https://www.rfc-editor.org/rfc/rfc8017
// [FIPS 186-5]: https://doi.org/10.6028/NIST.FIPS.186-5
// [RFC 3394]: https://www.rfc-editor.org/rfc/rfc3394
package keyops
