// Package azure implements [blob.Store] on Azure Blob Storage (and on
// Azurite, its emulator) through the official azblob SDK, authenticated by a
// container SAS token.
//
// A container URL is either account-style,
// "https://{account}.blob.{suffix}/{container}", or path-style,
// "http://127.0.0.1:10000/{account}/{container}" (a host that is an IP
// literal or "localhost", or any URL with a port: Azurite and other
// emulators); see [ParseContainerURL]. Callers normally reach this package
// through [tresor/internal/blob/container.Open].
//
// Storage errors are mapped to the sentinels of package blob with messages
// that say what to fix (the SAS lacks a permission, has expired, the
// container does not exist, the endpoint cannot be reached). Neither the SAS
// token nor its signature ever appears in an error.
package azure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	azblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	azcontainer "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"tresor/internal/blob"
)

// Location is a parsed container URL.
type Location struct {
	// Endpoint is the account's blob endpoint without a trailing '/':
	// "https://acct.blob.core.windows.net", or for path-style URLs the
	// address and account, "http://127.0.0.1:10000/devstoreaccount1".
	Endpoint string
	// Host is the URL's scheme and host, "http://127.0.0.1:10000", for
	// messages about reaching it.
	Host string
	// Account is the storage account's name.
	Account string
	// Container is the container's name.
	Container string
}

// URL returns the container URL, Endpoint + "/" + Container.
func (l Location) URL() string { return l.Endpoint + "/" + l.Container }

// PathStyle reports whether the host of u names the account in the path
// rather than in the host name: an IP literal, "localhost", or any host with
// an explicit port (emulators such as Azurite).
func PathStyle(u *url.URL) bool {
	if u.Port() != "" {
		return true
	}
	h := u.Hostname()
	if strings.EqualFold(h, "localhost") {
		return true
	}
	_, err := netip.ParseAddr(h)
	return err == nil
}

// SplitURL parses an http(s) URL that names a container and, optionally, an
// object path inside it, "https://acct.blob.core.windows.net/backups/mhsm-x",
// into the container's Location and the path ("mhsm-x", or "" for none).
// The path is not validated as an object name. A query, fragment, user
// info, an empty segment or a bad account or container name is refused
// with [blob.ErrInvalidLocation].
func SplitURL(s string) (Location, string, error) {
	bad := func(why string) (Location, string, error) {
		return Location{}, "", blob.Errorf(blob.ErrInvalidLocation, nil, "invalid storage URL %q: %s", redactURL(s), why)
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("the scheme must be https (or http for an emulator)")
	case u.Opaque != "":
		return bad("not a hierarchical URL")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("it has a query; pass the SAS token separately, not in the URL")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return bad("it has a fragment")
	case u.User != nil:
		return bad("it has user information")
	case u.Hostname() == "":
		return bad("no host")
	}
	u.Host = strings.ToLower(u.Host)
	if u.RawPath != "" {
		return bad("percent-encoded characters are not supported in the path")
	}
	if strings.ContainsAny(u.Path, "\x00\\") {
		return bad("the path contains NUL or '\\'")
	}
	p := strings.TrimPrefix(u.Path, "/")
	var segs []string
	if p != "" {
		segs = strings.Split(p, "/")
	}
	if slices.Contains(segs, "") {
		return bad("empty path segment")
	}
	host := u.Scheme + "://" + u.Host
	loc := Location{Host: host}
	if PathStyle(u) {
		if len(segs) < 2 {
			return bad("a path-style URL (IP address, localhost or port) must be http(s)://host:port/{account}/{container}")
		}
		loc.Account, loc.Container, segs = segs[0], segs[1], segs[2:]
		loc.Endpoint = host + "/" + loc.Account
	} else {
		if len(segs) < 1 {
			return bad("no container: want https://{account}.blob.core.windows.net/{container}")
		}
		account, rest, _ := strings.Cut(u.Hostname(), ".")
		if !strings.HasPrefix(rest, "blob.") {
			return bad("the host must be {account}.blob.{suffix}, e.g. acct.blob.core.windows.net")
		}
		loc.Account = account
		loc.Container, segs = segs[0], segs[1:]
		loc.Endpoint = host
	}
	if !validAccount(loc.Account) {
		return bad(fmt.Sprintf("%q is not a storage account name (3 to 24 lowercase letters and digits)", loc.Account))
	}
	if !validContainer(loc.Container) {
		return bad(fmt.Sprintf("%q is not a container name (3 to 63 lowercase letters, digits and single hyphens)", loc.Container))
	}
	return loc, strings.Join(segs, "/"), nil
}

