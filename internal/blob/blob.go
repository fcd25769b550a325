// Package blob implements the storage contract of full HSM backups: a
// container of named, immutable-per-write objects ([Store]) with the errors
// every backend shares, so the backup service and the CLI do not care whether
// a backup goes to Azure Blob Storage or to a local directory.
//
// A backup is a folder (a name prefix such as "mhsm-{name}-{yyyyMMddHHmmssff}/")
// of a few large sealed objects plus a manifest; see the protocol spec §3.
//
// # Which API to use
//
// Callers do not build backends themselves: package
// [tresor/internal/blob/container] turns the storage URI, folder and SAS token
// of a request into a [Store] and an object path ([container.Resolve],
// [container.Open]). The backends are [tresor/internal/blob/file] (a local
// directory, Tresor's own "file://" extension) and
// [tresor/internal/blob/azure] (Azure Blob Storage and Azurite). Every backend
// passes the conformance suite [tresor/internal/blob/blobtest].
//
// # Errors
//
// Every error a backend returns matches (with [errors.Is]) one of the
// sentinels below, or a context error, and its message says what to fix. A
// message never contains the SAS token or its signature; errors are safe to
// return to the client and to log.
//
// [container.Resolve]: https://pkg.go.dev/tresor/internal/blob/container#Resolve
// [container.Open]: https://pkg.go.dev/tresor/internal/blob/container#Open
package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxNameLen is the longest object name, in bytes, that every backend accepts
// (Azure's limit for a blob name).
const MaxNameLen = 1024

// Object describes one stored object, as [Store.List] returns it.
type Object struct {
	Name     string    // the full name inside the container, e.g. "mhsm-x-2026…/manifest"
	Size     int64     // the size in bytes
	Modified time.Time // the time of the last write, as the backend records it
}

// Store is a container of named objects.
//
// # Concurrency
//
// A Store is safe for concurrent use by multiple goroutines. Concurrent
// writes of distinct names do not interfere; of one name, the last Put to
// complete wins. A reader sees either the old or the new whole object, never
// a part of one. No method retains the slices passed to it or returned by it.
//
// # Names
//
// Object names may contain '/' (folders are name prefixes). Every method
// refuses an invalid name (see [ValidateName]) with [ErrInvalidLocation]
// before it touches storage.
//
// # Errors
//
// Errors match a sentinel of this package (or the context's error) with
// [errors.Is]; see the sentinels for when each is returned.
type Store interface {
	// Put writes the object atomically (readers see the old or the new
	// whole object, never a part), replacing one of that name. It does not
	// create the container: if that is missing it returns ErrNoContainer.
	Put(ctx context.Context, name string, data []byte) error

	// Get returns the whole object: ErrNotFound if it is absent,
	// ErrTooLarge if it is bigger than max bytes.
	Get(ctx context.Context, name string, max int64) ([]byte, error)

	// List returns the objects whose names start with prefix, sorted by
	// name. An empty prefix lists the whole container; a prefix need not
	// end with '/' and need not be a valid name. No objects is an empty
	// result, not an error.
	List(ctx context.Context, prefix string) ([]Object, error)

	// Delete removes the object. An absent object is not an error.
	Delete(ctx context.Context, name string) error
}

