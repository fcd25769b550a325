package container_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tresor/internal/blob"
	"tresor/internal/blob/azure"
	"tresor/internal/blob/azuritetest"
	"tresor/internal/blob/container"
	"tresor/internal/blob/file"
	"tresor/internal/pkgdoc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	azuritetest.Stop()
	os.Exit(code)
}

func TestDocumentation(t *testing.T) { pkgdoc.Check(t, ".") }

func TestResolve(t *testing.T) {
	tests := map[string]struct {
		uri, folder     string
		container, path string
	}{
		"account style": {"https://acct.blob.core.windows.net/backups", "mhsm-x-2026010203040506",
			"https://acct.blob.core.windows.net/backups", "mhsm-x-2026010203040506"},
		"account style, no folder": {"https://acct.blob.core.windows.net/backups", "",
			"https://acct.blob.core.windows.net/backups", ""},
		"account style, folder in URI": {"https://acct.blob.core.windows.net/backups/mhsm-x-1", "",
			"https://acct.blob.core.windows.net/backups", "mhsm-x-1"},
		"account style, nested folder": {"https://acct.blob.core.windows.net/backups/tenant-a", "mhsm-x-1",
			"https://acct.blob.core.windows.net/backups", "tenant-a/mhsm-x-1"},
		"account style, trailing slash": {"https://acct.blob.core.windows.net/backups/", "mhsm-x-1",
			"https://acct.blob.core.windows.net/backups", "mhsm-x-1"},
		"upper-case host": {"HTTPS://Acct.Blob.Core.Windows.Net/backups", "f",
			"https://acct.blob.core.windows.net/backups", "f"},
		"sovereign cloud": {"https://acct.blob.core.usgovcloudapi.net/backups", "f",
			"https://acct.blob.core.usgovcloudapi.net/backups", "f"},
		"azurite": {"http://127.0.0.1:10000/devstoreaccount1/backups", "mhsm-x-2026010203040506",
			"http://127.0.0.1:10000/devstoreaccount1/backups", "mhsm-x-2026010203040506"},
		"az's split of a path-style URI": {"http://127.0.0.1:10000/devstoreaccount1", "backups/mhsm-x-2026010203040506",
			"http://127.0.0.1:10000/devstoreaccount1/backups", "mhsm-x-2026010203040506"},
		"localhost": {"http://localhost/devstoreaccount1", "backups/f",
			"http://localhost/devstoreaccount1/backups", "f"},
		"named host with port": {"http://azurite:10000/devstoreaccount1/backups", "f",
			"http://azurite:10000/devstoreaccount1/backups", "f"},
		"ipv6": {"http://[::1]:10000/devstoreaccount1/backups", "f",
			"http://[::1]:10000/devstoreaccount1/backups", "f"},
		"file": {"file:///var/lib/tresor/backups", "mhsm-x-2026010203040506",
			"file:///var/lib/tresor/backups", "mhsm-x-2026010203040506"},
		"file, nested folder": {"file:///var/backups", "a/mhsm-x-1",
			"file:///var/backups", "a/mhsm-x-1"},
		"file, localhost": {"file://localhost/var/backups", "f",
			"file:///var/backups", "f"},
		"file, no folder": {"file:///var/backups", "",
			"file:///var/backups", ""},
		"file, escaped space": {"file:///var/my%20backups", "f",
			"file:///var/my%20backups", "f"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, p, err := container.Resolve(tc.uri, tc.folder)
			if err != nil || c != tc.container || p != tc.path {
				t.Fatalf("Resolve(%q, %q) = %q, %q, %v; want %q, %q", tc.uri, tc.folder, c, p, err, tc.container, tc.path)
			}
			if _, err := container.Open(t.Context(), c, "sv=2024-01-01&sig=abc"); err != nil {
				t.Fatalf("Open(%q) = %v", c, err)
			}
			// Resolving the result again changes nothing.
			if c2, p2, err := container.Resolve(c, p); err != nil || c2 != c || p2 != p {
				t.Fatalf("Resolve(%q, %q) = %q, %q, %v; want the same", c, p, c2, p2, err)
			}
		})
	}
}

