package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"tresor/internal/client"
	"tresor/internal/uuid"
	"tresor/internal/wire"
)

// TestCluster runs a region as three `tresor` processes and faults them
// as a data centre would: the leader SIGKILLed under a write load from
// several clients (every acknowledged write survives, and the history of
// one register is linearizable), a follower cut off from the others (it
// stops serving within its lease, a revoked role is refused on it within
// the bound docs/cluster.md states, and it catches up when the link
// returns), a node whose data directory is lost (it rejoins from a
// snapshot), and the whole cluster restarted.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	dir := t.TempDir()
	n1, n2, n3 := newNode(t, "n1"), newNode(t, "n2"), newNode(t, "n3")
	nodes := []*node{n1, n2, n3}
	n1.extra = []string{"--bootstrap"}
	n1.start()
	env := n1.devEnv()
	tenant := env["TRESOR_TENANT_ID"]
	admin := principalCred{clientID: env["TRESOR_CLIENT_ID"], secret: env["TRESOR_CLIENT_SECRET"]}
	acct, err := n1.client(tenant, admin).Account(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	admin.objectID = acct.ObjectID

	var tok wire.ClusterJoinToken
	mustJSON(t, n1.cli(tenant, admin, dir, "cluster", "join-token", "--ttl", "10m", "-o", "json"), &tok)
	if !strings.HasPrefix(tok.Token, "tresor-join.") {
		t.Fatalf("join token %q", tok.Token)
	}
	// A wrong token is refused, and the node says why.
	bad := newNode(t, "bad")
	bad.extra = []string{"--join", n1.endpoint(), "--join-ca-file", n1.caFile()}
	if out, err := startFails(bad, "TRESOR_JOIN_TOKEN=tresor-join.AAAA"); err == nil || !strings.Contains(out, "InvalidJoinToken") {
		t.Fatalf("a node with a wrong join token: err %v, log:\n%s", err, out)
	}
	for _, n := range []*node{n2, n3} {
		n.extra = []string{"--join", n1.endpoint(), "--join-ca-file", n1.caFile()}
		n.start("TRESOR_JOIN_TOKEN=" + tok.Token)
	}
	wantMembers(t, tenant, admin, n1, "n1", "n2", "n3")

	// An HSM, activated, with a principal p that may use keys.
	hsm := "contoso"
	custodians := newCustodians(t, dir, 3)
	n1.cli(tenant, admin, dir, "create", "--hsm-name", hsm, "--resource-group", "rg", "--administrators", admin.objectID, "-o", "none")
	n1.cli(tenant, admin, dir, "security-domain", "download", "--hsm-name", hsm, "--sd-wrapping-keys", custodians[0].cert, custodians[1].cert, custodians[2].cert,
		"--sd-quorum", "2", "--security-domain-file", filepath.Join(dir, "sd.json"), "-o", "none")
	// Through the node that took the writes: another node applies them a
	// heartbeat later (docs/cluster.md).
	n1.cli(tenant, admin, dir, "role", "assignment", "create", "--hsm-name", hsm, "--role", "Managed HSM Crypto Officer", "--assignee-object-id", admin.objectID, "--scope", "/", "-o", "none")
	n1.cli(tenant, admin, dir, "role", "assignment", "create", "--hsm-name", hsm, "--role", "Managed HSM Crypto User", "--assignee-object-id", admin.objectID, "--scope", "/", "-o", "none")
	var p wire.Principal
	mustJSON(t, n1.cli(tenant, admin, dir, "principal", "create", "--display-name", "p", "-o", "json"), &p)
	pc := principalCred{objectID: p.ObjectID, clientID: p.ClientID, secret: p.ClientSecret}
	var pa wire.RoleAssignment
	mustJSON(t, n1.cli(tenant, admin, dir, "role", "assignment", "create", "--hsm-name", hsm, "--role", "Managed HSM Crypto User", "--assignee-object-id", p.ObjectID, "--scope", "/", "-o", "json"), &pa)
	const cryptoUser = "21dbd100-6940-42c2-9190-5d6cb909625b" // Managed HSM Crypto User

	// Phase 1: SIGKILL the leader under load.
	w := newWorkload(t, tenant, admin, hsm, nodes, cryptoUser, p.ObjectID)
	leader := leaderOf(t, tenant, admin, nodes...)
	w.setLeader(leader)
	w.start(6)
	time.Sleep(3 * time.Second)
	leader.kill()
	t.Logf("killed the leader %s", leader.id)
	survivors := others(nodes, leader)
	newLeader := leaderOf(t, tenant, admin, survivors...)
	w.setLeader(newLeader)
	time.Sleep(3 * time.Second)
	w.stop()
	t.Logf("workload: %d key writes and %d role changes acknowledged, %d errors; %d register operations", w.acked(), len(w.roles), w.errs.Load(), len(w.history))
	if w.acked() < 20 {
		t.Fatalf("only %d writes acknowledged", w.acked())
	}
	for _, n := range survivors {
		w.verify(n)
	}
	w.checkLinearizable()
	leader.start()
	w.verify(leader)

	// Phase 2: a follower cut off. p signs in on it first.
	leader = leaderOf(t, tenant, admin, nodes...)
	cut := others(nodes, leader)[0]
	pOnCut := cut.client(tenant, pc)
	ctx := context.Background()
	if _, err := pOnCut.GetKey(ctx, cut.hsmURL(hsm), "reg", ""); err != nil {
		t.Fatalf("p reads a key on %s: %v", cut.id, err)
	}
	cut.link.setCut(true)
	if _, err := leader.client(tenant, admin).DeleteRoleAssignment(ctx, leader.hsmURL(hsm), "/", pa.Name); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	// Within the bound (lease, plus a margin for the check itself) p is
	// refused on the cut node: first by stale state until the lease ends,
	// then by a 503.
	bound := clusterLease + 1500*time.Millisecond
	eventually(t, bound, "p refused on the cut-off node", func() error {
		_, err := pOnCut.GetKey(ctx, cut.hsmURL(hsm), "reg", "")
		if err == nil {
			return errors.New("p still reads keys")
		}
		return nil
	})
	t.Logf("revocation refused on the cut-off node %s after %s (bound %s)", cut.id, time.Since(revoked).Round(time.Millisecond), bound)
	eventually(t, bound, "the cut-off node answers 503", func() error {
		_, err := cut.client(tenant, admin).GetKey(ctx, cut.hsmURL(hsm), "reg", "")
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status == 503 {
			return nil
		}
		return fmt.Errorf("answer: %v", err)
	})
	// Writes go on in the majority meanwhile.
	lc := leader.client(tenant, admin)
	for i := range 5 {
		if _, err := lc.CreateKey(ctx, leader.hsmURL(hsm), fmt.Sprintf("during-cut-%d", i), wire.KeyCreateParameters{Kty: "EC", Curve: "P-256"}); err != nil {
			t.Fatal(err)
		}
	}
	cut.link.setCut(false)
	cut.waitReady(30 * time.Second)
	eventually(t, 10*time.Second, "the healed node catches up", func() error {
		_, err := cut.client(tenant, admin).GetKey(ctx, cut.hsmURL(hsm), "during-cut-4", "")
		return err
	})
	_, err = pOnCut.GetKey(ctx, cut.hsmURL(hsm), "reg", "")
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("p on the healed node: %v, want 403", err)
	}
	// A principal deleted through the leader is refused on another node
	// with its token still valid (no cache outlives the applied delete).
	if _, err := leader.client(tenant, admin).DeletePrincipal(ctx, p.ObjectID); err != nil {
		t.Fatal(err)
	}
	eventually(t, clusterLease, "the deleted principal refused on "+cut.id, func() error {
		_, err := pOnCut.GetKey(ctx, cut.hsmURL(hsm), "reg", "")
		if !errors.As(err, &ae) || ae.Status != 401 {
			return fmt.Errorf("answer %v, want 401", err)
		}
		return nil
	})

	// Phase 3: a node's data directory lost. It joins again under its id
	// and is sent a snapshot (the log before it is truncated: 64 entries
	// between snapshots, 16 kept).
	lost := others(nodes, leader)[1]
	lost.kill()
	if err := os.RemoveAll(lost.dataDir); err != nil {
		t.Fatal(err)
	}
	for i := range 100 { // enough to snapshot and truncate the log
		if _, err := lc.UpdateKey(ctx, leader.hsmURL(hsm), "reg", "", client.KeyUpdate{Tags: map[string]string{"v": fmt.Sprintf("fill-%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	mustJSON(t, leader.cli(tenant, admin, dir, "cluster", "join-token", "-o", "json"), &tok)
	lost.extra = []string{"--join", leader.endpoint(), "--join-ca-file", leader.caFile()}
	lost.start("TRESOR_JOIN_TOKEN=" + tok.Token)
	snaps, _ := filepath.Glob(filepath.Join(lost.dataDir, "cluster", "raft", "snapshots", "*"))
	if len(snaps) == 0 {
		t.Errorf("the rejoined node %s holds no snapshot: it was not sent one", lost.id)
	}
	w.verify(lost)
	eventually(t, 10*time.Second, "the rejoined node reads the last write", func() error {
		b, err := lost.client(tenant, admin).GetKey(ctx, lost.hsmURL(hsm), "reg", "")
		if err == nil && b.Tags["v"] != "fill-99" {
			err = fmt.Errorf("v = %q", b.Tags["v"])
		}
		return err
	})
	wantMembers(t, tenant, admin, leader, "n1", "n2", "n3")

	// Phase 4: the whole cluster stopped and started again.
	for _, n := range nodes {
		n.stop()
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.start()
		}()
	}
	wg.Wait()
	for _, n := range nodes {
		w.verify(n)
	}
	wantMembers(t, tenant, admin, n1, "n1", "n2", "n3")

	// Membership through raft: remove a node, and it is gone from the list.
	leader = leaderOf(t, tenant, admin, nodes...)
	gone := others(nodes, leader)[0]
	leader.cli(tenant, admin, dir, "cluster", "remove", "--node-id", gone.id, "-o", "none")
	gone.kill()
	var ids []string
	for _, n := range others(nodes, gone) {
		ids = append(ids, n.id)
	}
	wantMembers(t, tenant, admin, leader, ids...)
}

// startFails starts a node that must exit, and returns its log.
func startFails(n *node, env ...string) (string, error) {
	log, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", err
	}
	defer log.Close()
	args := append([]string{"server", "--dev", "--data-dir", n.dataDir, "--listen", n.addr, "--node-id", n.id, "--raft-addr", n.raftAddr}, n.extra...)
	cmd := exec.Command(tresorBinary(n.t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		err = nil
	}
	b, _ := os.ReadFile(n.logPath)
	return string(b), err
}

func others(nodes []*node, not *node) []*node {
	var out []*node
	for _, n := range nodes {
		if n != not {
			out = append(out, n)
		}
	}
	return out
}

// wantMembers waits until n lists exactly ids as reachable voters.
func wantMembers(t *testing.T, tenant string, admin principalCred, n *node, ids ...string) {
	t.Helper()
	eventually(t, 30*time.Second, "cluster members "+strings.Join(ids, ","), func() error {
		st, err := n.status(tenant, admin)
		if err != nil {
			return err
		}
		var got []string
		for _, m := range st.Members {
			if !m.Voter || !m.Reachable {
				return fmt.Errorf("member %+v", m)
			}
			got = append(got, m.ID)
		}
		if strings.Join(got, ",") != strings.Join(ids, ",") {
			return fmt.Errorf("members %v", got)
		}
		return nil
	})
}

// workload writes keys, tags and role assignments through every node from
// several clients, and keeps the history of one register (the tag "v" of
// key "reg": writes through any node, reads through the leader).
type workload struct {
	t          *testing.T
	tenant     string
	admin      principalCred
	hsm        string
	nodes      []*node
	clients    map[*node]*client.Client
	role, prin string
	epoch      time.Time

	leader atomic.Pointer[node]
	stopc  chan struct{}
	wg     sync.WaitGroup
	errs   atomic.Int64

	mu      sync.Mutex
	created map[string]bool // acknowledged: true = exists, false = deleted
	roles   map[string]bool // role assignment names: true = exists, false = deleted
	history []porcupine.Operation
}

type regInput struct {
	write bool
	value string
}

func newWorkload(t *testing.T, tenant string, admin principalCred, hsm string, nodes []*node, role, prin string) *workload {
	w := &workload{t: t, tenant: tenant, admin: admin, hsm: hsm, nodes: nodes, clients: map[*node]*client.Client{}, role: role, prin: prin,
		created: map[string]bool{}, roles: map[string]bool{}, stopc: make(chan struct{}), epoch: time.Now()}
	for _, n := range nodes {
		w.clients[n] = n.client(tenant, admin)
	}
	if _, err := w.clients[nodes[0]].CreateKey(context.Background(), nodes[0].hsmURL(hsm), "reg", wire.KeyCreateParameters{Kty: "EC", Curve: "P-256", Tags: map[string]string{"v": "0"}}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *workload) setLeader(n *node) { w.leader.Store(n) }
func (w *workload) now() int64        { return int64(time.Since(w.epoch)) }

func (w *workload) start(workers int) {
	for id := range workers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.run(id)
		}()
	}
}

func (w *workload) stop() {
	close(w.stopc)
	w.wg.Wait()
}

func (w *workload) acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.created)
}

