package securitydomain

import (
	"testing"

	"tresor/internal/pkgdoc"
)

// TestDocumentation checks the package comment and that every exported
// identifier, struct fields included, has a doc comment.
func TestDocumentation(t *testing.T) {
	pkgdoc.CheckWithFields(t, ".")
}
