// Package throttle implements the rate limits of a region: a token
// [Bucket], a [Limiter] that keeps one bucket per key (client address,
// client id, principal), and a [Backoff] that refuses a key for a growing
// time after repeated failures (failed sign-ins of one client id).
//
// Every method takes the current time, so tests drive them with a fake
// clock; none of them sleeps. Limiters and backoffs keep at most a bounded
// number of keys (see [MaxKeys]): a bucket that has filled up again is
// forgotten, which changes nothing; only a flood of more distinct active
// keys than the bound makes some of them start afresh.
package throttle

import (
	"math"
	"sync"
	"time"
)

// MaxKeys is how many keys a [Limiter] or a [Backoff] keeps.
const MaxKeys = 20000

// Bucket is a token bucket: it holds at most Burst tokens, gains Rate
// tokens a second, and each allowed event takes one. The zero value is not
// usable; use [NewBucket]. A Bucket is not safe for concurrent use.
type Bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

// NewBucket returns a full bucket. rate must be positive and burst at
// least 1.
func NewBucket(rate float64, burst int) *Bucket {
	if !(rate > 0) || burst < 1 {
		panic("throttle: NewBucket needs a positive rate and a burst of at least 1")
	}
	return &Bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

func (b *Bucket) refill(now time.Time) {
	if !b.last.IsZero() {
		if d := now.Sub(b.last).Seconds(); d > 0 {
			b.tokens = math.Min(b.burst, b.tokens+d*b.rate)
		}
	}
	if now.After(b.last) {
		b.last = now
	}
}

// Take takes a token if there is one. Otherwise it returns false and how
// long until the next token; a refused event takes nothing.
func (b *Bucket) Take(now time.Time) (bool, time.Duration) {
	b.refill(now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	return false, max(wait, time.Nanosecond)
}

// full tells whether the bucket has refilled, so that forgetting it
// changes nothing.
func (b *Bucket) full(now time.Time) bool {
	b.refill(now)
	return b.tokens >= b.burst
}

// Limiter keeps a [Bucket] per key. A nil *Limiter allows everything. It
// is safe for concurrent use.
type Limiter struct {
	rate  float64
	burst int

	mu      sync.Mutex
	buckets map[string]*Bucket
}

// NewLimiter returns a limiter of rate events a second per key with bursts
// of burst (at least 1; 0 means twice the rate, rounded up). A rate of 0
// or less means no limit: it returns nil.
func NewLimiter(rate float64, burst int) *Limiter {
	if !(rate > 0) {
		return nil
	}
	if burst < 1 {
		burst = max(1, int(math.Ceil(2*rate)))
	}
	return &Limiter{rate: rate, burst: burst, buckets: map[string]*Bucket{}}
}

// Allow takes a token of key's bucket; when there is none it returns false
// and how long until there is.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= MaxKeys {
			l.sweep(now)
		}
		b = NewBucket(l.rate, l.burst)
		l.buckets[key] = b
	}
	return b.Take(now)
}

// Len returns how many keys the limiter keeps.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// sweep forgets full buckets and, if that is not enough, arbitrary ones
// until a quarter of the room is free.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.full(now) {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < MaxKeys*3/4 {
			break
		}
		delete(l.buckets, k)
	}
}

// BackoffConfig configures a [Backoff].
type BackoffConfig struct {
	// Threshold failures within Window block the key.
	Threshold int
	// Window: failures further apart than this start the count afresh.
	Window time.Duration
	// Base is the first block; every further failure doubles it, up to Max.
	Base, Max time.Duration
}

// Backoff counts failures per key and blocks a key for a growing time
// once it has failed often: the Threshold-th failure within Window blocks
// it for Base, every further failure for twice as long as the one before
// (at most Max); a success, or a quiet Window, forgets the key. It is safe
// for concurrent use.
type Backoff struct {
	cfg BackoffConfig

	mu sync.Mutex
	m  map[string]*failures
}

type failures struct {
	count int
	last  time.Time // of the last failure
	until time.Time // blocked until
}

// NewBackoff returns a Backoff. It panics on a config without a positive
// threshold, window, base and max.
func NewBackoff(cfg BackoffConfig) *Backoff {
	if cfg.Threshold < 1 || cfg.Window <= 0 || cfg.Base <= 0 || cfg.Max < cfg.Base {
		panic("throttle: invalid BackoffConfig")
	}
	return &Backoff{cfg: cfg, m: map[string]*failures{}}
}

// Blocked returns how long key stays blocked (false when it is not).
func (b *Backoff) Blocked(key string, now time.Time) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.m[key]
	if f == nil || !now.Before(f.until) {
		return 0, false
	}
	return f.until.Sub(now), true
}

// Fail records a failure of key and returns how long key is now blocked
// (0 when it is not).
func (b *Backoff) Fail(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.m[key]
	if f != nil && b.stale(f, now) {
		f = nil
	}
	if f == nil {
		if len(b.m) >= MaxKeys {
			b.sweep(now)
		}
		f = &failures{}
		b.m[key] = f
	}
	f.count++
	f.last = now
	if f.count < b.cfg.Threshold {
		return 0
	}
	d := b.cfg.Max
	if n := f.count - b.cfg.Threshold; n < 30 {
		d = min(b.cfg.Max, b.cfg.Base<<n)
	}
	f.until = now.Add(d)
	return d
}

// Succeed forgets key's failures.
func (b *Backoff) Succeed(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, key)
}

// stale tells whether f's failures are forgotten: a Window has passed
// since the last one and since its block ended.
func (b *Backoff) stale(f *failures, now time.Time) bool {
	return now.Sub(f.last) > b.cfg.Window && now.Sub(f.until) > b.cfg.Window
}

func (b *Backoff) sweep(now time.Time) {
	for k, f := range b.m {
		if b.stale(f, now) {
			delete(b.m, k)
		}
	}
	for k := range b.m {
		if len(b.m) < MaxKeys*3/4 {
			break
		}
		delete(b.m, k)
	}
}

// RetryAfter is d in whole seconds, rounded up, at least 1: the value of a
// Retry-After header.
func RetryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
