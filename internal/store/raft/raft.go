package raft

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"tresor/internal/store"
)

// Config configures a node. NodeID, Dir, BindAddr, TLS are required; zero
// durations and counts take the defaults below.
type Config struct {
	// NodeID is the node's raft server id, unique in the cluster for all
	// time.
	NodeID string
	// Dir holds raft's own files: raft.db (log and stable store) and
	// snapshots/.
	Dir string
	// BindAddr is the host:port the cluster link listens on.
	BindAddr string
	// AdvertiseAddr is the address others dial (default: BindAddr, with a
	// port 0 resolved to the port listened on). The node's certificate
	// must name its host.
	AdvertiseAddr string
	// TLS is the cluster link's mutual TLS: Certificates are this node's
	// (usable as server and client certificate), RootCAs and ClientCAs the
	// cluster CA. Open uses a clone with ClientAuth
	// RequireAndVerifyClientCert and MinVersion TLS 1.3.
	TLS *tls.Config
	// Bootstrap forms a new single-voter cluster when Dir holds no raft
	// state; it is ignored when it does.
	Bootstrap bool
	// Lease is how long a node that has not heard from a leader goes on
	// serving View (default [DefaultLease]); after it, View fails with
	// store.ErrUnavailable.
	Lease time.Duration
	// Logger receives raft's messages at Warn and above and this package's
	// own; nil discards them.
	Logger *slog.Logger

	// Raft's timing (defaults [DefaultHeartbeatTimeout],
	// [DefaultElectionTimeout], [DefaultLeaderLeaseTimeout]); tests
	// shorten them.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one (default 8192; raft checks every 2 minutes, or
	// SnapshotInterval).
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks SnapshotThreshold (default
	// 2 minutes).
	SnapshotInterval time.Duration
	// TrailingLogs is how many entries a snapshot leaves in the log for
	// followers that lag a little (default 10240).
	TrailingLogs uint64

	// dialer, in tests, maps the address of a peer to the address dialed
	// to reach it (a proxy that can drop the traffic).
	dialer func(addr string) string
}

// Defaults, for a LAN.
const (
	DefaultLease              = 5 * time.Second
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 1 * time.Second
	DefaultLeaderLeaseTimeout = 500 * time.Millisecond
	DefaultCommitTimeout      = 50 * time.Millisecond
	DefaultSnapshotThreshold  = 8192
	DefaultSnapshotInterval   = 2 * time.Minute
	DefaultTrailingLogs       = 10240
)

// applyTimeout bounds an Apply that finds no leader, and the wait of a
// follower for its own copy of a forwarded write. takenTimeout bounds the
// wait for a command the leader took (it is then of unknown outcome).
const (
	applyTimeout = 10 * time.Second
	takenTimeout = 30 * time.Second
)

// ErrNotLeader is returned by the operations only the leader can do
// (membership changes, leadership transfer) on another node. It wraps
// store.ErrUnavailable.
var ErrNotLeader = fmt.Errorf("raft: not the leader: %w", store.ErrUnavailable)

// Store is a [store.Store] replicated with raft over a local [store.Bolt].
// It is safe for concurrent use.
type Store struct {
	cfg   Config
	local *store.Bolt
	log   *slog.Logger
	fsm   *fsm
	raft  *hraft.Raft
	trans *hraft.NetworkTransport
	link  *link
	logs  *raftboltdb.BoltStore

	closed    atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup

	lmu       sync.Mutex
	leaderGen uint64 // counts leadership notifications
	leading   bool   // published: leader with its barrier applied
	// caughtUp mirrors leading for reads: a new leader serves only once it
	// has applied every entry of earlier terms (its barrier), or it could
	// answer from a state older than writes its predecessor acknowledged.
	caughtUp   atomic.Bool
	leaderSubs []chan bool // LeaderChanges channels
}

var _ store.Store = (*Store)(nil)

func (c *Config) setDefaults() error {
	switch {
	case c.NodeID == "":
		return errors.New("raft: Config.NodeID is required")
	case c.Dir == "":
		return errors.New("raft: Config.Dir is required")
	case c.BindAddr == "":
		return errors.New("raft: Config.BindAddr is required")
	case c.Lease < 0 || c.HeartbeatTimeout < 0 || c.ElectionTimeout < 0 || c.LeaderLeaseTimeout < 0 || c.SnapshotInterval < 0:
		return errors.New("raft: Config durations must not be negative")
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = max(DefaultElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = min(DefaultLeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	return nil
}

// Open starts a node over local, which the caller keeps owning: Close
// leaves it open, and the caller closes the Store before it (raft stops the
// process if it cannot apply committed entries). With Bootstrap and no raft
// state in Dir it forms a single-voter cluster; otherwise it waits for a
// leader to reach it (a new node is added by the leader's
// [Store.AddVoter]). A cluster starts from empty stores: a Dir without raft
// state over a Bolt that holds applied commands is refused, since the log
// would replay below the Bolt's applied index.
func Open(local *store.Bolt, cfg Config) (*Store, error) {
	if local == nil {
		return nil, errors.New("raft: no local store")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	serverTLS, clientTLS, err := tlsConfigs(cfg.TLS)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, local: local, log: log, done: make(chan struct{})}
	if s.fsm, err = newFSM(local, log); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	ok := false
	var closers []func() error
	defer func() {
		if !ok {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()

	s.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("raft: open %s: %w", filepath.Join(cfg.Dir, "raft.db"), err)
	}
	closers = append(closers, s.logs.Close)
	cache, err := hraft.NewLogCache(512, s.logs)
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, newHCLogger(cfg.Logger, "raft-snapshots", s.closed.Load))
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	hasState, err := hraft.HasExistingState(cache, s.logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	applied, _ := s.fsm.appliedIndex()
	if !hasState && applied > 0 {
		return nil, fmt.Errorf("raft: %s holds no raft state but the local store has applied commands (index %d): a node starts from an empty store (delete it to rejoin)", cfg.Dir, applied)
	}

	s.link, err = listen(cfg.BindAddr, cfg.AdvertiseAddr, serverTLS, clientTLS, log)
	if err != nil {
		return nil, err
	}
	s.link.serve = s.serveRPC
	s.link.dialer = cfg.dialer
	closers = append(closers, func() error { err := s.link.Close(); s.link.wait(); return err })
	s.link.wg.Add(1)
	go s.link.run()
	s.trans = hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
		Stream:  s.link,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  newHCLogger(cfg.Logger, "raft-net", s.closed.Load),
	})
	closers = append(closers, s.trans.Close)

	rc := hraft.DefaultConfig()
	rc.LocalID = hraft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = min(DefaultCommitTimeout, cfg.HeartbeatTimeout)
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = newHCLogger(cfg.Logger, "raft", s.closed.Load)
	notify := make(chan bool, 16)
	rc.NotifyCh = notify
	// The Bolt is durable and records its applied index: when it holds the
	// latest snapshot's state already, restoring the snapshot at start
	// would only rewrite it, and replaying the log after the snapshot's
	// index over it is a no-op for the entries it has.
	if list, err := snaps.List(); err == nil && len(list) > 0 && applied >= list[0].Index {
		rc.NoSnapshotRestoreOnStart = true
	}
	if err := hraft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	if cfg.Bootstrap && !hasState {
		err := hraft.BootstrapCluster(rc, cache, s.logs, snaps, s.trans, hraft.Configuration{Servers: []hraft.Server{
			{Suffrage: hraft.Voter, ID: rc.LocalID, Address: hraft.ServerAddress(s.link.advertise)},
		}})
		if err != nil {
			return nil, fmt.Errorf("raft: bootstrap: %w", err)
		}
	}
	s.raft, err = hraft.NewRaft(rc, s.fsm, cache, s.logs, snaps, s.trans)
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	ok = true
	s.wg.Add(1)
	go s.watchLeadership(notify)
	return s, nil
}

// Close shuts raft down (without a leadership transfer), closes the cluster
// link and raft.db. It does not close the local Bolt. Close may be called
// more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		errs := []error{s.raft.Shutdown().Error(), s.trans.Close(), s.link.Close()}
		s.link.wait()
		s.wg.Wait()
		errs = append(errs, s.logs.Close())
		s.lmu.Lock()
		for _, ch := range s.leaderSubs {
			close(ch)
		}
		s.leaderSubs = nil
		s.lmu.Unlock()
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("raft: close: %w", err)
		}
	})
	return s.closeErr
}

