package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Command is a typed mutation. Only this package defines commands; each
// knows how to apply itself to a transaction.
//
// Every command checks all its conditions before its first write (validate,
// then write): a command that returns an error has not written anything, so
// commands can share a transaction.
type Command interface {
	// CommandType names the command in its wire form.
	CommandType() string
	apply(tx txn) error
}

// txn is what commands see of a write transaction.
type txn interface {
	get(bucket []string, key string) []byte
	put(bucket []string, key string, value []byte) error
	del(bucket []string, key string) error
	dropBucket(bucket []string) error
	// moveBucket moves the bucket src to dst (which must not exist),
	// creating dst's parents; a missing src is a no-op.
	moveBucket(src, dst []string) error
	// each calls fn for the values (not nested buckets) of a bucket by key;
	// fn must not write.
	each(bucket []string, fn func(key string, value []byte) error) error
	// children lists the nested buckets of a bucket by name.
	children(bucket []string) []string
}

var (
	bRegion      = []string{"region"}
	bPrincipals  = []string{"principals"}
	bClientIndex = []string{"principals-by-client"}
	bInstances   = []string{"instances"}
	bWrites      = []string{"instance-writes"}
	bJobs        = []string{"jobs"}
	bBackupPols  = []string{"backup-policies"}
	bMeta        = []string{"meta"}
)

// The top-level buckets by the state they hold (docs/architecture.md,
// "Region-local and replicated state"). Region-local state belongs to one
// region and is shared only by the nodes of its cluster; instance state
// belongs to an instance and is what a secondary region of the instance
// follows. A test keeps every bucket the store creates in one of the lists.
var (
	// RegionBuckets hold the region's own state: its tenant, root key and
	// token-signing key, its principals, its jobs, the instances' scheduled
	// backup policies (operational configuration of this region, never an
	// instance's content), and the applied index.
	RegionBuckets = []string{"region", "principals", "principals-by-client", "jobs", "jobs-running", "backup-policies", "meta"}
	// InstanceBuckets hold the instances' state: their records, their
	// values, their write counters and staged replaces.
	InstanceBuckets = []string{"instances", "instance-data", "instance-writes", "staging"}
)

// PolicyBuckets are the instance buckets that hold policy: role
// assignments, role definitions and settings. They change only through
// [UpdateInstance] (which bumps the generation), never through
// [WriteInstanceValues].
var PolicyBuckets = []string{"roleassignments", "roledefinitions", "settings"}

func instanceData(name string) []string           { return []string{"instance-data", name} }
func instanceBucket(name, bucket string) []string { return []string{"instance-data", name, bucket} }
func stagingArea(name string) []string            { return []string{"staging", name} }
func stagingBucket(name, bucket string) []string  { return []string{"staging", name, bucket} }
func runningJobs(instance string) []string        { return []string{"jobs-running", instance} }
func isPolicyBucket(bucket string) bool           { return slices.Contains(PolicyBuckets, bucket) }
func uint64Bytes(n uint64) []byte                 { return binary.BigEndian.AppendUint64(nil, n) }
func bytesUint64(b []byte) uint64 {
	return binary.BigEndian.Uint64(append(make([]byte, 8-min(len(b), 8)), b...))
}
func writesOf(tx interface{ get([]string, string) []byte }, name string) uint64 {
	return bytesUint64(tx.get(bWrites, name))
}

// Limits of the underlying store (bbolt's).
const (
	maxKeySize   = 32768
	maxValueSize = (1 << 31) - 2
)

func checkName(what, name string) error {
	if name == "" {
		return fmt.Errorf("store: empty %s", what)
	}
	if len(name) > maxKeySize {
		return fmt.Errorf("store: %s too long (%d bytes)", what, len(name))
	}
	return nil
}

func checkValue(what string, v []byte) error {
	if len(v) > maxValueSize {
		return fmt.Errorf("store: %s too large (%d bytes)", what, len(v))
	}
	return nil
}

// checkValues checks the shape of values: bucket and key set, sizes in
// range; policy refuses the policy buckets.
func checkValues(vs []Value, values, policy bool) error {
	for _, v := range vs {
		if v.Bucket == "" || v.Key == "" {
			return fmt.Errorf("store: value needs bucket and key")
		}
		if err := checkName("bucket name", v.Bucket); err != nil {
			return err
		}
		if err := checkName("key", v.Key); err != nil {
			return err
		}
		if values {
			if err := checkValue("value", v.Value); err != nil {
				return err
			}
		}
		if policy && isPolicyBucket(v.Bucket) {
			return fmt.Errorf("store: bucket %q holds policy and changes only through UpdateInstance", v.Bucket)
		}
	}
	return nil
}

func checkBuckets(bs []string) error {
	for _, b := range bs {
		if err := checkName("bucket name", b); err != nil {
			return err
		}
	}
	return nil
}

