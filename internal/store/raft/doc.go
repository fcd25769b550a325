// Package raft implements a [store.Store] replicated with
// [hashicorp/raft] over a local [store.Bolt]: a Tresor region as a cluster
// of 3–5 nodes, each serving reads from its own copy of the state.
//
// Reach for [Open] with a [Config] and the node's Bolt; the [Store] it
// returns is what the server uses instead of the Bolt. Membership and
// operations go through [Store.AddVoter], [Store.RemoveServer],
// [Store.TransferLeadership], [Store.Members], [Store.Healthy] and
// [Store.LeaderChanges] (the server runs its background jobs only on the
// leader).
//
// # State machine
//
// The raft FSM is the Bolt itself. Every log entry of type LogCommand is a
// command in its [store.Encode] form; committed entries are applied in
// batches with [store.Bolt.ApplyBatch] at their raft indexes, so the Bolt
// records raft's applied index in the same transaction as the data and
// skips entries at or below it (a replay is a no-op). The response of each
// entry is its command's own error. An entry that cannot be decoded fails
// alone; a batch the Bolt cannot commit at all (a disk failure) stops the
// process, since the node could no longer follow the log.
//
// Snapshots are [store.Bolt.WriteTo], streamed when raft persists them,
// and restored with [store.Bolt.Restore]. A snapshot may hold entries past
// its raft index (the copy is taken after raft chose that index); replaying
// the log from that index applies them as no-ops. At start, a Bolt that
// already holds the latest snapshot's state is not rewritten from it. A
// node starts from an empty Bolt: [Open] refuses a Dir without raft state
// over a Bolt that has applied commands.
//
// # Writes
//
// [Store.Apply] on the leader appends the command to the log and returns
// its error once applied. On a follower the command is forwarded to the
// leader over the cluster link; the follower returns when the leader has
// applied it and it has applied it too, so a View on the same node right
// after sees the write (read-your-writes). Store errors keep their
// sentinels across the link ([store.ErrorCode], [store.ErrorFromCode]).
// Without a leader (an election) Apply retries for up to 10 seconds, then
// fails with an error wrapping [store.ErrUnavailable]. Once the leader has
// taken a command, Apply waits up to 30 seconds for its outcome. A command
// whose outcome cannot be known (the leader was lost after taking it, the
// connection broke before the answer, the wait ran out) also fails with an
// error wrapping [store.ErrUnavailable] that says the command may have
// been applied.
//
// # Reads and the lease
//
// [Store.View] reads the local Bolt. The leader serves while it leads (raft
// steps it down after LeaderLeaseTimeout without a quorum); any other node
// serves while it has heard from a leader within [Config.Lease] (default 5
// seconds), and otherwise fails with [store.ErrUnavailable]. Reads are
// therefore not linearizable: a node's state is at most a lease behind the
// cluster's, which bounds how long a revocation takes to reach every node
// that still serves. A caller that needs to see every write acknowledged
// anywhere before its read first applies a write through the same node.
//
// # Cluster link
//
// One TLS listener (BindAddr) carries raft's transport and this package's
// RPCs. Peers authenticate each other with mutual TLS 1.3 against the
// cluster CA only; nothing crosses in clear. Each connection starts with a
// tag byte: 'R' hands it to raft's NetworkTransport; 'F' (a forwarded
// command, answered with its index, error code and message) and 'S' (a
// node's status: id, applied index, last contact, leader) start a sequence
// of length-prefixed requests. Requests are at most 64 MiB, replies 1 MiB;
// handshakes and RPC connections are capped in number. Command payloads
// carry sealed secrets and are never logged.
//
// [hashicorp/raft]: https://github.com/hashicorp/raft
package raft