// Apply implements [store.Store]. On the leader the command goes into the
// log; on a follower it is forwarded to the leader over the cluster link,
// and Apply returns once this node has applied it too, so that a View
// right after sees it. Without a leader Apply retries for up to 10s (or
// until ctx is done), then fails with an error wrapping
// store.ErrUnavailable; so does a command whose outcome cannot be known (the
// leader was lost after taking it, no answer within 30s): such an error
// says so, and the command may have been applied.
func (s *Store) Apply(ctx context.Context, cmd store.Command) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if cmd == nil {
		return errors.New("raft: nil command")
	}
	data, err := store.Encode(cmd)
	if err != nil {
		return err
	}
	caller := ctx
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	backoff := 5 * time.Millisecond
	for {
		if s.closed.Load() {
			return store.ErrClosed
		}
		var retry bool
		if s.raft.State() == hraft.Leader {
			retry, err = s.applyLocal(ctx, caller, data)
		} else if addr, _ := s.raft.LeaderWithID(); addr != "" {
			retry, err = s.applyForward(ctx, caller, string(addr), data)
		} else {
			retry, err = true, errors.New("no leader")
		}
		if !retry {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("raft: apply: %v: %w", err, store.ErrUnavailable)
		case <-s.done:
			return store.ErrClosed
		case <-time.After(backoff):
			backoff = min(2*backoff, 100*time.Millisecond)
		}
	}
}

