package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"tresor/internal/keys"
	"tresor/internal/policy"
	"tresor/internal/securitydomain"
	"tresor/internal/server"
	"tresor/internal/server/servertest"
	"tresor/internal/wire"
)

// drill is a region with helpers for backup and restore tests.
type drill struct {
	t   testing.TB
	s   *servertest.Server
	c   *call
	arm string // control-plane token of the bootstrap administrator
	hsm string // data-plane token of the bootstrap administrator
}

func newDrill(t testing.TB, opts ...servertest.Option) *drill {
	t.Helper()
	s := servertest.Start(t, opts...)
	d := &drill{t: t, s: s, c: newCall(t, s)}
	d.arm = s.AdminToken(t)
	d.hsm = s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
	return d
}

// withBackupDir lets file:// destinations name dir.
func withBackupDir(dir string) servertest.Option {
	return func(c *server.Config) { c.BackupDirs = append(c.BackupDirs, dir) }
}

// create makes an instance; with sd it is activated by downloading its
// security domain to sd1..sd3 (quorum 2) and the file is returned.
func (d *drill) create(name string) {
	d.t.Helper()
	if code, _, body := d.c.do("PUT", d.c.hsmPath(name), d.arm, createBody(d.s.ObjectID)); code != 202 {
		d.t.Fatalf("create %s: %d %s", name, code, body)
	}
}

func (d *drill) url(name, path string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return d.s.HSMURL(name) + path + sep + "api-version=7.5"
}

// activate downloads the security domain of name and returns the file.
func (d *drill) activate(name string, custodians ...string) []byte {
	d.t.Helper()
	var cs []securitydomain.Custodian
	for _, c := range custodians {
		cs = append(cs, custodian(d.t, c))
	}
	code, _, body := d.c.do("POST", d.url(name, "/securitydomain/download"), d.hsm, downloadBody(2, cs...))
	if code != 202 {
		d.t.Fatalf("activate %s: %d %.300s", name, code, body)
	}
	var v wire.SecurityDomainValue
	if err := json.Unmarshal(body, &v); err != nil {
		d.t.Fatal(err)
	}
	d.grantCrypto(name)
	return []byte(v.Value)
}

// grantCrypto gives the administrator Crypto User and Crypto Officer at "/".
func (d *drill) grantCrypto(name string) {
	d.t.Helper()
	for _, role := range []string{"21dbd100-6940-42c2-9190-5d6cb909625b", "515eb02d-2335-4d2d-92f2-b1cbdf9c3778"} {
		assign(d.t, d.c, d.hsm, name, "/", role, d.s.ObjectID)
	}
}

