package blob_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"tresor/internal/blob"
	"tresor/internal/blob/blobtest"
	"tresor/internal/pkgdoc"
)

func TestDocumentation(t *testing.T) {
	pkgdoc.Check(t, ".")
	pkgdoc.Check(t, "blobtest")
}

func TestValidateName(t *testing.T) {
	for _, name := range blobtest.InvalidNames {
		err := blob.ValidateName(name)
		if !errors.Is(err, blob.ErrInvalidLocation) || !strings.HasPrefix(err.Error(), "blob: invalid object name") {
			t.Errorf("ValidateName(%.40q) = %v, want ErrInvalidLocation", name, err)
		}
	}
	for _, name := range []string{"a", "mhsm-x-2026010203040506/manifest", "a/b/c", ".x", "x.y", "-", "a b"} {
		if err := blob.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
}

func TestError(t *testing.T) {
	err := blob.Errorf(blob.ErrNoContainer, context.Canceled, "container %s missing", "c")
	if err.Error() != "blob: container c missing" {
		t.Errorf("message %q", err)
	}
	if !errors.Is(err, blob.ErrNoContainer) || !errors.Is(err, context.Canceled) || errors.Is(err, blob.ErrNotFound) {
		t.Errorf("errors.Is does not match the kind and cause only")
	}
	if got := blob.Errorf(blob.ErrAuth, nil, "blob: already prefixed").Error(); got != "blob: already prefixed" {
		t.Errorf("message %q", got)
	}
}
