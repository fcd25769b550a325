package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tresor/internal/blob"
	"tresor/internal/blob/blobtest"
	"tresor/internal/blob/file"
	"tresor/internal/pkgdoc"
)

func TestDocumentation(t *testing.T) { pkgdoc.Check(t, ".") }

func newStore(t *testing.T) *file.Store {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "backups")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return newStore(t) })
}

func TestNewRefuses(t *testing.T) {
	for _, dir := range []string{"", "relative/dir", "/a/../b", "/a/", "/", "/a\x00b"} {
		if _, err := file.New(dir); !errors.Is(err, blob.ErrInvalidLocation) {
			t.Errorf("New(%q) = %v, want ErrInvalidLocation", dir, err)
		}
	}
}

func TestNoContainer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	s, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	errs := map[string]error{
		"Put":    s.Put(ctx, "a/b", []byte("x")),
		"Delete": s.Delete(ctx, "a"),
		"Check":  blob.Check(ctx, s, true),
	}
	_, errs["Get"] = s.Get(ctx, "a", 10)
	_, errs["List"] = s.List(ctx, "")
	for op, err := range errs {
		if !errors.Is(err, blob.ErrNoContainer) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s on a missing container = %v, want ErrNoContainer naming %s", op, err, dir)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Put created the container directory (%v)", err)
	}
}

func TestPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Log("running as root: directory permissions are not enforced, checking only that reads work")
	}
	s := newStore(t)
	ctx := t.Context()
	if err := s.Put(ctx, "ro/obj", []byte("x")); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(s.Dir(), "ro")
	if err := os.Chmod(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(ro, 0o700) })
	err := s.Put(ctx, "ro/new", []byte("x"))
	if os.Geteuid() == 0 {
		if err != nil {
			t.Fatalf("Put as root: %v", err)
		}
		return
	}
	if !errors.Is(err, blob.ErrPermission) {
		t.Fatalf("Put into a read-only directory = %v, want ErrPermission", err)
	}
	if err := blob.Check(ctx, s, false); err != nil {
		t.Fatalf("Check(read) of a readable container = %v", err)
	}
}

func TestTempFilesNotListed(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.Put(ctx, "f/obj", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// Leftovers of a crashed Put, and foreign files, are not objects.
	for _, name := range []string{`f/.tmp\0123`, `.tmp\99`, "f/a..b"} {
		if err := os.WriteFile(filepath.Join(s.Dir(), name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(s.Dir(), "f", "link")); err != nil {
		t.Fatal(err)
	}
	objs, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Name != "f/obj" {
		t.Fatalf("List = %+v, want only f/obj", objs)
	}
	if _, err := s.Get(ctx, "f/link", 1<<20); err == nil {
		t.Fatal("Get followed a symbolic link out of the container")
	}
}

func TestNameConflicts(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.Put(ctx, "a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a/b", []byte("x")); !errors.Is(err, blob.ErrInvalidLocation) {
		t.Errorf("Put(a/b) over object a = %v, want ErrInvalidLocation", err)
	}
	if err := s.Put(ctx, "c/d", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "c", []byte("x")); !errors.Is(err, blob.ErrInvalidLocation) {
		t.Errorf("Put(c) over objects c/… = %v, want ErrInvalidLocation", err)
	}
	if err := s.Delete(ctx, "c"); err != nil {
		t.Errorf("Delete(c) with objects under c/ = %v", err)
	}
	if _, err := s.Get(ctx, "c", 10); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Get(c) of a directory = %v, want ErrNotFound", err)
	}
}

func TestCheck(t *testing.T) {
	s := newStore(t)
	for _, write := range []bool{true, false} {
		if err := blob.Check(context.Background(), s, write); err != nil {
			t.Errorf("Check(write=%v) = %v", write, err)
		}
	}
	if objs, _ := s.List(t.Context(), ""); len(objs) != 0 {
		t.Errorf("Check left objects: %+v", objs)
	}
}
