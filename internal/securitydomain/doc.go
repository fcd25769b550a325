// Package securitydomain implements the Azure Managed HSM security-domain
// format: the file an HSM hands out on download, encrypted to a quorum of
// custodian certificates, and the upload ("restore") blob a customer sends
// to recover it, re-encrypted to the new HSM's exchange certificate.
//
// It is a pure library: no storage, no HTTP, no logging. It follows the
// format the Azure service and the Azure CLI use (az keyvault
// security-domain), which combines:
//   - compact JWE, RFC 7516 (https://www.rfc-editor.org/rfc/rfc7516), with
//     enc A256CBC-HS512 and alg "dir" or "RSA-OAEP-256", RFC 7518
//     (https://www.rfc-editor.org/rfc/rfc7518);
//   - the NIST SP 800-108 counter-mode KDF with HMAC-SHA-512
//     (https://csrc.nist.gov/pubs/sp/800/108/r1/final);
//   - Shamir secret sharing byte by byte over GF(257).
//
// # Which API to use
//
// The server builds a file on download with [BuildFile] and opens an upload
// blob with [OpenUploadBlob], then checks the tags it needs with
// [RequireTags]. The CLI loads keys with [ParseCertificatePEM] and
// [ParsePrivateKeyPEM], reads a file with [ParseFile], decrypts it with
// [File.Open] and a quorum of [Custodian] keys, and re-encrypts the blobs to
// an exchange certificate with [BuildUploadBlob]; [CertificatePEM] writes the
// exchange certificate the way az init-recovery does.
//
// [KDF], [Split], [Combine], [EncryptDir], [DecryptDir], [EncryptRSA],
// [DecryptRSA] and [Thumbprint] are the building blocks, exported for tests
// and tools.
//
// # Format
//
// A file holds EncData, the tagged blobs each encrypted under
// KDF(master, tag, "", 512) as dir/A256CBC-HS512 JWEs with kid = tag, and
// SharedKeys, the 32-byte master key split into one Shamir share per
// certificate, each encrypted to its certificate (RSA-OAEP-256) and named by
// the certificate's x5t_256, the base64url SHA-256 of its DER. An upload
// blob holds the same EncData under a fresh master key and, in WrappedKey,
// that master key encrypted to the exchange certificate.
//
// # Errors
//
// Errors are matched with errors.Is against the sentinels
// [ErrInsufficientShares], [ErrWrongExchangeKey], [ErrTampered],
// [ErrMalformed], [ErrMissingTag], [ErrDuplicateTag], [ErrDuplicateKey], [ErrKeyMismatch],
// [ErrPasswordRequired] and [ErrIncorrectPassword]; a [*TamperedError] says
// which item failed authentication. Error messages never contain key
// material. No function panics on malformed input.
//
// # Secrets
//
// [Blob] data and private keys are secret. The package clears the master
// keys, CEKs and shares it derives once it is done with them; callers own
// the plaintexts they get back.
package securitydomain
