package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tresor/internal/server"
	"tresor/internal/server/servertest"
	"tresor/internal/wire"
)

// Crash tests run the server as a child process (this test binary, run
// again with crashChildEnv set), kill it with SIGKILL in the middle of a
// backup or a restore, start it again on the same data directory and check
// what the issue promises: no job stays InProgress, an interrupted restore
// leaves its instance exactly as it was, an interrupted backup leaves a
// folder that no restore accepts.

const (
	crashChildEnv = "TRESOR_CRASH_CHILD" // "1" in the child
	crashArgsEnv  = "TRESOR_CRASH_ARGS"  // the child's server flags, as a JSON array
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) == "1" {
		os.Exit(runCrashChild())
	}
	if os.Getenv(cliChildEnv) == "1" {
		os.Exit(runCLIChild())
	}
	os.Exit(m.Run())
}

// runCrashChild runs `tresor server` with the flags of crashArgsEnv.
func runCrashChild() int {
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv(crashArgsEnv)), &args); err != nil {
		fmt.Fprintf(os.Stderr, "crash child: %s: %v\n", crashArgsEnv, err)
		return 1
	}
	// The parent holds the other end of stdin: if the parent dies without
	// killing this process (a test timeout), stdin ends and so does it.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		fmt.Fprintln(os.Stderr, "crash child: the parent is gone")
		os.Exit(2)
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := server.Command()
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "crash child: %v\n", err)
		return 1
	}
	return 0
}

// lockedBuffer collects a child's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// crashRegion is a region served by child processes, one at a time, on
// one data directory and one port.
type crashRegion struct {
	t         *testing.T
	dataDir   string
	backupDir string // --backup-dir; the container "c" is inside it
	addr      string // 127.0.0.1:port, the same for every start
	starts    int
	names     map[string]bool // every key name the test made

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *lockedBuffer

	// Valid after start: the region as the child serves it (every
	// servertest helper that only speaks HTTP works on it) and a drill
	// with fresh tokens.
	s *servertest.Server
	d *drill
}

func newCrashRegion(t *testing.T) *crashRegion {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &crashRegion{t: t, dataDir: t.TempDir(), backupDir: t.TempDir(), addr: addr, names: map[string]bool{}}
	if err := os.Mkdir(filepath.Join(r.backupDir, "c"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			r.logOutput()
		}
	})
	return r
}

// dest is the file:// container of the region's backups.
func (r *crashRegion) dest() wire.SASTokenParameter {
	return wire.SASTokenParameter{StorageResourceURI: "file://" + filepath.Join(r.backupDir, "c")}
}

// start runs a child server and waits until it answers.
func (r *crashRegion) start() {
	t := r.t
	t.Helper()
	if r.cmd != nil {
		t.Fatal("crash region: a child is already running")
	}
	r.starts++
	defer r.since(time.Now(), fmt.Sprintf("started child %d", r.starts))
	args, _ := json.Marshal([]string{"--dev", "--data-dir", r.dataDir, "--listen", r.addr, "--backup-dir", r.backupDir})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashArgsEnv+"="+string(args))
	r.out = &lockedBuffer{}
	fmt.Fprintf(r.out, "--- child %d ---\n", r.starts)
	cmd.Stdout, cmd.Stderr = r.out, r.out
	stdin, parentEnd, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = stdin
	err = cmd.Start()
	stdin.Close()
	if err != nil {
		parentEnd.Close()
		t.Fatal(err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); parentEnd.Close(); close(done) }(r.done)

	// dev.env is written by the first start, at the end of server.New; the
	// later starts keep it (the credentials do not change).
	env := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(r.dataDir, server.DevEnvFile)); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
					env[k] = v
				}
			}
			break
		}
		r.waitStep(deadline, "dev.env")
	}
	cfg := server.DefaultConfig()
	cfg.Dev, cfg.DataDir, cfg.Listen = true, r.dataDir, r.addr
	r.s = &servertest.Server{
		Server: &server.Server{Endpoint: env["TRESOR_SERVER"], CAFile: filepath.Join(r.dataDir, "ca.pem"), TenantID: env["TRESOR_TENANT_ID"]},
		Addr:   r.addr, DataDir: r.dataDir, ClientID: env["TRESOR_CLIENT_ID"], ClientSecret: env["TRESOR_CLIENT_SECRET"], Config: cfg,
	}
	if r.s.Endpoint == "" || r.s.ClientID == "" || r.s.ClientSecret == "" {
		t.Fatalf("dev.env lacks credentials: %v", env)
	}
	client := r.s.HTTPClient(t)
	client.Timeout = 2 * time.Second
	for {
		resp, err := client.Get(r.s.Endpoint + "/tresor/region")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		r.waitStep(deadline, "the region endpoint")
	}
	r.d = &drill{t: t, s: r.s, c: newCall(t, r.s)}
	r.d.arm = r.s.AdminToken(t)
	r.d.hsm = r.s.Token(t, r.s.ClientID, r.s.ClientSecret, r.s.HSMResource())
	r.s.ObjectID = tokenOID(t, r.d.arm)
}

