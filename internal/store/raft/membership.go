package raft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"

	"tresor/internal/store"
)

// Member is a server of the cluster's configuration.
type Member struct {
	ID, Addr string
	// Voter tells a voter from a non-voter.
	Voter bool
	// Leader marks the leader this node knows.
	Leader bool
	// Reachable tells whether the node answered a status request over the
	// cluster link.
	Reachable bool
	// LastContact is the time since the node last heard from a leader, as
	// it reports it (0 for the leader; -1 if it never has).
	LastContact time.Duration
	// AppliedIndex is the node's applied index, as it reports it.
	AppliedIndex uint64
}

// statusTimeout bounds a status request to a member.
const statusTimeout = time.Second

// configuration returns the latest configuration.
func (s *Store) configuration(ctx context.Context) ([]hraft.Server, error) {
	f := s.raft.GetConfiguration()
	if err := s.await(ctx, f); err != nil {
		return nil, s.raftErr(err)
	}
	return f.Configuration().Servers, nil
}

// raftErr maps raft's errors to ours.
func (s *Store) raftErr(err error) error {
	switch {
	case errors.Is(err, hraft.ErrNotLeader), errors.Is(err, hraft.ErrLeadershipLost):
		return fmt.Errorf("%w (%v)", ErrNotLeader, err)
	case errors.Is(err, hraft.ErrRaftShutdown):
		return fmt.Errorf("raft: %w", store.ErrClosed)
	}
	return fmt.Errorf("raft: %w", err)
}

// AddVoter adds a voter, or makes a non-voter or a server at another
// address a voter at addr. Only the leader can ([ErrNotLeader]); adding a
// voter that is in the configuration already with that address does
// nothing.
func (s *Store) AddVoter(ctx context.Context, id, addr string) error {
	if err := s.leaderOnly(); err != nil {
		return err
	}
	servers, err := s.configuration(ctx)
	if err != nil {
		return err
	}
	for _, srv := range servers {
		if string(srv.ID) == id && string(srv.Address) == addr && srv.Suffrage == hraft.Voter {
			return nil
		}
	}
	if err := s.await(ctx, s.raft.AddVoter(hraft.ServerID(id), hraft.ServerAddress(addr), 0, timeoutOf(ctx))); err != nil {
		return s.raftErr(err)
	}
	return nil
}

// RemoveServer removes a server from the configuration (nothing if it is
// not in it). Only the leader can ([ErrNotLeader]); it may remove itself,
// and then steps down.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	if err := s.leaderOnly(); err != nil {
		return err
	}
	servers, err := s.configuration(ctx)
	if err != nil {
		return err
	}
	found := false
	for _, srv := range servers {
		found = found || string(srv.ID) == id
	}
	if !found {
		return nil
	}
	if err := s.await(ctx, s.raft.RemoveServer(hraft.ServerID(id), 0, timeoutOf(ctx))); err != nil {
		return s.raftErr(err)
	}
	return nil
}

// TransferLeadership hands leadership to the voter to ("" = the most
// up-to-date one). Only the leader can ([ErrNotLeader]).
func (s *Store) TransferLeadership(ctx context.Context, to string) error {
	if err := s.leaderOnly(); err != nil {
		return err
	}
	if to == s.cfg.NodeID {
		return nil
	}
	var f hraft.Future
	if to == "" {
		f = s.raft.LeadershipTransfer()
	} else {
		servers, err := s.configuration(ctx)
		if err != nil {
			return err
		}
		for _, srv := range servers {
			if string(srv.ID) == to {
				f = s.raft.LeadershipTransferToServer(srv.ID, srv.Address)
			}
		}
		if f == nil {
			return fmt.Errorf("raft: no server %q in the configuration", to)
		}
	}
	if err := s.await(ctx, f); err != nil {
		return s.raftErr(err)
	}
	return nil
}

func (s *Store) leaderOnly() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if s.raft.State() != hraft.Leader {
		return ErrNotLeader
	}
	return nil
}

// timeoutOf is the time left in ctx (10s without a deadline).
func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return applyTimeout
}

// Members lists the servers of the configuration, each with the status it
// reports over the cluster link (asked in parallel, within a second each;
// a node that does not answer is not Reachable).
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	servers, err := s.configuration(ctx)
	if err != nil {
		return nil, err
	}
	leader, _ := s.Leader()
	members := make([]Member, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		m := &members[i]
		*m = Member{ID: string(srv.ID), Addr: string(srv.Address), Voter: srv.Suffrage == hraft.Voter, Leader: string(srv.ID) == leader}
		wg.Go(func() {
			var st statusReply
			if m.ID == s.cfg.NodeID {
				st = s.status()
			} else {
				ctx, cancel := context.WithTimeout(ctx, statusTimeout)
				defer cancel()
				reply, _, err := s.link.call(ctx, m.Addr, tagStatus, nil)
				if err == nil {
					st, err = parseStatusReply(reply)
				}
				if err != nil || st.ID != m.ID {
					return
				}
			}
			m.Reachable = true
			m.AppliedIndex = st.Applied
			m.LastContact = -1
			if st.LastContactMs >= 0 {
				m.LastContact = time.Duration(st.LastContactMs) * time.Millisecond
			}
		})
	}
	wg.Wait()
	return members, nil
}

// status is this node's answer to a status request.
func (s *Store) status() statusReply {
	st := statusReply{ID: s.cfg.NodeID, Applied: s.AppliedIndex(), LastContactMs: -1, Leader: s.IsLeader()}
	st.LeaderID, _ = s.Leader()
	switch last := s.raft.LastContact(); {
	case st.Leader:
		st.LastContactMs = 0
	case !last.IsZero():
		st.LastContactMs = time.Since(last).Milliseconds()
	}
	return st
}

func (s statusReply) marshal() []byte {
	b, _ := json.Marshal(s)
	return b
}