// PutRegionValue stores a region-level value. With IfAbsent, an existing
// value makes it fail with ErrExists.
type PutRegionValue struct {
	Key      string `json:"key"`
	Value    []byte `json:"value"`
	IfAbsent bool   `json:"ifAbsent,omitempty"`
}

// CreatePrincipal adds a principal; object id and client id are unique.
type CreatePrincipal struct {
	Principal Principal `json:"principal"`
}

// DeletePrincipal removes a principal.
type DeletePrincipal struct {
	ObjectID string `json:"objectId"`
}

// ReplacePrincipals rewrites existing principals (each must exist with the
// same object id and client id) and puts region values, all in one
// transaction: what a migration of the region's records (adding their MACs
// and the region's marker that they have them) needs to be all or nothing.
type ReplacePrincipals struct {
	Principals   []Principal `json:"principals"`
	RegionValues []KV        `json:"regionValues,omitempty"`
}

// RewrapRoots replaces wrapped root keys, all in one transaction: each
// region value of Region (which must hold Old) and the WrappedRoot of each
// instance of Instances (deleted, staging or live, which must hold Old).
// It is how a region moves to another seal: the roots themselves do not
// change, so no value sealed under them is touched and neither generation
// nor epoch moves. Any difference from Old fails it with [ErrConflict].
type RewrapRoots struct {
	Region    []Rewrap `json:"region,omitempty"`
	Instances []Rewrap `json:"instances,omitempty"`
}

// Rewrap names a wrapped root (a region key or an instance name), the
// wrap it must hold and the wrap that replaces it.
type Rewrap struct {
	Name string `json:"name"`
	Old  []byte `json:"old"`
	New  []byte `json:"new"`
}

// CreateInstance adds an instance record (generation 1, epoch 1, no writes)
// and its first values. The name must not be in use, not even by a
// soft-deleted instance.
type CreateInstance struct {
	Instance Instance `json:"instance"`
	Values   []Value  `json:"values,omitempty"`
}

// Value is a sealed value in an instance's bucket.
type Value struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	Value  []byte `json:"value"`
}

// UpdateInstance replaces an instance's sealed properties (and, if set, its
// wrapped root) and applies value changes, if the instance is still at
// generation Expect, not deleted and not staging ([ErrBusy]).
//
// An update that sets WrappedRoot or has ReplaceBuckets is a whole-instance
// replace: it also requires that ExpectWrites equals the instance's write
// count ([ErrConflict] otherwise: a key write landed after the replacer
// read the instance), and it bumps the epoch.
type UpdateInstance struct {
	Name        string  `json:"name"`
	Expect      uint64  `json:"expect"`
	Properties  []byte  `json:"properties"`
	WrappedRoot []byte  `json:"wrappedRoot,omitempty"`
	Puts        []Value `json:"puts,omitempty"`
	Deletes     []Value `json:"deletes,omitempty"`
	// ReplaceBuckets drops these buckets before Puts are applied.
	ReplaceBuckets []string `json:"replaceBuckets,omitempty"`
	// ExpectWrites is the write count the replacer read (whole-instance
	// replaces only).
	ExpectWrites uint64 `json:"expectWrites,omitempty"`
}

// DeleteInstance soft-deletes an instance at generation Expect.
type DeleteInstance struct {
	Name               string    `json:"name"`
	Expect             uint64    `json:"expect"`
	DeletionDate       time.Time `json:"deletionDate"`
	ScheduledPurgeDate time.Time `json:"scheduledPurgeDate"`
}

// RecoverInstance undoes a soft delete at generation Expect.
type RecoverInstance struct {
	Name   string `json:"name"`
	Expect uint64 `json:"expect"`
}

// PurgeInstance removes a soft-deleted instance and all its values for good,
// if it is still at generation Expect.
type PurgeInstance struct {
	Name   string `json:"name"`
	Expect uint64 `json:"expect"`
}

// WriteInstanceValues changes values of a live (not deleted, not staging)
// instance without touching its properties or generation, if every
// condition holds: the instance is at epoch Epoch and the conditioned
// values are exactly as the writer read them. It is how services change
// many values (keys) without contending on the instance. It may not touch
// the [PolicyBuckets]. Each applied WriteInstanceValues counts in the
// instance's Writes.
type WriteInstanceValues struct {
	Name string `json:"name"`
	// Epoch is the instance's epoch the writer read; 0 is invalid.
	Epoch uint64 `json:"epoch"`
	// Root, if set, must equal the instance's wrapped root: the writer's
	// values were sealed under that root, and a re-created instance of the
	// same name (or one whose root was replaced) must not receive them.
	Root       []byte      `json:"root,omitempty"`
	Puts       []Value     `json:"puts,omitempty"`
	Deletes    []Value     `json:"deletes,omitempty"`
	Conditions []Condition `json:"conditions,omitempty"`
}