// waitStep sleeps a little while the child starts; it fails the test if
// the child has exited or the deadline has passed.
func (r *crashRegion) waitStep(deadline time.Time, what string) {
	r.t.Helper()
	select {
	case <-r.done:
		r.t.Fatalf("the server exited while starting (waiting for %s)", what)
	default:
	}
	if time.Now().After(deadline) {
		r.t.Fatalf("the server did not start in time (waiting for %s)", what)
	}
	time.Sleep(20 * time.Millisecond)
}

// kill ends the child with SIGKILL and waits for it (a no-op without one).
func (r *crashRegion) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.t.Errorf("child %d did not exit after SIGKILL", r.cmd.Process.Pid)
	}
	if strings.Contains(r.out.String(), "WARNING: DATA RACE") {
		r.t.Errorf("the race detector reported a data race in child %d", r.starts)
	}
	r.cmd = nil
}

func (r *crashRegion) logOutput() {
	out := r.out.String()
	if len(out) > 20000 {
		out = "…" + out[len(out)-20000:]
	}
	r.t.Logf("output of the last child:\n%s", out)
}

// since logs how long a step took.
func (r *crashRegion) since(start time.Time, what string) {
	r.t.Logf("%s in %v", what, time.Since(start).Round(time.Millisecond))
}

// tokenOID reads the oid claim of a token (the bootstrap administrator's
// object id, which dev.env does not hold).
func tokenOID(t testing.TB, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Oid string `json:"oid"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Oid == "" {
		t.Fatalf("token without oid: %s", payload)
	}
	return c.Oid
}

// send is call.do for goroutines: it returns errors instead of failing.
func (r *crashRegion) send(method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.d.hsm)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.d.c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// parallel runs fn(i) for i in [0, n) on 16 goroutines and fails the test
// with the first error.
func (r *crashRegion) parallel(n int, fn func(i int) error) {
	r.t.Helper()
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || first.Load() != nil {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		r.t.Fatal(err)
	}
}

// seed creates n EC P-256 keys named prefix-0 … prefix-(n-1).
func (r *crashRegion) seed(name, prefix string, n int) {
	r.t.Helper()
	start := time.Now()
	for i := range n {
		r.names[fmt.Sprintf("%s-%d", prefix, i)] = true
	}
	r.parallel(n, func(i int) error {
		key := fmt.Sprintf("%s-%d", prefix, i)
		code, body, err := r.send("POST", r.d.url(name, "/keys/"+key+"/create"), map[string]string{"kty": "EC-HSM", "crv": "P-256"})
		if err != nil {
			return fmt.Errorf("create %s: %v", key, err)
		}
		if code != 200 {
			return fmt.Errorf("create %s: %d %s", key, code, body)
		}
		return nil
	})
	r.t.Logf("seeded %d keys in %v", n, time.Since(start).Round(time.Millisecond))
}

// errNotFound is list's error for a 404.
var errNotFound = errors.New("not found")

// list reads the pages of a data-plane list, at most maxPages of them (0:
// all).
func (r *crashRegion) list(url string, maxPages int) ([]json.RawMessage, error) {
	var all []json.RawMessage
	for pages := 0; url != "" && (maxPages == 0 || pages < maxPages); pages++ {
		if pages > 10000 {
			return nil, fmt.Errorf("list %s: too many pages", url)
		}
		code, body, err := r.send("GET", url, nil)
		if err != nil {
			return nil, err
		}
		if code == 404 {
			return nil, fmt.Errorf("list %s: %w", url, errNotFound)
		}
		if code != 200 {
			return nil, fmt.Errorf("list %s: %d %s", url, code, body)
		}
		var page struct {
			Value    []json.RawMessage `json:"value"`
			NextLink *string           `json:"nextLink"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("list %s: %v", url, err)
		}
		all = append(all, page.Value...)
		url = ""
		if page.NextLink != nil {
			url = *page.NextLink
		}
	}
	return all, nil
}

