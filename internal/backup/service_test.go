package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"tresor/internal/barrier"
	"tresor/internal/blob/azuritetest"
	"tresor/internal/fault"
	"tresor/internal/instances"
	"tresor/internal/keys"
	"tresor/internal/securitydomain"
	"tresor/internal/store"
	"tresor/internal/uuid"
)

func TestMain(m *testing.M) {
	code := m.Run()
	azuritetest.Stop()
	os.Exit(code)
}

// env is the real stack of one region in process: a bbolt store, a file
// seal, the region barrier, the instance, key and backup services, and a
// backup directory (FileRoots) with a container "backups" in it.
type env struct {
	st    *store.Bolt
	inst  *instances.Service
	keys  *keys.Service
	svc   *Service
	root  string // the FileRoot
	dest  Destination
	admin instances.Caller
}

// newEnv builds the stack; opts change the backup service's Config.
func newEnv(t testing.TB, opts ...func(*Config)) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(dir, "tresor.db"))
	if err != nil {
		t.Fatal(err)
	}
	seal, err := barrier.OpenFileSeal(filepath.Join(dir, "seal.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	regionRoot, err := barrier.NewRootKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	region, err := barrier.New(regionRoot, barrier.Storage, "region")
	if err != nil {
		t.Fatal(err)
	}
	inst := instances.New(st, seal, region, instances.Config{Region: "westeurope", TenantID: uuid.New()})
	ks := keys.New(inst, st, nil)
	root := filepath.Join(dir, "backups")
	if err := os.MkdirAll(filepath.Join(root, "backups"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: st, Instances: inst, Keyring: inst, Keys: ks, FileRoots: []string{root}, Region: region}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Close()
		st.Close()
	})
	return &env{st: st, inst: inst, keys: ks, svc: svc, root: root,
		dest:  Destination{StorageURI: "file://" + filepath.Join(root, "backups")},
		admin: instances.Caller{ObjectID: uuid.New(), RegionAdmin: true}}
}