// Condition requires a value to be absent (Absent) or to equal Value.
type Condition struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	Absent bool   `json:"absent,omitempty"`
	Value  []byte `json:"value,omitempty"`
}

// BeginStage starts a staged replace of an instance that is at generation
// Expect, not deleted and not staging already ([ErrBusy]): it sets Staging
// to Stage, drops any leftover staging area and bumps the generation.
type BeginStage struct {
	Name   string `json:"name"`
	Expect uint64 `json:"expect"`
	Stage  string `json:"stage"`
}

// StageValues puts values into the staging area of an instance staging
// with Stage ([ErrConflict] otherwise), never into its live data.
type StageValues struct {
	Name   string  `json:"name"`
	Stage  string  `json:"stage"`
	Values []Value `json:"values"`
}

// CommitStage ends the staged replace Stage of an instance at generation
// Expect: each of Buckets is replaced by its staged version (a bucket that
// was not staged becomes empty), the staging area is dropped, Staging
// cleared, and epoch and generation bumped. Properties and WrappedRoot are
// replaced when non-nil.
type CommitStage struct {
	Name        string   `json:"name"`
	Stage       string   `json:"stage"`
	Expect      uint64   `json:"expect"`
	Buckets     []string `json:"buckets"`
	Properties  []byte   `json:"properties,omitempty"`
	WrappedRoot []byte   `json:"wrappedRoot,omitempty"`
	// Job, if set, is recorded in the same transaction (as by UpdateJob):
	// the job that staged the replace ends exactly when the swap happens,
	// so a crash can never leave a swapped instance whose job says it
	// failed, nor the reverse.
	Job *Job `json:"job,omitempty"`
}

// AbortStage ends the staged replace Stage ("" = whichever is in progress)
// without changing live data: it drops the staging area, clears Staging and
// bumps the generation. If the instance is not staging with Stage (or does
// not exist) it does nothing and succeeds.
type AbortStage struct {
	Name  string `json:"name"`
	Stage string `json:"stage,omitempty"`
}

// StartJob records a new job (its id must be new: [ErrExists]). With
// Exclusive it is refused with [ErrConflict] while another job of the same
// instance is in progress. An empty Status means [JobInProgress].
type StartJob struct {
	Job       Job  `json:"job"`
	Exclusive bool `json:"exclusive,omitempty"`
}

// UpdateJob replaces a job that is still in progress ([ErrNotFound],
// [ErrConflict] if it ended: an ended job is immutable). Id, kind and
// instance cannot change.
type UpdateJob struct {
	Job Job `json:"job"`
}

// FailInterruptedJobs fails every job in progress with Error = Message and
// End = At. The server applies it at start: no job survives its process.
// With Node set (a cluster node), only the jobs that node ran are failed:
// the other nodes' jobs may still run.
type FailInterruptedJobs struct {
	Message string    `json:"message"`
	At      time.Time `json:"at"`
	Node    string    `json:"node,omitempty"`
}

// PutBackupPolicy sets the scheduled backup policy of an instance that
// exists and is not deleted ([ErrNotFound], [ErrConflict]), replacing any
// policy it had, status included.
type PutBackupPolicy struct {
	Policy BackupPolicy `json:"policy"`
}

// DeleteBackupPolicy removes the backup policy of an instance
// ([ErrNotFound] if it has none).
type DeleteBackupPolicy struct {
	Instance string `json:"instance"`
}

// RecordBackupRun replaces the status of the backup policy ID of an
// instance: [ErrNotFound] if the instance has no policy, [ErrConflict] if
// its policy is another one (set again or deleted and set since the run
// began), so a run never records into a policy it did not run.
type RecordBackupRun struct {
	Instance string             `json:"instance"`
	ID       string             `json:"id"`
	Status   BackupPolicyStatus `json:"status"`
}

func (PutRegionValue) CommandType() string      { return "PutRegionValue" }
func (CreatePrincipal) CommandType() string     { return "CreatePrincipal" }
func (DeletePrincipal) CommandType() string     { return "DeletePrincipal" }
func (ReplacePrincipals) CommandType() string   { return "ReplacePrincipals" }
func (RewrapRoots) CommandType() string         { return "RewrapRoots" }
func (CreateInstance) CommandType() string      { return "CreateInstance" }
func (UpdateInstance) CommandType() string      { return "UpdateInstance" }
func (DeleteInstance) CommandType() string      { return "DeleteInstance" }
func (RecoverInstance) CommandType() string     { return "RecoverInstance" }
func (PurgeInstance) CommandType() string       { return "PurgeInstance" }
func (WriteInstanceValues) CommandType() string { return "WriteInstanceValues" }
func (BeginStage) CommandType() string          { return "BeginStage" }
func (StageValues) CommandType() string         { return "StageValues" }
func (CommitStage) CommandType() string         { return "CommitStage" }
func (AbortStage) CommandType() string          { return "AbortStage" }
func (StartJob) CommandType() string            { return "StartJob" }
func (UpdateJob) CommandType() string           { return "UpdateJob" }
func (PutBackupPolicy) CommandType() string     { return "PutBackupPolicy" }
func (DeleteBackupPolicy) CommandType() string  { return "DeleteBackupPolicy" }
func (RecordBackupRun) CommandType() string     { return "RecordBackupRun" }

