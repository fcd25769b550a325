package store

import "errors"

var codes = []struct {
	code string
	err  error
}{
	{"NotFound", ErrNotFound},
	{"Exists", ErrExists},
	{"Conflict", ErrConflict},
	{"Closed", ErrClosed},
	{"Busy", ErrBusy},
	{"Unavailable", ErrUnavailable},
}

// ErrorCode returns the code of the sentinel err wraps ("NotFound",
// "Exists", "Conflict", "Closed", "Busy", "Unavailable"), or "" if it wraps none. With
// [ErrorFromCode] it carries a store error across an encoding (a raft
// follower forwarding a command, an RPC).
func ErrorCode(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// ErrorFromCode returns an error with message that wraps the sentinel named
// by code (see [ErrorCode]); for an unknown code it is a plain error.
func ErrorFromCode(code, message string) error {
	for _, c := range codes {
		if c.code == code {
			return &codedError{msg: message, sentinel: c.err}
		}
	}
	return errors.New(message)
}

type codedError struct {
	msg      string
	sentinel error
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.sentinel }