func (w *workload) run(id int) {
	ctx := context.Background()
	var mine []string
	owner := map[string]*node{} // the node that took each of mine
	for i := 0; ; i++ {
		select {
		case <-w.stopc:
			return
		default:
		}
		n := w.nodes[rand.IntN(len(w.nodes))]
		if i%7 == 3 && len(mine) > 0 {
			// A delete goes to the node that took the create, or to the
			// leader: another node may not have applied the create yet
			// (a follower is a heartbeat behind; docs/cluster.md).
			if n = owner[mine[0]]; n.down.Load() {
				n = w.leader.Load()
			}
		}
		c, url := w.clients[n], n.hsmURL(w.hsm)
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		switch {
		case i%4 == 0: // the register: a write through n
			v := fmt.Sprintf("%d-%d", id, i)
			call := w.now()
			_, err := c.UpdateKey(octx, url, "reg", "", client.KeyUpdate{Tags: map[string]string{"v": v}})
			ret := w.now()
			if err != nil {
				w.fail("register write", err)
				if definite(err) {
					break // refused: it did not happen
				}
				ret = math.MaxInt64 // it may have been applied, at any time after its call
			}
			w.record(porcupine.Operation{ClientId: id, Input: regInput{write: true, value: v}, Call: call, Return: ret})
		case i%4 == 1: // the register: a read through the leader
			l := w.leader.Load()
			call := w.now()
			b, err := w.clients[l].GetKey(octx, l.hsmURL(w.hsm), "reg", "")
			ret := w.now()
			if err == nil {
				w.record(porcupine.Operation{ClientId: id, Input: regInput{}, Output: b.Tags["v"], Call: call, Return: ret})
			}
		case i%12 == 2 && id == 0: // role changes
			name := uuid.New()
			if _, err := c.CreateRoleAssignment(octx, url, "/keys/k-"+name[:8], name, w.role, w.prin); err != nil {
				w.fail("role assignment", err)
				break
			}
			w.mu.Lock()
			w.roles[name] = true
			w.mu.Unlock()
		case i%7 == 3 && len(mine) > 0: // a delete of one of ours
			name := mine[0]
			if _, err := c.DeleteKey(octx, url, name); err != nil {
				w.fail("delete", err)
				if !definite(err) {
					// It may have been applied: the key's state is unknown
					// from now on, so it is not checked.
					mine = mine[1:]
					w.mu.Lock()
					delete(w.created, name)
					w.mu.Unlock()
				}
				break
			}
			mine = mine[1:]
			w.mu.Lock()
			w.created[name] = false
			w.mu.Unlock()
		default: // a create
			name := fmt.Sprintf("w%d-%d", id, i)
			if _, err := c.CreateKey(octx, url, name, wire.KeyCreateParameters{Kty: "EC", Curve: "P-256", Tags: map[string]string{"w": name}}); err != nil {
				w.fail("create", err)
				break
			}
			mine = append(mine, name)
			owner[name] = n
			w.mu.Lock()
			w.created[name] = true
			w.mu.Unlock()
		}
		cancel()
	}
}