// CommandType implements [Command].
func (FailInterruptedJobs) CommandType() string { return "FailInterruptedJobs" }

var registry = map[string]func() Command{
	"PutRegionValue":      func() Command { return &PutRegionValue{} },
	"CreatePrincipal":     func() Command { return &CreatePrincipal{} },
	"DeletePrincipal":     func() Command { return &DeletePrincipal{} },
	"ReplacePrincipals":   func() Command { return &ReplacePrincipals{} },
	"RewrapRoots":         func() Command { return &RewrapRoots{} },
	"CreateInstance":      func() Command { return &CreateInstance{} },
	"UpdateInstance":      func() Command { return &UpdateInstance{} },
	"DeleteInstance":      func() Command { return &DeleteInstance{} },
	"RecoverInstance":     func() Command { return &RecoverInstance{} },
	"PurgeInstance":       func() Command { return &PurgeInstance{} },
	"WriteInstanceValues": func() Command { return &WriteInstanceValues{} },
	"BeginStage":          func() Command { return &BeginStage{} },
	"StageValues":         func() Command { return &StageValues{} },
	"CommitStage":         func() Command { return &CommitStage{} },
	"AbortStage":          func() Command { return &AbortStage{} },
	"StartJob":            func() Command { return &StartJob{} },
	"UpdateJob":           func() Command { return &UpdateJob{} },
	"FailInterruptedJobs": func() Command { return &FailInterruptedJobs{} },
	"PutBackupPolicy":     func() Command { return &PutBackupPolicy{} },
	"DeleteBackupPolicy":  func() Command { return &DeleteBackupPolicy{} },
	"RecordBackupRun":     func() Command { return &RecordBackupRun{} },
}

type envelope struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// Encode returns the wire form of cmd (for a replicated log).
func Encode(cmd Command) ([]byte, error) {
	p, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("store: encode %s: %w", cmd.CommandType(), err)
	}
	return json.Marshal(envelope{Type: cmd.CommandType(), Payload: p})
}

// Decode parses the wire form made by [Encode].
func Decode(data []byte) (Command, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("store: decode command: %w", err)
	}
	mk, ok := registry[env.Type]
	if !ok {
		return nil, fmt.Errorf("store: decode command: unknown type %q", env.Type)
	}
	cmd := mk()
	if err := json.Unmarshal(env.Payload, cmd); err != nil {
		return nil, fmt.Errorf("store: decode %s: %w", env.Type, err)
	}
	return cmd, nil
}

// ---------------------------------------------------------------------------
// apply: every function validates everything first, then writes.

func (c PutRegionValue) apply(tx txn) error {
	if err := checkName("region key", c.Key); err != nil {
		return err
	}
	if err := checkValue("region value", c.Value); err != nil {
		return err
	}
	if c.IfAbsent && tx.get(bRegion, c.Key) != nil {
		return fmt.Errorf("region value %q: %w", c.Key, ErrExists)
	}
	return tx.put(bRegion, c.Key, c.Value)
}

func (c CreatePrincipal) apply(tx txn) error {
	p := c.Principal
	if p.ObjectID == "" || p.ClientID == "" {
		return fmt.Errorf("store: principal needs object id and client id")
	}
	if err := checkName("object id", p.ObjectID); err != nil {
		return err
	}
	if err := checkName("client id", p.ClientID); err != nil {
		return err
	}
	if tx.get(bPrincipals, p.ObjectID) != nil {
		return fmt.Errorf("principal %s: %w", p.ObjectID, ErrExists)
	}
	if tx.get(bClientIndex, p.ClientID) != nil {
		return fmt.Errorf("client id %s: %w", p.ClientID, ErrExists)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("store: encode principal %s: %w", p.ObjectID, err)
	}
	if err := tx.put(bPrincipals, p.ObjectID, b); err != nil {
		return err
	}
	return tx.put(bClientIndex, p.ClientID, []byte(p.ObjectID))
}

func (c DeletePrincipal) apply(tx txn) error {
	var p Principal
	if err := getJSON(tx, bPrincipals, c.ObjectID, &p); err != nil {
		return fmt.Errorf("principal %s: %w", c.ObjectID, err)
	}
	if err := tx.del(bClientIndex, p.ClientID); err != nil {
		return err
	}
	return tx.del(bPrincipals, c.ObjectID)
}

