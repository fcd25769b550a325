// Package keys implements the key service of an HSM instance: RSA, EC and
// AES keys with versions, attributes and tags; create, import, update,
// rotate (by hand and by rotation policy), soft delete, recover, purge,
// single-key backup and restore; and the cryptographic operations, with
// the checks Key Vault makes (key_ops, enabled, nbf, exp).
//
// # Storage
//
// A key is a record in the instance bucket "keys" (its versions, its current
// version, its deleted state and rotation policy) and one record per version
// in "keyversions" (material, attributes, tags). Both are sealed by the
// instance's barrier. Writes are [store.WriteInstanceValues] conditioned on
// the records read, so concurrent writers never lose one another's changes.
//
// # Hot path
//
// An operation reads the key record and the version record in one read
// transaction and opens them; the parsed private key is cached in memory
// (bounded) keyed by the sealed version bytes, so a changed version (disabled,
// rotated, purged) is never served from the cache.
package keys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"tresor/internal/barrier"
	"tresor/internal/crypto/keyops"
	"tresor/internal/fault"
	"tresor/internal/instances"
	"tresor/internal/store"
)

// Buckets of an instance that hold keys.
const (
	BucketKeys     = "keys"
	BucketVersions = "keyversions"
)

// Limits as Managed HSM's.
const (
	MaxVersions = 100
	MaxTags     = 15
	// DefaultMaxKeys is the number of keys an instance holds at most
	// unless [MaxKeys] says otherwise (Managed HSM's "keys per HSM").
	DefaultMaxKeys = 5000
)

var nameRE = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

// keyRecord is the sealed record of a key name.
type keyRecord struct {
	Name               string          `json:"name"`
	Versions           []string        `json:"versions"`
	Current            string          `json:"current"`
	Deleted            bool            `json:"deleted,omitempty"`
	DeletedDate        time.Time       `json:"deletedDate,omitzero"`
	ScheduledPurgeDate time.Time       `json:"scheduledPurgeDate,omitzero"`
	Policy             *RotationPolicy `json:"policy,omitempty"`
}

