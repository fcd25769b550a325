// Package store implements Tresor's replicated-state contract: every mutation
// is a typed [Command] applied by one Apply function, and reads see a
// consistent snapshot.
//
// # Contract
//
// Commands carry everything they need: randomness, generated keys, sealed
// values and timestamps are produced before a command is built, so applying
// it is deterministic. This is the contract a later raft-replicated store
// keeps too; [Encode] and [Decode] give every command a stable wire form for
// its log.
//
// What Apply guarantees:
//
//   - All or nothing. Every command checks all its conditions (state and the
//     shape of its values) before its first write, so a refused command
//     changes nothing, not even when it shares a transaction with others
//     ([Bolt] groups concurrent Applies; [BatchApplier.ApplyBatch] applies
//     many log entries at once).
//   - Durability. When Apply returns nil the change is committed and
//     fsync'd, and every View that starts afterwards (the caller's own reads
//     first of all) sees it.
//   - Each caller gets its own command's error, never another's.
//   - An applied index: the store records the index of the last applied
//     command in the same transaction as the command ([BatchApplier]). Apply
//     advances it by one per applied command; a refused command leaves it as
//     it was.
//
// # Instances: generation, epoch and writes
//
// An [Instance] has three counters:
//
//   - Generation counts changes of the instance record. Commands that change
//     it (UpdateInstance, DeleteInstance, …) name the generation they read.
//     Every change of policy (role assignments, role definitions, settings)
//     goes through UpdateInstance and so bumps the generation: caches of
//     policy keyed by generation (the RBAC grants cache) rely on it, and
//     [WriteInstanceValues] refuses to touch the [PolicyBuckets].
//   - Epoch counts whole-instance replaces (an UpdateInstance that sets the
//     wrapped root or replaces buckets, a [CommitStage]). Every
//     [WriteInstanceValues] names the epoch its writer read: a write built
//     from a read before a replace fails after it with [ErrConflict] instead
//     of landing in the replaced state.
//   - Writes counts applied WriteInstanceValues. A whole-instance replace
//     names the count it read (UpdateInstance.ExpectWrites): a key write that
//     landed between the replacer's read and its apply makes the replace fail
//     instead of being silently dropped.
//
// # Staged replace
//
// A replace too large for one command (a full restore) is staged:
// [BeginStage] marks the instance Staging, [StageValues] fills a staging
// area that readers never see, and [CommitStage] swaps the staged buckets
// for the live ones in one transaction (bumping the epoch). While an
// instance is staging, writes and instance changes are refused with
// [ErrBusy] and readers see the live (old) values. [AbortStage] drops the
// staging area and leaves the instance as it was; the server aborts every
// stage at start, so a restore killed midway leaves no trace.
//
// # Jobs
//
// Long-running operations (backup, restore) are recorded as [Job]s that
// survive restarts. [StartJob] with Exclusive allows one running job per
// instance; an ended job is immutable; [FailInterruptedJobs], applied at
// start, fails every job a previous process left running.
//
// The store holds opaque bytes for secrets: sealing happens above it (package
// barrier). Names that listing needs (instance names, resource groups) are
// kept in clear.
//
// Implementations: [Bolt] (bbolt, single node), which also implements
// [BatchApplier] and [Snapshotter]. The conformance suite in package
// storetest runs against each.
package store

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors returned by Apply and by reads. Callers test them with errors.Is.
// [ErrorCode] and [ErrorFromCode] carry them across an encoding.
var (
	// ErrNotFound: the named record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a record with that name (or unique field) exists already.
	ErrExists = errors.New("store: already exists")
	// ErrConflict: the record changed since it was read (generation, epoch
	// or write count mismatch), or it is not in a state the command allows.
	ErrConflict = errors.New("store: conflict")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store: closed")
	// ErrBusy: the instance is being replaced (it is staging); the command
	// may succeed once the stage is committed or aborted.
	ErrBusy = errors.New("store: busy")
	// ErrMismatch: a principal record found under one object id (or client
	// id) names another: the database was changed outside the store.
	ErrMismatch = errors.New("store: record does not match its key")
	// ErrUnavailable: this node cannot serve now (a cluster node without a
	// leader within its lease, a write that found no leader); the caller
	// may retry shortly. The HTTP layer answers 503 with Retry-After.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrStop is returned by a [Reader.ForEach] callback to end the walk
	// early; ForEach then returns nil.
	ErrStop = errors.New("store: stop")
)

