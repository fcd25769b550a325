package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"tresor/internal/atomicfile"
)

var (
	_ Store        = (*Bolt)(nil)
	_ BatchApplier = (*Bolt)(nil)
	_ Snapshotter  = (*Bolt)(nil)
)

// appliedKey is the key of the applied index in the meta bucket.
const appliedKey = "applied-index"

// Bolt is a single-node [Store] on a bbolt file. It also implements
// [BatchApplier] and [Snapshotter].
//
// Apply commits (and fsyncs) before it returns. Concurrent Applies are
// grouped: the first caller to find no commit running commits right away;
// callers that arrive meanwhile queue up and are committed together, in one
// transaction, as soon as that commit ends. There is no timer, so an idle
// store never waits. Each command in a group is still all-or-nothing and
// each caller gets its own command's error.
type Bolt struct {
	path string

	// mu guards db: commits and reads hold it shared, Restore and Close
	// exclusively. db is nil once closed.
	mu sync.RWMutex
	db *bolt.DB

	// Group commit: committing is true while a caller commits; callers
	// arriving meanwhile wait in queue for the next commit.
	gmu        sync.Mutex
	committing bool
	queue      []*call

	// decoded caches instance records decoded by readers, by the raw bytes
	// they were decoded from (every data-plane request reads its instance).
	decoded instanceCache
}

// call is one Apply waiting in the group commit.
type call struct {
	ctx context.Context
	cmd Command
	err error
	// batch is set (before wake is closed) for the caller that commits the
	// next group; it then commits batch, itself first.
	batch []*call
	wake  chan struct{}
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
		if e.in.Epoch == 0 {
			e.in.Epoch = 1
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

// Errors of [OpenBolt], inside an [*OpenError]. Callers test them with
// errors.Is. A permission problem is an [fs.ErrPermission] instead.
var (
	// ErrLocked: another process holds the store file's lock (bbolt's
	// flock); it did not go away within [LockTimeout].
	ErrLocked = errors.New("store: locked by another process")
	// ErrCorrupt: the file is not a whole bbolt file: truncated, garbage,
	// a bad meta page or checksum, or a page that does not read.
	ErrCorrupt = errors.New("store: damaged")
	// ErrForeign: the file is a sound bbolt file that holds data that is
	// not a Tresor store's (buckets we do not have, no applied index).
	ErrForeign = errors.New("store: not a Tresor store")
)

// LockTimeout is how long [OpenBolt] waits for another process to release
// the store file's lock before it returns [ErrLocked]: long enough for a
// server that is stopping to let go, short enough to say why at once.
const LockTimeout = 5 * time.Second

// OpenError is an error of [OpenBolt]: the file and what is wrong with it.
type OpenError struct {
	// Path is the store file.
	Path string
	// Kind is [ErrLocked], [ErrCorrupt] or [ErrForeign], or nil for other
	// failures (such as a permission error, which Err then holds).
	Kind error
	// Err is the cause as bbolt or the OS gave it, or a description.
	Err error
}

// Error implements error.
func (e *OpenError) Error() string {
	if e.Kind == nil {
		return fmt.Sprintf("store: open %s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("store: open %s: %s: %v", e.Path, strings.TrimPrefix(e.Kind.Error(), "store: "), e.Err)
}

// Unwrap returns the kind and the cause.
func (e *OpenError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// OpenBolt opens (or creates) the store file at path with mode 0600. It
// waits up to [LockTimeout] for the file's lock, and refuses a file that
// is damaged or is not a Tresor store before anything reads it. Errors
// are [*OpenError]s.
func OpenBolt(path string) (*Bolt, error) {
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	return &Bolt{path: path, db: db}, nil
}

func openDB(path string) (*bolt.DB, error) {
	var db *bolt.DB
	err := noFaults(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: LockTimeout})
		return err
	})
	if err != nil {
		oe := &OpenError{Path: path, Err: err}
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			oe.Kind, oe.Err = ErrLocked, errors.New("the lock is held")
		case !isOSError(err):
			// bbolt's own complaints about the file: ErrInvalid,
			// ErrVersionMismatch, ErrChecksum, "file size too small", …
			oe.Kind = ErrCorrupt
		}
		return nil, oe
	}
	if err := checkOpened(db); err != nil {
		db.Close()
		var oe *OpenError
		if !errors.As(err, &oe) {
			oe = &OpenError{Err: err}
			if errors.Is(err, errPanic) {
				oe.Kind = ErrCorrupt
			}
		}
		oe.Path = path
		return nil, oe
	}
	return db, nil
}

// isOSError reports whether err came from the OS (opening, locking or
// reading the file) rather than from bbolt's reading of its contents.
func isOSError(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}

// errPanic marks a panic (or memory fault) that bbolt met reading a file.
var errPanic = errors.New("reading the file failed")

// noFaults runs fn, turning a panic, and a memory fault on the mapped file
// (SIGBUS past a truncated end), into an error wrapping errPanic.
func noFaults(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errPanic, p)
		}
	}()
	return fn()
}