// definite tells whether err is a refusal (a 4xx answer): the operation
// did not happen. Anything else (a 503, a cut connection) may have.
func definite(err error) bool {
	var ae *client.Error
	return errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500
}

// fail counts a failed operation and logs the first few.
func (w *workload) fail(what string, err error) {
	if n := w.errs.Add(1); n <= 8 {
		w.t.Logf("%s: %v", what, err)
	}
}

func (w *workload) record(op porcupine.Operation) {
	w.mu.Lock()
	w.history = append(w.history, op)
	w.mu.Unlock()
}

// verify checks, on n, every acknowledged write: created keys exist, deleted
// ones are deleted, role assignments exist. A node applies what the leader
// committed a heartbeat later, so it is given a few seconds.
func (w *workload) verify(n *node) {
	w.t.Helper()
	eventually(w.t, 10*time.Second, "acknowledged writes on "+n.id, func() error { return w.check(n) })
}

func (w *workload) check(n *node) error {
	ctx := context.Background()
	c := n.client(w.tenant, w.admin)
	url := n.hsmURL(w.hsm)
	keys, err := c.ListKeys(ctx, url, 0)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	have := map[string]bool{}
	for _, k := range keys {
		have[k.Kid[strings.LastIndex(k.Kid, "/")+1:]] = true
	}
	deleted, err := c.ListDeletedKeys(ctx, url, 0)
	if err != nil {
		return fmt.Errorf("list deleted keys: %w", err)
	}
	gone := map[string]bool{}
	for _, k := range deleted {
		gone[k.Kid[strings.LastIndex(k.Kid, "/")+1:]] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, live := range w.created {
		switch {
		case live && !have[name]:
			return fmt.Errorf("acknowledged key %s is missing", name)
		case !live && (have[name] || !gone[name]):
			return fmt.Errorf("acknowledged delete of %s is not there (live %v, deleted %v)", name, have[name], gone[name])
		}
	}
	ras, err := c.ListRoleAssignments(ctx, url, "/", "")
	if err != nil {
		return fmt.Errorf("role assignments: %w", err)
	}
	ra := map[string]bool{}
	for _, a := range ras {
		ra[a.Name] = true
	}
	for name := range w.roles {
		if !ra[name] {
			return fmt.Errorf("acknowledged role assignment %s is missing", name)
		}
	}
	return nil
}

// registerModel is a register whose writes set a value and whose reads
// return the last one.
var registerModel = porcupine.Model{
	Init: func() any { return "0" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(string) == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return "write " + in.value
		}
		return fmt.Sprintf("read %v", output)
	},
}

func (w *workload) checkLinearizable() {
	w.t.Helper()
	w.mu.Lock()
	ops := append([]porcupine.Operation(nil), w.history...)
	w.mu.Unlock()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, 30*time.Second)
	switch res {
	case porcupine.Ok:
		w.t.Logf("the register's history (%d operations) is linearizable", len(ops))
	case porcupine.Illegal:
		f := filepath.Join(os.TempDir(), "tresor-cluster-history.html")
		if out, err := os.Create(f); err == nil {
			_ = porcupine.Visualize(registerModel, info, out)
			out.Close()
		}
		w.t.Fatalf("the register's history of %d operations is not linearizable (visualised in %s)", len(ops), f)
	default:
		w.t.Logf("linearizability check of %d operations timed out: unknown", len(ops))
	}
}
