package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var _ Store = (*Bolt)(nil)

// Bolt is a single-node [Store] on a bbolt file. Apply commits (and fsyncs)
// before it returns; concurrent Applies are grouped into one transaction
// (bbolt's Batch), each command still all-or-nothing.
type Bolt struct {
	db *bolt.DB
	// decoded caches instance records decoded by readers, by the raw bytes
	// they were decoded from (every data-plane request reads its instance).
	decoded instanceCache
}

type instanceCache struct {
	mu sync.Mutex
	m  map[string]cachedInstance
}

type cachedInstance struct {
	raw string
	in  Instance
}

// get returns a copy of the instance decoded from raw, decoding on a miss.
func (c *instanceCache) get(name string, raw []byte) (Instance, error) {
	c.mu.Lock()
	e, ok := c.m[name]
	c.mu.Unlock()
	if !ok || e.raw != string(raw) {
		e.in = Instance{} // decode afresh: omitted fields must not keep old values
		if err := json.Unmarshal(raw, &e.in); err != nil {
			return Instance{}, fmt.Errorf("store: decode %s: %w", name, err)
		}
		e.raw = string(raw)
		c.mu.Lock()
		if c.m == nil || len(c.m) > 10000 {
			c.m = map[string]cachedInstance{}
		}
		c.m[name] = e
		c.mu.Unlock()
	}
	in := e.in
	in.Properties, in.WrappedRoot = slices.Clone(in.Properties), slices.Clone(in.WrappedRoot)
	return in, nil
}

// OpenBolt opens (or creates) the store file at path with mode 0600.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	return &Bolt{db: db}, nil
}

// Apply implements [Store].
func (s *Bolt) Apply(ctx context.Context, cmd Command) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if cmd == nil {
		return errors.New("store: nil command")
	}
	err := s.db.Batch(func(tx *bolt.Tx) error {
		return cmd.apply(boltTxn{tx})
	})
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// View implements [Store].
func (s *Bolt) View(ctx context.Context, fn func(Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.View(func(tx *bolt.Tx) error { return fn(boltReader{boltTxn{tx}, &s.decoded}) })
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Close implements [Store].
func (s *Bolt) Close() error { return s.db.Close() }

type boltTxn struct{ tx *bolt.Tx }

// bucket walks to a nested bucket; with create it makes missing ones.
func (t boltTxn) bucket(path []string, create bool) (*bolt.Bucket, error) {
	var b *bolt.Bucket
	for i, name := range path {
		var next *bolt.Bucket
		if i == 0 {
			next = t.tx.Bucket([]byte(name))
		} else {
			next = b.Bucket([]byte(name))
		}
		if next == nil {
			if !create {
				return nil, nil
			}
			var err error
			if i == 0 {
				next, err = t.tx.CreateBucket([]byte(name))
			} else {
				next, err = b.CreateBucket([]byte(name))
			}
			if err != nil {
				return nil, fmt.Errorf("store: bucket %v: %w", path, err)
			}
		}
		b = next
	}
	return b, nil
}

func (t boltTxn) get(path []string, key string) []byte {
	b, _ := t.bucket(path, false)
	if b == nil {
		return nil
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil
	}
	return slices.Clone(v)
}

func (t boltTxn) put(path []string, key string, value []byte) error {
	b, err := t.bucket(path, true)
	if err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	return b.Put([]byte(key), value)
}

func (t boltTxn) del(path []string, key string) error {
	b, _ := t.bucket(path, false)
	if b == nil {
		return nil
	}
	return b.Delete([]byte(key))
}

func (t boltTxn) dropBucket(path []string) error {
	if len(path) == 0 {
		return nil
	}
	var err error
	if len(path) == 1 {
		err = t.tx.DeleteBucket([]byte(path[0]))
	} else {
		parent, _ := t.bucket(path[:len(path)-1], false)
		if parent == nil {
			return nil
		}
		err = parent.DeleteBucket([]byte(path[len(path)-1]))
	}
	if err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
		return fmt.Errorf("store: drop %v: %w", path, err)
	}
	return nil
}

func (t boltTxn) list(path []string) []KV {
	b, _ := t.bucket(path, false)
	if b == nil {
		return nil
	}
	var out []KV
	_ = b.ForEach(func(k, v []byte) error {
		if v != nil { // skip nested buckets
			out = append(out, KV{Key: string(k), Value: slices.Clone(v)})
		}
		return nil
	})
	return out
}

type boltReader struct {
	t     boltTxn
	cache *instanceCache
}

func (r boltReader) RegionValue(key string) ([]byte, error) {
	v := r.t.get(bRegion, key)
	if v == nil {
		return nil, ErrNotFound
	}
	return v, nil
}

func (r boltReader) Principal(objectID string) (Principal, error) {
	var p Principal
	err := getJSON(r.t, bPrincipals, objectID, &p)
	return p, err
}

func (r boltReader) PrincipalByClientID(clientID string) (Principal, error) {
	oid := r.t.get(bClientIndex, clientID)
	if oid == nil {
		return Principal{}, ErrNotFound
	}
	return r.Principal(string(oid))
}

func (r boltReader) Principals() ([]Principal, error) {
	return decodeAll[Principal](r.t.list(bPrincipals))
}

func (r boltReader) Instance(name string) (Instance, error) {
	b, _ := r.t.bucket(bInstances, false)
	if b == nil {
		return Instance{}, ErrNotFound
	}
	raw := b.Get([]byte(name))
	if raw == nil {
		return Instance{}, ErrNotFound
	}
	return r.cache.get(name, raw)
}

func (r boltReader) Instances() ([]Instance, error) {
	return decodeAll[Instance](r.t.list(bInstances))
}

func (r boltReader) InstanceValue(instance, bucket, key string) ([]byte, error) {
	v := r.t.get(instanceBucket(instance, bucket), key)
	if v == nil {
		return nil, ErrNotFound
	}
	return v, nil
}

func (r boltReader) InstanceValues(instance, bucket string) ([]KV, error) {
	return r.t.list(instanceBucket(instance, bucket)), nil
}

func (r boltReader) InstanceBuckets(instance string) ([]string, error) {
	b, _ := r.t.bucket([]string{"instance-data", instance}, false)
	if b == nil {
		return nil, nil
	}
	var out []string
	err := b.ForEach(func(k, v []byte) error {
		if v == nil {
			out = append(out, string(k))
		}
		return nil
	})
	return out, err
}

func decodeAll[T any](kvs []KV) ([]T, error) {
	out := make([]T, 0, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("store: decode %s: %w", kv.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}
