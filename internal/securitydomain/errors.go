package securitydomain

import (
	"errors"
	"fmt"
)

// ErrInsufficientShares is returned by [File.Open] when the custodians given
// can decrypt fewer shares than the file's quorum requires: too few
// custodians, or custodians whose certificates match no share. The message
// mirrors the Azure CLI's "Insufficient shares available".
var ErrInsufficientShares = errors.New("securitydomain: insufficient shares available")

// ErrWrongExchangeKey is returned by [OpenUploadBlob] when the blob was not
// wrapped to the exchange certificate given (its WrappedKey.x5t_256 differs
// from the certificate's thumbprint), or when the exchange private key does
// not belong to that certificate.
var ErrWrongExchangeKey = errors.New("securitydomain: upload blob is not wrapped to this exchange key")

// ErrTampered is returned when a JWE fails its integrity check: its
// authentication tag does not verify, or its RSA-OAEP encrypted key does not
// decrypt. Either the data was modified or it was made with a different key.
// [File.Open] and [OpenUploadBlob] return it inside a [*TamperedError] that
// names the failing item; match it with errors.Is.
var ErrTampered = errors.New("securitydomain: authentication failed")

// ErrMalformed is returned when input bytes do not have the expected shape:
// invalid JSON, a missing or wrong field, a bad compact JWE, an unsupported
// algorithm, or a share that does not decode. The message after the prefix
// names the offending field.
var ErrMalformed = errors.New("securitydomain: malformed input")

// ErrDuplicateTag is returned when two blobs carry the same tag, in the
// input of [BuildFile] and [BuildUploadBlob] or in a parsed file or upload
// blob.
var ErrDuplicateTag = errors.New("securitydomain: duplicate tag")

// ErrMissingTag is returned when a blob has an empty tag, and by
// [RequireTags] when an expected tag is absent.
var ErrMissingTag = errors.New("securitydomain: missing tag")

// ErrKeyMismatch is returned by [File.Open] when a [Custodian]'s private key
// does not belong to its certificate.
var ErrKeyMismatch = errors.New("securitydomain: private key does not match certificate")

// ErrPasswordRequired is returned by [ParsePrivateKeyPEM] for an encrypted
// key when no password is given.
var ErrPasswordRequired = errors.New("securitydomain: private key is encrypted and no password was given")

// ErrIncorrectPassword is returned by [ParsePrivateKeyPEM] when an encrypted
// key does not decrypt with the password given.
var ErrIncorrectPassword = errors.New("securitydomain: incorrect password for private key")

// TamperedError reports which item of a security-domain file or upload blob
// failed authentication. It matches [ErrTampered] with errors.Is.
type TamperedError struct {
	// Field is the JSON location of the failing JWE, for example
	// "EncData.data[1]", "SharedKeys.enc_shares[0]" or "WrappedKey.enc_key".
	Field string
	// Tag is the tag of the failing EncData blob, or "" when the failing
	// item is a share or the wrapped key.
	Tag string
}

// Error implements error.
func (e *TamperedError) Error() string {
	if e.Tag != "" {
		return fmt.Sprintf("securitydomain: %s (tag %s): authentication failed", e.Field, quoteTag(e.Tag))
	}
	return fmt.Sprintf("securitydomain: %s: authentication failed", e.Field)
}

// Unwrap returns [ErrTampered].
func (e *TamperedError) Unwrap() error { return ErrTampered }

// malformedError is an ErrMalformed with the JSON location and detail.
type malformedError struct {
	path string // JSON location, may be empty
	msg  string
}

func (e *malformedError) Error() string {
	if e.path == "" {
		return ErrMalformed.Error() + ": " + e.msg
	}
	return ErrMalformed.Error() + ": " + e.path + ": " + e.msg
}

func (e *malformedError) Unwrap() error { return ErrMalformed }

// malformed returns an error wrapping ErrMalformed with a detail message.
func malformed(format string, args ...any) error {
	return &malformedError{msg: fmt.Sprintf(format, args...)}
}

// atPath prefixes the location of a malformed-input error with path.
// Other errors are returned unchanged.
func atPath(path string, err error) error {
	var m *malformedError
	if errors.As(err, &m) {
		p := path
		if m.path != "" {
			p += "." + m.path
		}
		return &malformedError{path: p, msg: m.msg}
	}
	return err
}

// quoteTag quotes an untrusted tag for an error message, cut to a sane
// length so a hostile input cannot blow up logs.
func quoteTag(tag string) string {
	const maxLen = 64
	if len(tag) > maxLen {
		return fmt.Sprintf("%q…", tag[:maxLen])
	}
	return fmt.Sprintf("%q", tag)
}

// ErrDuplicateKey is returned by [BuildFile] when two custodian
// certificates hold the same RSA key (the same modulus), even if the
// certificates differ: its holder would get two shares, so fewer custodians
// than the quorum could rebuild the master key.
var ErrDuplicateKey = errors.New("securitydomain: two certificates hold the same public key")
