package raft

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"tresor/internal/pkgdoc"
	"tresor/internal/store"
	"tresor/internal/store/storetest"
)

func TestPackageDoc(t *testing.T) { pkgdoc.Check(t, ".") }

// TestConformance runs the store suite on a 3-node cluster per subtest,
// through a follower and through the leader by turns.
func TestConformance(t *testing.T) {
	workers := 6
	if raceEnabled {
		workers = 3
	}
	clusters := newPrebuilder(t, 3, steady, workers, workers)
	n := 0
	storetest.Run(t, func(t *testing.T) store.Store {
		c := clusters.take(t)
		n++
		if n%2 == 0 {
			return c.leader().s
		}
		return c.follower().s
	})
}

// TestForwarding: a write through a follower is visible on that follower
// at once (read-your-writes), and store errors keep their sentinels across
// the link.
func TestForwarding(t *testing.T) {
	c := newCluster(t, 3, fast)
	f := c.follower().s
	for i := range 30 {
		v := fmt.Sprint("v", i)
		mustPut(t, f, "k", v)
		if got, err := get(f, "k"); err != nil || got != v {
			t.Fatalf("read after write %d: %q, %v; want %q", i, got, err, v)
		}
	}

	inst := store.Instance{Name: "hsm1", Subscription: "sub", ResourceGroup: "rg", Location: "loc", Epoch: 1, Properties: []byte("p"), WrappedRoot: []byte("r")}
	ctx := context.Background()
	if err := f.Apply(ctx, store.CreateInstance{Instance: inst}); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		cmd  store.Command
		want error
	}{
		"exists":           {store.CreateInstance{Instance: inst}, store.ErrExists},
		"if absent":        {store.PutRegionValue{Key: "k", Value: []byte("x"), IfAbsent: true}, store.ErrExists},
		"conflict":         {store.UpdateInstance{Name: "hsm1", Expect: 7, Properties: []byte("q")}, store.ErrConflict},
		"not found":        {store.DeleteInstance{Name: "nope", Expect: 1}, store.ErrNotFound},
		"principal absent": {store.DeletePrincipal{ObjectID: "nobody"}, store.ErrNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, nd := range []*node{c.follower(), c.leader()} {
				err := nd.s.Apply(ctx, tc.cmd)
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: Apply: %v, want %v", nd.id, err, tc.want)
				}
			}
		})
	}
	t.Run("invalid", func(t *testing.T) {
		err := f.Apply(ctx, store.PutRegionValue{Key: "", Value: []byte("x")})
		if err == nil || store.ErrorCode(err) != "" {
			t.Fatalf("Apply of an invalid command: %v, want a plain error", err)
		}
	})
	if got, err := get(f, "k"); err != nil || got != "v29" {
		t.Fatalf("k = %q, %v after refused commands", got, err)
	}
}

// TestMembers: every member is listed with its status, reachable, one
// leader; membership operations are refused on followers.
func TestMembers(t *testing.T) {
	c := newCluster(t, 3, fast)
	mustPut(t, c.follower().s, "k", "v")
	c.waitConverged()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l := c.leader()
	ms, err := c.follower().s.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("Members: %+v", ms)
	}
	leaders := 0
	for _, m := range ms {
		if !m.Reachable || !m.Voter || m.AppliedIndex != l.s.AppliedIndex() {
			t.Errorf("member %+v, want reachable voter at applied %d", m, l.s.AppliedIndex())
		}
		if m.Leader {
			leaders++
			if m.ID != l.id || m.LastContact != 0 {
				t.Errorf("leader member %+v, want %s with LastContact 0", m, l.id)
			}
		} else if m.LastContact < 0 || m.LastContact > time.Second {
			t.Errorf("follower member %+v: LastContact out of range", m)
		}
	}
	if leaders != 1 {
		t.Errorf("%d leaders in %+v", leaders, ms)
	}
	f := c.follower().s
	for name, err := range map[string]error{
		"AddVoter":           f.AddVoter(ctx, "x", "127.0.0.1:1"),
		"RemoveServer":       f.RemoveServer(ctx, "n0"),
		"TransferLeadership": f.TransferLeadership(ctx, ""),
	} {
		if !errors.Is(err, ErrNotLeader) || !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s on a follower: %v, want ErrNotLeader", name, err)
		}
	}
	// Idempotent AddVoter.
	for _, nd := range c.nodes {
		if err := l.s.AddVoter(ctx, nd.id, nd.addr); err != nil {
			t.Errorf("AddVoter of member %s: %v", nd.id, err)
		}
	}
	// An unreachable member.
	if err := l.s.AddVoter(ctx, "ghost", "127.0.0.1:1"); err == nil {
		ms, err := l.s.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.ID == "ghost" && m.Reachable {
				t.Errorf("ghost reachable: %+v", m)
			}
		}
		if err := l.s.RemoveServer(ctx, "ghost"); err != nil {
			t.Fatal(err)
		}
	}
}
