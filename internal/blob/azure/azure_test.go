package azure_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tresor/internal/blob"
	"tresor/internal/blob/azure"
	"tresor/internal/blob/azuritetest"
	"tresor/internal/blob/blobtest"
	"tresor/internal/pkgdoc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	azuritetest.Stop()
	os.Exit(code)
}

func TestDocumentation(t *testing.T) {
	pkgdoc.Check(t, ".")
	pkgdoc.Check(t, "../azuritetest")
}

var containers atomic.Int64

func newContainer(t *testing.T, srv *azuritetest.Server) (name, url string) {
	t.Helper()
	name = fmt.Sprintf("c%d-%d", time.Now().UnixNano()%1e6, containers.Add(1))
	return name, srv.CreateContainer(t, name)
}

func open(t *testing.T, url, token string) *azure.Store {
	t.Helper()
	s, err := azure.New(url, token)
	if err != nil {
		t.Fatalf("New(%s): %v", url, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := azuritetest.Start(t)
	blobtest.Run(t, func(t *testing.T) blob.Store {
		name, url := newContainer(t, srv)
		return open(t, url, "?"+srv.SAS(t, name, "racwdl", time.Now().Add(time.Hour)))
	})
}

// TestErrors maps Azurite's answers to the sentinels, and checks that no
// message holds the SAS signature.
func TestErrors(t *testing.T) {
	srv := azuritetest.Start(t)
	name, url := newContainer(t, srv)
	hour := time.Now().Add(time.Hour)
	full := open(t, url, srv.SAS(t, name, "racwdl", hour))
	if err := full.Put(t.Context(), "mhsm-x/manifest", []byte("m")); err != nil {
		t.Fatal(err)
	}
	closed := closedPort(t)
	type call func(s *azure.Store) error
	put := func(s *azure.Store) error { return s.Put(t.Context(), "mhsm-x/new", []byte("x")) }
	get := func(s *azure.Store) error { _, err := s.Get(t.Context(), "mhsm-x/manifest", 100); return err }
	list := func(s *azure.Store) error { _, err := s.List(t.Context(), "mhsm-x/"); return err }
	del := func(s *azure.Store) error { return s.Delete(t.Context(), "mhsm-x/manifest") }
	checkWrite := func(s *azure.Store) error { return blob.Check(t.Context(), s, true) }
	checkRead := func(s *azure.Store) error { return blob.Check(t.Context(), s, false) }
	tests := map[string]struct {
		url, sas string
		call     call
		want     error
		msg      string
	}{
		"put without write":          {url, srv.SAS(t, name, "rl", hour), put, blob.ErrPermission, "does not allow writing to container " + name},
		"get without read":           {url, srv.SAS(t, name, "cwdl", hour), get, blob.ErrPermission, "does not allow reading from container " + name},
		"list without list":          {url, srv.SAS(t, name, "crwd", hour), list, blob.ErrPermission, "does not allow listing container " + name},
		"delete without delete":      {url, srv.SAS(t, name, "crwl", hour), del, blob.ErrPermission, "does not allow deleting from container " + name},
		"backup check with restore":  {url, srv.SAS(t, name, "rl", hour), checkWrite, blob.ErrPermission, "a backup needs the permissions c, r, w, d"},
		"restore check without list": {url, srv.SAS(t, name, "crwd", hour), checkRead, blob.ErrPermission, "listing"},
		"expired put":                {url, srv.SAS(t, name, "racwdl", time.Now().Add(-time.Minute)), put, blob.ErrAuth, "expired"},
		"expired get":                {url, srv.SAS(t, name, "racwdl", time.Now().Add(-time.Minute)), get, blob.ErrAuth, "expired"},
		"other container's SAS":      {url, srv.SAS(t, "other", "racwdl", hour), list, blob.ErrAuth, "not valid for this storage account"},
		"missing container put":      {srv.URL() + "/missing", srv.SAS(t, "missing", "racwdl", hour), put, blob.ErrNoContainer, "container 'missing' does not exist in storage account 'devstoreaccount1'"},
		"missing container list":     {srv.URL() + "/missing", srv.SAS(t, "missing", "racwdl", hour), list, blob.ErrNoContainer, "container 'missing' does not exist"},
		"missing container get":      {srv.URL() + "/missing", srv.SAS(t, "missing", "racwdl", hour), get, blob.ErrNoContainer, "container 'missing' does not exist"},
		"missing blob":               {url, srv.SAS(t, name, "r", hour), func(s *azure.Store) error { _, err := s.Get(t.Context(), "nope", 10); return err }, blob.ErrNotFound, "object nope does not exist in container " + name},
		"unreachable put":            {"http://" + closed + "/devstoreaccount1/backups", srv.SAS(t, "backups", "racwdl", hour), put, blob.ErrUnreachable, "cannot reach http://" + closed + ": "},
		"unreachable list":           {"http://" + closed + "/devstoreaccount1/backups", srv.SAS(t, "backups", "racwdl", hour), list, blob.ErrUnreachable, "cannot reach http://" + closed + ": "},
		"backup check ok":            {url, srv.SAS(t, name, "crwd", hour), checkWrite, nil, ""},
		"restore check ok":           {url, srv.SAS(t, name, "rl", hour), checkRead, nil, ""},
	}
	for tname, tc := range tests {
		t.Run(tname, func(t *testing.T) {
			t.Parallel()
			err := tc.call(open(t, tc.url, tc.sas))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.msg) || !strings.HasPrefix(msg, "blob: ") {
				t.Errorf("message %q does not start with \"blob: \" or lacks %q", msg, tc.msg)
			}
			sig := tc.sas[strings.Index(tc.sas, "sig=")+4:]
			if strings.Contains(msg, "sig=") || strings.Contains(msg, sig) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), sig) {
				t.Errorf("message holds the SAS signature: %q", msg)
			}
			var be *blob.Error
			if !errors.As(err, &be) {
				t.Errorf("err is %T, not a *blob.Error", err)
			} else if be.Err != nil && strings.Contains(be.Err.Error(), sig) {
				t.Errorf("cause holds the SAS signature: %q", be.Err)
			}
		})
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestNewRefuses(t *testing.T) {
	good := "http://127.0.0.1:10000/devstoreaccount1/backups"
	tests := map[string]struct{ url, sas, msg string }{
		"empty token":      {good, "", "no SAS token"},
		"question only":    {good, "?", "no SAS token"},
		"no signature":     {good, "sv=2024-01-01&sp=rl", "not a SAS query string"},
		"query in URL":     {good + "?sv=1&sig=abc", "sv=1&sig=abc", "pass the SAS token separately"},
		"no container":     {"http://127.0.0.1:10000/devstoreaccount1", "sig=x", "path-style"},
		"path after":       {good + "/folder", "sig=x", "path after the container"},
		"bad container":    {"https://acct.blob.core.windows.net/Bad_Name", "sig=x", "not a container name"},
		"not blob host":    {"https://example.com/backups", "sig=x", "{account}.blob.{suffix}"},
		"ftp":              {"ftp://acct.blob.core.windows.net/backups", "sig=x", "scheme"},
		"fragment":         {good + "#x", "sig=x", "fragment"},
		"user info":        {"https://u:p@acct.blob.core.windows.net/backups", "sig=x", "user information"},
		"account-style 2x": {"https://acct.blob.core.windows.net/backups/x", "sig=x", "path after"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := azure.New(tc.url, tc.sas)
			if !errors.Is(err, blob.ErrInvalidLocation) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("New = %v, want ErrInvalidLocation with %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "sig=") {
				t.Fatalf("message holds the signature: %q", err)
			}
		})
	}
}