// ambiguous is the error of a command whose outcome is unknown.
func ambiguous(why any) error {
	return fmt.Errorf("raft: outcome unknown, the command may or may not have been applied (%v): %w", why, store.ErrUnavailable)
}

// applyLocal applies data on this node as the leader; retry tells that it
// was not taken and may be tried again.
func (s *Store) applyLocal(ctx, caller context.Context, data []byte) (retry bool, err error) {
	_, resp, err := s.raftApply(ctx, caller, data)
	switch {
	case err == nil:
		res, _ := resp.(error)
		return false, res
	case errors.Is(err, errNotTaken):
		return true, err
	case errors.Is(err, errShutdown):
		return false, fmt.Errorf("raft: closed with the command in flight, it may or may not have been applied: %w (%w)", store.ErrClosed, store.ErrUnavailable)
	default:
		return false, ambiguous(err)
	}
}

var (
	errNotTaken = errors.New("raft: not taken")
	errShutdown = errors.New("raft: shut down with the command in flight")
)

// raftApply puts data into the log and waits for it to be applied. It
// returns the entry's index and the FSM's response (the command's own
// error or nil); err wraps errNotTaken (safe to retry), is errShutdown (raft
// shut down: the command may have been committed), or tells another
// unknown outcome.
//
// The enqueue waits within ctx; once taken, the command is waited for up to
// takenTimeout within caller (a large command takes a while to commit and
// apply, and giving up on it early only makes its outcome unknown).
func (s *Store) raftApply(ctx, caller context.Context, data []byte) (index uint64, resp any, err error) {
	f := s.raft.Apply(data, timeoutOf(ctx))
	wctx, cancel := context.WithTimeout(caller, takenTimeout)
	defer cancel()
	err = s.await(wctx, f)
	switch {
	case err == nil:
		return f.Index(), f.Response(), nil
	case errors.Is(err, hraft.ErrNotLeader), errors.Is(err, hraft.ErrLeadershipTransferInProgress),
		errors.Is(err, hraft.ErrEnqueueTimeout), errors.Is(err, hraft.ErrAbortedByRestore):
		return 0, nil, fmt.Errorf("%w: %v", errNotTaken, err)
	case errors.Is(err, hraft.ErrRaftShutdown):
		return 0, nil, errShutdown
	default:
		return 0, nil, err // leadership lost, ctx done: taken, outcome unknown
	}
}

