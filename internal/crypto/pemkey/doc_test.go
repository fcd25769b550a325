package pemkey_test

import (
	"testing"

	"tresor/internal/pkgdoc"
)

// TestDocumentation checks that the package comment follows the house style
// and that every exported identifier, struct fields included, carries a doc
// comment.
func TestDocumentation(t *testing.T) {
	pkgdoc.CheckWithFields(t, ".")
}
