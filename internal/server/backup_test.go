package server_test

import (
	"context"
	"crypto/fips140"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"tresor/internal/blob/azuritetest"
	"tresor/internal/fault"
	"tresor/internal/instances"
	"tresor/internal/keys"
	"tresor/internal/rbac"
	"tresor/internal/store"
	"tresor/internal/uuid"
	"tresor/internal/wire"
)

// seedKeys fills an instance with n keys of every type: several versions,
// tags, disabled and expired versions, rotation policies and soft-deleted
// keys. Keys are made through the key service in process (n HTTP creates
// would make the test slow; the HTTP path is tested elsewhere).
func (d *drill) seedKeys(name string, n int) {
	d.t.Helper()
	ctx := context.Background()
	in, err := d.s.Instances.Get(ctx, name)
	if err != nil {
		d.t.Fatal(err)
	}
	types := []keys.CreateParams{
		{Kty: "EC-HSM", Curve: "P-256"}, {Kty: "EC-HSM", Curve: "P-384"}, {Kty: "EC-HSM", Curve: "P-521"},
		{Kty: "oct-HSM", Size: 128}, {Kty: "oct-HSM", Size: 192}, {Kty: "oct-HSM", Size: 256},
	}
	if !fips140.Enabled() {
		types = append(types, keys.CreateParams{Kty: "EC-HSM", Curve: "P-256K"})
	}
	rsa := map[int]keys.CreateParams{0: {Kty: "RSA-HSM", Size: 2048}, 1: {Kty: "RSA-HSM", Size: 3072}, 2: {Kty: "RSA-HSM", Size: 2048}}
	past := time.Now().Add(-time.Hour).Unix()
	off := false
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				if err := d.seedKey(ctx, in, i, types, rsa, past, &off); err != nil {
					errs <- fmt.Errorf("key %d: %w", i, err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		d.t.Fatal(err)
	}
}

func (d *drill) seedKey(ctx context.Context, in instances.Instance, i int, types []keys.CreateParams, rsa map[int]keys.CreateParams, past int64, off *bool) error {
	p, ok := rsa[i]
	kname := fmt.Sprintf("Key-%04d", i)
	if ok {
		kname = fmt.Sprintf("rsa-%d", i)
	} else {
		p = types[i%len(types)]
	}
	p.Tags = map[string]string{"i": fmt.Sprint(i), "type": p.Kty}
	if _, err := d.s.Keys.Create(ctx, in, kname, p); err != nil {
		return err
	}
	if i%7 == 0 {
		p.Tags = map[string]string{"version": "2"}
		if _, err := d.s.Keys.Create(ctx, in, kname, p); err != nil {
			return err
		}
	}
	switch {
	case i%11 == 5:
		if _, err := d.s.Keys.Update(ctx, in, kname, "", nil, keys.AttrChange{Enabled: off}, nil, nil); err != nil {
			return err
		}
	case i%13 == 6:
		if _, err := d.s.Keys.Update(ctx, in, kname, "", nil, keys.AttrChange{Expires: &past}, nil, nil); err != nil {
			return err
		}
	case i%17 == 8:
		pol := keys.RotationPolicy{ExpiryTime: "P90D", Actions: []keys.LifetimeAction{{TimeAfterCreate: "P30D", Type: "Rotate"}}}
		if _, err := d.s.Keys.PutPolicy(ctx, in, kname, pol); err != nil {
			return err
		}
	case i%19 == 9:
		if _, err := d.s.Keys.Delete(ctx, in, kname); err != nil {
			return err
		}
	}
	return nil
}

// seedRBAC adds a custom role and assignments for two principals, one of
// them key-scoped.
func (d *drill) seedRBAC(name string) {
	d.t.Helper()
	roleID := uuid.New()
	code, _, body := d.c.do("PUT", d.url(name, "/providers/Microsoft.Authorization/roleDefinitions/"+roleID), d.hsm,
		map[string]any{"properties": map[string]any{"roleName": "Signer", "type": "CustomRole",
			"permissions": []map[string]any{{"dataActions": []string{rbac.ActionPrefix + rbac.KeysSign, rbac.ActionPrefix + rbac.KeysRead}}}}})
	if code != http.StatusCreated {
		d.t.Fatalf("custom role: %d %s", code, body)
	}
	for i, scope := range []string{"/", "/keys/Key-0003"} {
		code, _, body := d.c.do("POST", d.s.Endpoint+"/tresor/principals", d.arm, wire.PrincipalCreate{DisplayName: fmt.Sprintf("app%d", i)})
		if code != 201 {
			d.t.Fatalf("principal: %d %s", code, body)
		}
		var p wire.Principal
		_ = json.Unmarshal(body, &p)
		role := rbac.CryptoAuditorID
		if i == 1 {
			role = roleID
		}
		assign(d.t, d.c, d.hsm, name, scope, role, p.ObjectID)
	}
}

// folderOf is the last path segment of a folder URI.
func folderOf(uri string) string { return path.Base(uri) }

func TestBackupRestoreRoundTrip(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	az := azuritetest.Start(t)
	az.CreateContainer(t, "backups")
	azDest := wire.SASTokenParameter{StorageResourceURI: az.URL() + "/backups", Token: "?" + az.SAS(t, "backups", "crwdl", time.Now().Add(time.Hour))}
	dir := t.TempDir()
	fileDest := wire.SASTokenParameter{StorageResourceURI: "file://" + dir}
	d := newDrill(t, withBackupDir(dir))

	d.create("source")
	sd := d.activate("source", "sd1", "sd2", "sd3")
	d.seedKeys("source", n)
	d.seedRBAC("source")

	// Made before the backup, checked after the restore.
	ctx := context.Background()
	in, _ := d.s.Instances.Get(ctx, "source")
	for name, p := range map[string]keys.CreateParams{"sig-ec": {Kty: "EC-HSM", Curve: "P-384"}, "wrap-aes": {Kty: "oct-HSM", Size: 256}} {
		if _, err := d.s.Keys.Create(ctx, in, name, p); err != nil {
			t.Fatal(err)
		}
	}
	src := sdkClient(t, d.s, "source", d.s.ClientID, d.s.ClientSecret)
	d256, d384 := sha256.Sum256([]byte("signed before the backup")), sha512.Sum384([]byte("signed before the backup"))
	digests := map[string][]byte{"rsa-0": d256[:], "sig-ec": d384[:]}
	sigs := map[string]azkeys.SignatureAlgorithm{"rsa-0": azkeys.SignatureAlgorithmPS256, "sig-ec": azkeys.SignatureAlgorithmES384}
	signed := map[string][]byte{}
	for k, alg := range sigs {
		r, err := src.Sign(ctx, k, "", azkeys.SignParameters{Algorithm: &alg, Value: digests[k]}, nil)
		if err != nil {
			t.Fatalf("sign with %s: %v", k, err)
		}
		signed[k] = r.Result
	}
	oaep, kw := azkeys.EncryptionAlgorithmRSAOAEP256, azkeys.EncryptionAlgorithmA256KW
	ct, err := src.Encrypt(ctx, "rsa-2", "", azkeys.KeyOperationParameters{Algorithm: &oaep, Value: []byte("secret")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cek := []byte("0123456789abcdef0123456789abcdef")
	wrapped, err := src.WrapKey(ctx, "wrap-aes", "", azkeys.KeyOperationParameters{Algorithm: &kw, Value: cek}, nil)
	if err != nil {
		t.Fatal(err)
	}

	want := d.dump("source")
	if len(want.Keys)+len(want.Deleted) != n+2 || len(want.Deleted) == 0 || len(want.Assigns) < 4 || len(want.Roles) != 1 {
		t.Fatalf("seeded %d keys, %d deleted, %d assignments, %d roles", len(want.Keys), len(want.Deleted), len(want.Assigns), len(want.Roles))
	}
	fileFolder := d.backup("source", fileDest)
	azFolder := d.backup("source", azDest)

	tests := map[string]struct {
		dest   wire.SASTokenParameter
		folder string
		// restoreDest and restoreFolder are what the restore request
		// carries (az splits a path-style URI after its account).
		restoreDest   wire.SASTokenParameter
		restoreFolder string
	}{
		"file": {dest: fileDest, restoreDest: fileDest, restoreFolder: folderOf(fileFolder)},
		"azurite": {dest: azDest, restoreDest: wire.SASTokenParameter{StorageResourceURI: az.URL(), Token: azDest.Token},
			restoreFolder: "backups/" + folderOf(azFolder)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			target := name + "-target"
			d.recoverInto(target, sd)
			// A full restore needs a rollback point first.
			code, _, body := d.c.do("PUT", d.url(target, "/restore"), d.hsm, wire.RestoreOperationParameters{SASTokenParameters: tc.restoreDest, FolderToRestore: tc.restoreFolder})
			wantError(t, code, body, http.StatusConflict, "BackupRequired")
			d.backup(target, tc.dest)

			st := d.restore(target, tc.restoreDest, tc.restoreFolder)
			if st["status"] != "Succeeded" || !strings.Contains(fmt.Sprint(st["statusDetails"]), fmt.Sprintf("restored %d keys", n+2)) {
				t.Fatalf("restore: %v", st)
			}
			if diff := diffState(want, d.dump(target)); diff != "" {
				t.Fatalf("restored state differs:\n%s", diff)
			}
			tc2 := sdkClient(t, d.s, target, d.s.ClientID, d.s.ClientSecret)
			for k, alg := range sigs {
				r, err := tc2.Verify(ctx, k, "", azkeys.VerifyParameters{Algorithm: &alg, Digest: digests[k], Signature: signed[k]}, nil)
				if err != nil || r.Value == nil || !*r.Value {
					t.Errorf("verify %s after restore: %v", k, err)
				}
			}
			pt, err := tc2.Decrypt(ctx, "rsa-2", "", azkeys.KeyOperationParameters{Algorithm: &oaep, Value: ct.Result}, nil)
			if err != nil || string(pt.Result) != "secret" {
				t.Errorf("decrypt after restore: %q, %v", pt.Result, err)
			}
			uw, err := tc2.UnwrapKey(ctx, "wrap-aes", "", azkeys.KeyOperationParameters{Algorithm: &kw, Value: wrapped.Result}, nil)
			if err != nil || string(uw.Result) != string(cek) {
				t.Errorf("unwrap after restore: %v", err)
			}
		})
	}
}

// TestBackupFailures: tampered, incomplete and foreign folders and storage
// without permissions end the job as Failed with a precise message, and
// the target is exactly as it was.
func TestBackupFailures(t *testing.T) {
	az := azuritetest.Start(t)
	az.CreateContainer(t, "tamper")
	dir := t.TempDir()
	fileDest := wire.SASTokenParameter{StorageResourceURI: "file://" + dir}
	d := newDrill(t, withBackupDir(dir))

	d.create("origin")
	sd := d.activate("origin", "sd1", "sd2", "sd3")
	d.seedKeys("origin", 30)
	d.create("stranger")
	d.activate("stranger", "sd1", "sd2", "sd3") // another security domain, same custodians
	d.seedKeys("stranger", 5)
	d.recoverInto("target", sd)
	d.seedKeys("target", 12)
	d.backup("target", fileDest) // the rollback point

	good := folderOf(d.backup("origin", fileDest))
	other := folderOf(d.backup("origin", fileDest))
	if good == other {
		time.Sleep(20 * time.Millisecond)
		other = folderOf(d.backup("origin", fileDest))
	}
	foreign := folderOf(d.backup("stranger", fileDest))
	azTok := az.SAS(t, "tamper", "crwdl", time.Now().Add(time.Hour))
	azGood := folderOf(d.backup("origin", wire.SASTokenParameter{StorageResourceURI: az.URL() + "/tamper", Token: azTok}))

	// copyFolder copies good (keeping its name: objects are bound to it)
	// into a container of its own, changed by fn, and points the restore
	// at that container.
	n := 0
	var dest wire.SASTokenParameter
	copyFolder := func(t *testing.T, fn func(dir string)) string {
		t.Helper()
		n++
		c := filepath.Join(dir, fmt.Sprintf("copy%d", n))
		if err := os.CopyFS(filepath.Join(c, good), os.DirFS(filepath.Join(dir, good))); err != nil {
			t.Fatal(err)
		}
		fn(filepath.Join(c, good))
		dest = wire.SASTokenParameter{StorageResourceURI: "file://" + c}
		return good
	}
	flip := func(object string, at int) func(string) {
		return func(f string) {
			p := filepath.Join(f, object)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if at < 0 {
				at += len(b)
			}
			b[at] ^= 0x01
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(object string) func(string) {
		return func(f string) {
			if err := os.Remove(filepath.Join(f, object)); err != nil {
				t.Fatal(err)
			}
		}
	}
	swap := func(object string) func(string) {
		return func(f string) {
			b, err := os.ReadFile(filepath.Join(dir, other, object))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(f, object), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	editHeader := func(f string) {
		p := filepath.Join(f, "manifest")
		b, _ := os.ReadFile(p)
		b = []byte(strings.Replace(string(b), `"keys":30`, `"keys":29`, 1))
		_ = os.WriteFile(p, b, 0o600)
	}

	before := d.dump("target")
	tests := map[string]struct {
		dest   wire.SASTokenParameter
		folder func(t *testing.T) string
		want   string
	}{
		"flipped byte in a keys object": {fileDest, func(t *testing.T) string { return copyFolder(t, flip("keys-000001", 40)) }, "keys-000001"},
		"flipped last byte of policy":   {fileDest, func(t *testing.T) string { return copyFolder(t, flip("policy", -1)) }, "policy"},
		"flipped byte in settings":      {fileDest, func(t *testing.T) string { return copyFolder(t, flip("settings", 20)) }, "settings"},
		"flipped byte in the manifest":  {fileDest, func(t *testing.T) string { return copyFolder(t, flip("manifest", -5)) }, ""},
		"edited clear header":           {fileDest, func(t *testing.T) string { return copyFolder(t, editHeader) }, "header"},
		"deleted object":                {fileDest, func(t *testing.T) string { return copyFolder(t, remove("settings")) }, "settings of the backup is missing"},
		"object from another folder":    {fileDest, func(t *testing.T) string { return copyFolder(t, swap("keys-000001")) }, "keys-000001"},
		"missing manifest":              {fileDest, func(t *testing.T) string { return copyFolder(t, remove("manifest")) }, "incomplete"},
		"no such folder":                {fileDest, func(*testing.T) string { return "mhsm-origin-2000010100000000" }, "incomplete"},
		"another security domain":       {fileDest, func(*testing.T) string { return foreign }, "different security domain"},
		"SAS without read permission": {wire.SASTokenParameter{StorageResourceURI: az.URL() + "/tamper", Token: az.SAS(t, "tamper", "wl", time.Now().Add(time.Hour))},
			func(*testing.T) string { return azGood }, "SAS"},
		"expired SAS": {wire.SASTokenParameter{StorageResourceURI: az.URL() + "/tamper", Token: az.SAS(t, "tamper", "rl", time.Now().Add(-time.Hour))},
			func(*testing.T) string { return azGood }, "expired"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dest = tc.dest
			folder := tc.folder(t)
			st := d.restore("target", dest, folder)
			e, _ := st["error"].(map[string]any)
			if st["status"] != "Failed" || e == nil || !strings.Contains(fmt.Sprint(e["message"]), tc.want) {
				t.Fatalf("restore of %s: %v, want Failed mentioning %q", folder, st, tc.want)
			}
			if strings.Contains(fmt.Sprint(st), "sig=") {
				t.Fatalf("the job's status shows the SAS signature: %v", st)
			}
			if diff := diffState(before, d.dump("target")); diff != "" {
				t.Fatalf("the target changed:\n%s", diff)
			}
		})
	}
}

// TestBackupStorageFailures: a backup whose storage refuses it ends as
// Failed with a message that says what to fix, and leaves no manifest.
func TestBackupStorageFailures(t *testing.T) {
	az := azuritetest.Start(t)
	az.CreateContainer(t, "store")
	dir := t.TempDir()
	d := newDrill(t, withBackupDir(dir))
	d.create("src")
	d.activate("src", "sd1", "sd2", "sd3")
	d.seedKeys("src", 5)
	hour := time.Now().Add(time.Hour)
	tests := map[string]struct {
		dest wire.SASTokenParameter
		want string
	}{
		"SAS without write":   {wire.SASTokenParameter{StorageResourceURI: az.URL() + "/store", Token: az.SAS(t, "store", "rl", hour)}, "writ"},
		"expired SAS":         {wire.SASTokenParameter{StorageResourceURI: az.URL() + "/store", Token: az.SAS(t, "store", "crwd", time.Now().Add(-time.Hour))}, "expired"},
		"missing container":   {wire.SASTokenParameter{StorageResourceURI: az.URL() + "/nothere", Token: az.SAS(t, "nothere", "crwd", hour)}, "nothere"},
		"unreachable":         {wire.SASTokenParameter{StorageResourceURI: "http://127.0.0.1:1/devstoreaccount1/store", Token: "sv=2020-02-10&sr=c&sp=crwd&sig=abc"}, "reach"},
		"missing directory":   {wire.SASTokenParameter{StorageResourceURI: "file://" + filepath.Join(dir, "nothere")}, "nothere"},
		"managed identity on": {wire.SASTokenParameter{StorageResourceURI: az.URL() + "/store", UseManagedIdentity: true}, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, hdr, body := d.c.do("POST", d.url("src", "/backup"), d.hsm, tc.dest)
			if tc.dest.UseManagedIdentity {
				wantError(t, code, body, http.StatusBadRequest, "BadParameter")
				return
			}
			if code != http.StatusAccepted {
				t.Fatalf("backup: %d %s", code, body)
			}
			st := d.job(hdr.Get("Azure-AsyncOperation"))
			e, _ := st["error"].(map[string]any)
			if st["status"] != "Failed" || e == nil || !strings.Contains(fmt.Sprint(e["message"]), tc.want) || st["azureStorageBlobContainerUri"] != nil {
				t.Fatalf("backup: %v, want Failed mentioning %q", st, tc.want)
			}
			if strings.Contains(fmt.Sprint(st), "sig=") {
				t.Fatalf("the job's status shows the SAS signature: %v", st)
			}
		})
	}
}

// TestBackupAPI: the routes' contract beside the happy path.
func TestBackupAPI(t *testing.T) {
	dir := t.TempDir()
	fileDest := wire.SASTokenParameter{StorageResourceURI: "file://" + dir}
	d := newDrill(t, withBackupDir(dir))
	d.create("api")
	d.activate("api", "sd1", "sd2", "sd3")
	d.seedKeys("api", 40)
	folder := folderOf(d.backup("api", fileDest))

	t.Run("bad requests", func(t *testing.T) {
		bad := map[string]struct {
			method, path string
			body         any
			status       int
			want         string
		}{
			"managed identity":    {"POST", "/backup", map[string]any{"storageResourceUri": "https://a.blob.core.windows.net/c", "useManagedIdentity": true}, 400, "SAS"},
			"no storage uri":      {"POST", "/backup", map[string]any{"token": "x"}, 400, "storageResourceUri"},
			"no sas token":        {"POST", "/backup", map[string]any{"storageResourceUri": "https://acct.blob.core.windows.net/backups"}, 400, "token"},
			"file outside roots":  {"POST", "/backup", map[string]any{"storageResourceUri": "file:///etc"}, 400, "backup directories"},
			"not json":            {"POST", "/backup", "{", 400, "JSON"},
			"restore no folder":   {"PUT", "/restore", wire.RestoreOperationParameters{SASTokenParameters: fileDest}, 400, "folder"},
			"restore bad folder":  {"PUT", "/restore", wire.RestoreOperationParameters{SASTokenParameters: fileDest, FolderToRestore: "../etc"}, 400, ""},
			"key restore no name": {"PUT", "/keys/bad%20name/restore", wire.SelectiveKeyRestoreParameters{SASTokenParameters: fileDest, Folder: folder}, 400, ""},
			"unknown job":         {"GET", "/backup/0123456789abcdef0123456789abcdef/pending", nil, 404, "job"},
		}
		for name, tc := range bad {
			t.Run(name, func(t *testing.T) {
				code, _, body := d.c.do(tc.method, d.url("api", tc.path), d.hsm, tc.body)
				if code != tc.status || !strings.Contains(string(body), tc.want) || !strings.Contains(string(body), `"error"`) {
					t.Fatalf("%d %s, want %d mentioning %q", code, body, tc.status, tc.want)
				}
			})
		}
	})

	t.Run("status without api-version and across kinds", func(t *testing.T) {
		op := d.start("POST", d.url("api", "/backup"), fileDest)
		st := d.job(op) // op carries no api-version
		if st["status"] != "Succeeded" || st["startTime"] == nil || st["endTime"] == nil {
			t.Fatalf("backup status: %v", st)
		}
		id := fmt.Sprint(st["jobId"])
		code, _, body := d.c.do("GET", d.s.HSMURL("api")+"/restore/"+id+"/pending", d.hsm, nil)
		wantError(t, code, body, http.StatusNotFound, "NotFound")
	})

	t.Run("one job at a time", func(t *testing.T) {
		d.seedKeys("api", 0)
		ops := make(chan string, 2)
		codes := make(chan int, 2)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				code, hdr, _ := d.c.do("POST", d.url("api", "/backup"), d.hsm, fileDest)
				codes <- code
				if code == 202 {
					ops <- hdr.Get("Azure-AsyncOperation")
				}
			})
		}
		wg.Wait()
		close(codes)
		close(ops)
		got := map[int]int{}
		for c := range codes {
			got[c]++
		}
		// Either both ran one after the other (the first ended before
		// the second started) or the second was refused with 409.
		if got[202]+got[409] != 2 || got[202] == 0 {
			t.Fatalf("codes %v", got)
		}
		for op := range ops {
			d.job(op)
		}
	})

	t.Run("selective key restore", func(t *testing.T) {
		ctx := context.Background()
		in, _ := d.s.Instances.Get(ctx, "api")
		versions, err := d.s.Keys.Versions(ctx, in, "Key-0007")
		if err != nil || len(versions) != 2 {
			t.Fatalf("Key-0007 has %d versions, %v", len(versions), err)
		}
		body := wire.SelectiveKeyRestoreParameters{SASTokenParameters: fileDest, Folder: folder}
		// The key exists: the job fails and says so.
		st := d.job(d.start("PUT", d.url("api", "/keys/Key-0007/restore"), body))
		if st["status"] != "Failed" || !strings.Contains(fmt.Sprint(st["error"]), "exists") {
			t.Fatalf("restore of an existing key: %v", st)
		}
		if _, err := d.s.Keys.Delete(ctx, in, "Key-0007"); err != nil {
			t.Fatal(err)
		}
		if err := d.s.Keys.Purge(ctx, in, "Key-0007"); err != nil {
			t.Fatal(err)
		}
		st = d.job(d.start("PUT", d.url("api", "/keys/key-0007/restore"), body))
		if st["status"] != "Succeeded" || st["statusDetails"] != "Number of successful key versions restored: 2, Number of key versions could not overwrite: 0" {
			t.Fatalf("selective restore: %v", st)
		}
		got, err := d.s.Keys.Versions(ctx, in, "Key-0007")
		if err != nil || len(got) != 2 || got[0].Version != versions[0].Version || got[1].Version != versions[1].Version {
			t.Fatalf("restored versions %+v, %v", got, err)
		}
		st = d.job(d.start("PUT", d.url("api", "/keys/never-there/restore"), body))
		if st["status"] != "Failed" || !strings.Contains(fmt.Sprint(st["error"]), "no key named never-there") {
			t.Fatalf("restore of a key not in the backup: %v", st)
		}
	})

	t.Run("prebackup and prerestore", func(t *testing.T) {
		if st := d.job(d.start("POST", d.url("api", "/prebackup"), fileDest)); st["status"] != "Succeeded" {
			t.Fatalf("prebackup: %v", st)
		}
		pr := wire.RestoreOperationParameters{SASTokenParameters: fileDest, FolderToRestore: folder}
		if st := d.job(d.start("PUT", d.url("api", "/prerestore"), pr)); st["status"] != "Succeeded" {
			t.Fatalf("prerestore: %v", st)
		}
		pr.FolderToRestore = "mhsm-api-2000010100000000"
		if st := d.job(d.start("PUT", d.url("api", "/prerestore"), pr)); st["status"] != "Failed" {
			t.Fatalf("prerestore of a missing folder: %v", st)
		}
	})

	t.Run("data plane answers 503 during a restore", func(t *testing.T) {
		ctx := context.Background()
		in, _ := d.s.Instances.Get(ctx, "api")
		st := d.restore("api", fileDest, folder) // a backup of api exists: allowed
		if st["status"] != "Succeeded" {
			t.Fatalf("restore: %v", st)
		}
		// A write built from a read before the restore (the instance at
		// its old epoch) is refused after it, never applied to the
		// restored state nor silently dropped.
		if _, err := d.s.Keys.Create(ctx, in, "late-key", keys.CreateParams{Kty: "EC-HSM", Curve: "P-256"}); fault.KindOf(err) != fault.Conflict {
			t.Fatalf("a write at the pre-restore epoch: %v, want a Conflict", err)
		}
		fresh, _ := d.s.Instances.Get(ctx, "api")
		if fresh.Epoch != in.Epoch+1 {
			t.Fatalf("epoch %d after a restore from %d", fresh.Epoch, in.Epoch)
		}
		if _, err := d.s.Keys.Get(ctx, fresh, "late-key", ""); fault.KindOf(err) != fault.NotFound {
			t.Fatalf("late-key: %v", err)
		}
		if _, err := d.s.Keys.Create(ctx, fresh, "late-key", keys.CreateParams{Kty: "EC-HSM", Curve: "P-256"}); err != nil {
			t.Fatalf("a write at the current epoch: %v", err)
		}
		// Hold the instance in restore mode by hand, as a running restore does.
		in, _ = d.s.Instances.Get(ctx, "api")
		if err := d.s.Store().Apply(ctx, store.BeginStage{Name: in.Key, Expect: in.Generation, Stage: "hold"}); err != nil {
			t.Fatal(err)
		}
		code, hdr, body := d.c.do("GET", d.url("api", "/keys"), d.hsm, nil)
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "restored") {
			t.Fatalf("GET /keys during a restore: %d %v %s", code, hdr, body)
		}
		code, _, _ = d.c.do("GET", d.s.HSMURL("api")+"/restore/0123456789abcdef0123456789abcdef/pending", d.hsm, nil)
		if code != http.StatusNotFound {
			t.Fatalf("restore status during a restore: %d, want it served (404 for an unknown job)", code)
		}
		if err := d.s.Backups.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if code, _, body := d.c.do("GET", d.url("api", "/keys"), d.hsm, nil); code != 200 {
			t.Fatalf("GET /keys after the restore ended: %d %s", code, body)
		}
	})
}
