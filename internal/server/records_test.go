package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"tresor/internal/barrier"
	"tresor/internal/server"
	"tresor/internal/server/servertest"
	"tresor/internal/store"
	"tresor/internal/wire"
)

// recordsRegion is a stopped region with the bootstrap administrator and
// one more principal, "app".
type recordsRegion struct {
	dir        string
	admin, app wire.Principal
}

func newRecordsRegion(t *testing.T) recordsRegion {
	t.Helper()
	s := servertest.Start(t)
	c := newCall(t, s)
	code, _, body := c.do("POST", s.Endpoint+"/tresor/principals", s.AdminToken(t), wire.PrincipalCreate{DisplayName: "app"})
	if code != 201 {
		t.Fatalf("create principal: %d %s", code, body)
	}
	r := recordsRegion{dir: s.DataDir, admin: wire.Principal{ObjectID: s.ObjectID, ClientID: s.ClientID, ClientSecret: s.ClientSecret}}
	if err := json.Unmarshal(body, &r.app); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	return r
}

// copyDir copies the region's data directory (files only) to a new one.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// editDB changes a stopped region's database with bbolt directly, as
// someone with write access to the data directory (and without the seal
// key) could.
func editDB(t *testing.T, dir string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "tresor.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func bucket(tx *bolt.Tx, name string) *bolt.Bucket {
	b := tx.Bucket([]byte(name))
	if b == nil {
		panic("no bucket " + name)
	}
	return b
}

// editRecord rewrites the JSON fields of one principal record.
func editRecord(oid string, fn func(m map[string]any)) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := bucket(tx, "principals")
		var m map[string]any
		if err := json.Unmarshal(b.Get([]byte(oid)), &m); err != nil {
			return err
		}
		fn(m)
		v, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return b.Put([]byte(oid), v)
	}
}

func readRecord(t *testing.T, dir, oid string) map[string]any {
	t.Helper()
	var m map[string]any
	editDB(t, dir, func(tx *bolt.Tx) error {
		return json.Unmarshal(bucket(tx, "principals").Get([]byte(oid)), &m)
	})
	return m
}

func regionConfig(dir string) server.Config {
	cfg := server.DefaultConfig()
	cfg.Dev = true
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	return cfg
}

// startErr starts a region on dir and returns why it did not start (nil:
// it started, and is closed again).
func startErr(t *testing.T, dir string, log *bytes.Buffer) error {
	t.Helper()
	if log == nil {
		log = new(bytes.Buffer)
	}
	s, err := server.New(context.Background(), regionConfig(dir), log)
	if err == nil {
		s.Close()
	}
	return err
}

