package cli

import (
	"context"
	"crypto/fips140"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"tresor/internal/bench"
	"tresor/internal/client"
	"tresor/internal/wire"
)

// benchFlags are the flags of tresor bench.
type benchFlags struct {
	dev         bool
	hsmName     string
	ops         []string
	keys        []string
	concurrency []int
	duration    time.Duration
	json        bool
	svg         string
	admin       bool
	adminKeys   int
	cpuprofile  string
}

// benchPlan is what the flags ask for, checked.
type benchPlan struct {
	specs []bench.KeySpec
	ops   []string // bench.Ops in order, and bench.OpEmpty if asked
	conc  []int
}

func (a *app) benchCommand() *cobra.Command {
	var fl benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a region's key operations against the machine's own ceilings",
		Long: `Measure key operations over HTTPS with real tokens and keep-alive: for each
key type and operation, for --duration at each --concurrency (one connection
per concurrent caller, HTTP/1.1), the rate, latency percentiles and errors.

In the same run it measures two ceilings for each: the same operation in
this process with Go's crypto on all cores, and a bare Go HTTPS server (no
auth, no store, minimal JSON; a child process) doing the same operation on
the same key, driven by the same client at the same concurrency. The table
gives Tresor's rate as a fraction of each; --json gives rows with key, op,
concurrency, opsPerSec, p50Ms, p99Ms, errors, cryptoCeilingOpsPerSec,
httpsCeilingOpsPerSec and ratio (opsPerSec / httpsCeilingOpsPerSec). The
"empty" row is the bare server's empty request, the floor of any HTTPS
request with this client (it has no Tresor side: its opsPerSec is the bare
server's).

--dev starts a region of its own ('tresor server --dev' as a child process
on a temporary directory, with the rate, connection and key-count limits
off), creates and activates an HSM and removes everything at the end. With
--hsm-name it uses that HSM of the signed-in region: the principal needs
Managed HSM Crypto User there, and the HSM keeps the imported keys bench-*
(and their bench-*-new versions from create).

Keys: RSA-2048, RSA-3072, RSA-4096 (sign RS256, encrypt and wrap
RSA-OAEP-256 of 32 bytes), P-256, P-384, P-521, P-256K (sign ES256,
ES384, ES512, ES256K), AES-128-GCM, AES-256-GCM, AES-128-CBC, AES-256-CBC
(encrypt 1 KiB), AES-128-KW, AES-256-KW (wrap a 256-bit key). Operations:
create, get, sign, verify, encrypt, decrypt, wrap, unwrap, empty.

--admin (with --dev) measures the admin path instead: the create-key rate
of each --keys type, the security-domain download, backup and restore of
--admin-keys keys into the region's file:// directory, and the server's
memory per 10,000 keys.`,
		Example: `  tresor bench --dev --ops sign --keys RSA-2048,P-256 --concurrency 16 --duration 10s
  tresor bench --dev --json --svg bench.svg
  tresor bench --hsm-name ContosoMHSM --ops get,sign --keys P-256
  tresor bench --dev --admin --keys RSA-2048,P-256,AES-256-GCM`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := fl.check(cmd)
			if err != nil {
				return err
			}
			return a.runBench(cmd.Context(), fl, plan)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&fl.dev, "dev", false, "start a region of its own (tresor server --dev, a child process on a temporary directory)")
	f.StringVar(&fl.hsmName, "hsm-name", "", "the HSM of the signed-in region to measure (instead of --dev)")
	f.StringSliceVar(&fl.ops, "ops", nil, "operations, comma-separated (default: all, and empty)")
	f.StringSliceVar(&fl.keys, "keys", nil, "key types, comma-separated (default: all)")
	f.IntSliceVar(&fl.concurrency, "concurrency", []int{1, 16, 64}, "concurrent callers (connections), comma-separated")
	f.DurationVar(&fl.duration, "duration", 5*time.Second, "how long each measurement counts")
	f.BoolVar(&fl.json, "json", false, "print the rows as JSON instead of a table")
	f.StringVar(&fl.svg, "svg", "", "write a bar chart of ops/s per operation, with both ceilings marked, to this file")
	f.BoolVar(&fl.admin, "admin", false, "measure the admin path (with --dev): create-key rates, security-domain download, backup, restore, memory")
	f.IntVar(&fl.adminKeys, "admin-keys", 5000, "keys to back up and restore with --admin")
	f.StringVar(&fl.cpuprofile, "cpuprofile", "", "with --dev: write the region's CPU profile of each Tresor measurement to {this}-{key}-{op}-c{concurrency}.pprof (the region serves /debug/pprof on its admin listener, --pprof)")
	cmd.AddCommand(a.bareServerCommand())
	return cmd
}

