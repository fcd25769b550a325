package raft

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	hraft "github.com/hashicorp/raft"

	"tresor/internal/store"
)

// fsm is raft's state machine: the local Bolt.
type fsm struct {
	local *store.Bolt
	log   *slog.Logger

	mu      sync.Mutex
	applied uint64        // the Bolt's applied index, as far as this process applied or restored it
	changed chan struct{} // closed and replaced when applied changes
}

var (
	_ hraft.BatchingFSM = (*fsm)(nil)
	_ hraft.FSMSnapshot = fsmSnapshot{}
)

func newFSM(local *store.Bolt, log *slog.Logger) (*fsm, error) {
	n, err := local.AppliedIndex()
	if err != nil {
		return nil, fmt.Errorf("raft: local store: %w", err)
	}
	return &fsm{local: local, log: log, applied: n, changed: make(chan struct{})}, nil
}

// Apply implements hraft.FSM.
func (f *fsm) Apply(l *hraft.Log) any { return f.ApplyBatch([]*hraft.Log{l})[0] }

// ApplyBatch implements hraft.BatchingFSM: the command entries of logs in
// one transaction of the Bolt, at their raft indexes. The response of each
// log is its command's error (nil for success and for other log types).
func (f *fsm) ApplyBatch(logs []*hraft.Log) []any {
	resp := make([]any, len(logs))
	entries := make([]store.Entry, 0, len(logs))
	at := make([]int, 0, len(logs))
	for i, l := range logs {
		if l.Type != hraft.LogCommand {
			continue // configuration changes live in raft's own state
		}
		cmd, err := store.Decode(l.Data)
		if err != nil {
			resp[i] = fmt.Errorf("raft: log entry %d: %w", l.Index, err)
			continue
		}
		entries = append(entries, store.Entry{Index: l.Index, Cmd: cmd})
		at = append(at, i)
	}
	if len(entries) == 0 {
		return resp
	}
	errs, err := f.local.ApplyBatch(context.Background(), entries)
	if err != nil {
		// The committed log cannot be applied (disk failure, store closed
		// under us): acknowledging it would make this node diverge.
		f.log.Error("raft: cannot apply committed entries to the local store; stopping", "first", entries[0].Index, "last", entries[len(entries)-1].Index, "err", err)
		panic(fmt.Sprintf("raft: cannot apply committed entries %d..%d to the local store: %v", entries[0].Index, entries[len(entries)-1].Index, err))
	}
	for j, e := range errs {
		if e != nil {
			resp[at[j]] = e
		}
	}
	f.advance(entries[len(entries)-1].Index, false)
	return resp
}

// advance records the applied index n (only forward unless reset) and
// wakes waiters.
func (f *fsm) advance(n uint64, reset bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n == f.applied || (!reset && n < f.applied) {
		return
	}
	f.applied = n
	close(f.changed)
	f.changed = make(chan struct{})
}

// appliedIndex returns the applied index and a channel closed when it
// changes.
func (f *fsm) appliedIndex() (uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied, f.changed
}

// waitApplied waits until the applied index is at least n.
func (f *fsm) waitApplied(ctx context.Context, n uint64) error {
	for {
		applied, changed := f.appliedIndex()
		if applied >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Snapshot implements hraft.FSM. The copy is taken later, in Persist,
// while raft goes on applying entries, so it may hold entries past the
// snapshot's index. That is correct: the Bolt records its applied index in
// the same transaction as the data, and ApplyBatch skips entries at or
// below it, so replaying the log from the snapshot's index over such a
// "newer" copy applies the entries it already has as no-ops.
func (f *fsm) Snapshot() (hraft.FSMSnapshot, error) { return fsmSnapshot{f.local}, nil }

// Restore implements hraft.FSM: the Bolt is replaced by the snapshot.
func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	if err := f.local.Restore(r); err != nil {
		return fmt.Errorf("raft: restore snapshot: %w", err)
	}
	n, err := f.local.AppliedIndex()
	if err != nil {
		return fmt.Errorf("raft: restore snapshot: %w", err)
	}
	f.advance(n, true)
	return nil
}

type fsmSnapshot struct{ local *store.Bolt }

// Persist streams a consistent copy of the Bolt (one read transaction)
// into the sink.
func (s fsmSnapshot) Persist(sink hraft.SnapshotSink) error {
	if _, err := s.local.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raft: snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements hraft.FSMSnapshot.
func (fsmSnapshot) Release() {}