func TestPrincipalRecordsEditedOffline(t *testing.T) {
	r := newRecordsRegion(t)
	other := newRecordsRegion(t) // another region: its own root and seal

	tests := map[string]struct {
		edit func(tx *bolt.Tx) error
		// want is in the error, with "fails its integrity check" or
		// wantDetail, and the advice.
		want, wantDetail string
	}{
		"regionAdmin set": {
			edit: editRecord(r.app.ObjectID, func(m map[string]any) { m["regionAdmin"] = true }),
			want: "principals record " + r.app.ObjectID + " (client id " + r.app.ClientID + ") fails its integrity check",
		},
		"secret hash copied": {
			edit: func(tx *bolt.Tx) error {
				var admin map[string]any
				if err := json.Unmarshal(bucket(tx, "principals").Get([]byte(r.admin.ObjectID)), &admin); err != nil {
					return err
				}
				return editRecord(r.app.ObjectID, func(m map[string]any) { m["secretHash"] = admin["secretHash"] })(tx)
			},
			want: "principals record " + r.app.ObjectID + " (client id " + r.app.ClientID + ") fails its integrity check",
		},
		"duplicate field": {
			edit: func(tx *bolt.Tx) error {
				b := bucket(tx, "principals")
				v := bytes.TrimSuffix(b.Get([]byte(r.app.ObjectID)), []byte("}"))
				return b.Put([]byte(r.app.ObjectID), append(v, []byte(`,"regionAdmin":true}`)...))
			},
			want: "principals record " + r.app.ObjectID + " (client id " + r.app.ClientID + ") fails its integrity check",
		},
		"records swapped": {
			edit: func(tx *bolt.Tx) error {
				b := bucket(tx, "principals")
				a, p := bytes.Clone(b.Get([]byte(r.admin.ObjectID))), bytes.Clone(b.Get([]byte(r.app.ObjectID)))
				if err := b.Put([]byte(r.admin.ObjectID), p); err != nil {
					return err
				}
				return b.Put([]byte(r.app.ObjectID), a)
			},
			want: "holds principal", wantDetail: "record does not match its key",
		},
		"client index redirected": {
			edit: func(tx *bolt.Tx) error {
				return bucket(tx, "principals-by-client").Put([]byte(r.app.ClientID), []byte(r.admin.ObjectID))
			},
			want: "principals-by-client record " + r.app.ClientID + " names principal " + r.admin.ObjectID, wantDetail: "record does not match its key",
		},
		"mac dropped": {
			edit: editRecord(r.app.ObjectID, func(m map[string]any) { delete(m, "mac") }),
			want: "principals record " + r.app.ObjectID + " (client id " + r.app.ClientID + ") has no integrity tag, though the region's records are protected",
		},
		"mac of another record": {
			edit: func(tx *bolt.Tx) error {
				var admin map[string]any
				if err := json.Unmarshal(bucket(tx, "principals").Get([]byte(r.admin.ObjectID)), &admin); err != nil {
					return err
				}
				return editRecord(r.app.ObjectID, func(m map[string]any) { m["mac"] = admin["mac"] })(tx)
			},
			want: "principals record " + r.app.ObjectID + " (client id " + r.app.ClientID + ") fails its integrity check",
		},
		"record from another region": {
			edit: func(tx *bolt.Tx) error {
				foreign := readRecord(t, other.dir, other.admin.ObjectID)
				v, _ := json.Marshal(foreign)
				if err := bucket(tx, "principals").Put([]byte(other.admin.ObjectID), v); err != nil {
					return err
				}
				return bucket(tx, "principals-by-client").Put([]byte(other.admin.ClientID), []byte(other.admin.ObjectID))
			},
			want: "principals record " + other.admin.ObjectID + " (client id " + other.admin.ClientID + ") fails its integrity check",
		},
	}
	const advice = ": it was changed outside tresor; restore the data directory from a backup or delete the principal record"
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := copyDir(t, r.dir)
			editDB(t, dir, tc.edit)
			err := startErr(t, dir, nil)
			var ie *server.RecordIntegrityError
			if !errors.As(err, &ie) {
				t.Fatalf("start = %v, want a RecordIntegrityError", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, tc.wantDetail) || !strings.HasSuffix(msg, advice) || strings.Contains(msg, "\n") {
				t.Fatalf("start error:\n%s\nwant one line with %q, %q and the advice", msg, tc.want, tc.wantDetail)
			}
		})
	}

	t.Run("untouched", func(t *testing.T) {
		dir := copyDir(t, r.dir)
		s := servertest.StartConfig(t, regionConfig(dir))
		s.Token(t, r.app.ClientID, r.app.ClientSecret, s.Endpoint)
		s.Token(t, r.admin.ClientID, r.admin.ClientSecret, s.Endpoint)
	})
}