// Store is the replicated state machine. Implementations are safe for
// concurrent use.
type Store interface {
	// Apply applies cmd atomically and durably (see the package
	// documentation). A View started after Apply returned nil sees the
	// change.
	Apply(ctx context.Context, cmd Command) error
	// View runs fn with a consistent read-only snapshot. The Reader is valid
	// only during fn; the values it returns are copies, so they may be kept
	// and modified ([Reader.ForEach] excepted). fn must not call Apply.
	View(ctx context.Context, fn func(Reader) error) error
	// Close releases the store.
	Close() error
}

// Entry is a command at its index in a replicated log.
type Entry struct {
	Index uint64
	Cmd   Command
}

// BatchApplier is a [Store] that applies a replicated log: many entries in
// one transaction, idempotent by index.
type BatchApplier interface {
	Store
	// ApplyBatch applies entries in one transaction and one fsync. Indexes
	// must increase. Entries at or below the applied index are skipped
	// (their error is nil), so replaying a log over a snapshot is a no-op.
	// errs[i] is entry i's own refusal, which leaves no trace; err is for
	// the transaction itself (then nothing was applied). After a successful
	// ApplyBatch the applied index is the last entry's index.
	ApplyBatch(ctx context.Context, entries []Entry) (errs []error, err error)
	// AppliedIndex returns the index of the last applied command (0 for a
	// new store).
	AppliedIndex() (uint64, error)
}

// Snapshotter is a [Store] that can copy its whole state out and replace it
// with such a copy. The copy includes the applied index.
type Snapshotter interface {
	// WriteTo writes a consistent copy of the state to w.
	WriteTo(w io.Writer) (int64, error)
	// Restore replaces the state with a copy written by WriteTo. Concurrent
	// calls wait or fail with [ErrClosed]; none sees a torn state.
	Restore(r io.Reader) error
}

// Reader reads a snapshot of the state. Every returned value is a copy,
// except the values ForEach hands to its callback.
type Reader interface {
	// RegionValue returns a region-level value (signing keys, wrapped region root).
	RegionValue(key string) ([]byte, error)

	Principal(objectID string) (Principal, error)
	PrincipalByClientID(clientID string) (Principal, error)
	Principals() ([]Principal, error)

	// Instance returns an instance record with its write count filled in.
	Instance(name string) (Instance, error)
	// Instances lists every instance, deleted ones included, by name.
	Instances() ([]Instance, error)

	// InstanceValue returns one value of an instance's bucket (the live
	// value, also while the instance is staging).
	InstanceValue(instance, bucket, key string) ([]byte, error)
	// InstanceValues lists the values of an instance's bucket by key.
	InstanceValues(instance, bucket string) ([]KV, error)
	// InstanceBuckets lists the names of an instance's buckets.
	InstanceBuckets(instance string) ([]string, error)
	// ForEach calls fn for the keys of an instance's bucket in byte order,
	// starting strictly after after ("" = from the first key). fn returning
	// [ErrStop] ends the walk and ForEach returns nil; any other error ends
	// it and is returned. value is valid only during fn and must not be
	// modified: callers that keep it must copy it. To read a large bucket without holding one read
	// transaction for long, read a few hundred keys per View and go on in
	// the next View after the last key seen.
	ForEach(instance, bucket, after string, fn func(key string, value []byte) error) error

	// Job returns a job by id.
	Job(id string) (Job, error)
	// Jobs lists the jobs of an instance ("" = of all instances) by start
	// time.
	Jobs(instance string) ([]Job, error)

	// BackupPolicy returns the scheduled backup policy of an instance.
	BackupPolicy(instance string) (BackupPolicy, error)
	// BackupPolicies lists every instance's backup policy by instance name.
	BackupPolicies() ([]BackupPolicy, error)
}

// KV is a key and its (sealed) value.
type KV struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// Principal is a service principal of the region's identity service. The
// secret is kept only as a salted hash. The store keeps MAC as it is given:
// the identity service computes and checks it (records are readable in
// clear, and the MAC, under a key of the region's root, tells an edit made
// outside Tresor). Readers return a record only under its own object id
// and client id ([ErrMismatch] otherwise).
type Principal struct {
	ObjectID    string    `json:"objectId"`
	ClientID    string    `json:"clientId"`
	DisplayName string    `json:"displayName"`
	SecretHash  []byte    `json:"secretHash"`
	RegionAdmin bool      `json:"regionAdmin"`
	Created     time.Time `json:"created"`
	MAC         []byte    `json:"mac,omitempty"`
}

