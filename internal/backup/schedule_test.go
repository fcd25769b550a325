package backup

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"tresor/internal/barrier"
	"tresor/internal/blob"
	"tresor/internal/blob/azuritetest"
	"tresor/internal/blob/container"
	"tresor/internal/fault"
	"tresor/internal/instances"
	"tresor/internal/store"
)

// fakeClock is the service's clock in the schedule tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncLog is a log buffer the service writes to while the test reads it.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// scheduleEnv is env with a fake clock and a captured log.
func scheduleEnv(t *testing.T) (*env, *fakeClock, *syncLog) {
	t.Helper()
	clk := &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
	logs := &syncLog{}
	e := newEnv(t, func(c *Config) {
		c.Now = clk.Now
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	return e, clk, logs
}

// destination is a container the schedule tests write into, and a blob
// store of it for planting and listing objects.
type destination struct {
	uri, token string
	bs         blob.Store
}

func fileDestination(t *testing.T, e *env, name string) destination {
	t.Helper()
	dir := filepath.Join(e.root, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return openDestination(t, "file://"+dir, "x")
}

func azuriteDestination(t *testing.T, name, perms string) destination {
	t.Helper()
	az := azuritetest.Start(t)
	uri := az.CreateContainer(t, name)
	return openDestination(t, uri, az.SAS(t, name, perms, time.Now().Add(time.Hour)))
}

func openDestination(t *testing.T, uri, token string) destination {
	t.Helper()
	cu, _, err := container.Resolve(uri, "")
	if err != nil {
		t.Fatal(err)
	}
	bs, err := container.Open(context.Background(), cu, token)
	if err != nil {
		t.Fatal(err)
	}
	return destination{uri: uri, token: token, bs: bs}
}

func (d destination) put(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := d.bs.Put(context.Background(), n, []byte("planted")); err != nil {
			t.Fatal(err)
		}
	}
}

// folders lists the container's folders and whether each has a manifest.
func (d destination) folders(t *testing.T) map[string]bool {
	t.Helper()
	objs, err := d.bs.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, o := range objs {
		f, rest, _ := strings.Cut(o.Name, "/")
		out[f] = out[f] || rest == ManifestName
	}
	return out
}

func (e *env) policy(t *testing.T, in instances.Instance) PolicyStatus {
	t.Helper()
	st, err := e.svc.GetPolicy(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestPolicyRetention: a policy every 2s keeping 3, run 6 times by the
// fake clock, leaves exactly the folders of its last 3 backups among the
// instance's folders: an older incomplete folder and an older manual
// backup are deleted; folders of other instances (also one whose name
// starts with this one's), other directories and an incomplete folder
// newer than the oldest kept one are left alone.
func TestPolicyRetention(t *testing.T) {
	for _, where := range []string{"file", "azurite"} {
		t.Run(where, func(t *testing.T) {
			e, clk, _ := scheduleEnv(t)
			ctx := context.Background()
			in := e.activeInstance(t, "hsm1")
			e.createKeys(t, in, 2)
			var d destination
			if where == "file" {
				d = fileDestination(t, e, "sched")
			} else {
				d = azuriteDestination(t, "sched", "crwdl")
			}
			d.put(t,
				"mhsm-hsm1-2000010100000000/keys-000001",    // old, incomplete: deleted
				"mhsm-hsm2-2000010100000000/manifest",       // another instance's
				"mhsm-hsm1-b-2000010100000000/manifest",     // instance hsm1-b's
				"mhsm-hsm1-20000101000000/manifest",         // not a folder name (14 digits)
				"other/mhsm-hsm1-2000010100000000/manifest", // not at the top
				"notes")
			// A manual backup into the same container counts.
			manual, err := e.svc.StartBackup(ctx, in, Destination{StorageURI: d.uri, Token: d.token})
			if err != nil {
				t.Fatal(err)
			}
			e.wait(t, in, manual.ID, BackupKinds)
			clk.Add(time.Second)

			if _, err := e.svc.SetPolicy(ctx, in, Policy{StorageURI: d.uri, Token: d.token, Every: 2 * time.Second, Keep: 3, Enabled: true}); err != nil {
				t.Fatal(err)
			}
			var jobs []string
			for i := range 6 {
				if i > 0 {
					clk.Add(2 * time.Second)
				}
				next := e.svc.RunDuePolicies(ctx)
				st := e.policy(t, in)
				if st.LastFailure != nil {
					t.Fatalf("run %d failed: %+v", i, *st.LastFailure)
				}
				if st.LastSuccess == nil || (len(jobs) > 0 && st.LastSuccess.JobID == jobs[len(jobs)-1]) {
					t.Fatalf("run %d: no new success: %+v", i, st.LastSuccess)
				}
				jobs = append(jobs, st.LastSuccess.JobID)
				if want := clk.Now().Add(2 * time.Second); !next.Equal(want) || !st.NextRun.Equal(want) {
					t.Fatalf("run %d: next run %v (status %v), want %v", i, next, st.NextRun, want)
				}
				// Nothing more is due until the clock moves.
				e.svc.RunDuePolicies(ctx)
				if got := e.policy(t, in).LastSuccess.JobID; got != st.LastSuccess.JobID {
					t.Fatalf("run %d ran twice", i)
				}
				// Up to 3 complete (manual, first, second): nothing deleted; then the
				// old incomplete one and the manual backup go; then one
				// folder a run.
				if want := []int{0, 0, 2, 1, 1, 1}[i]; st.DeletedFolders != want {
					t.Fatalf("run %d deleted %d folders, want %d", i, st.DeletedFolders, want)
				}
				if i == 4 {
					// An incomplete folder newer than the oldest kept one
					// (a backup in progress, say) stays.
					d.put(t, FolderName("hsm1", clk.Now().Add(time.Second))+"/keys-000001")
				}
			}
			var kept []string
			for _, id := range jobs[3:] {
				j := e.wait(t, in, id, BackupKinds)
				kept = append(kept, FolderName("hsm1", j.Start))
			}
			got := d.folders(t)
			var mine []string
			for f, complete := range got {
				if isFolderOf(f, "hsm1") && complete {
					mine = append(mine, f)
				}
			}
			slices.Sort(mine)
			if !slices.Equal(mine, kept) {
				t.Fatalf("complete folders of hsm1 = %v, want the newest 3 %v", mine, kept)
			}
			for _, f := range []string{"mhsm-hsm2-2000010100000000", "mhsm-hsm1-b-2000010100000000", "mhsm-hsm1-20000101000000", "other", "notes"} {
				if _, ok := got[f]; !ok {
					t.Errorf("%s was deleted", f)
				}
			}
			if _, ok := got["mhsm-hsm1-2000010100000000"]; ok {
				t.Errorf("the old incomplete folder was kept")
			}
			if n := len(got); n != 3+5+1 {
				t.Errorf("the container holds %d folders: %v", n, got)
			}
			for _, f := range mine {
				if _, _, err := e.svc.readManifest(ctx, d.bs, location{}, f, mustRoot(t, e, in)); err != nil {
					t.Errorf("kept folder %s: %v", f, err)
				}
			}
		})
	}
}

func mustRoot(t *testing.T, e *env, in instances.Instance) *barrier.RootKey {
	t.Helper()
	r, err := e.inst.Root(in)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPolicyFailures: a failing scheduled backup is recorded in
// lastFailure with what went wrong and logged at error level with the
// instance (never the token); the next good run records lastSuccess and
// clears lastFailure.
func TestPolicyFailures(t *testing.T) {
	t.Run("directory removed", func(t *testing.T) {
		e, clk, logs := scheduleEnv(t)
		ctx := context.Background()
		in := e.activeInstance(t, "hsm1")
		d := fileDestination(t, e, "gone")
		if _, err := e.svc.SetPolicy(ctx, in, Policy{StorageURI: d.uri, Token: "sig=topsecret", Every: time.Minute, Keep: 2, Enabled: true}); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(e.root, "gone")); err != nil {
			t.Fatal(err)
		}
		e.svc.RunDuePolicies(ctx)
		st := e.policy(t, in)
		if st.LastSuccess != nil || st.LastFailure == nil {
			t.Fatalf("status after a failed run: %+v", st.BackupPolicyStatus)
		}
		f := st.LastFailure
		if f.Code != CodeBackupFailed || f.JobID == "" || !strings.Contains(f.Message, "gone") || !strings.Contains(f.Message, "does not exist") {
			t.Fatalf("lastFailure = %+v, want BackupFailed naming the missing directory", *f)
		}
		if l := logs.String(); !strings.Contains(l, "level=ERROR msg=\"scheduled backup failed\" instance=hsm1") || strings.Contains(l, "topsecret") {
			t.Fatalf("log:\n%s", l)
		}
		if err := os.Mkdir(filepath.Join(e.root, "gone"), 0o700); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Minute)
		e.svc.RunDuePolicies(ctx)
		st = e.policy(t, in)
		if st.LastFailure != nil || st.LastSuccess == nil || !isFolderOf(st.LastSuccess.Folder, "hsm1") {
			t.Fatalf("status after a good run: %+v", st.BackupPolicyStatus)
		}
	})

	t.Run("SAS expired", func(t *testing.T) {
		e, clk, logs := scheduleEnv(t)
		ctx := context.Background()
		in := e.activeInstance(t, "hsm1")
		az := azuritetest.Start(t)
		uri := az.CreateContainer(t, "expiring")
		expiry := clk.Now().Add(90 * time.Second)
		tok := az.SAS(t, "expiring", "crwdl", expiry)
		if _, err := e.svc.SetPolicy(ctx, in, Policy{StorageURI: uri, Token: tok, Every: time.Minute, Keep: 2, Enabled: true}); err != nil {
			t.Fatal(err)
		}
		if st := e.policy(t, in); !st.TokenExpiry.Equal(expiry.Truncate(time.Second)) {
			t.Fatalf("tokenExpiry = %v, want %v", st.TokenExpiry, expiry)
		}
		e.svc.RunDuePolicies(ctx)
		if st := e.policy(t, in); st.LastSuccess == nil || st.LastFailure != nil {
			t.Fatalf("first run: %+v", st.BackupPolicyStatus)
		}
		clk.Add(2 * time.Minute)
		e.svc.RunDuePolicies(ctx)
		st := e.policy(t, in)
		if f := st.LastFailure; f == nil || f.Code != CodeBackupNotStarted || !strings.Contains(f.Message, "SAS token of the backup policy expired at "+expiry.UTC().Format(time.RFC3339)) {
			t.Fatalf("lastFailure = %+v", st.LastFailure)
		}
		if st.LastSuccess == nil {
			t.Fatal("the last success was dropped")
		}
		if l := logs.String(); !strings.Contains(l, "instance=hsm1 code=BackupNotStarted") || strings.Contains(l, "sig=") {
			t.Fatalf("log:\n%s", l)
		}
		// A new token: the next run succeeds.
		tok = az.SAS(t, "expiring", "crwdl", time.Now().Add(time.Hour))
		if _, err := e.svc.SetPolicy(ctx, in, Policy{StorageURI: uri, Token: tok, Every: time.Minute, Keep: 2, Enabled: true}); err != nil {
			t.Fatal(err)
		}
		e.svc.RunDuePolicies(ctx)
		if st := e.policy(t, in); st.LastSuccess == nil || st.LastFailure != nil {
			t.Fatalf("run with a new token: %+v", st.BackupPolicyStatus)
		}
	})

	t.Run("retention refused", func(t *testing.T) {
		e, clk, logs := scheduleEnv(t)
		ctx := context.Background()
		in := e.activeInstance(t, "hsm1")
		d := azuriteDestination(t, "nodelete", "crwl")
		if _, err := e.svc.SetPolicy(ctx, in, Policy{StorageURI: d.uri, Token: d.token, Every: time.Minute, Keep: 1, Enabled: true}); err != nil {
			t.Fatal(err)
		}
		e.svc.RunDuePolicies(ctx)
		clk.Add(time.Minute)
		e.svc.RunDuePolicies(ctx)
		st := e.policy(t, in)
		f := st.LastFailure
		if f == nil || f.Code != CodeRetentionFailed || f.JobID == "" || f.JobID != st.LastSuccess.JobID ||
			!strings.Contains(f.Message, "deleting older folders failed") || !strings.Contains(f.Message, "permission") {
			t.Fatalf("status = %+v, failure %+v", st.BackupPolicyStatus, f)
		}
		if l := logs.String(); !strings.Contains(l, "code=RetentionFailed") {
			t.Fatalf("log:\n%s", l)
		}
		if n := len(d.folders(t)); n != 2 {
			t.Fatalf("%d folders, want both backups", n)
		}
	})
}

// TestPolicyBusy: a scheduled backup that finds another job of the HSM
// running is postponed, not failed, until the HSM has been busy for a
// whole interval; then it records a failure; once the job ends the next
// run succeeds.
func TestPolicyBusy(t *testing.T) {
	e, clk, _ := scheduleEnv(t)
	ctx := context.Background()
	in := e.activeInstance(t, "hsm1")
	d := fileDestination(t, e, "busy")
	busy := store.Job{ID: "busyjob", Kind: KindRestore, Instance: in.Key, Status: store.JobInProgress, Start: clk.Now()}
	if err := e.st.Apply(ctx, store.StartJob{Job: busy, Exclusive: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetPolicy(ctx, in, Policy{StorageURI: d.uri, Token: "x", Every: 30 * time.Second, Keep: 2, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	e.svc.RunDuePolicies(ctx)
	st := e.policy(t, in)
	if st.LastFailure != nil || st.LastSuccess != nil || !st.NextRun.Equal(start.Add(busyRetry)) || !st.BusySince.Equal(start) {
		t.Fatalf("postponed run: %+v", st.BackupPolicyStatus)
	}
	clk.Add(busyRetry)
	e.svc.RunDuePolicies(ctx)
	if st := e.policy(t, in); st.LastFailure != nil {
		t.Fatalf("failed before a whole interval: %+v", *st.LastFailure)
	}
	clk.Add(20 * time.Second)
	e.svc.RunDuePolicies(ctx)
	st = e.policy(t, in)
	if f := st.LastFailure; f == nil || f.Code != CodeBackupNotStarted || !strings.Contains(f.Message, "busy since "+start.Format(time.RFC3339)) {
		t.Fatalf("after a busy interval: %+v", st.LastFailure)
	}
	busy.Status, busy.End = store.JobSucceeded, clk.Now()
	if err := e.st.Apply(ctx, store.UpdateJob{Job: busy}); err != nil {
		t.Fatal(err)
	}
	clk.Add(30 * time.Second)
	e.svc.RunDuePolicies(ctx)
	if st := e.policy(t, in); st.LastFailure != nil || st.LastSuccess == nil || !st.BusySince.IsZero() {
		t.Fatalf("after the job ended: %+v", st.BackupPolicyStatus)
	}
}

// TestPolicyMissedRuns: after a long gap (the server was down) a policy
// runs once, then every interval from then on.
func TestPolicyMissedRuns(t *testing.T) {
	e, clk, _ := scheduleEnv(t)
	ctx := context.Background()
	in := e.activeInstance(t, "hsm1")
	d := fileDestination(t, e, "missed")
	if _, err := e.svc.SetPolicy(ctx, in, Policy{StorageURI: d.uri, Token: "x", Every: 2 * time.Second, Keep: 100, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	e.svc.RunDuePolicies(ctx)
	clk.Add(time.Minute) // 30 runs missed
	next := e.svc.RunDuePolicies(ctx)
	if want := clk.Now().Add(2 * time.Second); !next.Equal(want) {
		t.Fatalf("next run %v, want %v", next, want)
	}
	e.svc.RunDuePolicies(ctx)
	var jobs []store.Job
	if err := e.st.View(ctx, func(r store.Reader) error {
		var err error
		jobs, err = r.Jobs(in.Key)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 {
		t.Fatalf("%d jobs, want 2 (one run, then one for the missed ones)", len(jobs))
	}
}

// TestPolicyValidation: what SetPolicy refuses, with a 400's message, and
// that a refused policy leaves the one in place.
func TestPolicyValidation(t *testing.T) {
	e, clk, _ := scheduleEnv(t)
	ctx := context.Background()
	in := e.activeInstance(t, "hsm1")
	d := fileDestination(t, e, "valid")
	good := Policy{StorageURI: d.uri, Token: "x", Every: time.Hour, Keep: 3, Enabled: false}
	want, err := e.svc.SetPolicy(ctx, in, good)
	if err != nil {
		t.Fatal(err)
	}
	expired := "se=" + clk.Now().Add(-time.Minute).Format(time.RFC3339) + "&sig=abc"
	tests := map[string]struct {
		change func(*Policy)
		msg    string
	}{
		"every below 1s":       {func(p *Policy) { p.Every = 0 }, "every must be at least 1 second"},
		"every above 366 days": {func(p *Policy) { p.Every = MaxInterval + time.Second }, "every must be at most 366 days"},
		"keep 0":               {func(p *Policy) { p.Keep = 0 }, "keep must be between 1 and 1000"},
		"keep 1001":            {func(p *Policy) { p.Keep = 1001 }, "keep must be between 1 and 1000"},
		"no token":             {func(p *Policy) { p.Token = "?" }, "token is required"},
		"expired token":        {func(p *Policy) { p.Token = expired }, "the SAS token expired at"},
		"outside backupDirs":   {func(p *Policy) { p.StorageURI = "file:///etc" }, "must be inside one of the region's backup directories"},
		"query in the URI":     {func(p *Policy) { p.StorageURI = d.uri + "?sig=abc" }, "query"},
		"no URI":               {func(p *Policy) { p.StorageURI = "" }, "storageResourceUri is required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := good
			tc.change(&p)
			_, err := e.svc.SetPolicy(ctx, in, p)
			fe, ok := fault.As(err)
			if !ok || fe.Kind != fault.BadParameter || !strings.Contains(fe.Message, tc.msg) {
				t.Fatalf("SetPolicy: %v, want BadParameter %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "sig=abc") {
				t.Fatalf("the error shows the token: %v", err)
			}
			if got := e.policy(t, in); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("policy changed:\n got  %+v\n want %+v", got, want)
			}
		})
	}
	secret := Policy{StorageURI: d.uri, Token: "sig=topsecret"}
	if s := fmt.Sprintf("%v %+v %#v %s %q", secret, secret, secret, secret, []Policy{secret}); strings.Contains(s, "topsecret") {
		t.Fatalf("a Policy prints itself: %s", s)
	}
	other := e.activeInstance(t, "hsm2")
	if _, err := e.svc.GetPolicy(ctx, other); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("GetPolicy without a policy: %v", err)
	}
	if err := e.svc.DeletePolicy(ctx, other); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("DeletePolicy without a policy: %v", err)
	}
	if err := e.svc.DeletePolicy(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GetPolicy(ctx, in); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("GetPolicy after delete: %v", err)
	}
}

func TestParseInterval(t *testing.T) {
	tests := map[string]struct {
		in   string
		want time.Duration
		ok   bool
	}{
		"go hours":        {"6h", 6 * time.Hour, true},
		"go mixed":        {"1h30m", 90 * time.Minute, true},
		"go seconds":      {"2s", 2 * time.Second, true},
		"iso hours":       {"PT6H", 6 * time.Hour, true},
		"iso day":         {"P1D", 24 * time.Hour, true},
		"iso day hours":   {"P1DT12H", 36 * time.Hour, true},
		"iso week":        {"P2W", 14 * 24 * time.Hour, true},
		"iso all":         {"P1DT1H1M1S", 25*time.Hour + 61*time.Second, true},
		"go sub-second":   {"500ms", 0, false},
		"iso empty":       {"P", 0, false},
		"iso empty T":     {"PT", 0, false},
		"iso trailing T":  {"P1DT", 0, false},
		"iso order":       {"PT1M1H", 0, false},
		"iso months":      {"P1M", 0, false},
		"iso years":       {"P1Y", 0, false},
		"iso fraction":    {"PT1.5S", 0, false},
		"iso no number":   {"PTH", 0, false},
		"iso huge":        {"P99999999999D", 0, false},
		"iso overflow":    {"PT999999999999H", 0, false},
		"garbage":         {"soon", 0, false},
		"empty":           {"", 0, false},
		"lower-case iso":  {"pt6h", 0, false},
		"negative go":     {"-6h", -6 * time.Hour, true}, // bounds are the service's
		"iso repeated T":  {"PT1HT1M", 0, false},
		"iso repeat unit": {"PT1H1H", 0, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseInterval(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParseInterval(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
	for _, d := range []time.Duration{time.Second, 2 * time.Second, time.Hour + time.Second, 6 * time.Hour, 36 * time.Hour, MaxInterval} {
		s := FormatInterval(d)
		if back, err := ParseInterval(s); err != nil || back != d {
			t.Errorf("FormatInterval(%v) = %q, which parses as %v, %v", d, s, back, err)
		}
	}
	if s := FormatInterval(6 * time.Hour); s != "PT6H" {
		t.Errorf("FormatInterval(6h) = %q, want PT6H", s)
	}
}

// FuzzParseInterval: whatever parses is a whole number of seconds that
// FormatInterval writes and ParseInterval reads back exactly; an error
// returns 0.
func FuzzParseInterval(f *testing.F) {
	for _, s := range []string{"6h", "PT6H", "P1DT12H", "P2W", "2s", "P", "PT", "P99999999999D", "PT1M1H", "1h30m", "-1s", "P1DT1H1M1S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseInterval(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("ParseInterval(%q) = %v with error %v", s, d, err)
			}
			return
		}
		if d%time.Second != 0 {
			t.Fatalf("ParseInterval(%q) = %v: not whole seconds", s, d)
		}
		if d <= 0 || d > 10*MaxInterval {
			return // refused by the service's bounds; FormatInterval covers positive values
		}
		back, err := ParseInterval(FormatInterval(d))
		if err != nil || back != d {
			t.Fatalf("ParseInterval(%q) = %v; FormatInterval = %q reads back as %v, %v", s, d, FormatInterval(d), back, err)
		}
	})
}