// recoverInto activates a new instance name with the security domain of
// file, as disaster recovery does: init-recovery, a restore blob built
// with custodians sd1 and sd2, upload.
func (d *drill) recoverInto(name string, file []byte) {
	d.t.Helper()
	d.create(name)
	code, _, body := d.c.do("GET", d.url(name, "/securitydomain/upload"), d.hsm, nil)
	if code != 200 {
		d.t.Fatalf("init-recovery %s: %d %s", name, code, body)
	}
	var tk wire.TransferKey
	var jwk wire.SecurityDomainJWK
	if json.Unmarshal(body, &tk) != nil || json.Unmarshal([]byte(tk.TransferKey), &jwk) != nil || len(jwk.X5C) == 0 {
		d.t.Fatalf("transfer key: %s", body)
	}
	der, _ := base64.StdEncoding.DecodeString(jwk.X5C[0])
	exCert, err := securitydomain.ParseCertificate(der)
	if err != nil {
		d.t.Fatal(err)
	}
	f, err := securitydomain.ParseFile(file)
	if err != nil {
		d.t.Fatal(err)
	}
	blobs, err := f.Open([]securitydomain.Custodian{custodian(d.t, "sd1"), custodian(d.t, "sd2")})
	if err != nil {
		d.t.Fatal(err)
	}
	blob, err := securitydomain.BuildUploadBlob(blobs, exCert, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	if code, _, body := d.c.do("POST", d.url(name, "/securitydomain/upload"), d.hsm, wire.SecurityDomainValue{Value: string(blob)}); code != 202 {
		d.t.Fatalf("upload %s: %d %s", name, code, body)
	}
	if st := activation(d.t.(*testing.T), d.c, name, d.arm); st != "Active" {
		d.t.Fatalf("%s is %s after the upload", name, st)
	}
	d.grantCrypto(name)
}

// job polls a job's status URL until it ends and returns its last body.
func (d *drill) job(statusURL string) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		code, _, body := d.c.do("GET", statusURL, d.hsm, nil)
		if code != 200 {
			d.t.Fatalf("status %s: %d %s", statusURL, code, body)
		}
		var st map[string]any
		if err := json.Unmarshal(body, &st); err != nil {
			d.t.Fatal(err)
		}
		if st["status"] != "InProgress" {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("job %s did not end", statusURL)
	return nil
}

// start posts a job and returns its status URL; the answer must be 202.
func (d *drill) start(method, url string, body any) string {
	d.t.Helper()
	code, hdr, b := d.c.do(method, url, d.hsm, body)
	if code != http.StatusAccepted {
		d.t.Fatalf("%s %s: %d %s", method, url, code, b)
	}
	var st map[string]any
	_ = json.Unmarshal(b, &st)
	if st["status"] != "InProgress" || hdr.Get("Retry-After") == "" || len(fmt.Sprint(st["jobId"])) != 32 {
		d.t.Fatalf("%s %s: %v %s", method, url, hdr, b)
	}
	op := hdr.Get("Azure-AsyncOperation")
	if !strings.HasSuffix(op, "/"+fmt.Sprint(st["jobId"])+"/pending") {
		d.t.Fatalf("Azure-AsyncOperation %q", op)
	}
	return op
}

// backup takes a full backup of name and returns its folder URI.
func (d *drill) backup(name string, dest wire.SASTokenParameter) string {
	d.t.Helper()
	st := d.job(d.start("POST", d.url(name, "/backup"), dest))
	if st["status"] != "Succeeded" {
		d.t.Fatalf("backup of %s: %v", name, st)
	}
	uri, _ := st["azureStorageBlobContainerUri"].(string)
	if !strings.HasPrefix(uri, strings.TrimRight(dest.StorageResourceURI, "/")+"/mhsm-"+name+"-") {
		d.t.Fatalf("backup folder %q", uri)
	}
	return uri
}

// restore runs a full restore of folder into name and returns the job's end.
func (d *drill) restore(name string, dest wire.SASTokenParameter, folder string) map[string]any {
	d.t.Helper()
	return d.job(d.start("PUT", d.url(name, "/restore"), wire.RestoreOperationParameters{SASTokenParameters: dest, FolderToRestore: folder}))
}

// state is everything a restore brings back, as the services return it.
type state struct {
	Keys     map[string][]keys.Version
	Deleted  map[string]keys.Version
	Policies map[string]keys.RotationPolicy
	Assigns  []string
	Roles    []string
	Settings []policy.Setting
}

// dump reads the whole state of an instance.
func (d *drill) dump(name string) state {
	d.t.Helper()
	ctx := context.Background()
	in, err := d.s.Instances.Get(ctx, name)
	if err != nil {
		d.t.Fatal(err)
	}
	st := state{Keys: map[string][]keys.Version{}, Deleted: map[string]keys.Version{}, Policies: map[string]keys.RotationPolicy{}}
	for _, deleted := range []bool{false, true} {
		list, err := d.s.Keys.List(ctx, in, deleted)
		if err != nil {
			d.t.Fatal(err)
		}
		for _, v := range list {
			if deleted {
				dv, err := d.s.Keys.GetDeleted(ctx, in, v.Name)
				if err != nil {
					d.t.Fatal(err)
				}
				st.Deleted[v.Name] = dv
				continue
			}
			vs, err := d.s.Keys.Versions(ctx, in, v.Name)
			if err != nil {
				d.t.Fatal(err)
			}
			for i := range vs {
				full, err := d.s.Keys.Get(ctx, in, v.Name, vs[i].Version)
				if err != nil {
					d.t.Fatal(err)
				}
				vs[i] = full
			}
			st.Keys[v.Name] = vs
			if p, err := d.s.Keys.GetPolicy(ctx, in, v.Name); err == nil {
				st.Policies[v.Name] = p
			}
		}
	}
	pol, _, err := d.s.Policy.Policy(ctx, in)
	if err != nil {
		d.t.Fatal(err)
	}
	for _, a := range pol.Assignments {
		st.Assigns = append(st.Assigns, a.Name+" "+a.PrincipalID+" "+a.RoleID+" "+a.Scope)
	}
	for _, r := range pol.Custom {
		st.Roles = append(st.Roles, r.ID+" "+r.Name+" "+strings.Join(r.DataActions, ","))
	}
	slices.Sort(st.Assigns)
	slices.Sort(st.Roles)
	if st.Settings, err = d.s.Policy.Settings(ctx, in); err != nil {
		d.t.Fatal(err)
	}
	return st
}

// diffState describes how two states differ ("" if they are equal).
func diffState(a, b state) string {
	if reflect.DeepEqual(a, b) {
		return ""
	}
	var out []string
	for name, va := range a.Keys {
		if !reflect.DeepEqual(va, b.Keys[name]) {
			out = append(out, fmt.Sprintf("key %s: %+v\n   vs %+v", name, va, b.Keys[name]))
		}
	}
	for name := range b.Keys {
		if _, ok := a.Keys[name]; !ok {
			out = append(out, "key "+name+" only in the second")
		}
	}
	for _, f := range []struct {
		n    string
		x, y any
	}{{"deleted", a.Deleted, b.Deleted}, {"policies", a.Policies, b.Policies}, {"assignments", a.Assigns, b.Assigns},
		{"roles", a.Roles, b.Roles}, {"settings", a.Settings, b.Settings}} {
		if !reflect.DeepEqual(f.x, f.y) {
			out = append(out, fmt.Sprintf("%s: %+v\n   vs %+v", f.n, f.x, f.y))
		}
	}
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("… and %d more", len(out)-10))
	}
	return strings.Join(out, "\n")
}