func TestResolveRefuses(t *testing.T) {
	tests := map[string]struct{ uri, folder, msg string }{
		"query":                   {"https://acct.blob.core.windows.net/backups?sv=1&sig=secret", "f", "token field"},
		"query in folder":         {"https://acct.blob.core.windows.net/backups", "f?sig=secret", "token field"},
		"fragment":                {"https://acct.blob.core.windows.net/backups#x", "f", "query or fragment"},
		"no container":            {"https://acct.blob.core.windows.net", "", "no container"},
		"path-style no container": {"http://127.0.0.1:10000/devstoreaccount1", "", "path-style"},
		"path-style nothing":      {"http://127.0.0.1:10000", "", "path-style"},
		"not a blob host":         {"https://example.com/backups", "f", "{account}.blob.{suffix}"},
		"bad container name":      {"https://acct.blob.core.windows.net/Backups", "f", "not a container name"},
		"bad account name":        {"http://127.0.0.1:10000/dev_store/backups", "f", "not a storage account name"},
		"dot-dot folder":          {"https://acct.blob.core.windows.net/backups", "../other", "invalid folder"},
		"dot-dot file folder":     {"file:///var/backups", "a/../../etc", "invalid folder"},
		"empty segment":           {"https://acct.blob.core.windows.net/backups", "a//b", "empty path segment"},
		"relative file":           {"file://var/backups", "f", "relative"},
		"file no slashes":         {"file:var/backups", "f", "file:///absolute/directory"},
		"file root":               {"file:///", "f", "not the root"},
		"file unclean":            {"file:///var/../etc", "f", "not clean"},
		"ftp":                     {"ftp://acct.blob.core.windows.net/backups", "f", "must start with https://"},
		"no scheme":               {"acct.blob.core.windows.net/backups", "f", "must start with https://"},
		"empty":                   {"", "", "must start with https://"},
		"user info":               {"https://me:pw@acct.blob.core.windows.net/backups", "f", "user information"},
		"percent in azure path":   {"https://acct.blob.core.windows.net/backups/a%2Fb", "", "percent-encoded"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, p, err := container.Resolve(tc.uri, tc.folder)
			if !errors.Is(err, blob.ErrInvalidLocation) || c != "" || p != "" {
				t.Fatalf("Resolve(%q, %q) = %q, %q, %v; want ErrInvalidLocation", tc.uri, tc.folder, c, p, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q lacks %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("message echoes the SAS: %q", err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	ctx := t.Context()
	s, err := container.Open(ctx, "file:///var/backups", "")
	if fs, ok := s.(*file.Store); err != nil || !ok || fs.Dir() != "/var/backups" {
		t.Errorf("Open(file) = %T, %v", s, err)
	}
	s, err = container.Open(ctx, "https://acct.blob.core.windows.net/backups", "?sv=2024-01-01&sp=rl&sig=abc")
	if as, ok := s.(*azure.Store); err != nil || !ok || as.Location().Container != "backups" {
		t.Errorf("Open(https) = %T, %v", s, err)
	}
	for name, tc := range map[string]struct{ uri, token, msg string }{
		"empty token":   {"https://acct.blob.core.windows.net/backups", "", "no SAS token"},
		"only ?":        {"https://acct.blob.core.windows.net/backups", "?", "no SAS token"},
		"query in URI":  {"https://acct.blob.core.windows.net/backups?sig=secret", "sig=secret", "pass the SAS token separately"},
		"path in URI":   {"https://acct.blob.core.windows.net/backups/f", "sig=x", "path after the container"},
		"relative file": {"file://backups", "", "relative"},
		"other scheme":  {"s3://bucket", "", "must start with"},
	} {
		if _, err := container.Open(ctx, tc.uri, tc.token); !errors.Is(err, blob.ErrInvalidLocation) || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: Open = %v, want ErrInvalidLocation with %q", name, err, tc.msg)
		}
	}
}

// TestRoundTrip opens both backends through Resolve and Open and checks
// them with blob.Check, as the backup service does: az's split path-style
// location against Azurite, and a file directory.
func TestRoundTrip(t *testing.T) {
	srv := azuritetest.Start(t)
	srv.CreateContainer(t, "backups")
	dir := filepath.Join(t.TempDir(), "backups")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ uri, folder, token string }{
		"azurite": {srv.URL(), "backups/mhsm-x-2026010203040506", "?" + srv.SAS(t, "backups", "crwdl", time.Now().Add(time.Hour))},
		"file":    {"file://" + dir, "mhsm-x-2026010203040506", ""},
	} {
		t.Run(name, func(t *testing.T) {
			uri, p, err := container.Resolve(tc.uri, tc.folder)
			if err != nil {
				t.Fatal(err)
			}
			s, err := container.Open(t.Context(), uri, tc.token)
			if err != nil {
				t.Fatal(err)
			}
			if err := blob.Check(t.Context(), s, true); err != nil {
				t.Fatalf("Check(write): %v", err)
			}
			if err := s.Put(t.Context(), p+"/manifest", []byte("m")); err != nil {
				t.Fatal(err)
			}
			objs, err := s.List(t.Context(), p+"/")
			if err != nil || len(objs) != 1 || objs[0].Name != "mhsm-x-2026010203040506/manifest" {
				t.Fatalf("List = %+v, %v", objs, err)
			}
			if err := blob.Check(t.Context(), s, false); err != nil {
				t.Fatalf("Check(read): %v", err)
			}
		})
	}
}

func FuzzResolve(f *testing.F) {
	seeds := [][2]string{
		{"https://acct.blob.core.windows.net/backups", "mhsm-x-2026010203040506"},
		{"http://127.0.0.1:10000/devstoreaccount1", "backups/mhsm-x-1"},
		{"http://[::1]:10000/devstoreaccount1/b", "x"},
		{"file:///var/backups", "a/b"},
		{"file://localhost/var/my%20backups/", "/f/"},
		{"https://acct.blob.core.windows.net/backups?sig=x", ""},
		{"file://rel", ".."},
		{"http://localhost", "a/b/c"},
		{"HTTPS://ACCT.BLOB.x/abc", "%41"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, uri, folder string) {
		c, p, err := container.Resolve(uri, folder)
		if err != nil {
			if c != "" || p != "" {
				t.Fatalf("Resolve failed (%v) but returned %q, %q", err, c, p)
			}
			if !errors.Is(err, blob.ErrInvalidLocation) {
				t.Fatalf("Resolve error %v is not ErrInvalidLocation", err)
			}
			return
		}
		if _, err := container.Open(t.Context(), c, "sv=2024-01-01&sig=abc"); err != nil {
			t.Fatalf("Resolve(%q, %q) = %q, but Open refuses it: %v", uri, folder, c, err)
		}
		if p != "" {
			if err := blob.ValidateName(p); err != nil {
				t.Fatalf("Resolve(%q, %q) path %q: %v", uri, folder, p, err)
			}
		}
		if c2, p2, err := container.Resolve(c, p); err != nil || c2 != c || p2 != p {
			t.Fatalf("Resolve(%q, %q) = %q, %q, %v; want %q, %q", c, p, c2, p2, err, c, p)
		}
	})
}
