// Package store implements Tresor's replicated-state contract: every mutation
// is a typed [Command] applied by one Apply function, and reads see a
// consistent snapshot.
//
// # Contract
//
// Commands carry everything they need: randomness, generated keys, sealed
// values and timestamps are produced before a command is built, so applying
// it is deterministic. Apply is all-or-nothing: a command that fails leaves
// the state exactly as it was. When Apply returns nil the change is durable
// (fsync'd). This is the contract a later raft-replicated store keeps too;
// [Encode] and [Decode] give every command a stable wire form for its log.
//
// The store holds opaque bytes for secrets: sealing happens above it (package
// barrier). Names that listing needs (instance names, resource groups) are
// kept in clear.
//
// Implementations: [Bolt] (bbolt, single node). The conformance suite in
// package storetest runs against each.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors returned by Apply and by reads. Callers test them with errors.Is.
var (
	// ErrNotFound: the named record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a record with that name (or unique field) exists already.
	ErrExists = errors.New("store: already exists")
	// ErrConflict: the record changed since it was read (generation mismatch),
	// or it is not in a state the command allows.
	ErrConflict = errors.New("store: conflict")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store: closed")
)

// Store is the replicated state machine. Implementations are safe for
// concurrent use.
type Store interface {
	// Apply applies cmd atomically and durably.
	Apply(ctx context.Context, cmd Command) error
	// View runs fn with a consistent read-only snapshot. The Reader is valid
	// only during fn; the values it returns are copies, so they may be kept
	// and modified.
	View(ctx context.Context, fn func(Reader) error) error
	// Close releases the store.
	Close() error
}

// Reader reads a snapshot of the state. Every returned value is a copy.
type Reader interface {
	// RegionValue returns a region-level value (signing keys, wrapped region root).
	RegionValue(key string) ([]byte, error)

	Principal(objectID string) (Principal, error)
	PrincipalByClientID(clientID string) (Principal, error)
	Principals() ([]Principal, error)

	Instance(name string) (Instance, error)
	// Instances lists every instance, deleted ones included, by name.
	Instances() ([]Instance, error)

	// InstanceValue returns one value of an instance's bucket.
	InstanceValue(instance, bucket, key string) ([]byte, error)
	// InstanceValues lists the values of an instance's bucket by key.
	InstanceValues(instance, bucket string) ([]KV, error)
	// InstanceBuckets lists the names of an instance's buckets.
	InstanceBuckets(instance string) ([]string, error)
}

// KV is a key and its (sealed) value.
type KV struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// Principal is a service principal of the region's identity service. The
// secret is kept only as a salted hash.
type Principal struct {
	ObjectID    string    `json:"objectId"`
	ClientID    string    `json:"clientId"`
	DisplayName string    `json:"displayName"`
	SecretHash  []byte    `json:"secretHash"`
	RegionAdmin bool      `json:"regionAdmin"`
	Created     time.Time `json:"created"`
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
	// Deleted marks a soft-deleted instance.
	Deleted            bool      `json:"deleted"`
	DeletionDate       time.Time `json:"deletionDate,omitzero"`
	ScheduledPurgeDate time.Time `json:"scheduledPurgeDate,omitzero"`
	// Properties are the instance's properties sealed by the region barrier.
	Properties []byte `json:"properties"`
	// WrappedRoot is the instance root key wrapped by the region seal.
	WrappedRoot []byte `json:"wrappedRoot"`
}