func (c ReplacePrincipals) apply(tx txn) error {
	encoded := make([][]byte, len(c.Principals))
	for i, p := range c.Principals {
		var old Principal
		if err := getJSON(tx, bPrincipals, p.ObjectID, &old); err != nil {
			return fmt.Errorf("principal %s: %w", p.ObjectID, err)
		}
		if old.ClientID != p.ClientID {
			return fmt.Errorf("principal %s: client id %s changes to %s: %w", p.ObjectID, old.ClientID, p.ClientID, ErrConflict)
		}
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("store: encode principal %s: %w", p.ObjectID, err)
		}
		encoded[i] = b
	}
	for _, kv := range c.RegionValues {
		if err := checkName("region key", kv.Key); err != nil {
			return err
		}
		if err := checkValue("region value", kv.Value); err != nil {
			return err
		}
	}
	for i, p := range c.Principals {
		if err := tx.put(bPrincipals, p.ObjectID, encoded[i]); err != nil {
			return err
		}
	}
	for _, kv := range c.RegionValues {
		if err := tx.put(bRegion, kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

func (c RewrapRoots) apply(tx txn) error {
	for _, r := range c.Region {
		if err := checkName("region key", r.Name); err != nil {
			return err
		}
		if err := checkValue("region value", r.New); err != nil {
			return err
		}
		cur := tx.get(bRegion, r.Name)
		if cur == nil {
			return fmt.Errorf("region value %s: %w", r.Name, ErrNotFound)
		}
		if !bytes.Equal(cur, r.Old) || len(r.New) == 0 {
			return fmt.Errorf("region value %s changed or no new wrap: %w", r.Name, ErrConflict)
		}
	}
	ins := make([]Instance, len(c.Instances))
	for i, r := range c.Instances {
		in, err := readInstance(tx, r.Name)
		if err != nil {
			return err
		}
		if !bytes.Equal(in.WrappedRoot, r.Old) || len(r.New) == 0 {
			return fmt.Errorf("instance %s: root changed or no new wrap: %w", r.Name, ErrConflict)
		}
		in.WrappedRoot = r.New
		ins[i] = in
	}
	for _, r := range c.Region {
		if err := tx.put(bRegion, r.Name, r.New); err != nil {
			return err
		}
	}
	for _, in := range ins {
		if err := putInstance(tx, in); err != nil {
			return err
		}
	}
	return nil
}

func (c CreateInstance) apply(tx txn) error {
	in := c.Instance
	if err := checkName("instance name", in.Name); err != nil {
		return fmt.Errorf("store: instance needs a name: %w", err)
	}
	if err := checkValues(c.Values, true, false); err != nil {
		return err
	}
	if tx.get(bInstances, in.Name) != nil {
		return fmt.Errorf("instance %s: %w", in.Name, ErrExists)
	}
	in.Generation, in.Epoch, in.Writes, in.Staging = 1, 1, 0, ""
	in.Deleted, in.DeletionDate, in.ScheduledPurgeDate = false, time.Time{}, time.Time{}
	rec, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("store: encode instance %s: %w", in.Name, err)
	}
	// Writes from here on. A purged instance leaves no values; drop any
	// leftovers anyway so a new instance never sees another's data.
	for _, p := range [][]string{instanceData(in.Name), stagingArea(in.Name)} {
		if err := tx.dropBucket(p); err != nil {
			return err
		}
	}
	if err := tx.del(bWrites, in.Name); err != nil {
		return err
	}
	if err := tx.del(bBackupPols, in.Name); err != nil {
		return err
	}
	if err := tx.put(bInstances, in.Name, rec); err != nil {
		return err
	}
	return putValues(tx, instanceBucket, in.Name, c.Values)
}

// putValues writes values checked by checkValues.
func putValues(tx txn, where func(name, bucket string) []string, name string, vs []Value) error {
	for _, v := range vs {
		if err := tx.put(where(name, v.Bucket), v.Key, v.Value); err != nil {
			return err
		}
	}
	return nil
}

func deleteValues(tx txn, name string, vs []Value) error {
	for _, v := range vs {
		if err := tx.del(instanceBucket(name, v.Bucket), v.Key); err != nil {
			return err
		}
	}
	return nil
}

// readInstance reads an instance record (Writes not filled in).
func readInstance(tx interface{ get([]string, string) []byte }, name string) (Instance, error) {
	var in Instance
	b := tx.get(bInstances, name)
	if b == nil {
		return in, fmt.Errorf("instance %s: %w", name, ErrNotFound)
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("store: decode instance %s: %w", name, err)
	}
	if in.Epoch == 0 { // stored before epochs existed
		in.Epoch = 1
	}
	return in, nil
}

// loadInstance reads an instance that must not be staging, at generation
// expect.
func loadInstance(tx txn, name string, expect uint64) (Instance, error) {
	in, err := readInstance(tx, name)
	if err != nil {
		return in, err
	}
	if in.Staging != "" {
		return in, fmt.Errorf("instance %s is being replaced (stage %s): %w", name, in.Staging, ErrBusy)
	}
	if in.Generation != expect {
		return in, fmt.Errorf("instance %s changed (generation %d, expected %d): %w", name, in.Generation, expect, ErrConflict)
	}
	return in, nil
}

func putInstance(tx txn, in Instance) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("store: encode instance %s: %w", in.Name, err)
	}
	return tx.put(bInstances, in.Name, b)
}