// custodians returns the DER of the three custodian certificates.
func custodians(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, n := range []string{"sd1", "sd2", "sd3"} {
		pemBytes, err := os.ReadFile(filepath.Join("testdata", "custodians", n+".cer"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := securitydomain.ParseCertificatePEM(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.DER)
	}
	return out
}

// activeInstance creates instance name and activates it by downloading its
// security domain (quorum 2 of 3), as the API does without HTTP.
func (e *env) activeInstance(t testing.TB, name string) instances.Instance {
	t.Helper()
	ctx := context.Background()
	in, err := e.inst.Create(ctx, e.admin, instances.CreateRequest{
		Name: name, Subscription: uuid.New(), ResourceGroup: "rg", Location: "westeurope",
		InitialAdmins: []string{e.admin.ObjectID},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.inst.DownloadSecurityDomain(ctx, in, custodians(t), 2); err != nil {
		t.Fatal(err)
	}
	return e.get(t, name)
}

// get returns the instance as it is now (after a restore its epoch moved).
func (e *env) get(t testing.TB, name string) instances.Instance {
	t.Helper()
	in, err := e.inst.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if in.ActivationStatus != instances.Active {
		t.Fatalf("instance %s is %s", name, in.ActivationStatus)
	}
	return in
}

// createKeys makes n EC P-256 keys ecN and n AES-256 keys aesN.
func (e *env) createKeys(t testing.TB, in instances.Instance, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if _, err := e.keys.Create(ctx, in, fmt.Sprintf("ec%d", i), keys.CreateParams{Kty: "EC", Curve: "P-256", KeyOps: []string{"sign", "verify"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.keys.Create(ctx, in, fmt.Sprintf("aes%d", i), keys.CreateParams{Kty: "oct-HSM", Size: 256, KeyOps: []string{"wrapKey", "unwrapKey"}}); err != nil {
			t.Fatal(err)
		}
	}
}

// wait polls job id until it ends.
func (e *env) wait(t testing.TB, in instances.Instance, id string, kinds []string) Job {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		j, err := e.svc.Job(context.Background(), in, id, kinds)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != store.JobInProgress {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still in progress: %+v", id, j)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// backup runs a full backup of in to e.dest and returns its folder.
func (e *env) backup(t testing.TB, in instances.Instance) (Job, string) {
	t.Helper()
	j, err := e.svc.StartBackup(context.Background(), in, e.dest)
	if err != nil {
		t.Fatal(err)
	}
	j = e.wait(t, in, j.ID, BackupKinds)
	if j.Status != store.JobSucceeded {
		t.Fatalf("backup job: %+v", j)
	}
	folder := path.Base(j.Result)
	if !ValidFolder(folder) || j.Result != e.dest.StorageURI+"/"+folder {
		t.Fatalf("backup job result %q", j.Result)
	}
	return j, folder
}

// keyState is everything the key service says about an instance's keys.
type keyState struct {
	Live, Deleted []keys.Version
	Versions      map[string][]keys.Version
	Current       map[string]keys.Version
}

func (e *env) keyState(t testing.TB, in instances.Instance) keyState {
	t.Helper()
	ctx := context.Background()
	var s keyState
	var err error
	if s.Live, err = e.keys.List(ctx, in, false); err != nil {
		t.Fatal(err)
	}
	if s.Deleted, err = e.keys.List(ctx, in, true); err != nil {
		t.Fatal(err)
	}
	s.Versions, s.Current = map[string][]keys.Version{}, map[string]keys.Version{}
	for _, k := range s.Live {
		if s.Versions[k.Name], err = e.keys.Versions(ctx, in, k.Name); err != nil {
			t.Fatal(err)
		}
		if s.Current[k.Name], err = e.keys.Get(ctx, in, k.Name, ""); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestBackupEmptyInstance(t *testing.T) {
	e := newEnv(t)
	in := e.activeInstance(t, "empty-hsm")
	j, folder := e.backup(t, in)
	if !strings.HasPrefix(folder, "mhsm-empty-hsm-") || !strings.Contains(j.Details, "backed up 0 keys") {
		t.Fatalf("folder %s, details %q", folder, j.Details)
	}
	h := e.readFolder(t, folder)
	if h.Keys != 0 || h.SourceHSM != "empty-hsm" || h.RoleAssignments != 1 || len(h.Objects) != 2 {
		t.Fatalf("header %+v", h)
	}
	// The empty backup restores (it is its own rollback point).
	r, err := e.svc.StartRestore(context.Background(), in, e.dest, folder)
	if err != nil {
		t.Fatal(err)
	}
	if r = e.wait(t, in, r.ID, RestoreKinds); r.Status != store.JobSucceeded {
		t.Fatalf("restore job: %+v", r)
	}
}

// readFolder checks that the folder holds its manifest and every object it
// lists, with the listed sizes, and returns the manifest's header.
func (e *env) readFolder(t testing.TB, folder string) Header {
	t.Helper()
	dir := filepath.Join(e.root, "backups", folder)
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ReadHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	if h.Folder != folder || h.Format != Format {
		t.Fatalf("manifest header %+v", h)
	}
	want := map[string]bool{ManifestName: true}
	for _, o := range h.Objects {
		fi, err := os.Stat(filepath.Join(dir, o.Name))
		if err != nil {
			t.Fatalf("object %s: %v", o.Name, err)
		}
		if fi.Size() != o.Size {
			t.Fatalf("object %s has %d bytes, the manifest says %d", o.Name, fi.Size(), o.Size)
		}
		want[o.Name] = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		if !want[de.Name()] {
			t.Errorf("folder holds %s, which the manifest does not list", de.Name())
		}
	}
	return h
}

func TestBackupAndRestore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := e.activeInstance(t, "hsm1")
	e.createKeys(t, in, 3)
	// A second version of one key, and a deleted key.
	if _, err := e.keys.Create(ctx, in, "ec0", keys.CreateParams{Kty: "EC", Curve: "P-256"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.keys.Delete(ctx, in, "aes2"); err != nil {
		t.Fatal(err)
	}
	before := e.keyState(t, in)
	j, folder := e.backup(t, in)
	if want := "backed up 6 keys (7 versions, 1 deleted key)"; !strings.HasPrefix(j.Details, want) {
		t.Fatalf("details %q, want %q…", j.Details, want)
	}
	h := e.readFolder(t, folder)
	if h.Keys != 6 || h.Versions != 7 || h.DeletedKeys != 1 || len(h.Objects) != 3 || h.Objects[0].Kind != kindKeys {
		t.Fatalf("header %+v", h)
	}

	// Change the keys after the backup: the restore brings them back.
	if _, err := e.keys.Create(ctx, in, "after", keys.CreateParams{Kty: "EC", Curve: "P-256"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.keys.Delete(ctx, in, "ec1"); err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Purge(ctx, in, "ec1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.keys.Create(ctx, in, "ec2", keys.CreateParams{Kty: "EC", Curve: "P-256"}); err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(e.keyState(t, in), before) {
		t.Fatal("the changes did not change the keys")
	}

	r, err := e.svc.StartRestore(ctx, in, e.dest, folder)
	if err != nil {
		t.Fatal(err)
	}
	r = e.wait(t, in, r.ID, RestoreKinds)
	if r.Status != store.JobSucceeded || !strings.HasPrefix(r.Details, "restored 6 keys (7 versions, 1 deleted key), 1 role assignment") || r.Done != 6 {
		t.Fatalf("restore job: %+v", r)
	}
	after := e.get(t, "hsm1")
	if after.Epoch == in.Epoch || after.Staging != "" {
		t.Fatalf("after the restore: epoch %d (was %d), staging %q", after.Epoch, in.Epoch, after.Staging)
	}
	if got := e.keyState(t, after); !reflect.DeepEqual(got, before) {
		t.Fatalf("keys after the restore differ from the backed-up keys:\n%+v\nwant\n%+v", got, before)
	}
	// The restored keys work and can be written again.
	if _, err := e.keys.Create(ctx, after, "ec0", keys.CreateParams{Kty: "EC", Curve: "P-256"}); err != nil {
		t.Fatal(err)
	}
	// A restore into the old (pre-restore) instance value is refused.
	r, err = e.svc.StartRestore(ctx, in, e.dest, folder)
	if err != nil {
		t.Fatal(err)
	}
	if r = e.wait(t, in, r.ID, RestoreKinds); r.Status != store.JobFailed || !strings.Contains(r.Error, "changed its security domain") {
		t.Fatalf("restore with a stale instance: %+v", r)
	}
}

func TestRestoreNeedsRollbackPoint(t *testing.T) {
	e := newEnv(t)
	in := e.activeInstance(t, "hsm1")
	other := e.activeInstance(t, "hsm2")
	_, folder := e.backup(t, other) // a backup of another instance is no rollback point
	_, err := e.svc.StartRestore(context.Background(), in, e.dest, folder)
	if fault.KindOf(err) != fault.Conflict || !strings.Contains(err.Error(), "take a full backup") {
		t.Fatalf("restore without a rollback point: %v, want a Conflict", err)
	}
	// A failed backup is none either.
	bad := Destination{StorageURI: "file://" + filepath.Join(e.root, "missing")}
	j, err := e.svc.StartBackup(context.Background(), in, bad)
	if err != nil {
		t.Fatal(err)
	}
	if j = e.wait(t, in, j.ID, BackupKinds); j.Status != store.JobFailed {
		t.Fatalf("backup to a missing container: %+v", j)
	}
	if _, err := e.svc.StartRestore(context.Background(), in, e.dest, folder); fault.KindOf(err) != fault.Conflict {
		t.Fatalf("restore after a failed backup: %v, want a Conflict", err)
	}
}

func TestRestoreOtherDomain(t *testing.T) {
	e := newEnv(t)
	in := e.activeInstance(t, "hsm1")
	other := e.activeInstance(t, "hsm2")
	_, folder := e.backup(t, other)
	e.backup(t, in) // rollback point
	r, err := e.svc.StartRestore(context.Background(), in, e.dest, folder)
	if err != nil {
		t.Fatal(err)
	}
	if r = e.wait(t, in, r.ID, RestoreKinds); r.Status != store.JobFailed || !strings.Contains(r.Error, ErrOtherDomain.Error()) {
		t.Fatalf("restore of another domain's backup: %+v", r)
	}
}

func TestExclusiveJobs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := e.activeInstance(t, "hsm1")
	running := store.Job{ID: "0123456789abcdef0123456789abcdef", Kind: KindBackup, Instance: in.Key, Status: store.JobInProgress, Start: time.Now().UTC()}
	if err := e.st.Apply(ctx, store.StartJob{Job: running, Exclusive: true}); err != nil {
		t.Fatal(err)
	}
	starts := map[string]func() (Job, error){
		"backup":      func() (Job, error) { return e.svc.StartBackup(ctx, in, e.dest) },
		"restore":     func() (Job, error) { return e.svc.StartRestore(ctx, in, e.dest, "mhsm-hsm1-2021042821183184") },
		"key restore": func() (Job, error) { return e.svc.StartKeyRestore(ctx, in, e.dest, "mhsm-hsm1-2021042821183184", "k1") },
	}
	// The restore needs a rollback point before it meets the running job.
	done := running
	done.ID = "fedcba9876543210fedcba9876543210"
	if err := e.st.Apply(ctx, store.StartJob{Job: done}); err != nil {
		t.Fatal(err)
	}
	done.Status, done.End = store.JobSucceeded, time.Now().UTC()
	if err := e.st.Apply(ctx, store.UpdateJob{Job: done}); err != nil {
		t.Fatal(err)
	}
	for name, start := range starts {
		t.Run(name, func(t *testing.T) {
			_, err := start()
			if fault.KindOf(err) != fault.Conflict || !errors.Is(err, store.ErrConflict) {
				t.Fatalf("%s while a backup runs: %v, want a Conflict", name, err)
			}
		})
	}
	// Checks run beside it (they are not exclusive).
	j, err := e.svc.StartPreBackup(ctx, in, e.dest)
	if err != nil {
		t.Fatal(err)
	}
	if j = e.wait(t, in, j.ID, BackupKinds); j.Status != store.JobSucceeded {
		t.Fatalf("prebackup: %+v", j)
	}
	// Once it ends, a backup starts.
	running.Status, running.End = store.JobFailed, time.Now().UTC()
	if err := e.st.Apply(ctx, store.UpdateJob{Job: running}); err != nil {
		t.Fatal(err)
	}
	e.backup(t, in)
}

// TestExclusiveJobsRunning starts a real backup slow enough to overlap a
// second one.
func TestExclusiveJobsRunning(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := e.activeInstance(t, "hsm1")
	seedKeys(t, e, in, 3000)
	first, err := e.svc.StartBackup(ctx, in, e.dest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.StartBackup(ctx, in, e.dest)
	if j, _ := e.svc.Job(ctx, in, first.ID, BackupKinds); j.Status != store.JobInProgress {
		t.Skip("the first backup ended before the second started")
	}
	if fault.KindOf(err) != fault.Conflict {
		t.Fatalf("a second backup while one runs: %v, want a Conflict", err)
	}
	if j := e.wait(t, in, first.ID, BackupKinds); j.Status != store.JobSucceeded || j.Done != 3000 || j.Total != 3000 {
		t.Fatalf("first backup: %+v", j)
	}
}

func TestBadDestinations(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := e.activeInstance(t, "hsm1")
	folder := "mhsm-hsm1-2021042821183184"
	outside := "file://" + t.TempDir()
	tests := map[string]struct {
		d      Destination
		folder string
		want   string
	}{
		"managed identity":            {Destination{StorageURI: e.dest.StorageURI, UseManagedIdentity: true}, folder, "useManagedIdentity"},
		"file outside the roots":      {Destination{StorageURI: outside}, folder, "backup directories"},
		"file beside a root":          {Destination{StorageURI: "file://" + e.root + "x"}, folder, "backup directories"},
		"file with dot dot":           {Destination{StorageURI: "file://" + e.root + "/../x"}, folder, ""},
		"no storage URI":              {Destination{}, folder, "storageResourceUri"},
		"https without a token":       {Destination{StorageURI: "https://acct.blob.core.windows.net/backups"}, folder, "token"},
		"SAS in the URI":              {Destination{StorageURI: "https://acct.blob.core.windows.net/backups?sig=x", Token: "sig=x"}, folder, "query"},
		"other scheme":                {Destination{StorageURI: "ftp://host/c"}, folder, ""},
		"relative file":               {Destination{StorageURI: "file://backups"}, folder, ""},
		"restore without a folder":    {e.dest, "", "folderToRestore"},
		"restore of a foreign folder": {e.dest, "somefolder", "not the name of a backup folder"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			calls := map[string]func() error{
				"restore":     func() error { _, err := e.svc.StartRestore(ctx, in, tc.d, tc.folder); return err },
				"key restore": func() error { _, err := e.svc.StartKeyRestore(ctx, in, tc.d, tc.folder, "k1"); return err },
				"prerestore":  func() error { _, err := e.svc.StartPreRestore(ctx, in, tc.d, tc.folder); return err },
			}
			if tc.folder == folder {
				calls["backup"] = func() error { _, err := e.svc.StartBackup(ctx, in, tc.d); return err }
				calls["prebackup"] = func() error { _, err := e.svc.StartPreBackup(ctx, in, tc.d); return err }
			}
			for call, fn := range calls {
				err := fn()
				if fault.KindOf(err) != fault.BadParameter || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %v, want a BadParameter naming %q", call, err, tc.want)
				}
			}
		})
	}
	// None of them left a job.
	var jobs []store.Job
	if err := e.st.View(ctx, func(r store.Reader) error { var err error; jobs, err = r.Jobs(in.Key); return err }); err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 0 {
		t.Fatalf("refused requests left jobs: %+v", jobs)
	}
}

func TestKeyRestore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := e.activeInstance(t, "hsm1")
	e.createKeys(t, in, 2)
	for range 2 {
		if _, err := e.keys.Create(ctx, in, "ec1", keys.CreateParams{Kty: "EC", Curve: "P-256"}); err != nil {
			t.Fatal(err)
		}
	}
	versions, err := e.keys.Versions(ctx, in, "ec1")
	if err != nil || len(versions) != 3 {
		t.Fatalf("versions of ec1: %d, %v", len(versions), err)
	}
	current, err := e.keys.Get(ctx, in, "ec1", "")
	if err != nil {
		t.Fatal(err)
	}
	_, folder := e.backup(t, in)

	keyRestore := func(name string) Job {
		t.Helper()
		j, err := e.svc.StartKeyRestore(ctx, in, e.dest, folder, name)
		if err != nil {
			t.Fatal(err)
		}
		return e.wait(t, in, j.ID, RestoreKinds)
	}
	// An existing key is not overwritten.
	if j := keyRestore("EC1"); j.Status != store.JobFailed || !strings.Contains(j.Error, "exists") {
		t.Fatalf("restore of an existing key: %+v", j)
	}
	// Nor a deleted one.
	if _, err := e.keys.Delete(ctx, in, "ec1"); err != nil {
		t.Fatal(err)
	}
	if j := keyRestore("ec1"); j.Status != store.JobFailed || !strings.Contains(j.Error, "exists") {
		t.Fatalf("restore of a deleted key: %+v", j)
	}
	// A purged key comes back with all its versions.
	if err := e.keys.Purge(ctx, in, "ec1"); err != nil {
		t.Fatal(err)
	}
	j := keyRestore("ec1")
	if j.Status != store.JobSucceeded || !strings.Contains(j.Details, "Number of successful key versions restored: 3") {
		t.Fatalf("restore of a purged key: %+v", j)
	}
	gotVersions, err := e.keys.Versions(ctx, in, "ec1")
	if err != nil || !reflect.DeepEqual(gotVersions, versions) {
		t.Fatalf("restored versions %+v, %v; want %+v", gotVersions, err, versions)
	}
	if got, err := e.keys.Get(ctx, in, "ec1", ""); err != nil || !reflect.DeepEqual(got, current) {
		t.Fatalf("restored key %+v, %v; want %+v", got, err, current)
	}
	// A key the backup does not hold.
	if j := keyRestore("nokey"); j.Status != store.JobFailed || !strings.Contains(j.Error, "has no key named nokey") {
		t.Fatalf("restore of a key not in the backup: %+v", j)
	}
	// A folder that does not exist.
	j2, err := e.svc.StartKeyRestore(ctx, in, e.dest, "mhsm-hsm1-2000010100000000", "ec0")
	if err != nil {
		t.Fatal(err)
	}
	if j2 = e.wait(t, in, j2.ID, RestoreKinds); j2.Status != store.JobFailed || !strings.Contains(j2.Error, ErrIncomplete.Error()) {
		t.Fatalf("restore from a missing folder: %+v", j2)
	}
	// An invalid key name is refused before any job.
	if _, err := e.svc.StartKeyRestore(ctx, in, e.dest, folder, "bad_name"); fault.KindOf(err) != fault.BadParameter {
		t.Fatalf("key restore of an invalid name: %v", err)
	}
}

func TestRestoreOfDamagedFolder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := e.activeInstance(t, "hsm1")
	e.createKeys(t, in, 2)
	before := e.keyState(t, in)
	_, folder := e.backup(t, in)
	dir := filepath.Join(e.root, "backups", folder)
	h := e.readFolder(t, folder)
	obj := filepath.Join(dir, h.Objects[0].Name)
	orig, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), orig...)
	damaged[len(damaged)/2] ^= 1
	if err := os.WriteFile(obj, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.StartRestore(ctx, in, e.dest, folder)
	if err != nil {
		t.Fatal(err)
	}
	if r = e.wait(t, in, r.ID, RestoreKinds); r.Status != store.JobFailed || !strings.Contains(r.Error, ErrTampered.Error()) {
		t.Fatalf("restore of a damaged folder: %+v", r)
	}
	after := e.get(t, "hsm1")
	if after.Staging != "" || after.Epoch != in.Epoch {
		t.Fatalf("a failed restore left staging %q, epoch %d (was %d)", after.Staging, after.Epoch, in.Epoch)
	}
	if got := e.keyState(t, after); !reflect.DeepEqual(got, before) {
		t.Fatal("a failed restore changed the keys")
	}
	// Keys can be written again (the stage was aborted).
	if _, err := e.keys.Create(ctx, after, "new", keys.CreateParams{Kty: "EC", Curve: "P-256"}); err != nil {
		t.Fatal(err)
	}
}

func TestRecover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := e.activeInstance(t, "hsm1")
	e.createKeys(t, in, 1)
	before := e.keyState(t, in)

	// A job left running by a previous process.
	left := store.Job{ID: "0123456789abcdef0123456789abcdef", Kind: KindBackup, Instance: in.Key, Status: store.JobInProgress, Start: time.Now().UTC()}
	if err := e.st.Apply(ctx, store.StartJob{Job: left, Exclusive: true}); err != nil {
		t.Fatal(err)
	}
	// A restore left staging: a staged key that must not appear.
	exported, err := e.keys.ExportKeys(ctx, in, "", 10)
	if err != nil || len(exported) != 2 {
		t.Fatalf("ExportKeys: %d, %v", len(exported), err)
	}
	ghost := exported[0]
	ghost.ID = "ghost"
	ghost.Record = renameRecord(t, ghost.Record, "ghost")
	vals, err := e.keys.SealExported(in, &ghost)
	if err != nil {
		t.Fatal(err)
	}
	cur := e.get(t, "hsm1")
	if err := e.st.Apply(ctx, store.BeginStage{Name: in.Key, Expect: cur.Generation, Stage: "stage1"}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Apply(ctx, store.StageValues{Name: in.Key, Stage: "stage1", Values: vals}); err != nil {
		t.Fatal(err)
	}
	if staging, err := e.inst.Get(ctx, "hsm1"); err != nil || staging.Staging != "stage1" {
		t.Fatalf("instance staging %q, %v", staging.Staging, err)
	}

	// The next process starts.
	svc, err := New(Config{Store: e.st, Instances: e.inst, Keyring: e.inst, Keys: e.keys, FileRoots: []string{e.root}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	j, err := svc.Job(ctx, in, left.ID, BackupKinds)
	if err != nil || j.Status != store.JobFailed || j.Error != interruptedMessage || j.End.IsZero() {
		t.Fatalf("interrupted job after Recover: %+v, %v", j, err)
	}
	after := e.get(t, "hsm1")
	if after.Staging != "" || after.Epoch != cur.Epoch || after.Generation <= cur.Generation {
		t.Fatalf("after Recover: staging %q, epoch %d (was %d), generation %d (was %d)", after.Staging, after.Epoch, cur.Epoch, after.Generation, cur.Generation)
	}
	if got := e.keyState(t, after); !reflect.DeepEqual(got, before) {
		t.Fatalf("keys after Recover differ:\n%+v\nwant\n%+v", got, before)
	}
	if _, err := e.keys.Get(ctx, after, "ghost", ""); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("the staged key is visible: %v", err)
	}
	// Recover is idempotent, and the instance takes writes and backups.
	if err := svc.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.keys.Create(ctx, after, "ec9", keys.CreateParams{Kty: "EC", Curve: "P-256"}); err != nil {
		t.Fatal(err)
	}
	e.backup(t, after)
}