// await waits for f, ctx or Close. A future raft never answers (one in
// flight when raft shut down) ends with Close as hraft.ErrRaftShutdown.
func (s *Store) await(ctx context.Context, f hraft.Future) error {
	ch := make(chan error, 1)
	go func() { ch <- f.Error() }()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		select {
		case err := <-ch:
			return err
		case <-time.After(time.Second):
			return hraft.ErrRaftShutdown
		}
	}
}

// applyForward sends data to the leader at addr within ctx and, once
// applied there, waits for this node to apply it: up to 10s more within
// caller's ctx (the retries may have used most of ctx).
func (s *Store) applyForward(ctx, caller context.Context, addr string, data []byte) (retry bool, err error) {
	cctx, cancel := context.WithTimeout(caller, takenTimeout)
	defer cancel()
	reply, sent, err := s.link.call(cctx, addr, tagForward, data)
	if err != nil {
		if !sent {
			return true, fmt.Errorf("forward to %s: %v", addr, err)
		}
		return false, ambiguous(fmt.Sprintf("forwarded to %s: %v", addr, err))
	}
	r, err := parseForwardReply(reply)
	if err != nil {
		return false, ambiguous(fmt.Sprintf("forwarded to %s: %v", addr, err))
	}
	switch r.Outcome {
	case outcomeNotApplied:
		return true, fmt.Errorf("forward to %s: %s", addr, r.Message)
	case outcomeUnknown:
		return false, ambiguous(fmt.Sprintf("forwarded to %s: %s", addr, r.Message))
	}
	if r.Code != "" || r.Message != "" {
		return false, store.ErrorFromCode(r.Code, r.Message)
	}
	wctx, cancel := context.WithTimeout(caller, applyTimeout)
	defer cancel()
	if err := s.fsm.waitApplied(wctx, r.Index); err != nil {
		if s.closed.Load() {
			return false, store.ErrClosed
		}
		return false, fmt.Errorf("raft: the command was committed at index %d but this node has not applied it yet (%v): %w", r.Index, err, store.ErrUnavailable)
	}
	return false, nil
}

// serveRPC answers a request of the cluster link.
func (s *Store) serveRPC(kind byte, payload []byte) []byte {
	switch kind {
	case tagForward:
		return s.serveForward(payload).marshal()
	case tagStatus:
		return s.status().marshal()
	}
	return nil
}

