package throttle

import (
	"fmt"
	"testing"
	"time"

	"tresor/internal/pkgdoc"
)

func TestPackageDoc(t *testing.T) { pkgdoc.Check(t, ".") }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestBucket(t *testing.T) {
	type step struct {
		ms   int
		ok   bool
		wait time.Duration // when refused
	}
	tests := map[string]struct {
		rate  float64
		burst int
		steps []step
	}{
		"burst then refused": {rate: 1, burst: 3, steps: []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, false, time.Second},
		}},
		"refill at the rate": {rate: 2, burst: 1, steps: []step{
			{0, true, 0}, {100, false, 400 * time.Millisecond}, {500, true, 0}, {999, false, time.Millisecond}, {1000, true, 0},
		}},
		"refill stops at the burst": {rate: 10, burst: 2, steps: []step{
			{0, true, 0}, {0, true, 0}, {10000, true, 0}, {10000, true, 0}, {10000, false, 100 * time.Millisecond},
		}},
		"a refused event takes nothing": {rate: 1, burst: 1, steps: []step{
			{0, true, 0}, {500, false, 500 * time.Millisecond}, {600, false, 400 * time.Millisecond}, {1000, true, 0},
		}},
		"time going back refills nothing": {rate: 1, burst: 1, steps: []step{
			{5000, true, 0}, {1000, false, time.Second}, {5999, false, time.Millisecond},
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := NewBucket(tc.rate, tc.burst)
			for i, s := range tc.steps {
				ok, wait := b.Take(at(s.ms))
				if ok != s.ok || (!ok && (wait-s.wait > time.Microsecond || s.wait-wait > time.Microsecond)) {
					t.Fatalf("step %d at %dms: Take = %v, %v; want %v, %v", i, s.ms, ok, wait, s.ok, s.wait)
				}
			}
		})
	}
}

func TestLimiterKeysAreIndependent(t *testing.T) {
	l := NewLimiter(1, 2)
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.Allow("a", t0); ok != want {
			t.Fatalf("a #%d: %v, want %v", i, ok, want)
		}
	}
	if ok, _ := l.Allow("b", t0); !ok {
		t.Fatal("b refused because of a")
	}
	var none *Limiter
	if ok, _ := none.Allow("a", t0); !ok || NewLimiter(0, 5) != nil {
		t.Fatal("a nil limiter (rate 0) must allow everything")
	}
	if l := NewLimiter(0.5, 0); l.burst != 1 {
		t.Fatalf("default burst of rate 0.5: %d, want 1", l.burst)
	}
}

// TestLimiterBounded: a flood of distinct keys keeps the map bounded, and
// a key that is still limited keeps its state when only refilled buckets
// have to go.
func TestLimiterBounded(t *testing.T) {
	l := NewLimiter(1, 1)
	l.Allow("busy", at(0))
	for i := range MaxKeys + 10 {
		l.Allow(fmt.Sprint("k", i), at(5000)) // "busy" is full again by now
	}
	if n := l.Len(); n > MaxKeys {
		t.Fatalf("%d keys kept, want at most %d", n, MaxKeys)
	}
	l = NewLimiter(0.001, 1)
	l.Allow("busy", at(0))
	for i := range MaxKeys - 1 {
		l.Allow(fmt.Sprint("k", i), at(1))
	}
	// The map is full of limited buckets: the sweep must drop some but
	// stay bounded.
	l.Allow("new", at(2))
	if n := l.Len(); n > MaxKeys {
		t.Fatalf("%d keys kept, want at most %d", n, MaxKeys)
	}
}

func TestBackoff(t *testing.T) {
	cfg := BackoffConfig{Threshold: 3, Window: time.Minute, Base: time.Second, Max: 4 * time.Second}
	type step struct {
		ms      int
		op      string // "fail", "ok", "check"
		blocked time.Duration
	}
	tests := map[string][]step{
		"below the threshold": {
			{0, "fail", 0}, {10, "fail", 0}, {20, "check", 0},
		},
		"the threshold blocks, further failures double up to max": {
			{0, "fail", 0}, {0, "fail", 0}, {0, "fail", time.Second}, {500, "check", 500 * time.Millisecond},
			{1000, "check", 0}, {1000, "fail", 2 * time.Second}, {3000, "fail", 4 * time.Second}, {7000, "fail", 4 * time.Second},
			{10000, "check", time.Second},
		},
		"a success forgets": {
			{0, "fail", 0}, {0, "fail", 0}, {0, "ok", 0}, {0, "fail", 0}, {0, "fail", 0}, {0, "check", 0},
		},
		"a quiet window forgets": {
			{0, "fail", 0}, {0, "fail", 0}, {60001, "fail", 0}, {60002, "fail", 0}, {60003, "fail", time.Second},
		},
		"failures are remembered a window past the block's end": {
			{0, "fail", 0}, {0, "fail", 0}, {0, "fail", time.Second}, {0, "fail", 2 * time.Second},
			{0, "fail", 4 * time.Second}, {61000, "check", 0}, {61000, "fail", 4 * time.Second},
			{125001, "check", 0}, {125001, "fail", 0},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			b := NewBackoff(cfg)
			b.Fail("other", at(0))
			for i, s := range steps {
				var got time.Duration
				switch s.op {
				case "fail":
					got = b.Fail("k", at(s.ms))
				case "ok":
					b.Succeed("k")
				case "check":
					got, _ = b.Blocked("k", at(s.ms))
				}
				if got != s.blocked {
					t.Fatalf("step %d (%s at %dms): blocked %v, want %v", i, s.op, s.ms, got, s.blocked)
				}
			}
			if d, blocked := b.Blocked("other", at(0)); blocked {
				t.Fatalf("another key is blocked for %v", d)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, time.Minute: 60} {
		if got := RetryAfter(d); got != want {
			t.Errorf("RetryAfter(%v) = %d, want %d", d, got, want)
		}
	}
}
