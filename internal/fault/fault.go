// Package fault gives domain errors a kind, an Azure error code and a
// message that is safe to show to a client. The api package maps kinds to
// HTTP statuses in one place; errors without a kind become a generic 500.
package fault

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the API layer.
type Kind int

// The kinds. Each maps to one HTTP status in the api package.
const (
	Internal       Kind = iota // 500; message not shown
	BadParameter               // 400
	Unauthorized               // 401
	Forbidden                  // 403
	NotFound                   // 404
	Conflict                   // 409
	TooLarge                   // 413
	Unavailable                // 503
	NotImplemented             // 501
	Timeout                    // 408: the request did not arrive in time
	Throttled                  // 429: a rate limit; the api adds Retry-After
)

// Error is an error with a kind, an Azure error code and a client-safe message.
type Error struct {
	Kind    Kind
	Code    string // Azure error code, e.g. "BadParameter", "ResourceNotFound"
	Message string // shown to the client; never holds secrets
	Inner   string // optional innererror code (e.g. "ForbiddenByRbac")
	Err     error  // optional cause, for logs and errors.Is
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind with code and a formatted message.
func New(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind with code and message whose cause is err.
func Wrap(err error, kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var fe *Error
	ok := errors.As(err, &fe)
	return fe, ok
}

// KindOf returns the kind of err (Internal if it has none).
func KindOf(err error) Kind {
	if fe, ok := As(err); ok {
		return fe.Kind
	}
	return Internal
}