// knownBuckets are the top-level buckets a Tresor store may hold.
var knownBuckets = func() map[string]bool {
	m := map[string]bool{}
	for _, b := range append(slices.Clone(RegionBuckets), InstanceBuckets...) {
		m[b] = true
	}
	return m
}()

// checkOpened checks an opened file before the store uses it: the file is
// as long as its meta page says (not truncated) and is either empty (a new
// store) or a Tresor store (every top-level bucket one of ours, and an
// applied index).
func checkOpened(db *bolt.DB) error {
	fi, err := os.Stat(db.Path())
	if err != nil {
		return err
	}
	return noFaults(func() error {
		return db.View(func(tx *bolt.Tx) error {
			if fi.Size() < tx.Size() {
				return &OpenError{Kind: ErrCorrupt, Err: fmt.Errorf("truncated: the file holds %d bytes, its pages need %d", fi.Size(), tx.Size())}
			}
			var foreign string
			n := 0
			err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				n++
				if !knownBuckets[string(name)] && foreign == "" {
					foreign = string(name)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if foreign != "" {
				return &OpenError{Kind: ErrForeign, Err: fmt.Errorf("it holds a bucket %.64q", foreign)}
			}
			if meta := tx.Bucket([]byte(bMeta[0])); n > 0 && (meta == nil || meta.Get([]byte(appliedKey)) == nil) {
				return &OpenError{Kind: ErrForeign, Err: errors.New("it has no applied index")}
			}
			return nil
		})
	})
}

// Apply implements [Store]. Once queued, a command is committed even if ctx
// is canceled meanwhile, unless its group has not started yet.
func (s *Bolt) Apply(ctx context.Context, cmd Command) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if cmd == nil {
		return errors.New("store: nil command")
	}
	c := &call{ctx: ctx, cmd: cmd}
	s.gmu.Lock()
	if s.committing {
		c.wake = make(chan struct{})
		s.queue = append(s.queue, c)
		s.gmu.Unlock()
		<-c.wake
		if c.batch == nil {
			return c.err // committed by another caller
		}
	} else {
		s.committing = true
		s.gmu.Unlock()
		c.batch = []*call{c}
	}
	s.commitGroup(c.batch)
	s.gmu.Lock()
	next := s.queue
	s.queue = nil
	if len(next) == 0 {
		s.committing = false
	}
	s.gmu.Unlock()
	if len(next) > 0 {
		next[0].batch = next
		close(next[0].wake)
	}
	return c.err
}

// commitGroup commits the commands of calls in one transaction and wakes
// every caller but the first (which is the one committing).
func (s *Bolt) commitGroup(calls []*call) {
	cmds := make([]Command, 0, len(calls))
	live := make([]*call, 0, len(calls))
	for _, c := range calls {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			continue
		}
		cmds = append(cmds, c.cmd)
		live = append(live, c)
	}
	if len(cmds) > 0 {
		errs, err := s.run(cmds, nil)
		for i, c := range live {
			if err != nil {
				c.err = err
			} else {
				c.err = errs[i]
			}
		}
	}
	for _, c := range calls[1:] {
		close(c.wake)
	}
}

// ApplyBatch implements [BatchApplier].
func (s *Bolt) ApplyBatch(ctx context.Context, entries []Entry) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cmds := make([]Command, len(entries))
	indexes := make([]uint64, len(entries))
	for i, e := range entries {
		if e.Index == 0 || (i > 0 && e.Index <= indexes[i-1]) {
			return nil, fmt.Errorf("store: batch indexes must increase from 1 (entry %d has index %d)", i, e.Index)
		}
		cmds[i], indexes[i] = e.Cmd, e.Index
	}
	if len(entries) == 0 {
		return nil, nil
	}
	return s.run(cmds, indexes)
}

