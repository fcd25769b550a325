// Package container implements the one call that turns a backup or restore
// request's storage location into a [blob.Store]: [Resolve] splits the
// storage URI and folder into a container URI and an object path, and
// [Open] opens the container with the request's SAS token.
//
// # Locations
//
// Azure Blob Storage containers are account-style,
// "https://{account}.blob.{suffix}/{container}", or path-style, as Azurite
// serves them, "http://127.0.0.1:10000/{account}/{container}" (see
// [tresor/internal/blob/azure.ParseContainerURL]). Tresor also accepts a
// local directory as a container, "file:///abs/dir/{container}"
// ([tresor/internal/blob/file]), the default of "tresor --dev".
//
// Typical use, in the backup service:
//
//	uri, folder, err := container.Resolve(req.StorageResourceURI, req.FolderToRestore)
//	…
//	store, err := container.Open(ctx, uri, req.Token)
//	…
//	manifest, err := store.Get(ctx, folder+"/manifest", maxManifest)
package container

import (
	"context"
	"net/url"
	"path"
	"strings"

	"tresor/internal/blob"
	"tresor/internal/blob/azure"
	"tresor/internal/blob/file"
)

// Resolve joins storageResourceURI + "/" + folder (the folder may be empty
// or contain '/') and splits the result into the container's URI and the
// object path inside it.
//
// For an http(s) URI with an account-style host the container is the first
// path segment; with a path-style host (an IP literal, "localhost" or any
// explicit port) the account is the first and the container the second. So
// az's split of a restore location, storageResourceUri
// "http://127.0.0.1:10000/devstoreaccount1" with folderToRestore
// "backups/mhsm-x-2026…", resolves to the container
// "http://127.0.0.1:10000/devstoreaccount1/backups" and the path
// "mhsm-x-2026…". For a "file://" URI the storage URI as given is the
// container (an absolute directory) and the folder is the path.
//
// A query or fragment (the SAS belongs in the token), a missing container,
// a relative file path, another scheme or a path that is not a valid object
// name (see [blob.ValidateName]) is refused with [blob.ErrInvalidLocation].
// The path is "" when the location names the container itself.
func Resolve(storageResourceURI, folder string) (containerURI, path string, err error) {
	if strings.ContainsAny(storageResourceURI, "?#") || strings.ContainsAny(folder, "?#") {
		return "", "", blob.Errorf(blob.ErrInvalidLocation, nil, "the storage URI %s has a query or fragment: pass the SAS token in the token field, not in the URI", redact(storageResourceURI))
	}
	base := storageResourceURI
	if b := strings.TrimSuffix(base, "/"); !strings.HasSuffix(b, "//") {
		base = b // one trailing '/' ("…/backups/")
	}
	folder = strings.Trim(folder, "/")
	scheme, _, _ := strings.Cut(base, ":")
	switch strings.ToLower(scheme) {
	case "file":
		dir, err := parseFile(base)
		if err != nil {
			return "", "", err
		}
		if err := checkPath(folder); err != nil {
			return "", "", err
		}
		return fileURI(dir), folder, nil
	case "http", "https":
		joined := base
		if folder != "" {
			joined += "/" + folder
		}
		loc, rest, err := azure.SplitURL(joined)
		if err != nil {
			return "", "", err
		}
		if err := checkPath(rest); err != nil {
			return "", "", err
		}
		return loc.URL(), rest, nil
	}
	return "", "", blob.Errorf(blob.ErrInvalidLocation, nil, "the storage URI %q must start with https:// (Azure Blob Storage), http:// (an emulator) or file:// (a local directory)", clip(storageResourceURI))
}

// Open returns the [blob.Store] of the container at containerURI, as
// [Resolve] returns it: a "file://" URI opens the file backend (the token is
// ignored), an http(s) URI the Azure backend with sasToken (a SAS query
// string, with or without a leading '?'; an empty one is refused). Open only
// parses; it does not contact the storage (use [blob.Check] to validate the
// location and token). Errors wrap [blob.ErrInvalidLocation].
func Open(ctx context.Context, containerURI, sasToken string) (blob.Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if strings.ContainsAny(containerURI, "?#") {
		return nil, blob.Errorf(blob.ErrInvalidLocation, nil, "the container URI %s has a query or fragment: pass the SAS token separately", redact(containerURI))
	}
	scheme, _, _ := strings.Cut(containerURI, ":")
	switch strings.ToLower(scheme) {
	case "file":
		dir, err := parseFile(containerURI)
		if err != nil {
			return nil, err
		}
		return file.New(dir)
	case "http", "https":
		return azure.New(containerURI, sasToken)
	}
	return nil, blob.Errorf(blob.ErrInvalidLocation, nil, "the container URI %q must start with https://, http:// or file://", clip(containerURI))
}

// parseFile returns the absolute, clean directory of a "file:///dir" or
// "file://localhost/dir" URI.
func parseFile(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", blob.Errorf(blob.ErrInvalidLocation, nil, "invalid file URI %q: %s", clip(s), why)
	}
	if !strings.HasPrefix(strings.ToLower(s), "file://") {
		return bad("want file:///absolute/directory")
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not a URI")
	}
	switch {
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return bad("it has a query or fragment")
	case u.User != nil:
		return bad("it has user information")
	case u.Host != "" && !strings.EqualFold(u.Host, "localhost"):
		return bad("the path is relative or names a host; want file:///absolute/directory")
	case !strings.HasPrefix(u.Path, "/") || u.Path == "/":
		return bad("want file:///absolute/directory (not the root)")
	case strings.ContainsRune(u.Path, 0):
		return bad("the path contains NUL")
	case path.Clean(u.Path) != u.Path:
		return bad("the path is not clean (no '.', '..', '//' or trailing '/')")
	}
	return u.Path, nil
}

func fileURI(dir string) string { return (&url.URL{Scheme: "file", Path: dir}).String() }

// checkPath validates a path inside the container ("" for none).
func checkPath(p string) error {
	if p == "" {
		return nil
	}
	if err := blob.ValidateName(p); err != nil {
		return blob.Errorf(blob.ErrInvalidLocation, nil, "invalid folder %q: %s", clip(p), strings.TrimPrefix(err.Error(), "blob: "))
	}
	return nil
}

func redact(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return clip(s[:i]) + "?…"
	}
	return clip(s)
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
