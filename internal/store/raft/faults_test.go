package raft

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"tresor/internal/store"
)

// network routes each node's dials through a proxy per (node, peer), so a
// test can cut a node off in both directions.
type network struct {
	t       testing.TB
	mu      sync.Mutex
	closed  bool
	proxies map[[2]string]*proxy // (from id, to address)
	cutIDs  map[string]bool
	cutAddr map[string]bool
}

func newNetwork(t testing.TB) *network {
	n := &network{t: t, proxies: map[[2]string]*proxy{}, cutIDs: map[string]bool{}, cutAddr: map[string]bool{}}
	t.Cleanup(func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.closed = true
		for _, p := range n.proxies {
			p.ln.Close()
			p.block()
		}
	})
	return n
}

func (n *network) dial(from, to string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return "127.0.0.1:1"
	}
	key := [2]string{from, to}
	p, ok := n.proxies[key]
	if !ok {
		p = newProxy(to)
		if n.cutIDs[from] || n.cutAddr[to] {
			p.block()
		}
		n.proxies[key] = p
	}
	return p.addr()
}

// cut drops all traffic to and from nd (and heal restores it).
func (n *network) cut(nd *node, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cutIDs[nd.id], n.cutAddr[nd.addr] = cut, cut
	for key, p := range n.proxies {
		if key[0] == nd.id || key[1] == nd.addr {
			if cut {
				p.block()
			} else {
				p.heal()
			}
		}
	}
}

// writer keeps writing distinct keys through the given stores and records
// the acknowledged ones.
type writer struct {
	mu    sync.Mutex
	acked map[string]string
	wg    sync.WaitGroup
	stop  chan struct{}
}

func startWriters(stores []*Store, n int) *writer {
	w := &writer{acked: map[string]string{}, stop: make(chan struct{})}
	for i := range n {
		w.wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-w.stop:
					return
				default:
				}
				s := stores[(i+seq)%len(stores)]
				k, v := fmt.Sprintf("w%d-%d", i, seq), strconv.Itoa(seq)
				if err := put(s, k, v); err == nil {
					w.mu.Lock()
					w.acked[k] = v
					w.mu.Unlock()
				}
			}
		})
	}
	return w
}

func (w *writer) finish() map[string]string {
	close(w.stop)
	w.wg.Wait()
	return w.acked
}