// AppliedIndex implements [BatchApplier].
func (s *Bolt) AppliedIndex() (uint64, error) {
	var n uint64
	err := s.view(func(t *boltTxn) error {
		n = bytesUint64(t.get(bMeta, appliedKey))
		return nil
	})
	return n, err
}

// errRetry and errUnchanged roll a transaction back on purpose.
var (
	errRetry     = errors.New("store: retry")
	errUnchanged = errors.New("store: unchanged")
)

// run applies cmds in one transaction and returns each command's error.
// With indexes (ApplyBatch), cmds[i] is at indexes[i]; commands at or below
// the applied index are skipped and the applied index ends at the last
// index. Without, each command that applies advances it by one.
//
// Commands validate before they write, so a refused command leaves nothing
// in the shared transaction. Should one fail after writing anyway (a write
// error), the transaction is rolled back and run again without it: commands
// are deterministic, so the others get the same results.
func (s *Bolt) run(cmds []Command, indexes []uint64) ([]error, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	errs := make([]error, len(cmds))
	dirty := make([]bool, len(cmds))
	for {
		err := s.db.Update(func(tx *bolt.Tx) error {
			t := &boltTxn{tx: tx}
			applied := bytesUint64(t.get(bMeta, appliedKey))
			changed := false
			for i, cmd := range cmds {
				if indexes != nil && indexes[i] <= applied {
					errs[i] = nil
					continue
				}
				switch {
				case dirty[i]: // errs[i] kept from the failed attempt
				case cmd == nil:
					errs[i] = errors.New("store: nil command")
				default:
					t.wrote = false
					errs[i] = cmd.apply(t)
					if errs[i] != nil && t.wrote {
						dirty[i] = true
						return errRetry
					}
				}
				if indexes != nil {
					applied, changed = indexes[i], true
				} else if errs[i] == nil {
					applied, changed = applied+1, true
				}
			}
			if !changed {
				return errUnchanged
			}
			return t.put(bMeta, appliedKey, uint64Bytes(applied))
		})
		switch {
		case errors.Is(err, errRetry):
			continue
		case errors.Is(err, errUnchanged):
			return errs, nil
		case errors.Is(err, berrors.ErrDatabaseNotOpen):
			return nil, ErrClosed
		case err != nil:
			return nil, err
		}
		return errs, nil
	}
}

// View implements [Store].
func (s *Bolt) View(ctx context.Context, fn func(Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.view(func(t *boltTxn) error { return fn(boltReader{t, &s.decoded}) })
}

func (s *Bolt) view(fn func(*boltTxn) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	err := s.db.View(func(tx *bolt.Tx) error { return fn(&boltTxn{tx: tx}) })
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Close implements [Store]. It waits for running commits and reads.
func (s *Bolt) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	db := s.db
	s.db = nil
	return db.Close()
}

// WriteTo implements [Snapshotter]: a consistent copy of the whole bbolt
// file, taken in one read transaction.
func (s *Bolt) WriteTo(w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(t *boltTxn) error {
		var err error
		n, err = t.tx.WriteTo(w)
		return err
	})
	return n, err
}

// Restore implements [Snapshotter]. The copy is written to a temporary file
// beside the store, fsync'd and checked; then, with commits and reads
// excluded, the store is closed, the file renamed over it, the directory
// fsync'd and the store reopened. If reopening fails the store stays closed
// ([ErrClosed]).
func (s *Bolt) Restore(r io.Reader) error {
	dir := filepath.Dir(s.path)
	f, err := os.CreateTemp(dir, filepath.Base(s.path)+".restore-*")
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: restore: write %s: %w", tmp, err)
	}
	if err := checkDB(tmp); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: restore: close: %w", err)
	}
	s.db = nil
	if err := os.Rename(tmp, s.path); err != nil {
		err = fmt.Errorf("store: restore: %w", err)
		if db, oerr := openDB(s.path); oerr == nil {
			s.db = db // the old state, untouched
		}
		return err
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	db, err := openDB(s.path)
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	s.db = db
	return nil
}