// The sentinels. Every error a [Store] or a constructor of one returns wraps
// exactly one of them, unless it is the context's error.
var (
	// ErrNotFound is returned by [Store.Get] when the object does not exist.
	ErrNotFound = errors.New("blob: object not found")

	// ErrTooLarge is returned by [Store.Get] when the object is bigger than
	// the limit the caller gave.
	ErrTooLarge = errors.New("blob: object too large")

	// ErrPermission is returned when the credential is valid but lacks a
	// permission the operation needs: a SAS token without write, read,
	// list or delete permission (or not for this client's IP address or
	// protocol), a leased or immutable blob, or a directory the server may
	// not write.
	ErrPermission = errors.New("blob: permission denied")

	// ErrAuth is returned when the credential is invalid or expired: a SAS
	// token past its expiry, signed with another key or for another
	// storage account.
	ErrAuth = errors.New("blob: authentication failed")

	// ErrNoContainer is returned when the container (for the file backend:
	// its directory) does not exist.
	ErrNoContainer = errors.New("blob: container does not exist")

	// ErrUnreachable is returned when the storage endpoint cannot be
	// reached (DNS, connection refused, TLS or timeout failures), keeps
	// answering with a server error (5xx) after retries, or a local
	// directory fails with an I/O error.
	ErrUnreachable = errors.New("blob: storage endpoint unreachable")

	// ErrInvalidLocation is returned for a malformed storage URI, folder,
	// SAS token or object name, before any storage is touched; and when the
	// storage refuses a request as malformed (another 4xx answer) or, in a
	// directory container, a name collides with a directory of objects.
	ErrInvalidLocation = errors.New("blob: invalid location")
)

// Error is the error type the backends return: a message for the user and
// the sentinel it matches. It is safe to show: its message and cause never
// contain a SAS token.
type Error struct {
	// Kind is the sentinel the error matches: ErrNotFound, ErrPermission, ….
	Kind error
	// Message says what went wrong and what to fix, starting "blob: ".
	Message string
	// Err is the underlying cause, or nil. Backends set it only to errors
	// whose text holds no secret (a context error, a *net.OpError, a
	// *fs.PathError), never to an error that prints a request URL.
	Err error
}

// Errorf returns an [*Error] of the given kind whose message is the
// formatted text, prefixed "blob: " unless it already starts so, with cause
// as its Err (nil for none).
func Errorf(kind, cause error, format string, args ...any) error {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	if !strings.HasPrefix(msg, "blob: ") {
		msg = "blob: " + msg
	}
	return &Error{Kind: kind, Message: msg, Err: cause}
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel and the cause, so that [errors.Is] matches
// both.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// ValidateName reports whether name is an object name every backend
// accepts: non-empty, at most [MaxNameLen] bytes, valid UTF-8, no NUL or
// backslash, no "..", no leading or trailing '/', no empty or "." segment. The
// error wraps [ErrInvalidLocation].
func ValidateName(name string) error {
	bad := func(why string) error {
		return Errorf(ErrInvalidLocation, nil, "invalid object name %q: %s", clip(name), why)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxNameLen:
		return bad("longer than 1024 bytes")
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	case strings.ContainsRune(name, 0):
		return bad("contains NUL")
	case strings.ContainsRune(name, '\\'):
		return bad(`contains '\'`)
	case strings.HasPrefix(name, "/"):
		return bad("starts with '/'")
	case strings.HasSuffix(name, "/"):
		return bad("ends with '/'")
	case strings.Contains(name, ".."):
		return bad("contains '..'")
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch seg {
		case "":
			return bad("contains '//'")
		case ".":
			return bad("contains a '.' segment")
		}
	}
	return nil
}

// clip shortens a name for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Check validates a store's location and credential without doing a job,
// as Azure's "POST /prebackup" and "PUT /prerestore" do. With needWrite (a
// backup) it writes, reads and deletes a small probe object, which needs the
// permissions a backup needs (create, write, read, delete) and no list
// permission; otherwise (a restore) it lists the container and reads a
// missing probe object, which needs list and read. The error is the failing
// operation's, so it says which permission or what else is missing.
func Check(ctx context.Context, s Store, needWrite bool) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	probe := "tresor-check-" + hex.EncodeToString(rnd[:])
	if !needWrite {
		if _, err := s.List(ctx, "mhsm-"); err != nil {
			return err
		}
		if _, err := s.Get(ctx, probe, 0); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return nil
	}
	if err := s.Put(ctx, probe, []byte("tresor storage check\n")); err != nil {
		return err
	}
	_, rerr := s.Get(ctx, probe, 64)
	if err := s.Delete(ctx, probe); err != nil {
		return err
	}
	return rerr
}