// ParseContainerURL parses a container URL: [SplitURL] of a URL that has no
// path after the container.
func ParseContainerURL(s string) (Location, error) {
	loc, rest, err := SplitURL(s)
	if err != nil {
		return Location{}, err
	}
	if rest != "" {
		return Location{}, blob.Errorf(blob.ErrInvalidLocation, nil, "invalid container URL %q: it has a path after the container %s", redactURL(s), loc.Container)
	}
	return loc, nil
}

var (
	accountRE   = regexp.MustCompile(`^[a-z0-9]{3,24}$`)
	containerRE = regexp.MustCompile(`^[a-z0-9](?:-?[a-z0-9])+$`)
)

func validAccount(s string) bool   { return accountRE.MatchString(s) }
func validContainer(s string) bool { return len(s) >= 3 && len(s) <= 63 && containerRE.MatchString(s) }

// Store is a [blob.Store] on one Azure Blob Storage container. It is safe for
// concurrent use.
type Store struct {
	loc     Location
	client  *azcontainer.Client
	secrets []string  // strings no error message may contain
	expiry  time.Time // the SAS's se, if it has one
	start   time.Time // the SAS's st, if it has one
	perms   string    // the SAS's sp
}

var _ blob.Store = (*Store)(nil)

// New returns a Store on the container at containerURL (see
// [ParseContainerURL]) authenticated by sasToken, a SAS query string with or
// without a leading '?'. It only parses its arguments; it does not contact
// the storage account (use [blob.Check] for that). Errors wrap
// [blob.ErrInvalidLocation].
func New(containerURL, sasToken string) (*Store, error) {
	loc, err := ParseContainerURL(containerURL)
	if err != nil {
		return nil, err
	}
	token := strings.TrimPrefix(strings.TrimSpace(sasToken), "?")
	if token == "" {
		return nil, blob.Errorf(blob.ErrInvalidLocation, nil, "no SAS token for container %s: give a container SAS token (a backup needs the permissions c, r, w, d; a restore r, l)", loc.URL())
	}
	q, err := url.ParseQuery(token)
	if err != nil || q.Get("sig") == "" || strings.ContainsAny(token, "#/ ") {
		return nil, blob.Errorf(blob.ErrInvalidLocation, nil, "the SAS token for container %s is not a SAS query string (it needs the parameters sv, sp, se and a signature)", loc.URL())
	}
	s := &Store{loc: loc, secrets: []string{token, q.Get("sig"), url.QueryEscape(q.Get("sig"))}}
	s.expiry, s.start, s.perms = sasTime(q.Get("se")), sasTime(q.Get("st")), q.Get("sp")
	s.client, err = azcontainer.NewClientWithNoCredential(loc.URL()+"?"+token, &azcontainer.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Retry: policy.RetryOptions{
				MaxRetries:    3,
				TryTimeout:    2 * time.Minute,
				RetryDelay:    200 * time.Millisecond,
				MaxRetryDelay: 4 * time.Second,
			},
		},
	})
	if err != nil {
		return nil, blob.Errorf(blob.ErrInvalidLocation, nil, "container %s: cannot build a client", loc.URL())
	}
	return s, nil
}

// sasTime parses a SAS time (ISO 8601, with or without time of day); the
// zero time if absent or malformed.
func sasTime(v string) time.Time {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t
		}
	}
	return time.Time{}
}

// Location returns the parsed container URL.
func (s *Store) Location() Location { return s.loc }

// Put writes data as a block blob in one request (Put Blob), which Azure
// commits atomically.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	if err := blob.ValidateName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: put %s: %w", name, err)
	}
	c := s.client.NewBlockBlobClient(name)
	_, err := c.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
		HTTPHeaders: &azblob.HTTPHeaders{BlobContentType: ptr("application/octet-stream")},
	})
	return s.mapErr(ctx, opWrite, name, err)
}

