// Package blobtest implements the conformance suite of [blob.Store]. Every
// backend (file, azure) runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		blobtest.Run(t, func(t *testing.T) blob.Store { … })
//	}
//
// The suite states the behaviour every backend shares: whole-object writes
// and reads, overwrites, [blob.ErrNotFound] and [blob.ErrTooLarge], listing
// by prefix (names with '/'), deletes, an 8 MiB object, concurrent writes,
// the name rules of [blob.ValidateName], and honoured context cancellation.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"tresor/internal/blob"
)

// Run runs the suite. newStore is called once per subtest and must return a
// Store on a new, empty container that exists; the backend cleans it up
// (with t.Cleanup) if it needs to.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, blob.Store)
	}{
		{"PutGet", testPutGet},
		{"Empty", testEmpty},
		{"Overwrite", testOverwrite},
		{"GetMissing", testGetMissing},
		{"TooLarge", testTooLarge},
		{"List", testList},
		{"ListEmpty", testListEmpty},
		{"Delete", testDelete},
		{"Large", testLarge},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ReplaceIsAtomic", testReplaceIsAtomic},
		{"NoAliasing", testNoAliasing},
		{"InvalidNames", testInvalidNames},
		{"ContextCanceled", testContextCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

const mib = 1 << 20

func random(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, s blob.Store, name string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), name, data); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", name, len(data), err)
	}
}

func get(t *testing.T, s blob.Store, name string) []byte {
	t.Helper()
	b, err := s.Get(t.Context(), name, 64*mib)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return b
}

func names(objs []blob.Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Name
	}
	return out
}

func list(t *testing.T, s blob.Store, prefix string) []blob.Object {
	t.Helper()
	objs, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return objs
}

func testPutGet(t *testing.T, s blob.Store) {
	want := []byte("sealed backup object")
	put(t, s, "mhsm-x-2026010203040506/manifest", want)
	if got := get(t, s, "mhsm-x-2026010203040506/manifest"); !bytes.Equal(got, want) {
		t.Fatalf("Get = %q, want %q", got, want)
	}
}

func testEmpty(t *testing.T, s blob.Store) {
	put(t, s, "empty", nil)
	got, err := s.Get(t.Context(), "empty", 0)
	if err != nil {
		t.Fatalf("Get(empty, max 0): %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("Get(empty) = %d bytes, want 0", len(got))
	}
	objs := list(t, s, "")
	if len(objs) != 1 || objs[0].Name != "empty" || objs[0].Size != 0 {
		t.Fatalf("List = %+v, want one empty object", objs)
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	put(t, s, "obj", random(1, 4096))
	want := []byte("shorter")
	put(t, s, "obj", want)
	if got := get(t, s, "obj"); !bytes.Equal(got, want) {
		t.Fatalf("after overwrite Get = %q, want %q", got, want)
	}
	if objs := list(t, s, ""); len(objs) != 1 || objs[0].Size != int64(len(want)) {
		t.Fatalf("after overwrite List = %+v, want one object of %d bytes", objs, len(want))
	}
}

func testGetMissing(t *testing.T, s blob.Store) {
	put(t, s, "present", []byte("x"))
	for _, name := range []string{"absent", "present/child", "dir/absent", "presen"} {
		b, err := s.Get(t.Context(), name, 1024)
		if !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Get(%q) = %q, %v; want ErrNotFound", name, b, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "blob: ") {
			t.Errorf("Get(%q) error %q does not start with \"blob: \"", name, err)
		}
	}
}

func testTooLarge(t *testing.T, s blob.Store) {
	data := random(2, 1000)
	put(t, s, "obj", data)
	if b, err := s.Get(t.Context(), "obj", 999); !errors.Is(err, blob.ErrTooLarge) || b != nil {
		t.Fatalf("Get(max 999) of 1000 bytes = %d bytes, %v; want nil, ErrTooLarge", len(b), err)
	}
	if b, err := s.Get(t.Context(), "obj", 0); !errors.Is(err, blob.ErrTooLarge) {
		t.Fatalf("Get(max 0) of 1000 bytes = %d bytes, %v; want ErrTooLarge", len(b), err)
	}
	if b, err := s.Get(t.Context(), "obj", 1000); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("Get(max 1000) of 1000 bytes = %d bytes, %v; want the object", len(b), err)
	}
	if _, err := s.Get(t.Context(), "missing", 10); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get(missing, max 10) = %v, want ErrNotFound", err)
	}
}