// versionRecord is the sealed record of a key version.
type versionRecord struct {
	Version       string            `json:"version"`
	KeyOps        []string          `json:"keyOps"`
	Material      []byte            `json:"material"`
	Enabled       bool              `json:"enabled"`
	NotBefore     int64             `json:"nbf,omitempty"`
	Expires       int64             `json:"exp,omitempty"`
	Created       int64             `json:"created"`
	Updated       int64             `json:"updated"`
	Exportable    bool              `json:"exportable,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	ReleasePolicy json.RawMessage   `json:"releasePolicy,omitempty"`
}

// Attributes of a key version.
type Attributes struct {
	Enabled    bool
	NotBefore  *time.Time
	Expires    *time.Time
	Created    time.Time
	Updated    time.Time
	Exportable bool
}

// Version is a key version as the service returns it.
type Version struct {
	Name       string
	Version    string
	KeyOps     []string
	Attributes Attributes
	Tags       map[string]string
	Public     keyops.JWK // public parts only
	Type       keyops.KeyType
	// ReleasePolicy is kept as the client sent it.
	ReleasePolicy json.RawMessage
	// Deleted state of the key (for deleted-key answers).
	DeletedDate, ScheduledPurgeDate time.Time
}

// Keyring gives the key service the keys of an instance: the barrier that
// seals its stored values and its security-domain root (for single-key
// backups). [*instances.Service] is the Keyring of a region; full backups
// and restores use the same seam.
type Keyring interface {
	Barrier(in instances.Instance) (*barrier.Barrier, error)
	Root(in instances.Instance) (*barrier.RootKey, error)
}

// Service is the key service. It is safe for concurrent use.
type Service struct {
	inst Keyring
	st   store.Store
	now  func() time.Time

	mu    sync.Mutex
	cache map[cacheKey]cacheEntry // opened versions and parsed keys
	recs  map[cacheKey]recEntry   // opened key records (version "")

	keyLocks [64]sync.Mutex // writers of one key take turns (see retry)

	maxKeys     int            // keys per instance, deleted ones included; 0 = no limit
	newKeyLocks [16]sync.Mutex // makers of new key names of one instance take turns (see room)
}

// Option changes a Service made by [New].
type Option func(*Service)

// MaxKeys sets how many keys an instance may hold, soft-deleted ones
// included (they keep their names), whatever their number of versions;
// n <= 0 means no limit. Creating, importing or restoring a key with a new
// name beyond it fails with a Conflict, code KeyLimitExceeded; new versions
// of existing keys and recoveries are not refused. The default is
// [DefaultMaxKeys].
func MaxKeys(n int) Option { return func(s *Service) { s.maxKeys = n } }

type cacheKey struct{ instance, name, version string }

type cacheEntry struct {
	sealed []byte
	vr     versionRecord // opened from sealed
	key    *keyops.Key   // parsed from vr.Material (nil until needed)
}

type recEntry struct {
	sealed []byte
	rec    keyRecord
}

// maxCached bounds the cache of parsed private keys.
const maxCached = 4096

// New returns the key service.
func New(inst Keyring, st store.Store, now func() time.Time, opts ...Option) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{inst: inst, st: st, now: now, cache: map[cacheKey]cacheEntry{}, recs: map[cacheKey]recEntry{}, maxKeys: DefaultMaxKeys}
	for _, o := range opts {
		o(s)
	}
	return s
}

// MaxKeysPerInstance returns the key limit of an instance (0: none).
func (s *Service) MaxKeysPerInstance() int { return s.maxKeys }

// room checks that the instance may hold one more key name and returns
// the unlock function of the instance's new-key lock, which the caller
// holds until its write is done: on one node the count is then exact.
// (A replicated store will need the count in the write's own condition.)
func (s *Service) room(ctx context.Context, in instances.Instance) (func(), error) {
	if s.maxKeys <= 0 {
		return func() {}, nil
	}
	h := fnv.New32a()
	h.Write([]byte(in.Key))
	mu := &s.newKeyLocks[h.Sum32()%uint32(len(s.newKeyLocks))]
	mu.Lock()
	n, err := s.CountKeys(ctx, in)
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	if n >= s.maxKeys {
		mu.Unlock()
		return nil, ErrKeyLimit(in.Name, s.maxKeys)
	}
	return mu.Unlock, nil
}

// ErrKeyLimit is the error of a new key beyond the limit of max keys.
func ErrKeyLimit(hsm string, max int) error {
	return fault.New(fault.Conflict, "KeyLimitExceeded",
		"the managed HSM '%s' holds %d keys (deleted keys included), the most it may hold: purge deleted keys or delete and purge keys first", hsm, max)
}

// Errors (with Azure's codes).
func keyNotFound(name string) error {
	return fault.New(fault.NotFound, "KeyNotFound", "A key with (name/id) %s was not found in this key vault", name)
}

func versionNotFound(name, version string) error {
	return fault.New(fault.NotFound, "KeyNotFound", "A key with (name/id) %s/%s was not found in this key vault", name, version)
}

func deletedNotFound(name string) error {
	return fault.New(fault.NotFound, "KeyNotFound", "Deleted Key not found: %s", name)
}

func badParameter(format string, args ...any) error {
	return fault.New(fault.BadParameter, "BadParameter", format, args...)
}

// storageName is the name a key is stored under: key names are
// case-insensitive, as in Key Vault (the record keeps the name as first
// given, for answers).
func storageName(name string) string { return strings.ToLower(name) }

// ValidateName checks a key name.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return badParameter("the key name %q is invalid: it must be 1-127 characters of letters, digits and hyphens", name)
	}
	return nil
}

func newVersionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// snapshot is what one read transaction saw of a key.
type snapshot struct {
	rec       keyRecord
	recSealed []byte // nil if the key does not exist
}

func (s *Service) read(ctx context.Context, in instances.Instance, name string, versions ...string) (snapshot, map[string][]byte, error) {
	var snap snapshot
	sealedVersions := map[string][]byte{}
	err := s.st.View(ctx, func(r store.Reader) error {
		v, err := r.InstanceValue(in.Key, BucketKeys, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		snap.recSealed = v
		for _, ver := range versions {
			if ver == "" {
				continue
			}
			sv, err := r.InstanceValue(in.Key, BucketVersions, name+"/"+ver)
			if err == nil {
				sealedVersions[ver] = sv
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil || snap.recSealed == nil {
		return snap, sealedVersions, err
	}
	b, err := s.inst.Barrier(in)
	if err != nil {
		return snap, nil, err
	}
	if snap.rec, err = s.openRecord(in, b, name, snap.recSealed); err != nil {
		return snap, nil, err
	}
	return snap, sealedVersions, nil
}

// readVersion reads a key's record and one version ("" = current) in one
// read transaction.
func (s *Service) readVersion(ctx context.Context, in instances.Instance, name, version string) (snapshot, versionRecord, []byte, error) {
	var snap snapshot
	var sealed []byte
	b, err := s.inst.Barrier(in)
	if err != nil {
		return snap, versionRecord{}, nil, err
	}
	err = s.st.View(ctx, func(r store.Reader) error {
		v, err := r.InstanceValue(in.Key, BucketKeys, name)
		if errors.Is(err, store.ErrNotFound) {
			return keyNotFound(name)
		}
		if err != nil {
			return err
		}
		snap.recSealed = v
		if snap.rec, err = s.openRecord(in, b, name, v); err != nil {
			return err
		}
		if snap.rec.Deleted {
			return keyNotFound(name)
		}
		if version == "" {
			version = snap.rec.Current
		}
		sealed, err = r.InstanceValue(in.Key, BucketVersions, name+"/"+version)
		if errors.Is(err, store.ErrNotFound) {
			return versionNotFound(name, version)
		}
		return err
	})
	if err != nil {
		return snap, versionRecord{}, nil, err
	}
	vr, err := s.openVersionCached(in, name, version, sealed)
	return snap, vr, sealed, err
}

// The caches below are keyed by instance, key and version, and hold the
// exact sealed bytes they were opened from: an entry serves only a read of
// those same bytes, so a changed record (a new version, disabled, deleted,
// or another incarnation of the instance) is always opened afresh. Cached
// values are copies whose slices callers must not modify in place.

// openRecord opens a key record, through the cache.
func (s *Service) openRecord(in instances.Instance, b *barrier.Barrier, name string, sealed []byte) (keyRecord, error) {
	ck := cacheKey{in.Key, name, ""}
	s.mu.Lock()
	e, ok := s.recs[ck]
	s.mu.Unlock()
	if ok && string(e.sealed) == string(sealed) {
		rec := e.rec
		rec.Versions = slices.Clone(rec.Versions)
		return rec, nil
	}
	pt, err := b.Open(BucketKeys+"/"+name, sealed)
	if err != nil {
		return keyRecord{}, fmt.Errorf("keys: open record of %s: %w", name, err)
	}
	var rec keyRecord
	if err := json.Unmarshal(pt, &rec); err != nil {
		return keyRecord{}, err
	}
	s.mu.Lock()
	if len(s.recs) >= maxCached {
		clear(s.recs)
	}
	s.recs[ck] = recEntry{sealed: sealed, rec: rec}
	s.mu.Unlock()
	rec.Versions = slices.Clone(rec.Versions)
	return rec, nil
}

// openVersionCached opens a version record, through the cache.
func (s *Service) openVersionCached(in instances.Instance, name, version string, sealed []byte) (versionRecord, error) {
	ck := cacheKey{in.Key, name, version}
	s.mu.Lock()
	e, ok := s.cache[ck]
	s.mu.Unlock()
	if ok && string(e.sealed) == string(sealed) {
		return e.vr, nil
	}
	vr, err := s.openVersion(in, name, version, sealed)
	if err != nil {
		return vr, err
	}
	s.mu.Lock()
	if len(s.cache) >= maxCached {
		for old := range s.cache { // drop an arbitrary entry
			delete(s.cache, old)
			break
		}
	}
	s.cache[ck] = cacheEntry{sealed: sealed, vr: vr}
	s.mu.Unlock()
	return vr, nil
}

func (s *Service) openVersion(in instances.Instance, name, version string, sealed []byte) (versionRecord, error) {
	b, err := s.inst.Barrier(in)
	if err != nil {
		return versionRecord{}, err
	}
	pt, err := b.Open(BucketVersions+"/"+name+"/"+version, sealed)
	if err != nil {
		return versionRecord{}, fmt.Errorf("keys: open version %s/%s: %w", name, version, err)
	}
	var vr versionRecord
	err = json.Unmarshal(pt, &vr)
	return vr, err
}

// material parses a version's private key, through the cache.
func (s *Service) material(in instances.Instance, name string, vr versionRecord, sealed []byte) (*keyops.Key, error) {
	ck := cacheKey{in.Key, name, vr.Version}
	s.mu.Lock()
	e, ok := s.cache[ck]
	s.mu.Unlock()
	if ok && string(e.sealed) == string(sealed) && e.key != nil {
		return e.key, nil
	}
	k, err := keyops.UnmarshalKey(vr.Material)
	if err != nil {
		return nil, fmt.Errorf("keys: key material of %s/%s: %w", name, vr.Version, err)
	}
	s.mu.Lock()
	if len(s.cache) >= maxCached {
		for old := range s.cache { // drop an arbitrary entry
			delete(s.cache, old)
			break
		}
	}
	s.cache[ck] = cacheEntry{sealed: sealed, vr: vr, key: k}
	s.mu.Unlock()
	return k, nil
}

// forget drops cached keys of a name (all versions).
func (s *Service) forget(instance, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.cache {
		if k.instance == instance && k.name == name {
			delete(s.cache, k)
		}
	}
	delete(s.recs, cacheKey{instance, name, ""})
}

// write seals and applies records, conditioned on the record read.
func (s *Service) write(ctx context.Context, in instances.Instance, snap snapshot, name string, rec *keyRecord, versions []versionRecord, deleteVersions []string) error {
	b, err := s.inst.Barrier(in)
	if err != nil {
		return err
	}
	cmd := store.WriteInstanceValues{Name: in.Key, Root: in.SealedRoot(), Epoch: in.Epoch}
	if snap.recSealed == nil {
		cmd.Conditions = append(cmd.Conditions, store.Condition{Bucket: BucketKeys, Key: name, Absent: true})
	} else {
		cmd.Conditions = append(cmd.Conditions, store.Condition{Bucket: BucketKeys, Key: name, Value: snap.recSealed})
	}
	if rec != nil {
		pt, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		ct, err := b.Seal(BucketKeys+"/"+name, pt)
		if err != nil {
			return err
		}
		cmd.Puts = append(cmd.Puts, store.Value{Bucket: BucketKeys, Key: name, Value: ct})
	} else {
		cmd.Deletes = append(cmd.Deletes, store.Value{Bucket: BucketKeys, Key: name})
	}
	for _, vr := range versions {
		pt, err := json.Marshal(vr)
		if err != nil {
			return err
		}
		ct, err := b.Seal(BucketVersions+"/"+name+"/"+vr.Version, pt)
		if err != nil {
			return err
		}
		cmd.Puts = append(cmd.Puts, store.Value{Bucket: BucketVersions, Key: name + "/" + vr.Version, Value: ct})
	}
	for _, v := range deleteVersions {
		cmd.Deletes = append(cmd.Deletes, store.Value{Bucket: BucketVersions, Key: name + "/" + v})
	}
	err = s.st.Apply(ctx, cmd)
	switch {
	case errors.Is(err, store.ErrConflict):
		return errRetry
	case errors.Is(err, store.ErrBusy):
		return instances.Restoring(in.Name)
	case errors.Is(err, store.ErrNotFound):
		return fault.New(fault.NotFound, "ResourceNotFound", "the managed HSM '%s' no longer exists", in.Name)
	}
	return err
}

var errRetry = errors.New("keys: changed concurrently")

// errRotated: the version a rotation was asked for is no longer current
// (another rotation made a new one meanwhile).
var errRotated = fault.New(fault.Conflict, "Conflict", "the key was rotated concurrently: its current version is not the one this rotation read")

// retry runs fn until it does not meet a concurrent change (a few times).
// Writers of one key in this process take turns, so they do not spin on
// each other's changes; the conditions on the records keep the writes
// correct whatever else writes the store.
func (s *Service) retry(in instances.Instance, name string, fn func() error) error {
	h := fnv.New32a()
	h.Write([]byte(in.Key + "/" + name))
	mu := &s.keyLocks[h.Sum32()%uint32(len(s.keyLocks))]
	mu.Lock()
	defer mu.Unlock()
	for range 8 {
		if err := fn(); !errors.Is(err, errRetry) {
			return err
		}
	}
	return fault.New(fault.Conflict, "Conflict", "the key changed concurrently; try again")
}

func (s *Service) toVersion(name string, rec keyRecord, vr versionRecord) (Version, error) {
	k, err := keyops.UnmarshalKey(vr.Material)
	if err != nil {
		return Version{}, err
	}
	return s.versionWith(name, rec, vr, k), nil
}

func (s *Service) versionWith(name string, rec keyRecord, vr versionRecord, k *keyops.Key) Version {
	v := summary(name, rec, vr)
	v.Type, v.Public = k.Type(), k.PublicJWK()
	return v
}

// summary is a version without its key (for lists: no key material is
// parsed).
func summary(name string, rec keyRecord, vr versionRecord) Version {
	if rec.Name != "" {
		name = rec.Name // as the key was first named
	}
	v := Version{
		Name: name, Version: vr.Version, KeyOps: slices.Clone(vr.KeyOps), Tags: vr.Tags, ReleasePolicy: vr.ReleasePolicy,
		Attributes: Attributes{
			Enabled: vr.Enabled, Created: time.Unix(vr.Created, 0), Updated: time.Unix(vr.Updated, 0), Exportable: vr.Exportable,
		},
		DeletedDate: rec.DeletedDate, ScheduledPurgeDate: rec.ScheduledPurgeDate,
	}
	if vr.NotBefore != 0 {
		t := time.Unix(vr.NotBefore, 0)
		v.Attributes.NotBefore = &t
	}
	if vr.Expires != 0 {
		t := time.Unix(vr.Expires, 0)
		v.Attributes.Expires = &t
	}
	return v
}

// CreateParams are the parameters of a new key or version.
type CreateParams struct {
	Kty            string
	Size           int
	PublicExponent int
	Curve          string
	KeyOps         []string
	Attrs          AttrChange
	Tags           map[string]string
	ReleasePolicy  json.RawMessage
}

// AttrChange are the attributes a request sets (nil = unchanged/default).
type AttrChange struct {
	Enabled    *bool
	NotBefore  *int64
	Expires    *int64
	Exportable *bool
}

var validOps = []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"}

func validateOps(ops []string) error {
	for _, op := range ops {
		if !slices.Contains(validOps, op) {
			return badParameter("key_ops: %q is not a key operation (%s)", op, strings.Join(validOps, ", "))
		}
	}
	return nil
}

func validateTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return badParameter("a key may have at most %d tags", MaxTags)
	}
	for k, v := range tags {
		if k == "" || len(k) > 256 || len(v) > 256 {
			return badParameter("tag names must be 1-256 characters and values at most 256")
		}
	}
	return nil
}

func (a AttrChange) validate() error {
	if a.NotBefore != nil && a.Expires != nil && *a.Expires <= *a.NotBefore {
		return badParameter("attributes: exp must be after nbf")
	}
	if a.Exportable != nil && *a.Exportable {
		return badParameter("attributes: exportable keys need a release policy, which this HSM does not support")
	}
	return nil
}

func (a AttrChange) apply(vr *versionRecord) {
	if a.Enabled != nil {
		vr.Enabled = *a.Enabled
	}
	if a.NotBefore != nil {
		vr.NotBefore = *a.NotBefore
	}
	if a.Expires != nil {
		vr.Expires = *a.Expires
	}
	if a.Exportable != nil {
		vr.Exportable = *a.Exportable
	}
}

// Create makes a key, or a new version of an existing key.
func (s *Service) Create(ctx context.Context, in instances.Instance, name string, p CreateParams) (Version, error) {
	if err := ValidateName(name); err != nil {
		return Version{}, err
	}
	kt, err := keyops.NormalizeKeyType(p.Kty)
	if err != nil {
		return Version{}, badParameter("kty %q is not supported: use RSA-HSM, EC-HSM or oct-HSM (or RSA, EC, oct)", p.Kty)
	}
	if err := s.validateParams(p.KeyOps, p.Attrs, p.Tags); err != nil {
		return Version{}, err
	}
	k, err := keyops.Generate(keyops.GenerateOptions{Type: kt, Size: p.Size, PublicExponent: p.PublicExponent, Curve: p.Curve}, rand.Reader)
	if err != nil {
		return Version{}, opError(err)
	}
	return s.addVersion(ctx, in, name, k, p.KeyOps, p.Attrs, p.Tags, p.ReleasePolicy, "")
}

// Import adds a key (or a version) from a JWK with its private parts.
func (s *Service) Import(ctx context.Context, in instances.Instance, name string, jwk keyops.JWK, keyOps []string, attrs AttrChange, tags map[string]string, rp json.RawMessage) (Version, error) {
	if err := ValidateName(name); err != nil {
		return Version{}, err
	}
	if len(keyOps) == 0 {
		keyOps = jwk.KeyOps
	}
	if err := s.validateParams(keyOps, attrs, tags); err != nil {
		return Version{}, err
	}
	k, err := keyops.ImportJWK(jwk)
	if err != nil {
		return Version{}, opError(err)
	}
	return s.addVersion(ctx, in, name, k, keyOps, attrs, tags, rp, "")
}

func (s *Service) validateParams(ops []string, attrs AttrChange, tags map[string]string) error {
	if err := validateOps(ops); err != nil {
		return err
	}
	if err := attrs.validate(); err != nil {
		return err
	}
	return validateTags(tags)
}

// addVersion adds a version made of k to a key (creating the key if it does
// not exist). A rotation names the version it rotates (rotates != ""): it
// applies only while that version is still the key's current one, checked
// in the same compare-and-swap as the write, so two rotations of one
// version (two lifecycle runners, or a runner and a user) make one new
// version, and the other gets errRotated.
func (s *Service) addVersion(ctx context.Context, in instances.Instance, display string, k *keyops.Key, ops []string, attrs AttrChange, tags map[string]string, rp json.RawMessage, rotates string) (Version, error) {
	rotation := rotates != ""
	name := storageName(display)
	material, err := k.MarshalBinary()
	if err != nil {
		return Version{}, err
	}
	if len(ops) == 0 {
		ops = keyops.DefaultKeyOps(k.Type())
	}
	now := s.now().Unix()
	vr := versionRecord{Version: newVersionID(), KeyOps: slices.Clone(ops), Material: material, Enabled: true,
		Created: now, Updated: now, Tags: tags, ReleasePolicy: rp}
	attrs.apply(&vr)
	var out Version
	err = s.retry(in, name, func() error {
		snap, _, err := s.read(ctx, in, name)
		if err != nil {
			return err
		}
		rec := snap.rec
		if snap.recSealed == nil {
			unlock, err := s.room(ctx, in)
			if err != nil {
				return err
			}
			defer unlock()
			rec = keyRecord{Name: display}
		} else if rec.Deleted {
			return fault.New(fault.Conflict, "Conflict",
				"Key %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged", name)
		}
		if rotation && rotates != anyVersion && rec.Current != rotates {
			return errRotated
		}
		if len(rec.Versions) >= MaxVersions {
			return fault.New(fault.Conflict, "Conflict", "key %s has the maximum of %d versions", name, MaxVersions)
		}
		if rotation && rec.Policy != nil && rec.Policy.ExpiryTime != "" && vr.Expires == 0 {
			if d, err := ParseDuration(rec.Policy.ExpiryTime); err == nil {
				vr.Expires = s.now().Add(d).Unix()
			}
		}
		rec.Versions = append(rec.Versions, vr.Version)
		rec.Current = vr.Version
		if err := s.write(ctx, in, snap, name, &rec, []versionRecord{vr}, nil); err != nil {
			return err
		}
		out = s.versionWith(name, rec, vr, k)
		return nil
	})
	return out, err
}

// opError maps keyops errors to client errors.
func opError(err error) error {
	switch {
	case errors.Is(err, keyops.ErrNotApprovedInFIPSMode):
		return fault.Wrap(err, fault.BadParameter, "BadParameter", "%v", err)
	case errors.Is(err, keyops.ErrUnsupportedAlgorithm):
		return fault.Wrap(err, fault.BadParameter, "BadParameter", "%v", err)
	case errors.Is(err, keyops.ErrInvalidInput):
		return fault.Wrap(err, fault.BadParameter, "BadParameter", "%v", err)
	case errors.Is(err, keyops.ErrDecrypt):
		return fault.Wrap(err, fault.BadParameter, "BadParameter", "decryption failed")
	}
	if _, ok := fault.As(err); ok {
		return err
	}
	return fault.Wrap(err, fault.BadParameter, "BadParameter", "%v", err)
}

// Get returns a version ("" = current) of a key that is not deleted.
func (s *Service) Get(ctx context.Context, in instances.Instance, name, version string) (Version, error) {
	name = storageName(name)
	snap, vr, sealed, err := s.readVersion(ctx, in, name, version)
	if err != nil {
		return Version{}, err
	}
	k, err := s.material(in, name, vr, sealed)
	if err != nil {
		return Version{}, err
	}
	return s.versionWith(name, snap.rec, vr, k), nil
}

// List returns the current version of every key that is (or, with deleted,
// is not) deleted, by name, without their public keys.
func (s *Service) List(ctx context.Context, in instances.Instance, deleted bool) ([]Version, error) {
	out, _, _, err := s.ListPage(ctx, in, deleted, "", math.MaxInt)
	return out, err
}

// ListPage returns at most max keys that are (or, with deleted, are not)
// deleted, whose storage names (lower-cased names) sort after after, in
// that order, without their public keys, read in one transaction. last is
// the storage name of the last key returned and more tells whether any
// key follows: a caller pages on with ListPage(…, last, max). A page costs
// the keys it walks, not the whole instance.
func (s *Service) ListPage(ctx context.Context, in instances.Instance, deleted bool, after string, max int) (out []Version, last string, more bool, err error) {
	b, err := s.inst.Barrier(in)
	if err != nil {
		return nil, "", false, err
	}
	err = s.st.View(ctx, func(r store.Reader) error {
		return r.ForEach(in.Key, BucketKeys, after, func(id string, sealed []byte) error {
			rec, err := s.openRecord(in, b, id, slices.Clone(sealed))
			if err != nil {
				return err
			}
			if rec.Deleted != deleted {
				return nil
			}
			if len(out) == max {
				more = true
				return store.ErrStop
			}
			sv, err := r.InstanceValue(in.Key, BucketVersions, id+"/"+rec.Current)
			if err != nil {
				return err
			}
			vr, err := s.openVersionCached(in, id, rec.Current, sv)
			if err != nil {
				return err
			}
			out = append(out, summary(id, rec, vr))
			last = id
			return nil
		})
	})
	return out, last, more, err
}

// Versions lists every version of a key, in creation order, without their
// public keys.
func (s *Service) Versions(ctx context.Context, in instances.Instance, name string) ([]Version, error) {
	name = storageName(name)
	snap, _, err := s.read(ctx, in, name)
	if err != nil {
		return nil, err
	}
	if snap.recSealed == nil || snap.rec.Deleted {
		return nil, keyNotFound(name)
	}
	_, sealed, err := s.read(ctx, in, name, snap.rec.Versions...)
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, len(snap.rec.Versions))
	for _, ver := range snap.rec.Versions {
		sv, ok := sealed[ver]
		if !ok {
			continue
		}
		vr, err := s.openVersion(in, name, ver, sv)
		if err != nil {
			return nil, err
		}
		out = append(out, summary(name, snap.rec, vr))
	}
	return out, nil
}

// Update changes a version's key_ops, attributes and tags (nil = unchanged).
func (s *Service) Update(ctx context.Context, in instances.Instance, name, version string, ops []string, attrs AttrChange, tags map[string]string, rp json.RawMessage) (Version, error) {
	name = storageName(name)
	if err := s.validateParams(ops, attrs, tags); err != nil {
		return Version{}, err
	}
	var out Version
	err := s.retry(in, name, func() error {
		snap, vr, sealed, err := s.readVersion(ctx, in, name, version)
		if err != nil {
			return err
		}
		if attrs.NotBefore != nil || attrs.Expires != nil {
			nbf, exp := vr.NotBefore, vr.Expires
			if attrs.NotBefore != nil {
				nbf = *attrs.NotBefore
			}
			if attrs.Expires != nil {
				exp = *attrs.Expires
			}
			if nbf != 0 && exp != 0 && exp <= nbf {
				return badParameter("attributes: exp must be after nbf")
			}
		}
		if ops != nil {
			vr.KeyOps = slices.Clone(ops)
		}
		if tags != nil {
			vr.Tags = tags
		}
		if rp != nil {
			vr.ReleasePolicy = rp
		}
		attrs.apply(&vr)
		vr.Updated = s.now().Unix()
		// The version's record is the condition: compare-and-swap on it.
		if err := s.writeVersion(ctx, in, name, vr, sealed); err != nil {
			return err
		}
		k, err := keyops.UnmarshalKey(vr.Material)
		if err != nil {
			return err
		}
		out = s.versionWith(name, snap.rec, vr, k)
		return nil
	})
	return out, err
}

func (s *Service) writeVersion(ctx context.Context, in instances.Instance, name string, vr versionRecord, prev []byte) error {
	b, err := s.inst.Barrier(in)
	if err != nil {
		return err
	}
	pt, err := json.Marshal(vr)
	if err != nil {
		return err
	}
	key := name + "/" + vr.Version
	ct, err := b.Seal(BucketVersions+"/"+key, pt)
	if err != nil {
		return err
	}
	err = s.st.Apply(ctx, store.WriteInstanceValues{Name: in.Key, Root: in.SealedRoot(), Epoch: in.Epoch,
		Puts:       []store.Value{{Bucket: BucketVersions, Key: key, Value: ct}},
		Conditions: []store.Condition{{Bucket: BucketVersions, Key: key, Value: prev}}})
	switch {
	case errors.Is(err, store.ErrConflict):
		return errRetry
	case errors.Is(err, store.ErrBusy):
		return instances.Restoring(in.Name)
	}
	return err
}

// Delete soft-deletes a key (all versions).
func (s *Service) Delete(ctx context.Context, in instances.Instance, name string) (Version, error) {
	name = storageName(name)
	var out Version
	err := s.retry(in, name, func() error {
		snap, vr, _, err := s.readVersion(ctx, in, name, "")
		if err != nil {
			return err
		}
		rec := snap.rec
		now := s.now().UTC().Truncate(time.Second)
		rec.Deleted, rec.DeletedDate = true, now
		rec.ScheduledPurgeDate = now.Add(time.Duration(in.RetentionDays) * 24 * time.Hour)
		if err := s.write(ctx, in, snap, name, &rec, nil, nil); err != nil {
			return err
		}
		v, err := s.toVersion(name, rec, vr)
		out = v
		return err
	})
	if err == nil {
		s.forget(in.Key, name)
	}
	return out, err
}

// GetDeleted returns a deleted key (its current version).
func (s *Service) GetDeleted(ctx context.Context, in instances.Instance, name string) (Version, error) {
	name = storageName(name)
	snap, vr, err := s.deleted(ctx, in, name)
	if err != nil {
		return Version{}, err
	}
	return s.toVersion(name, snap.rec, vr)
}

func (s *Service) deleted(ctx context.Context, in instances.Instance, name string) (snapshot, versionRecord, error) {
	snap, _, err := s.read(ctx, in, name)
	if err != nil {
		return snap, versionRecord{}, err
	}
	if snap.recSealed == nil || !snap.rec.Deleted {
		return snap, versionRecord{}, deletedNotFound(name)
	}
	_, vs, err := s.read(ctx, in, name, snap.rec.Current)
	if err != nil {
		return snap, versionRecord{}, err
	}
	vr, err := s.openVersion(in, name, snap.rec.Current, vs[snap.rec.Current])
	return snap, vr, err
}

// Recover undoes a soft delete.
func (s *Service) Recover(ctx context.Context, in instances.Instance, name string) (Version, error) {
	name = storageName(name)
	var out Version
	err := s.retry(in, name, func() error {
		snap, vr, err := s.deleted(ctx, in, name)
		if err != nil {
			return err
		}
		rec := snap.rec
		rec.Deleted, rec.DeletedDate, rec.ScheduledPurgeDate = false, time.Time{}, time.Time{}
		if err := s.write(ctx, in, snap, name, &rec, nil, nil); err != nil {
			return err
		}
		v, err := s.toVersion(name, rec, vr)
		out = v
		return err
	})
	return out, err
}

// Purge removes a deleted key for good; refused while the instance's purge
// protection holds (until the scheduled purge date).
func (s *Service) Purge(ctx context.Context, in instances.Instance, name string) error {
	name = storageName(name)
	return s.retry(in, name, func() error {
		snap, _, err := s.deleted(ctx, in, name)
		if err != nil {
			return err
		}
		if in.PurgeProtection && s.now().Before(snap.rec.ScheduledPurgeDate) {
			return fault.New(fault.Forbidden, "Forbidden",
				"Operation \"purge\" is not allowed because purge protection is enabled for this managed HSM: key %s can be purged after %s",
				name, snap.rec.ScheduledPurgeDate.Format(time.RFC3339))
		}
		return s.purge(ctx, in, snap, name)
	})
}

func (s *Service) purge(ctx context.Context, in instances.Instance, snap snapshot, name string) error {
	if err := s.write(ctx, in, snap, name, nil, nil, snap.rec.Versions); err != nil {
		return err
	}
	s.forget(in.Key, name)
	return nil
}

// RecoveryLevel and RecoverableDays of keys in an instance (spec §4.2).
func RecoveryLevel(in instances.Instance) (string, int) {
	level := "Recoverable"
	if in.RetentionDays < 90 {
		level = "CustomizedRecoverable"
	}
	if !in.PurgeProtection {
		level += "+Purgeable"
	}
	return level, in.RetentionDays
}