// check validates the flags and returns the plan.
func (fl *benchFlags) check(cmd *cobra.Command) (benchPlan, error) {
	var p benchPlan
	switch {
	case fl.dev && fl.hsmName != "":
		return p, usagef(cmd, "give --dev or --hsm-name, not both")
	case !fl.dev && fl.hsmName == "":
		return p, usagef(cmd, "--dev or --hsm-name is required")
	case fl.admin && !fl.dev:
		return p, usagef(cmd, "--admin needs --dev: it creates thousands of keys and a second HSM")
	case fl.cpuprofile != "" && !fl.dev:
		return p, usagef(cmd, "--cpuprofile needs --dev: it profiles the region bench starts")
	case fl.duration <= 0:
		return p, usagef(cmd, "--duration must be positive")
	case fl.adminKeys < 1:
		return p, usagef(cmd, "--admin-keys must be at least 1")
	}
	var err error
	if p.specs, err = parseBenchKeys(fl.keys); err != nil {
		return p, usagef(cmd, "--keys: %v", err)
	}
	if p.ops, err = parseBenchOps(fl.ops); err != nil {
		return p, usagef(cmd, "--ops: %v", err)
	}
	if p.conc, err = parseBenchConcurrency(fl.concurrency); err != nil {
		return p, usagef(cmd, "--concurrency: %v", err)
	}
	return p, nil
}