func (c UpdateInstance) apply(tx txn) error {
	if err := checkValues(c.Puts, true, false); err != nil {
		return err
	}
	if err := checkValues(c.Deletes, false, false); err != nil {
		return err
	}
	if err := checkBuckets(c.ReplaceBuckets); err != nil {
		return err
	}
	in, err := loadInstance(tx, c.Name, c.Expect)
	if err != nil {
		return err
	}
	if in.Deleted {
		return fmt.Errorf("instance %s is deleted: %w", c.Name, ErrConflict)
	}
	replace := c.WrappedRoot != nil || len(c.ReplaceBuckets) > 0
	if w := writesOf(tx, c.Name); replace && w != c.ExpectWrites {
		return fmt.Errorf("instance %s has %d writes, expected %d: %w", c.Name, w, c.ExpectWrites, ErrConflict)
	}
	in.Generation++
	in.Properties = c.Properties
	if c.WrappedRoot != nil {
		in.WrappedRoot = c.WrappedRoot
	}
	if replace {
		in.Epoch++
	}
	for _, b := range c.ReplaceBuckets {
		if err := tx.dropBucket(instanceBucket(c.Name, b)); err != nil {
			return err
		}
	}
	if err := deleteValues(tx, c.Name, c.Deletes); err != nil {
		return err
	}
	if err := putValues(tx, instanceBucket, c.Name, c.Puts); err != nil {
		return err
	}
	return putInstance(tx, in)
}

func (c DeleteInstance) apply(tx txn) error {
	in, err := loadInstance(tx, c.Name, c.Expect)
	if err != nil {
		return err
	}
	if in.Deleted {
		return fmt.Errorf("instance %s is deleted already: %w", c.Name, ErrConflict)
	}
	in.Generation++
	in.Deleted = true
	in.DeletionDate = c.DeletionDate
	in.ScheduledPurgeDate = c.ScheduledPurgeDate
	return putInstance(tx, in)
}

func (c RecoverInstance) apply(tx txn) error {
	in, err := loadInstance(tx, c.Name, c.Expect)
	if err != nil {
		return err
	}
	if !in.Deleted {
		return fmt.Errorf("instance %s is not deleted: %w", c.Name, ErrConflict)
	}
	in.Generation++
	in.Deleted = false
	in.DeletionDate = time.Time{}
	in.ScheduledPurgeDate = time.Time{}
	return putInstance(tx, in)
}

func (c PurgeInstance) apply(tx txn) error {
	in, err := loadInstance(tx, c.Name, c.Expect)
	if err != nil {
		return err
	}
	if !in.Deleted {
		return fmt.Errorf("instance %s is not deleted: %w", c.Name, ErrConflict)
	}
	for _, p := range [][]string{instanceData(c.Name), stagingArea(c.Name)} {
		if err := tx.dropBucket(p); err != nil {
			return err
		}
	}
	if err := tx.del(bWrites, c.Name); err != nil {
		return err
	}
	if err := tx.del(bBackupPols, c.Name); err != nil {
		return err
	}
	return tx.del(bInstances, c.Name)
}

func getJSON(tx interface{ get([]string, string) []byte }, bucket []string, key string, v any) error {
	b := tx.get(bucket, key)
	if b == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("store: decode %s: %w", key, err)
	}
	return nil
}