// httpState is what a full restore replaces, as the data plane shows it:
// every key with every version (kid and attributes), the deleted keys, the
// role assignments and definitions, and the settings.
type httpState struct {
	FirstPage []string // of GET /keys
	Keys      map[string][]string
	Deleted   []string
	Assigns   []string
	Roles     []string
	Settings  string
}

func (r *crashRegion) state(name string) httpState {
	r.t.Helper()
	defer r.since(time.Now(), "read the state")
	must := func(items []json.RawMessage, err error) []string {
		r.t.Helper()
		if err != nil {
			r.t.Fatal(err)
		}
		out := make([]string, len(items))
		for i, it := range items {
			out[i] = string(it)
		}
		slices.Sort(out)
		return out
	}
	st := httpState{Keys: map[string][]string{}}
	// The first page of the key list (the after-* keys sort first), then
	// every version of every key the test made, by name: listing all keys
	// page by page costs the server a decryption of every key per page.
	page, err := r.list(r.d.url(name, "/keys?maxresults=25"), 1)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, it := range page {
		var k wire.KeyItem
		if err := json.Unmarshal(it, &k); err != nil {
			r.t.Fatal(err)
		}
		r.names[k.Kid[strings.LastIndex(k.Kid, "/")+1:]] = true
		st.FirstPage = append(st.FirstPage, string(it))
	}
	names := slices.Sorted(maps.Keys(r.names))
	versions := make([][]string, len(names))
	r.parallel(len(names), func(i int) error {
		vs, err := r.list(r.d.url(name, "/keys/"+names[i]+"/versions?maxresults=25"), 0)
		if errors.Is(err, errNotFound) {
			return nil // deleted or never there: nil versions
		}
		for _, v := range vs {
			versions[i] = append(versions[i], string(v))
		}
		return err
	})
	for i, n := range names {
		st.Keys[n] = versions[i]
	}
	st.Deleted = must(r.list(r.d.url(name, "/deletedkeys"), 0))
	st.Assigns = must(r.list(r.d.url(name, "///providers/Microsoft.Authorization/roleAssignments"), 0))
	st.Roles = must(r.list(r.d.url(name, "///providers/Microsoft.Authorization/roleDefinitions"), 0))
	code, body, err := r.send("GET", r.d.url(name, "/settings"), nil)
	if err != nil || code != 200 {
		r.t.Fatalf("settings: %d %s %v", code, body, err)
	}
	st.Settings = string(body)
	return st
}

func diffHTTPState(a, b httpState) string {
	if reflect.DeepEqual(a, b) {
		return ""
	}
	var out []string
	for n, va := range a.Keys {
		if vb, ok := b.Keys[n]; !ok {
			out = append(out, "key "+n+" only before")
		} else if !reflect.DeepEqual(va, vb) {
			out = append(out, fmt.Sprintf("key %s: %v\n   vs %v", n, va, vb))
		}
	}
	for n := range b.Keys {
		if _, ok := a.Keys[n]; !ok {
			out = append(out, "key "+n+" only after")
		}
	}
	slices.Sort(out)
	for _, f := range []struct {
		n    string
		x, y any
	}{{"first page of the key list", a.FirstPage, b.FirstPage}, {"deleted keys", a.Deleted, b.Deleted}, {"role assignments", a.Assigns, b.Assigns}, {"role definitions", a.Roles, b.Roles}, {"settings", a.Settings, b.Settings}} {
		if !reflect.DeepEqual(f.x, f.y) {
			out = append(out, fmt.Sprintf("%s: %v\n   vs %v", f.n, f.x, f.y))
		}
	}
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("… and %d more", len(out)-10))
	}
	return strings.Join(out, "\n")
}

