package keyops_test

import (
	"testing"

	"tresor/internal/pkgdoc"
)

// TestDocumentation checks that the package comment follows the house style
// and that every exported identifier carries a doc comment.
func TestDocumentation(t *testing.T) {
	pkgdoc.Check(t, ".")
}