func (c WriteInstanceValues) apply(tx txn) error {
	if c.Epoch == 0 {
		return fmt.Errorf("store: write to instance %s names no epoch", c.Name)
	}
	if err := checkValues(c.Puts, true, true); err != nil {
		return err
	}
	if err := checkValues(c.Deletes, false, true); err != nil {
		return err
	}
	for _, cond := range c.Conditions {
		if cond.Bucket == "" || cond.Key == "" {
			return fmt.Errorf("store: condition needs bucket and key")
		}
	}
	in, err := readInstance(tx, c.Name)
	if err != nil {
		return err
	}
	if in.Deleted {
		return fmt.Errorf("instance %s is deleted: %w", c.Name, ErrConflict)
	}
	if in.Staging != "" {
		return fmt.Errorf("instance %s is being replaced (stage %s): %w", c.Name, in.Staging, ErrBusy)
	}
	if in.Epoch != c.Epoch {
		return fmt.Errorf("instance %s was replaced (epoch %d, expected %d): %w", c.Name, in.Epoch, c.Epoch, ErrConflict)
	}
	if c.Root != nil && !bytes.Equal(c.Root, in.WrappedRoot) {
		return fmt.Errorf("instance %s has another root: %w", c.Name, ErrConflict)
	}
	for _, cond := range c.Conditions {
		cur := tx.get(instanceBucket(c.Name, cond.Bucket), cond.Key)
		switch {
		case cond.Absent && cur != nil:
			return fmt.Errorf("%s/%s exists: %w", cond.Bucket, cond.Key, ErrConflict)
		case !cond.Absent && (cur == nil || !bytes.Equal(cur, cond.Value)):
			return fmt.Errorf("%s/%s changed: %w", cond.Bucket, cond.Key, ErrConflict)
		}
	}
	if err := deleteValues(tx, c.Name, c.Deletes); err != nil {
		return err
	}
	if err := putValues(tx, instanceBucket, c.Name, c.Puts); err != nil {
		return err
	}
	return tx.put(bWrites, c.Name, uint64Bytes(writesOf(tx, c.Name)+1))
}

// ---------------------------------------------------------------------------
// staged replace

// loadStaging reads an instance that must be staging with stage.
func loadStaging(tx txn, name, stage string) (Instance, error) {
	if err := checkName("stage", stage); err != nil {
		return Instance{}, err
	}
	in, err := readInstance(tx, name)
	if err != nil {
		return in, err
	}
	if in.Staging != stage {
		return in, fmt.Errorf("instance %s is not staging %s (staging %q): %w", name, stage, in.Staging, ErrConflict)
	}
	return in, nil
}

func (c BeginStage) apply(tx txn) error {
	if err := checkName("stage", c.Stage); err != nil {
		return err
	}
	in, err := loadInstance(tx, c.Name, c.Expect)
	if err != nil {
		return err
	}
	if in.Deleted {
		return fmt.Errorf("instance %s is deleted: %w", c.Name, ErrConflict)
	}
	if err := tx.dropBucket(stagingArea(c.Name)); err != nil {
		return err
	}
	in.Staging = c.Stage
	in.Generation++
	return putInstance(tx, in)
}

func (c StageValues) apply(tx txn) error {
	if err := checkValues(c.Values, true, false); err != nil {
		return err
	}
	if _, err := loadStaging(tx, c.Name, c.Stage); err != nil {
		return err
	}
	return putValues(tx, stagingBucket, c.Name, c.Values)
}

func (c CommitStage) apply(tx txn) error {
	if err := checkBuckets(c.Buckets); err != nil {
		return err
	}
	in, err := loadStaging(tx, c.Name, c.Stage)
	if err != nil {
		return err
	}
	if in.Generation != c.Expect {
		return fmt.Errorf("instance %s changed (generation %d, expected %d): %w", c.Name, in.Generation, c.Expect, ErrConflict)
	}
	if c.Job != nil {
		if c.Job.Instance != c.Name {
			return fmt.Errorf("store: job %s is not of instance %s", c.Job.ID, c.Name)
		}
		if err := (UpdateJob{Job: *c.Job}).check(tx); err != nil {
			return err
		}
	}
	for _, b := range c.Buckets {
		if err := tx.dropBucket(instanceBucket(c.Name, b)); err != nil {
			return err
		}
		if err := tx.moveBucket(stagingBucket(c.Name, b), instanceBucket(c.Name, b)); err != nil {
			return err
		}
	}
	if err := tx.dropBucket(stagingArea(c.Name)); err != nil {
		return err
	}
	in.Staging = ""
	in.Epoch++
	in.Generation++
	if c.Properties != nil {
		in.Properties = c.Properties
	}
	if c.WrappedRoot != nil {
		in.WrappedRoot = c.WrappedRoot
	}
	if c.Job != nil {
		if err := putJob(tx, *c.Job); err != nil {
			return err
		}
	}
	return putInstance(tx, in)
}

func (c AbortStage) apply(tx txn) error {
	in, err := readInstance(tx, c.Name)
	if err != nil || in.Staging == "" || (c.Stage != "" && in.Staging != c.Stage) {
		return nil // nothing to abort
	}
	if err := tx.dropBucket(stagingArea(c.Name)); err != nil {
		return err
	}
	in.Staging = ""
	in.Generation++
	return putInstance(tx, in)
}

// ---------------------------------------------------------------------------
// jobs

func checkJob(j Job) error {
	if err := checkName("job id", j.ID); err != nil {
		return err
	}
	if err := checkName("job instance", j.Instance); err != nil {
		return err
	}
	if j.Kind == "" {
		return fmt.Errorf("store: job %s has no kind", j.ID)
	}
	switch j.Status {
	case JobInProgress, JobSucceeded, JobFailed:
		return nil
	}
	return fmt.Errorf("store: job %s has unknown status %q", j.ID, j.Status)
}

