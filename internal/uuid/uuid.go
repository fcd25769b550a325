// Package uuid implements random (version 4) UUIDs as RFC 9562 defines
// them, in their lower-case text form: object ids, role assignment names,
// request ids. Use [New] to make one and [Valid] to check one (any case).
package uuid

import (
	"crypto/rand"
	"fmt"
	"regexp"
)

var re = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// New returns a random (version 4, variant 10) UUID.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Valid reports whether s is a UUID in its 8-4-4-4-12 hex form (any case,
// any version).
func Valid(s string) bool { return re.MatchString(s) }
