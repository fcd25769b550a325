package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Command is a typed mutation. Only this package defines commands; each
// knows how to apply itself to a transaction.
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
}

var (
	bRegion      = []string{"region"}
	bPrincipals  = []string{"principals"}
	bClientIndex = []string{"principals-by-client"}
	bInstances   = []string{"instances"}
)

func instanceBucket(name, bucket string) []string { return []string{"instance-data", name, bucket} }

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

// CreateInstance adds an instance record (generation 1) and its first values.
// The name must not be in use, not even by a soft-deleted instance.
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
// generation Expect and not deleted.
type UpdateInstance struct {
	Name        string  `json:"name"`
	Expect      uint64  `json:"expect"`
	Properties  []byte  `json:"properties"`
	WrappedRoot []byte  `json:"wrappedRoot,omitempty"`
	Puts        []Value `json:"puts,omitempty"`
	Deletes     []Value `json:"deletes,omitempty"`
	// ReplaceBuckets drops these buckets before Puts are applied.
	ReplaceBuckets []string `json:"replaceBuckets,omitempty"`
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

// WriteInstanceValues changes values of a live (not deleted) instance
// without touching its properties or generation, if every condition holds:
// the conditioned values are exactly as the writer read them. It is how
// services change many values (keys) without contending on the instance.
type WriteInstanceValues struct {
	Name string `json:"name"`
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

func (PutRegionValue) CommandType() string  { return "PutRegionValue" }
func (CreatePrincipal) CommandType() string { return "CreatePrincipal" }
func (DeletePrincipal) CommandType() string { return "DeletePrincipal" }
func (CreateInstance) CommandType() string  { return "CreateInstance" }
func (UpdateInstance) CommandType() string  { return "UpdateInstance" }
func (DeleteInstance) CommandType() string  { return "DeleteInstance" }
func (RecoverInstance) CommandType() string { return "RecoverInstance" }
func (PurgeInstance) CommandType() string   { return "PurgeInstance" }

// CommandType implements [Command].
func (WriteInstanceValues) CommandType() string { return "WriteInstanceValues" }

var registry = map[string]func() Command{
	"PutRegionValue":      func() Command { return &PutRegionValue{} },
	"CreatePrincipal":     func() Command { return &CreatePrincipal{} },
	"DeletePrincipal":     func() Command { return &DeletePrincipal{} },
	"CreateInstance":      func() Command { return &CreateInstance{} },
	"UpdateInstance":      func() Command { return &UpdateInstance{} },
	"DeleteInstance":      func() Command { return &DeleteInstance{} },
	"RecoverInstance":     func() Command { return &RecoverInstance{} },
	"PurgeInstance":       func() Command { return &PurgeInstance{} },
	"WriteInstanceValues": func() Command { return &WriteInstanceValues{} },
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

func (c PutRegionValue) apply(tx txn) error {
	if c.Key == "" {
		return fmt.Errorf("store: empty region key")
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
	if tx.get(bPrincipals, p.ObjectID) != nil {
		return fmt.Errorf("principal %s: %w", p.ObjectID, ErrExists)
	}
	if tx.get(bClientIndex, p.ClientID) != nil {
		return fmt.Errorf("client id %s: %w", p.ClientID, ErrExists)
	}
	if err := putJSON(tx, bPrincipals, p.ObjectID, p); err != nil {
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

func (c CreateInstance) apply(tx txn) error {
	in := c.Instance
	if in.Name == "" {
		return fmt.Errorf("store: instance needs a name")
	}
	if tx.get(bInstances, in.Name) != nil {
		return fmt.Errorf("instance %s: %w", in.Name, ErrExists)
	}
	// A purged instance leaves no values; drop any leftovers anyway so a
	// new instance never sees another's data.
	if err := tx.dropBucket([]string{"instance-data", in.Name}); err != nil {
		return err
	}
	in.Generation = 1
	in.Deleted, in.DeletionDate, in.ScheduledPurgeDate = false, time.Time{}, time.Time{}
	if err := putJSON(tx, bInstances, in.Name, in); err != nil {
		return err
	}
	return putValues(tx, in.Name, c.Values)
}

func putValues(tx txn, name string, vs []Value) error {
	for _, v := range vs {
		if v.Bucket == "" || v.Key == "" {
			return fmt.Errorf("store: value needs bucket and key")
		}
		if err := tx.put(instanceBucket(name, v.Bucket), v.Key, v.Value); err != nil {
			return err
		}
	}
	return nil
}

// loadInstance reads an instance at generation expect.
func loadInstance(tx txn, name string, expect uint64) (Instance, error) {
	var in Instance
	if err := getJSON(tx, bInstances, name, &in); err != nil {
		return in, fmt.Errorf("instance %s: %w", name, err)
	}
	if in.Generation != expect {
		return in, fmt.Errorf("instance %s changed (generation %d, expected %d): %w", name, in.Generation, expect, ErrConflict)
	}
	return in, nil
}

func (c UpdateInstance) apply(tx txn) error {
	in, err := loadInstance(tx, c.Name, c.Expect)
	if err != nil {
		return err
	}
	if in.Deleted {
		return fmt.Errorf("instance %s is deleted: %w", c.Name, ErrConflict)
	}
	in.Generation++
	in.Properties = c.Properties
	if c.WrappedRoot != nil {
		in.WrappedRoot = c.WrappedRoot
	}
	for _, b := range c.ReplaceBuckets {
		if err := tx.dropBucket(instanceBucket(c.Name, b)); err != nil {
			return err
		}
	}
	for _, v := range c.Deletes {
		if err := tx.del(instanceBucket(c.Name, v.Bucket), v.Key); err != nil {
			return err
		}
	}
	if err := putValues(tx, c.Name, c.Puts); err != nil {
		return err
	}
	return putJSON(tx, bInstances, c.Name, in)
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
	return putJSON(tx, bInstances, c.Name, in)
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
	return putJSON(tx, bInstances, c.Name, in)
}

func (c PurgeInstance) apply(tx txn) error {
	in, err := loadInstance(tx, c.Name, c.Expect)
	if err != nil {
		return err
	}
	if !in.Deleted {
		return fmt.Errorf("instance %s is not deleted: %w", c.Name, ErrConflict)
	}
	if err := tx.dropBucket([]string{"instance-data", c.Name}); err != nil {
		return err
	}
	return tx.del(bInstances, c.Name)
}

func putJSON(tx txn, bucket []string, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s: %w", key, err)
	}
	return tx.put(bucket, key, b)
}

func getJSON(tx txn, bucket []string, key string, v any) error {
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
	var in Instance
	if err := getJSON(tx, bInstances, c.Name, &in); err != nil {
		return fmt.Errorf("instance %s: %w", c.Name, err)
	}
	if in.Deleted {
		return fmt.Errorf("instance %s is deleted: %w", c.Name, ErrConflict)
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
	for _, v := range c.Deletes {
		if err := tx.del(instanceBucket(c.Name, v.Bucket), v.Key); err != nil {
			return err
		}
	}
	return putValues(tx, c.Name, c.Puts)
}