func putJob(tx txn, j Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("store: encode job %s: %w", j.ID, err)
	}
	if err := tx.put(bJobs, j.ID, b); err != nil {
		return err
	}
	if j.Status == JobInProgress {
		return tx.put(runningJobs(j.Instance), j.ID, nil)
	}
	return tx.del(runningJobs(j.Instance), j.ID)
}

func (c StartJob) apply(tx txn) error {
	j := c.Job
	if j.Status == "" {
		j.Status = JobInProgress
	}
	if err := checkJob(j); err != nil {
		return err
	}
	if j.Status != JobInProgress {
		return fmt.Errorf("store: job %s starts %s, not %s", j.ID, j.Status, JobInProgress)
	}
	if tx.get(bJobs, j.ID) != nil {
		return fmt.Errorf("job %s: %w", j.ID, ErrExists)
	}
	if c.Exclusive {
		var running []string
		if err := tx.each(runningJobs(j.Instance), func(id string, _ []byte) error {
			running = append(running, id)
			return ErrStop
		}); err != nil && err != ErrStop {
			return err
		}
		if len(running) > 0 {
			var other Job
			if err := getJSON(tx, bJobs, running[0], &other); err != nil {
				return fmt.Errorf("job %s: %w", running[0], err)
			}
			return fmt.Errorf("instance %s has a %s job in progress (%s): %w", j.Instance, other.Kind, other.ID, ErrConflict)
		}
	}
	return putJob(tx, j)
}

func (c UpdateJob) apply(tx txn) error {
	if err := c.check(tx); err != nil {
		return err
	}
	return putJob(tx, c.Job)
}

// check validates an UpdateJob without writing.
func (c UpdateJob) check(tx txn) error {
	j := c.Job
	if err := checkJob(j); err != nil {
		return err
	}
	var cur Job
	if err := getJSON(tx, bJobs, j.ID, &cur); err != nil {
		return fmt.Errorf("job %s: %w", j.ID, err)
	}
	if cur.Status != JobInProgress {
		return fmt.Errorf("job %s has ended (%s): %w", j.ID, cur.Status, ErrConflict)
	}
	if j.Kind != cur.Kind || j.Instance != cur.Instance {
		return fmt.Errorf("store: job %s cannot change kind or instance", j.ID)
	}
	return nil
}

func (c FailInterruptedJobs) apply(tx txn) error {
	var failed []Job
	for _, instance := range tx.children([]string{"jobs-running"}) {
		err := tx.each(runningJobs(instance), func(id string, _ []byte) error {
			var j Job
			if err := getJSON(tx, bJobs, id, &j); err != nil {
				return fmt.Errorf("job %s: %w", id, err)
			}
			if c.Node != "" && j.Node != c.Node {
				return nil // another node's job, which may still run
			}
			j.Status, j.Error, j.End = JobFailed, c.Message, c.At
			failed = append(failed, j)
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, j := range failed {
		if err := putJob(tx, j); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// backup policies

func (c PutBackupPolicy) apply(tx txn) error {
	p := c.Policy
	if err := checkName("backup policy instance", p.Instance); err != nil {
		return err
	}
	if err := checkName("backup policy id", p.ID); err != nil {
		return err
	}
	if len(p.Sealed) == 0 {
		return fmt.Errorf("store: backup policy of %s has no sealed settings", p.Instance)
	}
	if err := checkValue("backup policy", p.Sealed); err != nil {
		return err
	}
	in, err := readInstance(tx, p.Instance)
	if err != nil {
		return err
	}
	if in.Deleted {
		return fmt.Errorf("instance %s is deleted: %w", p.Instance, ErrConflict)
	}
	return putBackupPolicy(tx, p)
}

func putBackupPolicy(tx txn, p BackupPolicy) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("store: encode backup policy of %s: %w", p.Instance, err)
	}
	return tx.put(bBackupPols, p.Instance, b)
}

func (c DeleteBackupPolicy) apply(tx txn) error {
	if tx.get(bBackupPols, c.Instance) == nil {
		return fmt.Errorf("backup policy of %s: %w", c.Instance, ErrNotFound)
	}
	return tx.del(bBackupPols, c.Instance)
}

func (c RecordBackupRun) apply(tx txn) error {
	var p BackupPolicy
	if err := getJSON(tx, bBackupPols, c.Instance, &p); err != nil {
		return fmt.Errorf("backup policy of %s: %w", c.Instance, err)
	}
	if p.ID != c.ID {
		return fmt.Errorf("backup policy of %s is %s, not %s: %w", c.Instance, p.ID, c.ID, ErrConflict)
	}
	p.Status = c.Status
	return putBackupPolicy(tx, p)
}
