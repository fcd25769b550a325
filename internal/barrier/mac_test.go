package barrier_test

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"testing"

	"tresor/internal/barrier"
)

func newMAC(t *testing.T, root *barrier.RootKey, namespace string) *barrier.RecordMAC {
	t.Helper()
	m, err := barrier.NewRecordMAC(root, namespace)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRecordMACDefinition computes the tag outside the package: HMAC-SHA-256
// under HKDF-SHA-256(root, info "tresor/region-records/v1") over
// len(namespace) ‖ namespace ‖ len(path) ‖ path ‖ data, lengths as 4-byte
// big-endian integers.
func TestRecordMACDefinition(t *testing.T) {
	root := seqKey(t, 0)
	key, err := hkdf.Key(sha256.New, root.InsecureBytes(), nil, "tresor/region-records/v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte("\x00\x00\x00\x06region\x00\x00\x00\x0dprincipals/p1"))
	h.Write([]byte(`{"regionAdmin":false}`))
	want := h.Sum(nil)
	m := newMAC(t, root, "region")
	if got := m.Sum("principals/p1", []byte(`{"regionAdmin":false}`)); !hmac.Equal(got, want) {
		t.Fatalf("Sum = %x, want %x", got, want)
	}
	if !m.Verify("principals/p1", []byte(`{"regionAdmin":false}`), want) {
		t.Fatal("Verify refuses its own tag")
	}
}

func TestRecordMACBinding(t *testing.T) {
	root := seqKey(t, 0)
	m := newMAC(t, root, "region")
	data := []byte(`{"objectId":"a","regionAdmin":false}`)
	tag := m.Sum("principals/a", data)
	short := tag[:16]
	tests := map[string]struct {
		mac        *barrier.RecordMAC
		path       string
		data, tag  []byte
		wantVerify bool
	}{
		"same":               {m, "principals/a", data, tag, true},
		"edited data":        {m, "principals/a", []byte(`{"objectId":"a","regionAdmin":true}`), tag, false},
		"other path":         {m, "principals/b", data, tag, false},
		"other namespace":    {newMAC(t, root, "other"), "principals/a", data, tag, false},
		"other root":         {newMAC(t, seqKey(t, 1), "region"), "principals/a", data, tag, false},
		"path shifted":       {m, "principals/a{", data[1:], tag, false},
		"truncated tag":      {m, "principals/a", data, short, false},
		"no tag":             {m, "principals/a", data, nil, false},
		"other storage root": {newMAC(t, mustRootKeyFromDerive(t, root), "region"), "principals/a", data, tag, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.mac.Verify(tc.path, tc.data, tc.tag); got != tc.wantVerify {
				t.Fatalf("Verify = %v, want %v", got, tc.wantVerify)
			}
		})
	}
}

func TestRecordMACNeverPrintsKey(t *testing.T) {
	root := seqKey(t, 0)
	m := newMAC(t, root, "region")
	key, _ := root.Derive(barrier.RecordsLabel, 32)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d"} {
		for _, v := range []any{m, *m} {
			out := fmt.Sprintf(verb, v)
			checkNoKey(t, out, []string{fmt.Sprintf("%x", key), fmt.Sprint(key), fmt.Sprintf("%d", key[:4])[1:8]})
		}
	}
}