// parseBenchKeys resolves --keys (case-insensitive names; none: all),
// dropping duplicates and keeping the order of bench.KeySpecs.
func parseBenchKeys(names []string) ([]bench.KeySpec, error) {
	if len(names) == 0 {
		return slices.Clone(bench.KeySpecs), nil
	}
	want := map[string]bool{}
	for _, n := range names {
		s, ok := bench.LookupKeySpec(strings.TrimSpace(n))
		if !ok {
			var all []string
			for _, s := range bench.KeySpecs {
				all = append(all, s.Name)
			}
			return nil, fmt.Errorf("unknown key type %q: choose from %s", n, strings.Join(all, ", "))
		}
		want[s.Name] = true
	}
	var out []bench.KeySpec
	for _, s := range bench.KeySpecs {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// parseBenchOps resolves --ops (none: all and empty), in bench.Ops order
// with empty first.
func parseBenchOps(ops []string) ([]string, error) {
	all := append([]string{bench.OpEmpty}, bench.Ops...)
	if len(ops) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, o := range ops {
		o = strings.ToLower(strings.TrimSpace(o))
		if !slices.Contains(all, o) {
			return nil, fmt.Errorf("unknown operation %q: choose from %s", o, strings.Join(all, ", "))
		}
		want[o] = true
	}
	var out []string
	for _, o := range all {
		if want[o] {
			out = append(out, o)
		}
	}
	return out, nil
}

// maxBenchConcurrency bounds --concurrency (each is a connection).
const maxBenchConcurrency = 1024

// parseBenchConcurrency checks --concurrency: 1 to 1024 each, no
// duplicates, in the order given.
func parseBenchConcurrency(cs []int) ([]int, error) {
	if len(cs) == 0 {
		return nil, fmt.Errorf("give at least one")
	}
	var out []int
	for _, c := range cs {
		if c < 1 || c > maxBenchConcurrency {
			return nil, fmt.Errorf("%d is out of range: 1 to %d", c, maxBenchConcurrency)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// benchKeyName is the name a spec's key has in the HSM.
func benchKeyName(s bench.KeySpec) string { return "bench-" + strings.ToLower(s.Name) }

// benchRun is one run of tresor bench: where it measures and what it has.
type benchRun struct {
	a      *app
	fl     benchFlags
	plan   benchPlan
	c      *client.Client
	hsmURL string
	tresor target
	bare   *bareServer
	keys   map[string]*bench.Key // by spec name
	step   int
	steps  int
	tty    bool
	region *devRegion // with --dev
	sdTime time.Duration
	runID  string // in the names of the keys create makes
}

func (a *app) runBench(ctx context.Context, fl benchFlags, plan benchPlan) error {
	r := &benchRun{a: a, fl: fl, plan: plan, keys: map[string]*bench.Key{}, tty: isTerminal(a.env.Stderr), runID: randomLower(6)}
	if fips140.Enabled() {
		plan.specs = slices.DeleteFunc(plan.specs, func(s bench.KeySpec) bool {
			if s.Curve == "P-256K" {
				r.note("FIPS 140-3 mode: P-256K is not approved, left out")
				return true
			}
			return false
		})
		r.plan = plan
	}
	if err := r.connect(ctx); err != nil {
		return err
	}
	if r.region != nil {
		defer r.region.stop()
	}
	if fl.admin {
		return r.runAdmin(ctx)
	}
	if err := r.importKeys(ctx); err != nil {
		return err
	}
	var bk []bareKey
	for _, s := range r.plan.specs {
		bk = append(bk, bareKey{Spec: s.Name, Name: benchKeyName(s), JWK: r.keys[s.Name].JWK()})
	}
	bare, err := startBareServer(ctx, bk)
	if err != nil {
		return err
	}
	defer bare.stop()
	r.bare = bare
	rows, err := r.measure(ctx)
	if err != nil {
		return err
	}
	return r.report(rows)
}

// note prints a line on stderr (clearing a progress line first).
func (r *benchRun) note(format string, args ...any) {
	if r.tty {
		fmt.Fprint(r.a.env.Stderr, "\r\033[K")
	}
	fmt.Fprintf(r.a.env.Stderr, "tresor bench: "+format+"\n", args...)
}

// connect starts the dev region or signs in, and finds the HSM.
func (r *benchRun) connect(ctx context.Context) error {
	var cfg client.Config
	if r.fl.dev {
		r.note("starting tresor server --dev (a child process) …")
		var extra []string
		if r.fl.cpuprofile != "" || r.fl.admin {
			extra = append(extra, "--pprof") // profiles; --admin's heap after a collection
		}
		region, err := startDevRegion(ctx, extra...)
		if err != nil {
			return err
		}
		r.region = region
		cfg = region.cfg
	} else {
		var err error
		if cfg, err = r.a.clientConfig(); err != nil {
			return err
		}
	}
	c, err := client.New(cfg)
	if err != nil {
		return err
	}
	r.c = c
	if r.fl.dev {
		if r.hsmURL, r.sdTime, err = setupHSM(ctx, c, "bench"); err != nil {
			return err
		}
	} else if r.hsmURL, err = c.HSMURL(ctx, r.fl.hsmName); err != nil {
		return err
	}
	roots, err := readCAPool(cfg.CAFile)
	if err != nil {
		return err
	}
	dial, err := dialAddrFor(c.Server())
	if err != nil {
		return err
	}
	ts := &tokenSource{c: c}
	r.tresor = target{base: r.hsmURL, dial: dial, roots: roots, token: ts.token}
	if r.region != nil {
		r.tresor.pid = r.region.cmd.Process.Pid
	}
	return nil
}

// importKeys makes a key of each spec here and imports it.
func (r *benchRun) importKeys(ctx context.Context) error {
	hsm := true
	for _, s := range r.plan.specs {
		k, err := bench.NewKey(s)
		if err != nil {
			return err
		}
		j := k.JWK()
		if _, err := r.c.ImportKey(ctx, r.hsmURL, benchKeyName(s), wire.KeyImportParameters{Key: &j, HSM: &hsm}); err != nil {
			return fmt.Errorf("importing the %s key: %w", s.Name, err)
		}
		r.keys[s.Name] = k
	}
	return nil
}

// measure runs every cell: per key and operation the crypto ceiling once,
// then per concurrency Tresor and the bare server, one after the other.
func (r *benchRun) measure(ctx context.Context) ([]bench.Row, error) {
	type cell struct {
		spec bench.KeySpec
		op   string
	}
	var cells []cell
	for _, s := range r.plan.specs {
		for _, op := range r.plan.ops {
			if op != bench.OpEmpty && s.Supports(op) {
				cells = append(cells, cell{s, op})
			}
		}
	}
	emptyToo := slices.Contains(r.plan.ops, bench.OpEmpty)
	r.steps = len(cells) * (1 + 2*len(r.plan.conc))
	if emptyToo {
		r.steps += len(r.plan.conc)
	}
	bareTarget := target{base: "https://" + r.bare.addr, dial: r.bare.addr, roots: r.bare.roots, pid: r.bare.cmd.Process.Pid}
	var rows []bench.Row
	if emptyToo {
		w := bench.EmptyWorkload()
		for _, c := range r.plan.conc {
			res, cpu, err := r.runCPU(ctx, "bare", w, bareTarget, c)
			if err != nil {
				return nil, err
			}
			row := bench.NewRow(w.Key, w.Op, c, res, 0, res.OpsPerSec)
			row.BareCPUUs = cpu
			rows = append(rows, row)
		}
	}
	for _, cl := range cells {
		w, err := r.keys[cl.spec.Name].Workload(cl.op, benchKeyName(cl.spec))
		if err != nil {
			return nil, err
		}
		crypto := r.runLocal(ctx, w)
		if crypto.Errors > 0 {
			return nil, fmt.Errorf("%s %s in process: %v", w.Key, w.Op, crypto.FirstError)
		}
		for _, c := range r.plan.conc {
			tr, trCPU, err := r.runCPU(ctx, "tresor", w, r.tresor, c)
			if err != nil {
				return nil, err
			}
			bare, bareCPU, err := r.runCPU(ctx, "bare", w, bareTarget, c)
			if err != nil {
				return nil, err
			}
			if tr.Errors > 0 {
				r.note("%s %s c=%d: %d errors on Tresor, the first: %v", w.Key, w.Op, c, tr.Errors, tr.FirstError)
			}
			if bare.Errors > 0 {
				r.note("%s %s c=%d: %d errors on the bare server, the first: %v", w.Key, w.Op, c, bare.Errors, bare.FirstError)
			}
			row := bench.NewRow(w.Key, w.Op, c, tr, crypto.OpsPerSec, bare.OpsPerSec)
			row.ServerCPUUs, row.BareCPUUs = trCPU, bareCPU
			rows = append(rows, row)
		}
	}
	if r.tty {
		fmt.Fprint(r.a.env.Stderr, "\r\033[K")
	}
	return rows, ctx.Err()
}

// warmup is the part of --duration run before counting (at most 1 s).
func (r *benchRun) warmup() time.Duration { return min(r.fl.duration/5, time.Second) }

// runLocal measures the crypto ceiling of w: in process, one worker per core.
func (r *benchRun) runLocal(ctx context.Context, w *bench.Workload) bench.Result {
	r.step++
	label := fmt.Sprintf("%s %s in process (%d cores)", w.Key, w.Op, runtime.NumCPU())
	res := bench.Run(ctx, bench.Config{Concurrency: runtime.NumCPU(), Duration: r.fl.duration, Warmup: r.warmup(), Progress: r.progress(label)},
		func(context.Context, int) error { return w.Local() })
	r.done(label, res)
	return res
}

// done prints the line of a finished measurement when stderr is no
// terminal (on one, the progress line says it).
func (r *benchRun) done(label string, res bench.Result) {
	if !r.tty {
		fmt.Fprintf(r.a.env.Stderr, "[%d/%d] %s: %.0f ops/s, p50 %.2f ms, p99 %.2f ms, %d errors\n", r.step, r.steps, label,
			res.OpsPerSec, ms(res.P50), ms(res.P99), res.Errors)
	}
}

// run measures w on t at concurrency c with a fresh load client. Errors
// of single calls are counted in the result; only a client that cannot be
// built is an error.
func (r *benchRun) run(ctx context.Context, who string, w *bench.Workload, t target, c int) (bench.Result, error) {
	res, _, err := r.runCPU(ctx, who, w, t, c)
	return res, err
}

// runCPU is run that also returns the server's CPU time per successful
// call, in µs (0 when it cannot be read: no child, not Linux).
func (r *benchRun) runCPU(ctx context.Context, who string, w *bench.Workload, t target, c int) (bench.Result, float64, error) {
	r.step++
	l := newLoader(t, c, r.runID)
	defer l.close()
	label := fmt.Sprintf("%s %s c=%d %s", w.Key, w.Op, c, who)
	if who == "tresor" && r.fl.cpuprofile != "" && r.region != nil {
		file := fmt.Sprintf("%s-%s-%s-c%d.pprof", r.fl.cpuprofile, strings.ToLower(w.Key), w.Op, c)
		done := r.region.profile(ctx, r.fl.duration+r.warmup(), file)
		defer func() {
			if err := <-done; err != nil {
				r.note("CPU profile %s: %v", file, err)
			}
		}()
	}
	var cpu0 time.Duration
	var cpuErr error
	warm := r.warmup()
	cfg := bench.Config{Concurrency: c, Duration: r.fl.duration, Warmup: warm, Progress: r.progress(label)}
	if t.pid != 0 {
		cfg.Warmup = 0 // the warm-up runs here, so that the CPU count starts with the window
		bench.Run(ctx, bench.Config{Concurrency: c, Duration: warm}, l.op(w))
		cpu0, cpuErr = procCPU(t.pid)
	}
	res := bench.Run(ctx, cfg, l.op(w))
	var perOp float64
	if t.pid != 0 && cpuErr == nil && res.Ops > 0 {
		// The calls in flight when the window closed are waited for, so
		// their CPU is in; they are few beside the window's.
		if cpu1, err := procCPU(t.pid); err == nil {
			perOp = float64((cpu1 - cpu0).Microseconds()) / float64(res.Ops)
		}
	}
	r.done(label, res)
	return res, perOp, ctx.Err()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// progress returns the progress callback of one measurement: a line on
// stderr that rewrites itself on a terminal.
func (r *benchRun) progress(label string) func(ops, errs int64, elapsed time.Duration) {
	if !r.tty {
		return nil
	}
	return func(ops, errs int64, elapsed time.Duration) {
		fmt.Fprintf(r.a.env.Stderr, "\r\033[K[%d/%d] %s: %.1fs, %d ops, %.0f ops/s, %d errors",
			r.step, r.steps, label, elapsed.Seconds(), ops, float64(ops)/elapsed.Seconds(), errs)
	}
}

// report prints the rows (table or JSON) and writes the SVG.
func (r *benchRun) report(rows []bench.Row) error {
	out := r.a.env.Stdout
	if r.fl.json {
		if err := writeJSONRows(out, rows); err != nil {
			return err
		}
	} else {
		if err := bench.WriteTable(out, rows); err != nil {
			return err
		}
	}
	if r.fl.svg != "" {
		f, err := os.Create(r.fl.svg)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("tresor bench: ops/s per operation (%d cores, %s each)", runtime.NumCPU(), r.fl.duration)
		if err := bench.WriteSVG(f, title, rows); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return nil
}

func writeJSONRows(w io.Writer, rows []bench.Row) error {
	if rows == nil {
		rows = []bench.Row{}
	}
	b, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
