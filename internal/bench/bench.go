// Package bench implements the measuring side of `tresor bench`: a
// closed-loop load generator ([Run]) that drives any operation at a fixed
// concurrency for a fixed duration and reports its rate and latency
// percentiles, the workloads of each key type and operation ([NewKey],
// [Key.Workload]) with their in-process crypto and the minimal JSON a bare
// HTTPS server answers with, and the reports ([Row], [WriteTable],
// [WriteSVG]).
//
// The package speaks no HTTP: the command in package cli sends the
// requests a [Workload] describes to a Tresor region and to a bare server,
// and hands [Run] the function that does one. Keeping the generator free
// of transport code lets the in-process crypto ceiling and both HTTPS runs
// share one loop, so that their numbers differ by what was measured only.
//
// # Measurement
//
// [Run] starts Concurrency workers; each calls the operation again as soon
// as the previous call returned (a closed loop, as a keep-alive client
// with that many connections does), first for the warm-up, then for
// Duration, the counting window. The calls that end inside the window
// count, whenever they began; calls still in flight when it closes are
// waited for but not counted. The rate is the counted calls divided by the
// window; latencies are exact (every counted call is recorded) and
// percentiles are nearest-rank ([Percentile]).
package bench

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one call of the operation under test. worker is the index of the
// calling worker (0 to Concurrency-1), for operations that keep state per
// worker. A non-nil error counts as an error and its latency is not
// recorded.
type Op func(ctx context.Context, worker int) error

// Config says how long and how hard [Run] drives an operation.
type Config struct {
	// Concurrency is the number of workers (at least 1).
	Concurrency int
	// Duration is how long calls are counted.
	Duration time.Duration
	// Warmup is how long the workers call the operation before counting
	// starts (0: none): it opens connections and warms caches.
	Warmup time.Duration
	// Progress, if not nil, is called about every ProgressEvery (default
	// 500 ms) while calls are counted, with the calls and errors so far
	// and the time since counting started.
	Progress      func(ops, errors int64, elapsed time.Duration)
	ProgressEvery time.Duration // see Progress
}

// Result is what [Run] measured.
type Result struct {
	Ops       int64         // calls that succeeded while counting
	Errors    int64         // calls that failed while counting
	Elapsed   time.Duration // the counting window: from its start until Run stopped counting
	OpsPerSec float64       // Ops / Elapsed
	P50       time.Duration // latency percentiles of the successful calls
	P90       time.Duration
	P99       time.Duration
	Max       time.Duration
	// FirstError is the first error seen while counting, if any.
	FirstError error
}

// Run drives op as cfg says and returns what it measured. It stops early,
// with what it has, when ctx ends.
func Run(ctx context.Context, cfg Config, op Op) Result {
	n := max(cfg.Concurrency, 1)
	every := cfg.ProgressEvery
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	var (
		counting atomic.Bool
		stop     atomic.Bool
		ops      atomic.Int64
		errs     atomic.Int64
		firstMu  sync.Mutex
		first    error
		wg       sync.WaitGroup
	)
	lats := make([][]time.Duration, n)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1024)
			for !stop.Load() && ctx.Err() == nil {
				t0 := time.Now()
				err := op(ctx, w)
				d := time.Since(t0)
				// A call counts if it ended in the window (not a call
				// the end of the window caught in flight).
				if !counting.Load() || stop.Load() {
					continue
				}
				if err != nil {
					if errs.Add(1) == 1 {
						firstMu.Lock()
						first = err
						firstMu.Unlock()
					}
					continue
				}
				ops.Add(1)
				mine = append(mine, d)
			}
			lats[w] = mine
		}()
	}
	sleep(ctx, cfg.Warmup)
	start := time.Now()
	counting.Store(true)
	deadline := time.NewTimer(cfg.Duration)
	tick := time.NewTicker(every)
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-deadline.C:
			break wait
		case <-tick.C:
			if cfg.Progress != nil {
				cfg.Progress(ops.Load(), errs.Load(), time.Since(start))
			}
		}
	}
	tick.Stop()
	deadline.Stop()
	stop.Store(true)
	elapsed := time.Since(start)
	wg.Wait()
	r := Result{Ops: ops.Load(), Errors: errs.Load(), Elapsed: elapsed, FirstError: first}
	if r.Elapsed > 0 {
		r.OpsPerSec = float64(r.Ops) / r.Elapsed.Seconds()
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	r.P50, r.P90, r.P99 = Percentile(all, 50), Percentile(all, 90), Percentile(all, 99)
	if len(all) > 0 {
		r.Max = all[len(all)-1]
	}
	return r
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted, a slice in ascending order: the smallest value that at least p
// percent of the values are at most. It returns 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
