package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"tresor/internal/barrier"
)

// Format is the format version of a backup folder (docs/backup-format.md).
const Format = "tresor.backup/v1"

// ManifestName is the name of the manifest object inside a folder. It is
// written last: a folder without one is incomplete.
const ManifestName = "manifest"

// Limits of what a restore reads: they bound the memory a hostile or broken
// folder can make a restore use.
const (
	// MaxObjectSize bounds one sealed object (a keys object holds at most
	// 1,000 keys or 8 MiB of plaintext; an RSA-4096 key with 100 versions
	// alone is about 1 MiB).
	MaxObjectSize = 64 << 20
	// MaxManifestSize bounds the manifest (its index names every key).
	MaxManifestSize = 64 << 20
	// MaxObjects bounds the objects a manifest may list.
	MaxObjects = 100_000
)

// Packing of keys into objects.
const (
	keysPerObject  = 1000
	bytesPerObject = 8 << 20
)

// Object kinds.
const (
	kindKeys     = "keys"
	kindPolicy   = "policy"
	kindSettings = "settings"
)

// folderRE is Managed HSM's folder name: mhsm-{name}-{yyyyMMddHHmmssff}.
var folderRE = regexp.MustCompile(`^mhsm-[a-z0-9-]{3,24}-[0-9]{16}$`)

// FolderName returns the folder of a backup of instance name (lower-case)
// started at t: mhsm-{name}-{yyyyMMddHHmmss}{hundredths}.
func FolderName(name string, t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("mhsm-%s-%s%02d", strings.ToLower(name), t.Format("20060102150405"), t.Nanosecond()/10_000_000)
}

// ValidFolder reports whether s is a folder name of Tresor's backups.
func ValidFolder(s string) bool { return folderRE.MatchString(s) }

// Header is the manifest's clear part: it tells what a folder holds
// without the security domain (tresor backup list reads it). A restore
// trusts only the copy sealed beside it.
type Header struct {
	Format          string       `json:"format"`
	Folder          string       `json:"folder"`
	SourceHSM       string       `json:"sourceHsm"`
	Created         time.Time    `json:"created"`
	RootKeyID       string       `json:"rootKeyId"`
	Keys            int          `json:"keys"`
	DeletedKeys     int          `json:"deletedKeys"`
	Versions        int          `json:"versions"`
	RoleAssignments int          `json:"roleAssignments"`
	RoleDefinitions int          `json:"roleDefinitions"`
	Settings        int          `json:"settings"`
	Objects         []ObjectInfo `json:"objects"`
}

// ObjectInfo describes one sealed object of a folder.
type ObjectInfo struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex of the sealed bytes
	Keys   int    `json:"keys,omitempty"`
}

// manifest is the manifest object: the header in clear and, sealed, the
// same header with the index of keys.
type manifest struct {
	Header
	Sealed []byte `json:"sealed"`
}

// sealedManifest is the plaintext of manifest.Sealed.
type sealedManifest struct {
	Header Header `json:"header"`
	// Index maps a key's storage name to the object that holds it.
	Index map[string]string `json:"index"`
}

// Errors of opening a folder. Their messages are what a Failed restore
// job says (with the object's name added), so they name what to fix.
var (
	// ErrIncomplete: the folder has no manifest (an interrupted backup, or
	// no backup at all).
	ErrIncomplete = errors.New("the backup folder is incomplete or does not exist: it has no manifest")
	// ErrOtherDomain: the backup was made under another security domain.
	ErrOtherDomain = errors.New("the backup was made under a different security domain")
	// ErrTampered: an object or the manifest does not authenticate, or its
	// hash or size differs from the manifest's.
	ErrTampered = errors.New("the backup was modified or damaged")
	// ErrMalformed: the bytes are not a Tresor backup of this format.
	ErrMalformed = errors.New("the backup is not a valid Tresor backup")
)

// folderBarrier is the barrier of one folder: purpose FullBackup under the
// security-domain root, the folder's name as namespace and the object's
// name as path, so an object moved to another folder or name does not open.
func folderBarrier(root *barrier.RootKey, folder string) (*barrier.Barrier, error) {
	return barrier.New(root, barrier.FullBackup, folder)
}

// sealObject seals an object's plaintext and describes it.
func sealObject(b *barrier.Barrier, name, kind string, plaintext []byte, keys int) ([]byte, ObjectInfo, error) {
	sealed, err := b.Seal(name, plaintext)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	sum := sha256.Sum256(sealed)
	return sealed, ObjectInfo{Name: name, Kind: kind, Size: int64(len(sealed)), SHA256: hex.EncodeToString(sum[:]), Keys: keys}, nil
}