// checkDB opens a bbolt file read-only and checks its consistency.
func checkDB(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("not a store: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("corrupt store: %w", err)
		}
		return nil
	})
}

// boltTxn implements txn; wrote records whether a write happened since it
// was last cleared, touched the buckets written in this transaction.
type boltTxn struct {
	tx      *bolt.Tx
	wrote   bool
	touched map[string]bool
}

func (t *boltTxn) touch(path []string) {
	if t.touched == nil {
		t.touched = map[string]bool{}
	}
	t.touched[strings.Join(path, "\x00")] = true
}

// bucket walks to a nested bucket; with create it makes missing ones.
func (t *boltTxn) bucket(path []string, create bool) (*bolt.Bucket, error) {
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
			t.wrote = true
			t.touch(path[:i+1])
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

func (t *boltTxn) get(path []string, key string) []byte {
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

func (t *boltTxn) put(path []string, key string, value []byte) error {
	b, err := t.bucket(path, true)
	if err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	t.wrote = true
	t.touch(path)
	return b.Put([]byte(key), value)
}

func (t *boltTxn) del(path []string, key string) error {
	b, _ := t.bucket(path, false)
	if b == nil || b.Get([]byte(key)) == nil {
		return nil
	}
	t.wrote = true
	t.touch(path)
	return b.Delete([]byte(key))
}

func (t *boltTxn) dropBucket(path []string) error {
	if len(path) == 0 {
		return nil
	}
	var parent *bolt.Bucket
	if len(path) > 1 {
		parent, _ = t.bucket(path[:len(path)-1], false)
		if parent == nil || parent.Bucket([]byte(path[len(path)-1])) == nil {
			return nil
		}
	} else if t.tx.Bucket([]byte(path[0])) == nil {
		return nil
	}
	t.wrote = true
	var err error
	if parent == nil {
		err = t.tx.DeleteBucket([]byte(path[0]))
	} else {
		err = parent.DeleteBucket([]byte(path[len(path)-1]))
	}
	if err != nil {
		return fmt.Errorf("store: drop %v: %w", path, err)
	}
	return nil
}

func (t *boltTxn) moveBucket(src, dst []string) error {
	if len(src) < 2 || len(dst) < 2 {
		return fmt.Errorf("store: move %v to %v: not nested buckets", src, dst)
	}
	from, _ := t.bucket(src[:len(src)-1], false)
	if from == nil || from.Bucket([]byte(src[len(src)-1])) == nil {
		return nil
	}
	if src[len(src)-1] != dst[len(dst)-1] {
		return fmt.Errorf("store: move %v to %v: names differ", src, dst)
	}
	to, err := t.bucket(dst[:len(dst)-1], true)
	if err != nil {
		return err
	}
	t.wrote = true
	child := []byte(src[len(src)-1])
	if !t.touched[strings.Join(src, "\x00")] {
		if err := t.tx.MoveBucket(child, from, to); err != nil {
			return fmt.Errorf("store: move %v to %v: %w", src, dst, err)
		}
		return nil
	}
	// bbolt's MoveBucket moves the bucket as last committed: changes made to
	// it in this transaction would be lost. Copy it instead.
	sb, db := from.Bucket(child), to.Bucket(child)
	if db == nil {
		if db, err = to.CreateBucket(child); err != nil {
			return fmt.Errorf("store: move %v to %v: %w", src, dst, err)
		}
	}
	t.touch(dst)
	err = sb.ForEach(func(k, v []byte) error {
		if v == nil {
			return fmt.Errorf("store: move %v: nested bucket %q", src, k)
		}
		return db.Put(slices.Clone(k), slices.Clone(v))
	})
	if err != nil {
		return err
	}
	return t.dropBucket(src)
}

func (t *boltTxn) each(path []string, fn func(key string, value []byte) error) error {
	b, _ := t.bucket(path, false)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			return nil
		}
		return fn(string(k), v)
	})
}

func (t *boltTxn) children(path []string) []string {
	b, _ := t.bucket(path, false)
	if b == nil {
		return nil
	}
	var out []string
	_ = b.ForEach(func(k, v []byte) error {
		if v == nil {
			out = append(out, string(k))
		}
		return nil
	})
	return out
}

