package identity

import (
	"errors"
	"strconv"
	"strings"
)

var (
	// ErrInvalidToken is returned (wrapped) by [Validator.Validate] for every
	// token it does not accept. The wrapping error's message adds a short
	// reason ("expired", "bad signature", "untrusted issuer", "wrong audience",
	// "malformed", …) that is safe to show to the client: it never contains the
	// token. Test with errors.Is.
	ErrInvalidToken = errors.New("identity: invalid token")

	// ErrKeysUnavailable is returned (wrapped, together with [ErrInvalidToken])
	// by [Validator.Validate] when a token names a signing key that is not
	// cached and the trusted issuer's keys could not be fetched or read. The
	// underlying cause (a network or file error) is in the chain for logging
	// but not in the message.
	ErrKeysUnavailable = errors.New("identity: signing keys unavailable")

	// ErrPrincipalNotFound is returned by a [PrincipalDirectory] when no
	// principal has the requested client id.
	ErrPrincipalNotFound = errors.New("identity: principal not found")
)

// tokenError is the error Validate returns. Its message is the safe reason
// only; the cause (a go-jose or network error, which may quote input) is kept
// for errors.As/errors.Is and logging.
type tokenError struct {
	reason string
	kind   error // ErrKeysUnavailable or nil
	cause  error
}

func (e *tokenError) Error() string { return ErrInvalidToken.Error() + ": " + e.reason }

func (e *tokenError) Unwrap() []error {
	errs := []error{ErrInvalidToken}
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

func invalid(reason string, cause error) error {
	return &tokenError{reason: reason, cause: cause}
}

// Reasons used in Validate errors.
const (
	reasonMalformed       = "malformed"
	reasonAlgorithm       = "unsupported signature algorithm"
	reasonUntrustedIssuer = "untrusted issuer"
	reasonUnknownKey      = "unknown signing key"
	reasonKeysUnavailable = "signing keys unavailable"
	reasonBadSignature    = "bad signature"
	reasonHighS           = "ECDSA signature with high S"
	reasonExpired         = "expired"
	reasonNotYetValid     = "not yet valid"
	reasonWrongAudience   = "wrong audience"
	reasonNoPrincipal     = "missing principal claim"
)

// OAuth 2.0 error codes (RFC 6749 §5.2) used in [OAuthError.Code].
const (
	OAuthInvalidRequest       = "invalid_request"
	OAuthInvalidClient        = "invalid_client"
	OAuthUnsupportedGrantType = "unsupported_grant_type"
	OAuthInvalidScope         = "invalid_scope"
)

// OAuthError is a token-endpoint error in the shape of RFC 6749 §5.2 and
// Entra ID: the HTTP layer encodes it as
// {"error": Code, "error_description": Description, "error_codes": ErrorCodes}.
// RFC 6749 asks for status 401 for [OAuthInvalidClient] and 400 for the
// others. Description starts with "AADSTS<n>: " like Entra's and never
// contains a secret.
type OAuthError struct {
	Code        string // one of the OAuth* constants
	Description string // human-readable, safe to return to the client
	ErrorCodes  []int  // Entra's AADSTS numbers, for error_codes
}

// Error returns "identity: oauth {Code}: {Description}".
func (e *OAuthError) Error() string {
	return "identity: oauth " + e.Code + ": " + e.Description
}

func oauthError(code string, aadsts int, description string) *OAuthError {
	return &OAuthError{
		Code:        code,
		Description: "AADSTS" + strconv.Itoa(aadsts) + ": " + description,
		ErrorCodes:  []int{aadsts},
	}
}

// quoteInput shortens untrusted input echoed in an error description.
func quoteInput(s string) string {
	const limit = 128
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Reason is the short reason a token was refused ("expired", "wrong
// audience", …), as the client is told it; "" when err is not a token
// refusal of [Validator.Validate].
func Reason(err error) string {
	var te *tokenError
	if errors.As(err, &te) {
		return te.reason
	}
	return ""
}