// jobStatus is a job's status as the status route answers it.
type jobStatus struct {
	Status   string            `json:"status"`
	JobID    string            `json:"jobId"`
	Error    *wire.ErrorDetail `json:"error"`
	Progress *wire.JobProgress `json:"progress"`
}

func (st jobStatus) String() string {
	s := st.Status
	if st.Progress != nil {
		s += fmt.Sprintf(" at %d of %d keys", st.Progress.Done, st.Progress.Total)
	}
	if st.Error != nil {
		s += fmt.Sprintf(" (%s: %s)", st.Error.Code, st.Error.Message)
	}
	return s
}

func (r *crashRegion) jobStatus(statusURL string) (jobStatus, error) {
	code, body, err := r.send("GET", statusURL, nil)
	if err != nil {
		return jobStatus{}, err
	}
	if code != 200 {
		return jobStatus{}, fmt.Errorf("status %s: %d %s", statusURL, code, body)
	}
	var st jobStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return jobStatus{}, fmt.Errorf("status %s: %v: %s", statusURL, err, body)
	}
	return st, nil
}

// killWhen polls a job every few milliseconds and kills the child with
// SIGKILL as soon as midway says the job is in the middle of its work. It
// reports false if the job ended first.
func (r *crashRegion) killWhen(statusURL string, midway func(jobStatus) bool) bool {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		st, err := r.jobStatus(statusURL)
		if err != nil {
			r.t.Fatal(err)
		}
		if st.Status != wire.JobInProgress {
			r.t.Logf("the job ended before the kill: %v", st)
			return false
		}
		if midway(st) {
			r.kill()
			r.t.Logf("killed the server mid-job: %v", st)
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	r.t.Fatalf("job %s was never caught mid-way in a minute", statusURL)
	return false
}

// wantInterrupted checks that a job killed with the server is Failed after
// the restart, with the error saying it was interrupted.
func (r *crashRegion) wantInterrupted(statusURL string) {
	r.t.Helper()
	st, err := r.jobStatus(statusURL)
	if err != nil {
		r.t.Fatal(err)
	}
	if st.Status != wire.JobFailed || st.Error == nil || !strings.Contains(st.Error.Message, "interrupted") {
		r.t.Fatalf("the killed job after the restart: %v, want Failed as interrupted", st)
	}
}

// wantWritable creates a key: the data plane of name serves writes.
func (r *crashRegion) wantWritable(name, key string) {
	r.t.Helper()
	r.names[key] = true
	code, body, err := r.send("POST", r.d.url(name, "/keys/"+key+"/create"), map[string]string{"kty": "EC-HSM", "crv": "P-256"})
	if err != nil || code != 200 {
		r.t.Fatalf("create key %s: %d %s %v", key, code, body, err)
	}
}

// crashKeys is how many keys the crash tests seed; a second attempt, when
// the machine finished the job before the kill, seeds as many again.
const crashKeys = 3000

func TestCrashDuringRestore(t *testing.T) {
	t.Parallel()
	r := newCrashRegion(t)
	r.start()
	const name = "crashrestore"
	r.d.create(name)
	r.d.activate(name, "sd1", "sd2", "sd3")

	var statusURL, folder string
	var before httpState
	for attempt := 1; ; attempt++ {
		r.seed(name, fmt.Sprintf("k%d", attempt), crashKeys)
		// The backup is both what the restore brings back and the
		// rollback point a full restore requires.
		t0 := time.Now()
		folder = r.d.backup(name, r.dest())
		r.since(t0, "backed up")
		folder = folder[strings.LastIndex(folder, "/")+1:]

		// Changes that the restore would undo: new keys, a deleted key, a
		// role assignment.
		for i := range 3 {
			r.wantWritable(name, fmt.Sprintf("after-%d-%d", attempt, i))
		}
		if code, body, err := r.send("DELETE", r.d.url(name, fmt.Sprintf("/keys/k%d-7", attempt)), nil); err != nil || code != 200 {
			t.Fatalf("delete: %d %s %v", code, body, err)
		}
		assign(t, r.d.c, r.d.hsm, name, "/keys", "21dbd100-6940-42c2-9190-5d6cb909625b", r.s.ObjectID)
		before = r.state(name)

		statusURL = r.d.start("PUT", r.d.url(name, "/restore"), wire.RestoreOperationParameters{SASTokenParameters: r.dest(), FolderToRestore: folder})
		// Mid-way: the job has read the manifest (it sets the total) and
		// staged the instance (its data plane answers 503).
		if r.killWhen(statusURL, func(st jobStatus) bool {
			if st.Progress == nil || st.Progress.Total == 0 {
				return false
			}
			code, _, err := r.send("GET", r.d.url(name, "/settings"), nil)
			return err == nil && code == http.StatusServiceUnavailable
		}) {
			break
		}
		if attempt == 2 {
			t.Fatal("the restore finished before the kill twice, with the keys seeded twice: this machine is too fast for the test; seed more keys")
		}
	}

	r.start()
	r.wantInterrupted(statusURL)
	if diff := diffHTTPState(before, r.state(name)); diff != "" {
		t.Fatalf("the killed restore changed the instance:\n%s", diff)
	}
	r.wantWritable(name, "after-restart")

	// Nothing of the killed restore is left in the way: the same restore
	// runs to its end now (the new key goes with it).
	t0 := time.Now()
	end := r.d.restore(name, r.dest(), folder)
	r.since(t0, "restored")
	if end["status"] != wire.JobSucceeded {
		t.Fatalf("the restore after the restart: %v", end)
	}
	if code, body, _ := r.send("GET", r.d.url(name, "/keys/after-restart"), nil); code != 404 {
		t.Fatalf("after the second restore, a key made after the backup: %d %s", code, body)
	}
}

func TestCrashDuringBackup(t *testing.T) {
	t.Parallel()
	r := newCrashRegion(t)
	r.start()
	const name = "crashbackup"
	r.d.create(name)
	r.d.activate(name, "sd1", "sd2", "sd3")
	container := filepath.Join(r.backupDir, "c")

	var statusURL, folder string
	for attempt := 1; ; attempt++ {
		r.seed(name, fmt.Sprintf("k%d", attempt), crashKeys)
		statusURL = r.d.start("POST", r.d.url(name, "/backup"), r.dest())
		// Mid-way: the job runs and has written a keys object, but not the
		// manifest (written last).
		if r.killWhen(statusURL, func(st jobStatus) bool {
			if st.Progress == nil || st.Progress.Done >= st.Progress.Total {
				return false
			}
			folder = partialFolder(t, container)
			return folder != ""
		}) {
			break
		}
		if attempt == 2 {
			t.Fatal("the backup finished before the kill twice, with the keys seeded twice: this machine is too fast for the test; seed more keys")
		}
	}

	r.start()
	r.wantInterrupted(statusURL)
	if _, err := os.Stat(filepath.Join(container, folder, "manifest")); !os.IsNotExist(err) {
		t.Fatalf("the killed backup's folder %s has a manifest (%v)", folder, err)
	}
	r.wantWritable(name, "after-restart")

	// A full restore needs a rollback point: a backup after the restart
	// works (the killed one holds no lock) and gives one.
	r.d.backup(name, r.dest())
	end := r.d.restore(name, r.dest(), folder)
	msg := fmt.Sprint(end["error"])
	if end["status"] != wire.JobFailed || !strings.Contains(msg, "incomplete") {
		t.Fatalf("a restore of the killed backup's folder %s: %v, want Failed as incomplete", folder, end)
	}
	t.Logf("the restore of the incomplete folder: %s", msg)
}

// partialFolder returns a backup folder in container that holds a keys
// object and no manifest ("" if there is none).
func partialFolder(t *testing.T, container string) string {
	entries, err := os.ReadDir(container)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "mhsm-") {
			continue
		}
		dir := filepath.Join(container, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "manifest")); err == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "keys-000001")); err == nil {
			return e.Name()
		}
	}
	return ""
}
