package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"tresor/internal/barrier"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fuzzRoot is the fixed security-domain root of the golden files.
func fuzzRoot(t testing.TB) *barrier.RootKey {
	t.Helper()
	r, err := barrier.RootKeyFromBytes(bytes.Repeat([]byte{0x42}, barrier.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// golden returns the bytes of testdata/name, made by make under -update.
// Sealing draws a random nonce, so the fuzz seeds (which must be the same
// bytes in every fuzz worker) are kept as files.
func golden(t testing.TB, name string, make func() []byte) []byte {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, make(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to make it)", err, t.Name())
	}
	return data
}

// goldenObjectPlaintext is the plaintext of testdata/object.sealed.
const goldenObjectPlaintext = `{"kind":"keys","keys":[{"id":"k1","record":{},"versions":[]}]}`

// goldenObject returns testdata/object.sealed: goldenObjectPlaintext
// sealed as keys-000001 of testFolder under fuzzRoot, and its description.
func goldenObject(t testing.TB) ([]byte, ObjectInfo) {
	t.Helper()
	fb := testFolderBarrier(t, fuzzRoot(t), testFolder)
	sealed := golden(t, "object.sealed", func() []byte {
		s, _, err := sealObject(fb, "keys-000001", kindKeys, []byte(goldenObjectPlaintext), 1)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	return sealed, ObjectInfo{Name: "keys-000001", Kind: kindKeys, Size: int64(len(sealed)), SHA256: sha256Hex(sealed), Keys: 1}
}

// goldenManifest returns testdata/manifest.json: testManifest under fuzzRoot.
func goldenManifest(t testing.TB) []byte {
	t.Helper()
	return golden(t, "manifest.json", func() []byte {
		_, _, data := testManifest(t, fuzzRoot(t))
		return data
	})
}

// TestGolden checks that the golden files still open (and makes them with -update).
func TestGolden(t *testing.T) {
	root := fuzzRoot(t)
	data := goldenManifest(t)
	clear, err := ReadHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	gotH, gotIndex, err := openManifest(root, testFolder, data)
	if err != nil || !reflect.DeepEqual(gotH, clear) || gotH.Keys != 3 || len(gotIndex) != 3 {
		t.Fatalf("testdata/manifest.json: %+v, %v, %v", gotH, gotIndex, err)
	}
	sealed, info := goldenObject(t)
	pt, err := openObject(testFolderBarrier(t, root, testFolder), info, sealed)
	if err != nil || string(pt) != goldenObjectPlaintext {
		t.Fatalf("testdata/object.sealed: %q, %v", pt, err)
	}
}

// FuzzReadHeader: ReadHeader never panics; on error the header is zero and
// the error is ErrMalformed; on success the header is of this format and
// re-encoding it reads back the same.
func FuzzReadHeader(f *testing.F) {
	f.Add(goldenManifest(f))
	f.Add([]byte(`{"format":"` + Format + `"}`))
	f.Add([]byte(`{"format":"` + Format + `","objects":[{"name":"keys-000001","kind":"keys","size":100,"sha256":"00","keys":1}],"keys":1}`))
	f.Add([]byte(`{"format":"tresor.backup/v0"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"format":"` + Format + `","created":"2021-04-28T21:18:31.84Z","sealed":"AAAA"}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ReadHeader(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ReadHeader error %v is not ErrMalformed", err)
			}
			if !reflect.DeepEqual(h, Header{}) {
				t.Fatalf("ReadHeader returned %+v with its error", h)
			}
			return
		}
		if h.Format != Format {
			t.Fatalf("ReadHeader accepted format %q", h.Format)
		}
		again, err := json.Marshal(manifest{Header: h})
		if err != nil {
			t.Fatal(err)
		}
		h2, err := ReadHeader(again)
		if err != nil {
			t.Fatalf("ReadHeader of its own header re-encoded: %v", err)
		}
		a, _ := json.Marshal(h)
		b, _ := json.Marshal(h2)
		if !bytes.Equal(a, b) {
			t.Fatalf("header does not round trip:\n%s\n%s", a, b)
		}
	})
}

// FuzzOpenManifest: openManifest never panics; on error it returns nothing
// else; on success the header validates, equals the clear header of the
// input (re-marshalled) and the sealed one; and an input whose sealed part
// is the seed's can only succeed with a clear header that re-marshals
// exactly like the seed's (the clear part cannot be edited).
func FuzzOpenManifest(f *testing.F) {
	root := fuzzRoot(f)
	data := goldenManifest(f)
	seedH, seedIndex, err := openManifest(root, testFolder, data)
	if err != nil {
		f.Fatal(err)
	}
	var seed manifest
	if err := json.Unmarshal(data, &seed); err != nil {
		f.Fatal(err)
	}
	seedClear, _ := json.Marshal(seedH)

	f.Add(data)
	f.Add(editClear(f, data, func(m map[string]any) { m["keys"] = 2 }))
	f.Add(editClear(f, data, func(m map[string]any) { m["sourceHsm"] = "other" }))
	f.Add(editClear(f, data, func(m map[string]any) { m["rootKeyId"] = "x" }))
	f.Add(editClear(f, data, func(m map[string]any) { m["format"] = "tresor.backup/v2" }))
	f.Add(editClear(f, data, func(m map[string]any) { delete(m, "sealed") }))
	f.Add(editClear(f, data, func(m map[string]any) { m["objects"] = []any{} }))
	// The same keys in another member order: re-marshals identically.
	f.Add(editClear(f, data, func(m map[string]any) {}))
	// A manifest sealed consistently but naming a policy object in the index.
	bad, err := encodeManifest(testFolderBarrier(f, root, testFolder), seedH, map[string]string{"k1": "keys-000001", "k2": "keys-000001", "k3": "policy"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bad)
	f.Add(data[:len(data)-1])
	f.Add([]byte(`{}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		h, index, err := openManifest(root, testFolder, data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTampered) && !errors.Is(err, ErrOtherDomain) {
				t.Fatalf("openManifest error %v is none of ErrMalformed, ErrTampered, ErrOtherDomain", err)
			}
			if !reflect.DeepEqual(h, Header{}) || index != nil {
				t.Fatalf("openManifest returned %+v, %v with its error", h, index)
			}
			return
		}
		if err := h.validate(testFolder, index); err != nil {
			t.Fatalf("openManifest returned a header that does not validate: %v", err)
		}
		var m manifest
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("openManifest accepted bytes that do not parse: %v", err)
		}
		got, _ := json.Marshal(h)
		clear, _ := json.Marshal(m.Header)
		if !bytes.Equal(got, clear) {
			t.Fatalf("returned header differs from the clear one:\n%s\n%s", got, clear)
		}
		pt, err := testFolderBarrier(t, root, testFolder).Open(ManifestName, m.Sealed)
		if err != nil {
			t.Fatalf("openManifest accepted a sealed part that does not open: %v", err)
		}
		var sm sealedManifest
		if err := json.Unmarshal(pt, &sm); err != nil {
			t.Fatal(err)
		}
		inner, _ := json.Marshal(sm.Header)
		if !bytes.Equal(got, inner) || !reflect.DeepEqual(index, sm.Index) {
			t.Fatalf("returned header or index differ from the sealed ones")
		}
		if bytes.Equal(m.Sealed, seed.Sealed) {
			if !bytes.Equal(clear, seedClear) || !reflect.DeepEqual(index, seedIndex) {
				t.Fatalf("an edited clear header was accepted with the seed's sealed part:\n%s\nwant\n%s", clear, seedClear)
			}
		}
	})
}

// FuzzOpenObject: openObject never panics; it opens only the sealed
// object itself, under its own name, to its own plaintext, whatever the
// description (size and hash recomputed for the fuzzed bytes or kept).
func FuzzOpenObject(f *testing.F) {
	root := fuzzRoot(f)
	fb := testFolderBarrier(f, root, testFolder)
	pt := []byte(goldenObjectPlaintext)
	sealed, info := goldenObject(f)
	f.Add(sealed, info.Name, false)
	f.Add(sealed, info.Name, true)
	f.Add(sealed, "keys-000002", true)
	f.Add(sealed[:len(sealed)-1], info.Name, true)
	f.Add(append(append([]byte(nil), sealed...), 0), info.Name, true)
	flipped := append([]byte(nil), sealed...)
	flipped[0] ^= 1
	f.Add(flipped, info.Name, true)
	f.Add([]byte{}, info.Name, true)
	f.Fuzz(func(t *testing.T, data []byte, name string, describe bool) {
		in := info
		in.Name = name
		if describe {
			in.Size, in.SHA256 = int64(len(data)), sha256Hex(data)
		}
		got, err := openObject(fb, in, data)
		if err != nil {
			if !errors.Is(err, ErrTampered) || got != nil {
				t.Fatalf("openObject = %q, %v; want nil and ErrTampered", got, err)
			}
			return
		}
		if name != info.Name || !bytes.Equal(data, sealed) || !bytes.Equal(got, pt) {
			t.Fatalf("openObject opened %q (name %q) to %q", data, name, got)
		}
	})
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