// Get downloads the blob, refusing one larger than max before reading its
// body.
func (s *Store) Get(ctx context.Context, name string, max int64) ([]byte, error) {
	if err := blob.ValidateName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: get %s: %w", name, err)
	}
	resp, err := s.client.NewBlobClient(name).DownloadStream(ctx, nil)
	if err != nil {
		return nil, s.mapErr(ctx, opRead, name, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != nil && *resp.ContentLength > max {
		return nil, tooLarge(name, *resp.ContentLength, max)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, s.mapErr(ctx, opRead, name, err)
	}
	if int64(len(data)) > max {
		return nil, tooLarge(name, int64(len(data)), max)
	}
	return data, nil
}

func tooLarge(name string, size, max int64) error {
	return blob.Errorf(blob.ErrTooLarge, nil, "object %s is larger than %d bytes (%d)", name, max, size)
}

// List pages through the blobs with the prefix. Blobs whose names are not
// valid object names (see [blob.ValidateName]) are left out.
func (s *Store) List(ctx context.Context, prefix string) ([]blob.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: list %s: %w", prefix, err)
	}
	var opts azcontainer.ListBlobsFlatOptions
	if prefix != "" {
		opts.Prefix = &prefix
	}
	pager := s.client.NewListBlobsFlatPager(&opts)
	out := []blob.Object{}
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, s.mapErr(ctx, opList, prefix, err)
		}
		for _, it := range page.Segment.BlobItems {
			if it.Name == nil || blob.ValidateName(*it.Name) != nil || !strings.HasPrefix(*it.Name, prefix) {
				continue
			}
			o := blob.Object{Name: *it.Name}
			if p := it.Properties; p != nil {
				if p.ContentLength != nil {
					o.Size = *p.ContentLength
				}
				if p.LastModified != nil {
					o.Modified = *p.LastModified
				}
			}
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b blob.Object) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Delete deletes the blob and its snapshots.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := blob.ValidateName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete %s: %w", name, err)
	}
	_, err := s.client.NewBlobClient(name).Delete(ctx, &azblob.DeleteOptions{
		DeleteSnapshots: ptr(azblob.DeleteSnapshotsOptionTypeInclude),
	})
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil
	}
	return s.mapErr(ctx, opDelete, name, err)
}

type op int

const (
	opWrite op = iota
	opRead
	opList
	opDelete
)

func (o op) String() string {
	return [...]string{"put", "get", "list", "delete"}[o]
}

func (o op) permission() string {
	return [...]string{"writing to", "reading from", "listing", "deleting from"}[o]
}

const permsHint = "(a backup needs the permissions c, r, w, d; a restore r, l)"

// mapErr turns an SDK error into an error of package blob. Messages are
// built from the location and codes only, never from the SDK's text (which
// could hold request URLs), and are scrubbed of the token once more.
func (s *Store) mapErr(ctx context.Context, o op, name string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("blob: %s %s: %w", o, name, cerr)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The SDK's per-try timeout: the endpoint is too slow.
		return s.errorf(blob.ErrUnreachable, nil, "%s timed out while %s %s", s.loc.Host, o.verb(), name)
	}
	c := s.loc.Container
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return s.errorf(blob.ErrUnreachable, transportCause(err), "cannot reach %s: %s", s.loc.Host, transportText(err))
	}
	code := bloberror.Code(re.ErrorCode)
	switch code {
	case bloberror.AuthorizationPermissionMismatch:
		return s.noPermission(o)
	case bloberror.AuthorizationFailure, bloberror.AuthenticationFailed, bloberror.InvalidAuthenticationInfo, bloberror.NoAuthenticationInformation,
		bloberror.AuthorizationResourceTypeMismatch, bloberror.AuthorizationServiceMismatch:
		// Azure says AuthenticationFailed for an expired or badly signed
		// SAS and AuthorizationPermissionMismatch for a missing
		// permission; Azurite says AuthorizationFailure for all of them.
		// The token's own fields tell them apart.
		now := time.Now()
		switch {
		case !s.expiry.IsZero() && now.After(s.expiry):
			return s.errorf(blob.ErrAuth, nil, "the SAS token has expired (at %s): create a new one for container %s", s.expiry.UTC().Format(time.RFC3339), c)
		case !s.start.IsZero() && now.Before(s.start):
			return s.errorf(blob.ErrAuth, nil, "the SAS token is not valid before %s (container %s)", s.start.UTC().Format(time.RFC3339), c)
		case !o.allowedBy(s.perms):
			return s.noPermission(o)
		}
		return s.errorf(blob.ErrAuth, nil, "the SAS token has expired or is not valid for this storage account (%s, container %s)", s.loc.Account, c)
	case bloberror.AuthorizationSourceIPMismatch:
		return s.errorf(blob.ErrPermission, nil, "the SAS token does not allow requests from this server's IP address (container %s)", c)
	case bloberror.AuthorizationProtocolMismatch:
		return s.errorf(blob.ErrPermission, nil, "the SAS token does not allow this protocol (use https for container %s)", c)
	case bloberror.ContainerNotFound, bloberror.ContainerBeingDeleted, bloberror.ContainerDisabled:
		return s.errorf(blob.ErrNoContainer, nil, "container '%s' does not exist in storage account '%s'", c, s.loc.Account)
	case bloberror.ResourceNotFound:
		return s.errorf(blob.ErrNoContainer, nil, "container '%s' or storage account '%s' does not exist", c, s.loc.Account)
	case bloberror.BlobNotFound:
		if o == opRead {
			return s.errorf(blob.ErrNotFound, nil, "object %s does not exist in container %s", name, c)
		}
	case bloberror.AccountIsDisabled:
		return s.errorf(blob.ErrPermission, nil, "storage account '%s' is disabled", s.loc.Account)
	case bloberror.InvalidResourceName:
		return s.errorf(blob.ErrInvalidLocation, nil, "storage account %s refused the name %s of container %s", s.loc.Account, name, c)
	}
	status := re.StatusCode
	detail := fmt.Sprintf("storage account %s answered %d %s while %s %s in container %s", s.loc.Account, status, code, o.verb(), name, c)
	switch {
	case status == http.StatusUnauthorized:
		return s.errorf(blob.ErrAuth, nil, "%s: check the SAS token", detail)
	case status == http.StatusForbidden:
		return s.errorf(blob.ErrPermission, nil, "%s: check the SAS token's permissions %s", detail, permsHint)
	case status == http.StatusNotFound && o == opRead:
		return s.errorf(blob.ErrNotFound, nil, "object %s does not exist in container %s", name, c)
	case status == http.StatusNotFound:
		return s.errorf(blob.ErrNoContainer, nil, "container '%s' does not exist in storage account '%s'", c, s.loc.Account)
	case status == http.StatusConflict || status == http.StatusPreconditionFailed:
		return s.errorf(blob.ErrPermission, nil, "%s: the object is leased or immutable", detail)
	case status >= 500:
		return s.errorf(blob.ErrUnreachable, nil, "%s: try again later", detail)
	}
	return s.errorf(blob.ErrInvalidLocation, nil, "%s", detail)
}