// Instance is the stored record of an HSM instance.
type Instance struct {
	Name          string `json:"name"`
	Subscription  string `json:"subscription"`
	ResourceGroup string `json:"resourceGroup"`
	Location      string `json:"location"`
	// Generation counts applied changes; commands that modify an instance
	// name the generation they read (optimistic concurrency).
	Generation uint64 `json:"generation"`
	// Epoch counts whole-instance replaces (1 at creation);
	// [WriteInstanceValues] names the epoch it was built in.
	Epoch uint64 `json:"epoch"`
	// Writes is how many [WriteInstanceValues] were applied to the instance
	// since it was created. It is kept apart from the record, so key writes
	// never rewrite it; readers fill it in.
	Writes uint64 `json:"-"`
	// Staging is the id of the staged replace in progress ("" = none).
	Staging string `json:"staging,omitempty"`
	// Deleted marks a soft-deleted instance.
	Deleted            bool      `json:"deleted"`
	DeletionDate       time.Time `json:"deletionDate,omitzero"`
	ScheduledPurgeDate time.Time `json:"scheduledPurgeDate,omitzero"`
	// Properties are the instance's properties sealed by the region barrier.
	Properties []byte `json:"properties"`
	// WrappedRoot is the instance root key wrapped by the region seal.
	WrappedRoot []byte `json:"wrappedRoot"`
}

// BackupPolicy is an instance's scheduled backup policy: region-local
// operational configuration (where and how often this region backs the
// instance up, with the storage's SAS token), not instance content. It is
// kept in a region bucket, so neither a full restore nor a security-domain
// upload (which replace the instance's buckets) touches it, and a full
// backup does not carry it; purging the instance removes it.
type BackupPolicy struct {
	Instance string `json:"instance"`
	// ID is new for every [PutBackupPolicy]; [RecordBackupRun] names it.
	ID string `json:"id"`
	// Sealed holds the destination, token, interval and retention, sealed
	// above the store (by the region barrier).
	Sealed []byte    `json:"sealed"`
	Set    time.Time `json:"set"`
	// Status is what the runs of the policy left.
	Status BackupPolicyStatus `json:"status"`
}

// BackupPolicyStatus is the outcome of a backup policy's runs.
type BackupPolicyStatus struct {
	LastSuccess *BackupRun `json:"lastSuccess,omitempty"`
	LastFailure *BackupRun `json:"lastFailure,omitempty"`
	// NextRun is when the policy runs next.
	NextRun time.Time `json:"nextRun,omitzero"`
	// DeletedFolders is how many folders the last retention pass deleted.
	DeletedFolders int `json:"deletedFolders"`
	// BusySince is when the first of consecutive runs found another job
	// of the instance running (zero when the last run could start).
	BusySince time.Time `json:"busySince,omitzero"`
}

// BackupRun is one run of a backup policy: a success (Folder set) or a
// failure (Code and Message set; JobID empty when no job started).
type BackupRun struct {
	Time    time.Time `json:"time"`
	JobID   string    `json:"jobId,omitempty"`
	Folder  string    `json:"folder,omitempty"`
	Code    string    `json:"code,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Job statuses.
const (
	JobInProgress = "InProgress"
	JobSucceeded  = "Succeeded"
	JobFailed     = "Failed"
)

// Job is a long-running operation (backup, restore) of an instance, kept
// across restarts.
type Job struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`              // "backup", "restore", "keyrestore", ...
	Instance string    `json:"instance"`          // the instance it works on
	Status   string    `json:"status"`            // JobInProgress, JobSucceeded, JobFailed
	Details  string    `json:"details,omitempty"` // statusDetails
	Error    string    `json:"error,omitempty"`   // error message when Failed
	Result   string    `json:"result,omitempty"`  // e.g. the backup folder URI
	Done     int       `json:"done,omitempty"`    // progress
	Total    int       `json:"total,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"`
	// Node is the cluster node that runs the job ("" on a single node).
	Node string `json:"node,omitempty"`
}
