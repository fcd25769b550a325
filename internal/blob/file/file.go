// Package file implements [blob.Store] on a local directory, one directory
// per container ("file:///abs/dir/{container}", Tresor's own extension of
// the storage URI and the default of "tresor --dev").
//
// Object names map to paths inside the container directory, with '/' as the
// separator; names with '/' live in subdirectories that Put creates. The
// container directory itself is never created: like Azure, a missing
// container is [blob.ErrNoContainer].
//
// # Durability
//
// Put writes a temporary file in the object's directory, fsyncs it, renames
// it over the name and fsyncs the directory, so a crash leaves the old or
// the new object and readers never see a partial one. Temporary files carry
// a backslash in their names, which no object name may contain, so List
// never returns them. All access goes through an [os.Root], so no name and
// no symbolic link reaches outside the container directory.
package file

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"tresor/internal/blob"
)

// tmpMark starts the names of temporary files; '\' is not allowed in object
// names (see [blob.ValidateName]).
const tmpMark = `.tmp\`

// Store is a [blob.Store] on one container directory. It is safe for
// concurrent use, also by several processes on one directory.
type Store struct {
	dir string
}

var _ blob.Store = (*Store)(nil)

// New returns a Store on the container directory dir, which must be an
// absolute, clean path (errors wrap [blob.ErrInvalidLocation]). It does not
// check that the directory exists; operations on a missing one fail with
// [blob.ErrNoContainer].
func New(dir string) (*Store, error) {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || strings.ContainsRune(dir, 0) {
		return nil, blob.Errorf(blob.ErrInvalidLocation, nil, "container directory %q must be an absolute, clean path", dir)
	}
	if dir == string(filepath.Separator) {
		return nil, blob.Errorf(blob.ErrInvalidLocation, nil, "the root directory cannot be a container")
	}
	return &Store{dir: dir}, nil
}

// Dir returns the container directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) open(op string) (*os.Root, error) {
	r, err := os.OpenRoot(s.dir)
	if err == nil {
		return r, nil
	}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return nil, blob.Errorf(blob.ErrNoContainer, nil, "container directory %s does not exist (create it first)", s.dir)
	case errors.Is(err, fs.ErrPermission):
		return nil, blob.Errorf(blob.ErrPermission, err, "the server may not open container directory %s (check its permissions)", s.dir)
	}
	return nil, blob.Errorf(blob.ErrUnreachable, err, "cannot open container directory %s: %v", s.dir, err)
}

// ioErr maps an error of a file operation.
func (s *Store) ioErr(op, name string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return blob.Errorf(blob.ErrPermission, err, "the server may not %s %s in container directory %s (check the directory's permissions)", op, name, s.dir)
	}
	if _, serr := os.Stat(s.dir); errors.Is(serr, fs.ErrNotExist) {
		return blob.Errorf(blob.ErrNoContainer, nil, "container directory %s does not exist (create it first)", s.dir)
	}
	return blob.Errorf(blob.ErrUnreachable, err, "cannot %s %s in container directory %s: %v", op, name, s.dir, err)
}

// Put writes the object through a synced temporary file and a rename.
func (s *Store) Put(ctx context.Context, name string, data []byte) (err error) {
	if err := blob.ValidateName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: put %s: %w", name, err)
	}
	r, err := s.open("write")
	if err != nil {
		return err
	}
	defer r.Close()
	dir := path.Dir(name)
	if dir != "." {
		if err := r.MkdirAll(dir, 0o700); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
				return blob.Errorf(blob.ErrInvalidLocation, nil, "object name %s conflicts with an object that is a prefix of it (a directory container cannot hold both)", name)
			}
			return s.ioErr("write", name, err)
		}
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := path.Join(dir, tmpMark+hex.EncodeToString(rnd[:]))
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return s.ioErr("write", name, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			r.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return s.ioErr("write", name, err)
	}
	if err := f.Sync(); err != nil {
		return s.ioErr("write", name, err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return s.ioErr("write", name, cerr)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: put %s: %w", name, err)
	}
	if err := r.Rename(tmp, name); err != nil {
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, fs.ErrExist) {
			return blob.Errorf(blob.ErrInvalidLocation, nil, "object name %s conflicts with objects under %s/ (a directory container cannot hold both)", name, name)
		}
		return s.ioErr("write", name, err)
	}
	d, err := r.Open(dir)
	if err != nil {
		return s.ioErr("write", name, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return s.ioErr("write", name, err)
	}
	return nil
}

// Get reads the object, refusing one larger than max before reading it.
func (s *Store) Get(ctx context.Context, name string, max int64) ([]byte, error) {
	if err := blob.ValidateName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: get %s: %w", name, err)
	}
	r, err := s.open("read")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	notFound := blob.Errorf(blob.ErrNotFound, nil, "object %s does not exist in container directory %s", name, s.dir)
	f, err := r.Open(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, notFound
	}
	if err != nil {
		return nil, s.ioErr("read", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, s.ioErr("read", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, notFound
	}
	if fi.Size() > max {
		return nil, blob.Errorf(blob.ErrTooLarge, nil, "object %s is larger than %d bytes (%d)", name, max, fi.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, s.ioErr("read", name, err)
	}
	if int64(len(data)) > max {
		return nil, blob.Errorf(blob.ErrTooLarge, nil, "object %s is larger than %d bytes", name, max)
	}
	return data, nil
}

// List walks the container directory (from the deepest directory the prefix
// names) and returns the regular files whose names are valid object names.
func (s *Store) List(ctx context.Context, prefix string) ([]blob.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: list %s: %w", prefix, err)
	}
	r, err := s.open("list")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i > 0 && blob.ValidateName(prefix[:i]) == nil {
		start = prefix[:i]
	}
	out := []blob.Object{}
	err = fs.WalkDir(r.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
				return fs.SkipAll
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if strings.ContainsRune(d.Name(), '\\') {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() || blob.ValidateName(p) != nil || !strings.HasPrefix(p, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		out = append(out, blob.Object{Name: p, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("blob: list %s: %w", prefix, cerr)
		}
		return nil, s.ioErr("list", prefix, err)
	}
	slices.SortFunc(out, func(a, b blob.Object) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Delete removes the object's file. Empty directories are left in place.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := blob.ValidateName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete %s: %w", name, err)
	}
	r, err := s.open("delete")
	if err != nil {
		return err
	}
	defer r.Close()
	fi, err := r.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return s.ioErr("delete", name, err)
	}
	if fi.IsDir() {
		return nil // no object of that name, only objects under it
	}
	if err := r.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.ioErr("delete", name, err)
	}
	return nil
}