// checkAll fails unless every key of want reads its value on nd.
func checkAll(t *testing.T, nd *node, want map[string]string) {
	t.Helper()
	missing := 0
	err := nd.s.View(context.Background(), func(r store.Reader) error {
		for k, v := range want {
			if got, err := r.RegionValue(k); err != nil || string(got) != v {
				missing++
				if missing < 5 {
					t.Errorf("%s: %s = %q, %v; want %q", nd.id, k, got, err, v)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View on %s: %v", nd.id, err)
	}
	if missing > 0 {
		t.Fatalf("%s misses %d of %d acknowledged writes", nd.id, missing, len(want))
	}
}

// TestLeaderFailover: the leader closes under a write load; a new leader
// is elected, every acknowledged write is on the survivors, and the old
// leader, reopened over its Bolt and Dir, catches up.
func TestLeaderFailover(t *testing.T) {
	c := newCluster(t, 3, fast)
	stores := []*Store{c.nodes[0].s, c.nodes[1].s, c.nodes[2].s}
	w := startWriters(stores, 4)
	time.Sleep(500 * time.Millisecond)
	old := c.leader()
	c.stop(old)
	time.Sleep(time.Second)
	acked := w.finish()
	if len(acked) < 5 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	if l := c.leader(); l == old {
		t.Fatal("the closed node is still the leader")
	}
	c.waitConverged()
	for _, nd := range c.running() {
		checkAll(t, nd, acked)
	}
	after := 0
	for k := range acked {
		if err := getKeyOnBolt(old.bolt, k); err != nil {
			after++
		}
	}
	if after == 0 {
		t.Log("no write was acknowledged after the leader closed")
	}
	c.start(old, false)
	c.waitConverged()
	checkAll(t, old, acked)
}

func getKeyOnBolt(b *store.Bolt, key string) error {
	_, err := get(b, key)
	return err
}

// TestPartition: a follower cut off from the others refuses View with
// ErrUnavailable within the lease (plus a margin), refuses writes, and
// serves again, caught up, once the link returns.
func TestPartition(t *testing.T) {
	net := newNetwork(t)
	c := startCluster(&cluster{t: t, timing: fast, dialer: net.dial}, 3)
	x := c.follower()
	mustPut(t, c.leader().s, "before", "1")
	c.waitConverged()
	if v, err := get(x.s, "before"); err != nil || v != "1" {
		t.Fatalf("before the cut: %q, %v", v, err)
	}

	net.cut(x, true)
	cut := time.Now()
	for {
		_, err := get(x.s, "before")
		if errors.Is(err, store.ErrUnavailable) {
			break
		}
		if err != nil {
			t.Fatalf("View on the cut node: %v, want nil or ErrUnavailable", err)
		}
		if time.Since(cut) > fast.lease+time.Second {
			t.Fatalf("the cut node still serves %s after the cut (lease %s)", time.Since(cut), fast.lease)
		}
		time.Sleep(10 * time.Millisecond)
	}
	refused := time.Since(cut)
	t.Logf("the cut node refused reads %s after the cut (lease %s)", refused, fast.lease)
	if refused < fast.lease/2 {
		t.Errorf("the cut node refused reads after %s, before its lease (%s) could have run out", refused, fast.lease)
	}
	if err := x.s.Healthy(); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Healthy on the cut node: %v, want ErrUnavailable", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err := x.s.Apply(ctx, store.PutRegionValue{Key: "x", Value: []byte("x")})
	cancel()
	if !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Apply on the cut node: %v, want ErrUnavailable", err)
	}
	for i := range 10 {
		mustPut(t, c.leader().s, fmt.Sprint("during", i), "2")
	}

	net.cut(x, false)
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, err := get(x.s, "during9")
		if err == nil && v == "2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the heal: %q, %v", v, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := x.s.Healthy(); err != nil {
		t.Errorf("Healthy after the heal: %v", err)
	}
}

// snapshotting is a timing that snapshots and truncates the log often.
var snapshotting = func() timing {
	tm := fast
	tm.snapshotThreshold, tm.trailingLogs, tm.snapshotInterval = 16, 8, 100*time.Millisecond
	return tm
}()

// waitTruncated waits until nd has a snapshot and its log no longer starts
// at 1, so that a node without state can only catch up from a snapshot.
func waitTruncated(t *testing.T, nd *node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		first, err := nd.s.logs.FirstIndex()
		if err != nil {
			t.Fatal(err)
		}
		if first > 1 && nd.s.raft.Stats()["last_snapshot_index"] != "0" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no snapshot and truncated log within 10s (first index %d)", nd.id, first)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRejoinFromSnapshot: a node whose Bolt and Dir are deleted rejoins
// and catches up from a snapshot (InstallSnapshot), with the same id and
// after being removed and added again.
func TestRejoinFromSnapshot(t *testing.T) {
	for name, remove := range map[string]bool{"same id": false, "removed and added": true} {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, 3, snapshotting)
			x := c.follower()
			c.wipe(x)
			l := c.leader()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if remove {
				c.onLeader(func(s *Store) error { return s.RemoveServer(ctx, x.id) })
			}
			want := map[string]string{}
			for i := range 60 {
				k, v := fmt.Sprint("k", i), fmt.Sprint("v", i)
				mustPut(t, l.s, k, v)
				want[k] = v
			}
			for _, nd := range c.running() { // whichever leads then
				waitTruncated(t, nd)
			}
			c.start(x, false)
			if remove {
				c.onLeader(func(s *Store) error { return s.AddVoter(ctx, x.id, x.addr) })
			}
			c.waitConverged()
			if got := x.s.raft.Stats()["last_snapshot_index"]; got == "0" {
				t.Errorf("the rejoined node has no snapshot: it did not catch up from one")
			}
			checkAll(t, x, want)
			ms, err := l.s.Members(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if !m.Reachable || !m.Voter {
					t.Errorf("member %+v after the rejoin", m)
				}
			}
		})
	}
}

// TestClusterRestart: every node closed (Store and Bolt) and reopened:
// everything is there, on every node, including what snapshots hold.
func TestClusterRestart(t *testing.T) {
	c := newCluster(t, 3, snapshotting)
	want := map[string]string{}
	for i := range 60 {
		k, v := fmt.Sprint("k", i), fmt.Sprint("v", i)
		mustPut(t, c.nodes[i%3].s, k, v)
		want[k] = v
	}
	c.waitConverged()
	for _, nd := range c.nodes {
		waitTruncated(t, nd)
	}
	for _, nd := range c.nodes {
		c.stop(nd)
		if err := nd.bolt.Close(); err != nil {
			t.Fatal(err)
		}
		nd.bolt = nil
	}
	for i, nd := range c.nodes {
		c.start(nd, i == 0) // Bootstrap is ignored over existing state
	}
	c.leader()
	c.waitConverged()
	for _, nd := range c.nodes {
		checkAll(t, nd, want)
	}
	mustPut(t, c.follower().s, "after", "1")
}