func testList(t *testing.T, s blob.Store) {
	before := time.Now().Add(-time.Hour)
	objects := map[string]int{
		"a":                1,
		"b/c":              2,
		"b/d/e":            3,
		"b/d/f":            4,
		"bx":               5,
		"mhsm-1/blob-0":    6,
		"mhsm-1/manifest":  7,
		"mhsm-10/manifest": 8,
	}
	for name, n := range objects {
		put(t, s, name, random(uint64(n), n))
	}
	tests := map[string][]string{
		"":        {"a", "b/c", "b/d/e", "b/d/f", "bx", "mhsm-1/blob-0", "mhsm-1/manifest", "mhsm-10/manifest"},
		"b":       {"b/c", "b/d/e", "b/d/f", "bx"},
		"b/":      {"b/c", "b/d/e", "b/d/f"},
		"b/d":     {"b/d/e", "b/d/f"},
		"b/d/e":   {"b/d/e"},
		"mhsm-1/": {"mhsm-1/blob-0", "mhsm-1/manifest"},
		"mhsm-1":  {"mhsm-1/blob-0", "mhsm-1/manifest", "mhsm-10/manifest"},
		"c":       {},
		"b/c/":    {},
		"zzz/":    {},
	}
	for prefix, want := range tests {
		objs := list(t, s, prefix)
		if got := names(objs); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
		}
		for _, o := range objs {
			if o.Size != int64(objects[o.Name]) {
				t.Errorf("List(%q): %s has size %d, want %d", prefix, o.Name, o.Size, objects[o.Name])
			}
			if o.Modified.Before(before) || o.Modified.After(time.Now().Add(time.Hour)) {
				t.Errorf("List(%q): %s modified %v, want about now", prefix, o.Name, o.Modified)
			}
		}
	}
}

func testListEmpty(t *testing.T, s blob.Store) {
	for _, prefix := range []string{"", "mhsm-", "a/"} {
		if objs := list(t, s, prefix); len(objs) != 0 {
			t.Errorf("List(%q) of an empty container = %+v, want none", prefix, objs)
		}
	}
}

func testDelete(t *testing.T, s blob.Store) {
	put(t, s, "d/one", []byte("1"))
	put(t, s, "d/two", []byte("2"))
	put(t, s, "d/sub/three", []byte("3"))
	for _, name := range []string{"d/one", "d/sub/three"} {
		if err := s.Delete(t.Context(), name); err != nil {
			t.Fatalf("Delete(%q): %v", name, err)
		}
		if _, err := s.Get(t.Context(), name, 10); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Get(%q) after Delete = %v, want ErrNotFound", name, err)
		}
	}
	if got := names(list(t, s, "")); !slices.Equal(got, []string{"d/two"}) {
		t.Fatalf("List after deletes = %q, want [d/two]", got)
	}
	for _, name := range []string{"d/one", "never", "d/sub/x", "d/sub/three"} {
		if err := s.Delete(t.Context(), name); err != nil {
			t.Errorf("Delete(%q) of an absent object = %v, want nil", name, err)
		}
	}
	// A deleted name can be written again.
	put(t, s, "d/one", []byte("again"))
	if got := get(t, s, "d/one"); string(got) != "again" {
		t.Fatalf("Get after rewrite = %q", got)
	}
}