// TestPrincipalRecordEditedWhileRunning changes a record beneath the
// services of a running region: the next token request and the next
// request of a holder of a token are refused.
func TestPrincipalRecordEditedWhileRunning(t *testing.T) {
	s := servertest.Start(t)
	c := newCall(t, s)
	admin := s.AdminToken(t)
	code, _, body := c.do("POST", s.Endpoint+"/tresor/principals", admin, wire.PrincipalCreate{DisplayName: "app"})
	if code != 201 {
		t.Fatalf("create principal: %d %s", code, body)
	}
	var app wire.Principal
	_ = json.Unmarshal(body, &app)
	user := s.Token(t, app.ClientID, app.ClientSecret, s.Endpoint)
	if code, _, body := c.do("GET", s.Endpoint+"/tresor/principals", user, nil); code != http.StatusForbidden {
		t.Fatalf("list principals as app: %d %s", code, body)
	}

	ctx := context.Background()
	var p store.Principal
	if err := s.Store().View(ctx, func(r store.Reader) error {
		var err error
		p, err = r.Principal(app.ObjectID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p.RegionAdmin = true // the MAC stays that of the record without
	if err := s.Store().Apply(ctx, store.ReplacePrincipals{Principals: []store.Principal{p}}); err != nil {
		t.Fatal(err)
	}
	if code, _, body := c.do("GET", s.Endpoint+"/tresor/principals", user, nil); code != http.StatusInternalServerError || bytes.Contains(body, []byte(app.ObjectID)) {
		t.Fatalf("list principals with an edited record: %d %s, want 500 without the detail", code, body)
	}
	form := "grant_type=client_credentials&client_id=" + app.ClientID + "&client_secret=" + app.ClientSecret + "&scope=" + s.Endpoint + "/.default"
	resp, err := s.HTTPClient(t).Post(s.Endpoint+"/"+s.TenantID+"/oauth2/v2.0/token", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("a token was issued for an edited principal record")
	}
	// The administrator's own record is intact, but listing reads them all.
	if code, _, _ := c.do("GET", s.Endpoint+"/tresor/principals", admin, nil); code != http.StatusInternalServerError {
		t.Fatalf("list principals with one edited record: %d, want 500", code)
	}
}

// TestPrincipalRecordsMigrated starts a region on a database written the
// way versions before record MACs wrote it: no MACs, the region root
// wrapped under the legacy name. The first start adds the MACs (and says
// so), later starts find them; afterwards a record without a MAC is an edit.
func TestPrincipalRecordsMigrated(t *testing.T) {
	r := newRecordsRegion(t)
	dir := r.dir
	seal, err := barrier.OpenFileSeal(filepath.Join(dir, "seal.key"), false)
	if err != nil {
		t.Fatal(err)
	}
	editDB(t, dir, func(tx *bolt.Tx) error {
		reg := bucket(tx, "region")
		root, err := barrier.UnwrapRootKey(seal, reg.Get([]byte("region-root")), "region/records-v2")
		if err != nil {
			return err
		}
		legacy, err := barrier.WrapRootKey(seal, root, "region")
		if err != nil {
			return err
		}
		if err := reg.Put([]byte("region-root"), legacy); err != nil {
			return err
		}
		for _, oid := range []string{r.admin.ObjectID, r.app.ObjectID} {
			if err := editRecord(oid, func(m map[string]any) { delete(m, "mac") })(tx); err != nil {
				return err
			}
		}
		return nil
	})
	var log bytes.Buffer
	if err := startErr(t, dir, &log); err != nil {
		t.Fatalf("start on a database of an earlier version: %v", err)
	}
	if n := strings.Count(log.String(), "principal records are now protected"); n != 1 {
		t.Fatalf("migration logged %d times:\n%s", n, log.String())
	}
	for _, oid := range []string{r.admin.ObjectID, r.app.ObjectID} {
		if m := readRecord(t, dir, oid); m["mac"] == nil {
			t.Fatalf("record %s has no MAC after migration: %v", oid, m)
		}
	}
	log.Reset()
	if err := startErr(t, dir, &log); err != nil || strings.Contains(log.String(), "now protected") {
		t.Fatalf("second start: %v\n%s", err, log.String())
	}
	s := servertest.StartConfig(t, regionConfig(dir))
	s.Token(t, r.app.ClientID, r.app.ClientSecret, s.Endpoint)
	s.Stop()

	// Protected now: stripping a MAC does not pass for an old record.
	editDB(t, dir, editRecord(r.app.ObjectID, func(m map[string]any) { delete(m, "mac"); m["regionAdmin"] = true }))
	var ie *server.RecordIntegrityError
	if err := startErr(t, dir, nil); !errors.As(err, &ie) {
		t.Fatalf("start with a stripped MAC after migration = %v, want a RecordIntegrityError", err)
	}
}
