package barrier

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

// RecordsLabel is the HKDF label of the key a [RecordMAC] derives from its
// root.
const RecordsLabel = "tresor/region-records/v1"

// MACSize is the size in bytes of a record tag.
const MACSize = sha256.Size

// RecordMAC authenticates records that stay readable in the store (a
// principal's client id and secret hash, its regionAdmin flag): an
// HMAC-SHA-256 under a key derived from a root key (HKDF-SHA-256, label
// [RecordsLabel]) over the namespace, the record's path and its bytes. A
// record edited outside Tresor, moved to another path, or copied from a
// region with another root fails [RecordMAC.Verify]. Use a [Barrier]
// instead for values that must stay secret. It is safe for concurrent use.
type RecordMAC struct {
	key       []byte
	namespace string
}

// NewRecordMAC returns the record authenticator of one namespace keyed by root.
func NewRecordMAC(root *RootKey, namespace string) (*RecordMAC, error) {
	if root == nil {
		return nil, errors.New("barrier: no root key")
	}
	key, err := root.Derive(RecordsLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("barrier: derive %s key: %w", RecordsLabel, err)
	}
	return &RecordMAC{key: key, namespace: namespace}, nil
}

// String hides the key.
func (RecordMAC) String() string { return "barrier.RecordMAC{REDACTED}" }

// Format hides the key under every verb.
func (m RecordMAC) Format(f fmt.State, verb rune) { io.WriteString(f, m.String()) }

// Sum returns the tag of data stored at path.
func (m *RecordMAC) Sum(path string, data []byte) []byte {
	h := hmac.New(sha256.New, m.key)
	writeField(h, m.namespace)
	writeField(h, path)
	h.Write(data)
	return h.Sum(nil)
}

// Verify reports in constant time whether tag is the tag of data stored at path.
func (m *RecordMAC) Verify(path string, data, tag []byte) bool {
	return len(tag) == MACSize && hmac.Equal(m.Sum(path, data), tag)
}

// writeField writes s with its length, so that namespace, path and data
// cannot be shifted into one another.
func writeField(h hash.Hash, s string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}