func TestParseContainerURL(t *testing.T) {
	tests := map[string]azure.Location{
		"https://acct.blob.core.windows.net/backups":      {Endpoint: "https://acct.blob.core.windows.net", Host: "https://acct.blob.core.windows.net", Account: "acct", Container: "backups"},
		"http://127.0.0.1:10000/devstoreaccount1/backups": {Endpoint: "http://127.0.0.1:10000/devstoreaccount1", Host: "http://127.0.0.1:10000", Account: "devstoreaccount1", Container: "backups"},
		"http://localhost/devstoreaccount1/b-1":           {Endpoint: "http://localhost/devstoreaccount1", Host: "http://localhost", Account: "devstoreaccount1", Container: "b-1"},
		"http://[::1]:10000/devstoreaccount1/abc":         {Endpoint: "http://[::1]:10000/devstoreaccount1", Host: "http://[::1]:10000", Account: "devstoreaccount1", Container: "abc"},
		"https://acct.blob.core.chinacloudapi.cn/abc":     {Endpoint: "https://acct.blob.core.chinacloudapi.cn", Host: "https://acct.blob.core.chinacloudapi.cn", Account: "acct", Container: "abc"},
	}
	for in, want := range tests {
		got, err := azure.ParseContainerURL(in)
		if err != nil || got != want {
			t.Errorf("ParseContainerURL(%s) = %+v, %v; want %+v", in, got, err, want)
		}
		if err == nil && got.URL() != in {
			t.Errorf("URL() = %s, want %s", got.URL(), in)
		}
	}
}