// openObject checks an object's bytes against its description and opens them.
func openObject(b *barrier.Barrier, info ObjectInfo, sealed []byte) ([]byte, error) {
	sum := sha256.Sum256(sealed)
	if int64(len(sealed)) != info.Size || hex.EncodeToString(sum[:]) != info.SHA256 {
		return nil, fmt.Errorf("object %s: its size or SHA-256 differs from the manifest's: %w", info.Name, ErrTampered)
	}
	pt, err := b.Open(info.Name, sealed)
	if err != nil {
		return nil, fmt.Errorf("object %s does not authenticate: %w", info.Name, ErrTampered)
	}
	return pt, nil
}

// encodeManifest seals the index and the header and returns the manifest.
func encodeManifest(b *barrier.Barrier, h Header, index map[string]string) ([]byte, error) {
	pt, err := json.Marshal(sealedManifest{Header: h, Index: index})
	if err != nil {
		return nil, err
	}
	sealed, err := b.Seal(ManifestName, pt)
	if err != nil {
		return nil, err
	}
	return json.Marshal(manifest{Header: h, Sealed: sealed})
}

// ReadHeader parses a manifest's clear header without the security domain
// (for listing). Nothing in it is authenticated.
func ReadHeader(data []byte) (Header, error) {
	var m manifest
	if len(data) > MaxManifestSize || json.Unmarshal(data, &m) != nil || m.Format != Format {
		return Header{}, ErrMalformed
	}
	return m.Header, nil
}

// openManifest parses and authenticates a manifest of folder with root: it
// returns the sealed header and index. Errors are ErrMalformed,
// ErrOtherDomain or ErrTampered.
func openManifest(root *barrier.RootKey, folder string, data []byte) (Header, map[string]string, error) {
	h, err := ReadHeader(data)
	if err != nil {
		return Header{}, nil, err
	}
	if h.RootKeyID != root.ID() {
		return Header{}, nil, ErrOtherDomain
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Header{}, nil, ErrMalformed
	}
	b, err := folderBarrier(root, folder)
	if err != nil {
		return Header{}, nil, err
	}
	pt, err := b.Open(ManifestName, m.Sealed)
	if err != nil {
		return Header{}, nil, fmt.Errorf("the manifest does not authenticate (or belongs to another folder): %w", ErrTampered)
	}
	var sm sealedManifest
	if err := json.Unmarshal(pt, &sm); err != nil {
		return Header{}, nil, ErrMalformed
	}
	clear, _ := json.Marshal(m.Header)
	inner, _ := json.Marshal(sm.Header)
	if !bytes.Equal(clear, inner) {
		return Header{}, nil, fmt.Errorf("the manifest's clear header differs from its sealed copy: %w", ErrTampered)
	}
	if err := sm.Header.validate(folder, sm.Index); err != nil {
		return Header{}, nil, err
	}
	return sm.Header, sm.Index, nil
}

// validate checks that a header is self-consistent.
func (h Header) validate(folder string, index map[string]string) error {
	if h.Folder != folder {
		return fmt.Errorf("the manifest names folder %q, not %q: %w", h.Folder, folder, ErrTampered)
	}
	if len(h.Objects) > MaxObjects {
		return ErrMalformed
	}
	names := map[string]ObjectInfo{}
	keys := 0
	for _, o := range h.Objects {
		if o.Name == "" || o.Name == ManifestName || strings.ContainsAny(o.Name, "/\\\x00") || o.Size < barrier.Overhead || o.Size > MaxObjectSize {
			return ErrMalformed
		}
		if _, dup := names[o.Name]; dup {
			return ErrMalformed
		}
		switch o.Kind {
		case kindKeys, kindPolicy, kindSettings:
		default:
			return ErrMalformed
		}
		names[o.Name] = o
		keys += o.Keys
	}
	if keys != h.Keys || len(index) != h.Keys || h.Keys < 0 {
		return ErrMalformed
	}
	for k, obj := range index {
		if o, ok := names[obj]; !ok || o.Kind != kindKeys || k == "" {
			return ErrMalformed
		}
	}
	return nil
}

// Entry is one stored value in the plaintext of a policy or settings
// object: its store key and its plaintext.
type Entry struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// policyObject is the plaintext of the policy object.
type policyObject struct {
	Kind            string  `json:"kind"`
	RoleAssignments []Entry `json:"roleAssignments"`
	RoleDefinitions []Entry `json:"roleDefinitions"`
}

// settingsObject is the plaintext of the settings object.
type settingsObject struct {
	Kind     string  `json:"kind"`
	Settings []Entry `json:"settings"`
}