func testLarge(t *testing.T, s blob.Store) {
	data := random(3, 8*mib)
	put(t, s, "mhsm-x/large", data)
	got, err := s.Get(t.Context(), "mhsm-x/large", 8*mib)
	if err != nil {
		t.Fatalf("Get(8 MiB, max 8 MiB): %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("Get(8 MiB) returned %d bytes that differ from the %d written", len(got), len(data))
	}
	if _, err := s.Get(t.Context(), "mhsm-x/large", 8*mib-1); !errors.Is(err, blob.ErrTooLarge) {
		t.Fatalf("Get(8 MiB, max 8 MiB-1) = %v, want ErrTooLarge", err)
	}
	if objs := list(t, s, "mhsm-x/"); len(objs) != 1 || objs[0].Size != 8*mib {
		t.Fatalf("List = %+v, want one object of 8 MiB", objs)
	}
}

func testConcurrentPuts(t *testing.T, s blob.Store) {
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Put(t.Context(), fmt.Sprintf("c/%02d", i), random(uint64(100+i), 64<<10+i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put(c/%02d): %v", i, err)
		}
	}
	if t.Failed() {
		return
	}
	objs := list(t, s, "c/")
	if len(objs) != n {
		t.Fatalf("List after %d concurrent puts = %q", n, names(objs))
	}
	for i := range n {
		name := fmt.Sprintf("c/%02d", i)
		if got := get(t, s, name); !bytes.Equal(got, random(uint64(100+i), 64<<10+i)) {
			t.Errorf("Get(%s) returned other bytes than written", name)
		}
	}
}

// testReplaceIsAtomic overwrites one object while others read it: every read
// returns one whole version.
func testReplaceIsAtomic(t *testing.T, s blob.Store) {
	const size = 256 << 10
	versions := [][]byte{bytes.Repeat([]byte{'a'}, size), bytes.Repeat([]byte{'b'}, size+1), bytes.Repeat([]byte{'c'}, size-1)}
	put(t, s, "r", versions[0])
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			for i := range 6 {
				if err := s.Put(t.Context(), "r", versions[(w+i)%3]); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
			}
		})
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := s.Get(t.Context(), "r", 2*size)
				if err != nil {
					t.Errorf("Get during overwrites: %v", err)
					return
				}
				if !slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, got) }) {
					t.Errorf("Get during overwrites returned %d bytes that are no whole version", len(got))
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
}

func testNoAliasing(t *testing.T, s blob.Store) {
	data := []byte("original")
	put(t, s, "n", data)
	copy(data, "MUTATED!")
	got := get(t, s, "n")
	if string(got) != "original" {
		t.Fatalf("Get after the caller changed its slice = %q, want %q", got, "original")
	}
	got[0] = 'X'
	if again := get(t, s, "n"); string(again) != "original" {
		t.Fatalf("Get after the caller changed a returned slice = %q", again)
	}
}

// InvalidNames are object names every backend refuses with
// [blob.ErrInvalidLocation].
var InvalidNames = []string{
	"",
	"/abs",
	"../up",
	"a/../b",
	"a/..",
	"..",
	"a..b",
	"nul\x00byte",
	"trailing/",
	"a//b",
	"./a",
	"a/./b",
	`back\slash`,
	"bad\xffutf8",
	strings.Repeat("n", blob.MaxNameLen+1),
}

func testInvalidNames(t *testing.T, s blob.Store) {
	ctx := t.Context()
	for _, name := range InvalidNames {
		if err := s.Put(ctx, name, []byte("x")); !errors.Is(err, blob.ErrInvalidLocation) {
			t.Errorf("Put(%.40q) = %v, want ErrInvalidLocation", name, err)
		}
		if _, err := s.Get(ctx, name, 10); !errors.Is(err, blob.ErrInvalidLocation) {
			t.Errorf("Get(%.40q) = %v, want ErrInvalidLocation", name, err)
		}
		if err := s.Delete(ctx, name); !errors.Is(err, blob.ErrInvalidLocation) {
			t.Errorf("Delete(%.40q) = %v, want ErrInvalidLocation", name, err)
		}
	}
	if objs := list(t, s, ""); len(objs) != 0 {
		t.Errorf("after refused puts List = %q, want none", names(objs))
	}
	// The longest valid name works.
	long := strings.Repeat("l", blob.MaxNameLen-4) + "/end"
	for _, name := range []string{long, "a.b", ".hidden", "x/y.z/w", "sp ace", "ünï"} {
		if err := blob.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%.40q) = %v, want nil", name, err)
		}
	}
}

func testContextCanceled(t *testing.T, s blob.Store) {
	put(t, s, "kept", []byte("kept"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "new", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "kept", 100); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.List(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a canceled context = %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, "kept"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a canceled context = %v, want context.Canceled", err)
	}
	if got := names(list(t, s, "")); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("after canceled calls List = %q, want [kept]", got)
	}
}