func (s *Store) noPermission(o op) error {
	c := s.loc.Container
	if o == opList {
		return s.errorf(blob.ErrPermission, nil, "the SAS token does not allow listing container %s %s", c, permsHint)
	}
	return s.errorf(blob.ErrPermission, nil, "the SAS token does not allow %s container %s %s", o.permission(), c, permsHint)
}

// allowedBy reports whether SAS permissions sp allow the operation.
func (o op) allowedBy(sp string) bool {
	switch o {
	case opWrite:
		return strings.ContainsAny(sp, "cw")
	case opRead:
		return strings.Contains(sp, "r")
	case opList:
		return strings.Contains(sp, "l")
	}
	return strings.Contains(sp, "d")
}

func (o op) verb() string {
	return [...]string{"writing", "reading", "listing", "deleting"}[o]
}

// transportCause returns the network error inside an SDK transport error,
// without the *url.Error around it (whose text holds the request URL).
func transportCause(err error) error {
	var ne net.Error
	if errors.As(err, &ne) {
		var ue *url.Error
		if errors.As(err, &ue) {
			if _, isURL := ue.Err.(*url.Error); !isURL {
				return ue.Err
			}
			return nil
		}
		return ne
	}
	return nil
}

func transportText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

var sigRE = regexp.MustCompile(`(?i)sig=[^&\s"']*`)

// errorf is [blob.Errorf] with the message scrubbed of the SAS token.
func (s *Store) errorf(kind, cause error, format string, args ...any) error {
	e := blob.Errorf(kind, cause, format, args...).(*blob.Error)
	e.Message = s.redact(e.Message)
	if cause != nil && s.redact(cause.Error()) != cause.Error() {
		e.Err = nil
	}
	return e
}

func (s *Store) redact(msg string) string {
	for _, sec := range s.secrets {
		if sec != "" {
			msg = strings.ReplaceAll(msg, sec, "REDACTED")
		}
	}
	return sigRE.ReplaceAllString(msg, "sig=REDACTED")
}

// redactURL returns s without a query (where a SAS would be) for messages.
func redactURL(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + "?…"
	}
	return sigRE.ReplaceAllString(s, "sig=REDACTED")
}

func ptr[T any](v T) *T { return &v }
