package raft

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// The conformance suite wants a new, empty store for each of its ~300
// subtests. Starting a cluster takes a few hundred milliseconds, nearly all
// of it waiting for the first election, so clusters are built ahead in the
// background while subtests run.

// bgTB is the testing.TB of a cluster built in the background: Fatal ends
// the building goroutine with the error recorded; temporary directories
// and cleanups are kept for whoever takes the cluster.
type bgTB struct {
	testing.TB
	mu       sync.Mutex
	err      error
	cleanups []func()
	dirs     []string
}

func (b *bgTB) Helper() {}

func (b *bgTB) Fatalf(format string, args ...any) {
	b.Errorf(format, args...)
	runtime.Goexit()
}

func (b *bgTB) Fatal(args ...any) {
	b.Errorf("%s", fmt.Sprint(args...))
	runtime.Goexit()
}

func (b *bgTB) Errorf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = fmt.Errorf(format, args...)
	}
}

func (b *bgTB) TempDir() string {
	dir, err := os.MkdirTemp("", "raft-test-*")
	if err != nil {
		b.Fatal(err)
	}
	b.mu.Lock()
	b.dirs = append(b.dirs, dir)
	b.mu.Unlock()
	return dir
}

func (b *bgTB) Cleanup(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanups = append(b.cleanups, f)
}

// release runs the cleanups (last first) and removes the directories.
func (b *bgTB) release() {
	b.mu.Lock()
	cs, dirs := b.cleanups, b.dirs
	b.cleanups, b.dirs = nil, nil
	b.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	for _, d := range dirs {
		os.RemoveAll(d)
	}
}

type built struct {
	c   *cluster
	tb  *bgTB
	err error
}

// prebuilder builds n-node clusters ahead, workers at a time.
type prebuilder struct {
	ch   chan built
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	waited time.Duration // by take, for the log
}

func newPrebuilder(t *testing.T, n int, tm timing, ahead, workers int) *prebuilder {
	p := &prebuilder{ch: make(chan built, ahead), stop: make(chan struct{})}
	for range workers {
		p.wg.Go(func() {
			for {
				b := built{tb: &bgTB{TB: t}}
				done := make(chan struct{})
				go func() {
					defer close(done)
					b.c = newCluster(b.tb, n, tm)
				}()
				<-done
				b.err = b.tb.err
				select {
				case p.ch <- b:
				case <-p.stop:
					b.tb.release()
					return
				}
			}
		})
	}
	t.Cleanup(func() {
		t.Logf("waited %s for clusters", p.waited)
		close(p.stop)
		go func() {
			for b := range p.ch {
				b.tb.release()
			}
		}()
		p.wg.Wait()
		close(p.ch)
	})
	return p
}

// take returns a cluster for t, closed when t ends.
func (p *prebuilder) take(t *testing.T) *cluster {
	t.Helper()
	t0 := time.Now()
	b := <-p.ch
	p.mu.Lock()
	p.waited += time.Since(t0)
	p.mu.Unlock()
	t.Cleanup(b.tb.release)
	if b.err != nil {
		t.Fatalf("building a cluster: %v", b.err)
	}
	b.c.t = t
	return b.c
}