func (t *boltTxn) list(path []string) []KV {
	var out []KV
	_ = t.each(path, func(k string, v []byte) error {
		out = append(out, KV{Key: k, Value: slices.Clone(v)})
		return nil
	})
	return out
}

type boltReader struct {
	t     *boltTxn
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
	if err := getJSON(r.t, bPrincipals, objectID, &p); err != nil {
		return Principal{}, err
	}
	if p.ObjectID != objectID {
		return Principal{}, fmt.Errorf("principals record %s holds principal %s: %w", objectID, p.ObjectID, ErrMismatch)
	}
	return p, nil
}

func (r boltReader) PrincipalByClientID(clientID string) (Principal, error) {
	oid := r.t.get(bClientIndex, clientID)
	if oid == nil {
		return Principal{}, ErrNotFound
	}
	p, err := r.Principal(string(oid))
	if errors.Is(err, ErrNotFound) {
		return Principal{}, fmt.Errorf("principals-by-client record %s names principal %s, which does not exist: %w", clientID, oid, ErrMismatch)
	}
	if err == nil && p.ClientID != clientID {
		return Principal{}, fmt.Errorf("principals-by-client record %s names principal %s of client %s: %w", clientID, oid, p.ClientID, ErrMismatch)
	}
	return p, err
}

func (r boltReader) Principals() ([]Principal, error) {
	kvs := r.t.list(bPrincipals)
	ps, err := decodeAll[Principal](kvs)
	if err != nil {
		return nil, err
	}
	for i, p := range ps {
		if p.ObjectID != kvs[i].Key {
			return nil, fmt.Errorf("principals record %s holds principal %s: %w", kvs[i].Key, p.ObjectID, ErrMismatch)
		}
	}
	return ps, nil
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
	in, err := r.cache.get(name, raw)
	if err != nil {
		return Instance{}, err
	}
	in.Writes = writesOf(r.t, name)
	return in, nil
}

func (r boltReader) Instances() ([]Instance, error) {
	out := []Instance{}
	err := r.t.each(bInstances, func(name string, raw []byte) error {
		in, err := r.cache.get(name, raw)
		if err != nil {
			return err
		}
		in.Writes = writesOf(r.t, name)
		out = append(out, in)
		return nil
	})
	return out, err
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
	return r.t.children(instanceData(instance)), nil
}

func (r boltReader) ForEach(instance, bucket, after string, fn func(key string, value []byte) error) error {
	b, _ := r.t.bucket(instanceBucket(instance, bucket), false)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	var k, v []byte
	if after == "" {
		k, v = c.First()
	} else if k, v = c.Seek([]byte(after)); k != nil && string(k) == after {
		k, v = c.Next()
	}
	for ; k != nil; k, v = c.Next() {
		if v == nil {
			continue // a nested bucket
		}
		if err := fn(string(k), v); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (r boltReader) Job(id string) (Job, error) {
	var j Job
	if err := getJSON(r.t, bJobs, id, &j); err != nil {
		return Job{}, fmt.Errorf("job %s: %w", id, err)
	}
	return j, nil
}

func (r boltReader) Jobs(instance string) ([]Job, error) {
	var out []Job
	err := r.t.each(bJobs, func(id string, v []byte) error {
		var j Job
		if err := json.Unmarshal(v, &j); err != nil {
			return fmt.Errorf("store: decode job %s: %w", id, err)
		}
		if instance == "" || j.Instance == instance {
			out = append(out, j)
		}
		return nil
	})
	sort.SliceStable(out, func(i, k int) bool {
		if !out[i].Start.Equal(out[k].Start) {
			return out[i].Start.Before(out[k].Start)
		}
		return out[i].ID < out[k].ID
	})
	return out, err
}

func (r boltReader) BackupPolicy(instance string) (BackupPolicy, error) {
	var p BackupPolicy
	if err := getJSON(r.t, bBackupPols, instance, &p); err != nil {
		return BackupPolicy{}, fmt.Errorf("backup policy of %s: %w", instance, err)
	}
	return p, nil
}

func (r boltReader) BackupPolicies() ([]BackupPolicy, error) {
	return decodeAll[BackupPolicy](r.t.list(bBackupPols))
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