func (s *Store) serveForward(data []byte) forwardReply {
	if s.closed.Load() {
		return forwardReply{Outcome: outcomeNotApplied, Message: "node closing"}
	}
	if _, err := store.Decode(data); err != nil {
		return forwardReply{Outcome: outcomeApplied, Message: err.Error()}
	}
	if s.raft.State() != hraft.Leader {
		return forwardReply{Outcome: outcomeNotApplied, Message: "not the leader"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	idx, resp, err := s.raftApply(ctx, context.Background(), data)
	switch {
	case err == nil:
		r := forwardReply{Outcome: outcomeApplied, Index: idx}
		if res, _ := resp.(error); res != nil {
			r.Code, r.Message = store.ErrorCode(res), res.Error()
			if r.Message == "" {
				r.Message = "error"
			}
		}
		return r
	case errors.Is(err, errNotTaken):
		return forwardReply{Outcome: outcomeNotApplied, Message: err.Error()}
	default:
		return forwardReply{Outcome: outcomeUnknown, Message: err.Error()}
	}
}

// View implements [store.Store]: a read of the local Bolt, on the leader
// and on a node that heard from a leader within the lease; otherwise an
// error wrapping store.ErrUnavailable.
func (s *Store) View(ctx context.Context, fn func(store.Reader) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.serving(); err != nil {
		return err
	}
	return s.local.View(ctx, fn)
}

// serving tells whether this node may serve reads.
func (s *Store) serving() error {
	if s.closed.Load() {
		return fmt.Errorf("raft: closed: %w", store.ErrUnavailable)
	}
	if s.raft.State() == hraft.Leader {
		if s.caughtUp.Load() {
			return nil
		}
		return fmt.Errorf("raft: node %s was just elected and is applying the entries of earlier terms: %w", s.cfg.NodeID, store.ErrUnavailable)
	}
	last := s.raft.LastContact()
	if last.IsZero() {
		return fmt.Errorf("raft: node %s has not heard from a leader since it started: %w", s.cfg.NodeID, store.ErrUnavailable)
	}
	if d := time.Since(last); d > s.cfg.Lease {
		return fmt.Errorf("raft: node %s has not heard from a leader for %s (lease %s): %w", s.cfg.NodeID, d.Round(time.Millisecond), s.cfg.Lease, store.ErrUnavailable)
	}
	return nil
}

// Healthy returns nil if the node serves reads (it is the leader or heard
// from one within the lease), or an error wrapping store.ErrUnavailable that
// says why not.
func (s *Store) Healthy() error { return s.serving() }

// Addr returns the node's advertised cluster address.
func (s *Store) Addr() string { return s.link.advertise }

// Leader returns the id and address of the leader this node knows ("" when
// none).
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader tells whether this node is the leader.
func (s *Store) IsLeader() bool { return s.raft.State() == hraft.Leader }

// CommitIndex returns the index of the last log entry known committed.
func (s *Store) CommitIndex() uint64 { return s.raft.CommitIndex() }

// AppliedIndex returns the local store's applied index: the last command
// entry this node applied.
func (s *Store) AppliedIndex() uint64 {
	n, _ := s.fsm.appliedIndex()
	return n
}

// WaitLeader waits until a leader is known; on the leader itself, until its
// barrier is applied (it has applied every entry of earlier terms).
func (s *Store) WaitLeader(ctx context.Context) error {
	for {
		if s.closed.Load() {
			return store.ErrClosed
		}
		if s.raft.State() == hraft.Leader {
			if err := s.await(ctx, s.raft.Barrier(time.Second)); err == nil {
				return nil
			}
		} else if addr, _ := s.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("raft: no leader: %w (%w)", store.ErrUnavailable, ctx.Err())
		case <-s.done:
			return store.ErrClosed
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// LeaderChanges returns a channel that receives whether this node leads:
// the current value at once, then every change. A node counts as leader
// once its barrier is applied (it serves the latest state). Only the
// latest value is kept for a slow reader. The channel is closed by Close.
func (s *Store) LeaderChanges() <-chan bool {
	ch := make(chan bool, 1)
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.closed.Load() {
		close(ch)
		return ch
	}
	ch <- s.leading
	s.leaderSubs = append(s.leaderSubs, ch)
	return ch
}

// watchLeadership publishes raft's leadership notifications.
func (s *Store) watchLeadership(notify <-chan bool) {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case leader := <-notify:
			s.lmu.Lock()
			s.leaderGen++
			gen := s.leaderGen
			s.lmu.Unlock()
			if !leader {
				s.publish(gen, false)
				continue
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				for s.raft.State() == hraft.Leader && !s.closed.Load() {
					if s.await(context.Background(), s.raft.Barrier(applyTimeout)) == nil {
						s.publish(gen, true)
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
		}
	}
}

func (s *Store) publish(gen uint64, leader bool) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if gen != s.leaderGen || s.closed.Load() || s.leading == leader {
		return
	}
	s.leading = leader
	s.caughtUp.Store(leader)
	for _, ch := range s.leaderSubs {
		select {
		case <-ch:
		default:
		}
		ch <- leader
	}
}
