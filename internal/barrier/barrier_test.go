package barrier_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"tresor/internal/barrier"
)

// ---------------------------------------------------------------------------
// helpers

// seqKey returns the root key with bytes start, start+1, …
func seqKey(t *testing.T, start byte) *barrier.RootKey {
	t.Helper()
	b := make([]byte, barrier.RootKeySize)
	for i := range b {
		b[i] = start + byte(i)
	}
	k, err := barrier.RootKeyFromBytes(b)
	if err != nil {
		t.Fatalf("RootKeyFromBytes: %v", err)
	}
	return k
}

func randomKey(t *testing.T) *barrier.RootKey {
	t.Helper()
	k, err := barrier.NewRootKey(nil)
	if err != nil {
		t.Fatalf("NewRootKey: %v", err)
	}
	return k
}

func newBarrier(t *testing.T, root *barrier.RootKey, namespace string) *barrier.Barrier {
	t.Helper()
	b, err := barrier.New(root, barrier.Storage, namespace)
	if err != nil {
		t.Fatalf("New(%q): %v", namespace, err)
	}
	return b
}

func mustSeal(t *testing.T, b *barrier.Barrier, path string, pt []byte) []byte {
	t.Helper()
	sealed, err := b.Seal(path, pt)
	if err != nil {
		t.Fatalf("Seal(%q): %v", path, err)
	}
	return sealed
}

func wantErrOpen(t *testing.T, what string, pt []byte, err error) {
	t.Helper()
	if !errors.Is(err, barrier.ErrOpen) {
		t.Fatalf("%s: got %q, %v; want ErrOpen", what, pt, err)
	}
	if pt != nil {
		t.Fatalf("%s: returned plaintext %q with its error", what, pt)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	headerSize = 1 + 12 // version + nonce
	tagSize    = 16
)

// ---------------------------------------------------------------------------
// barrier

func TestSealOpenRoundTrip(t *testing.T) {
	b := newBarrier(t, randomKey(t), "hsm1")
	tests := map[string][]byte{
		"nil":      nil,
		"empty":    {},
		"one byte": {0},
		"text":     []byte("key material"),
		"block":    bytes.Repeat([]byte{0xA5}, 16),
		"64 KiB":   bytes.Repeat([]byte("0123456789abcdef"), 4096),
		"all bytes": func() []byte {
			p := make([]byte, 256)
			for i := range p {
				p[i] = byte(i)
			}
			return p
		}(),
	}
	for name, pt := range tests {
		t.Run(name, func(t *testing.T) {
			orig := bytes.Clone(pt)
			sealed := mustSeal(t, b, "keys/k1", pt)
			if got, want := len(sealed), headerSize+len(pt)+tagSize; got != want {
				t.Fatalf("sealed length %d, want %d", got, want)
			}
			if sealed[0] != 0x01 {
				t.Fatalf("version byte %#x, want 0x01", sealed[0])
			}
			if len(pt) >= 8 && bytes.Contains(sealed, pt) {
				t.Fatal("sealed value contains the plaintext")
			}
			got, err := b.Open("keys/k1", sealed)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatalf("Open = %x, want %x", got, pt)
			}
			if !bytes.Equal(pt, orig) {
				t.Fatal("Seal modified its input")
			}
			// A fresh nonce each time: sealing twice gives different values.
			if again := mustSeal(t, b, "keys/k1", pt); bytes.Equal(again, sealed) {
				t.Fatal("two seals of the same value are equal")
			}
		})
	}
}

func TestSealNoncesDiffer(t *testing.T) {
	b := newBarrier(t, randomKey(t), "hsm1")
	seen := map[string]bool{}
	for range 1000 {
		nonce := string(mustSeal(t, b, "p", nil)[1:headerSize])
		if seen[nonce] {
			t.Fatal("nonce repeated")
		}
		seen[nonce] = true
	}
}

func TestOpenAADBinding(t *testing.T) {
	root := seqKey(t, 0)
	sealer := newBarrier(t, root, "hsm1")
	sealed := mustSeal(t, sealer, "keys/k1", []byte("secret"))

	tests := map[string]struct {
		root      *barrier.RootKey
		namespace string
		path      string
	}{
		"other path":             {root, "hsm1", "keys/k2"},
		"path prefix":            {root, "hsm1", "keys/k"},
		"path extended":          {root, "hsm1", "keys/k1/"},
		"empty path":             {root, "hsm1", ""},
		"other namespace":        {root, "hsm2", "keys/k1"},
		"namespace prefix":       {root, "hsm", "keys/k1"},
		"region namespace":       {root, "region", "keys/k1"},
		"empty namespace":        {root, "", "keys/k1"},
		"boundary moved":         {root, "hsm1keys", "/k1"},
		"path in namespace":      {root, "hsm1\x00keys", "k1"},
		"other root":             {seqKey(t, 1), "hsm1", "keys/k1"},
		"other random root":      {randomKey(t), "hsm1", "keys/k1"},
		"same root, other label": {mustRootKeyFromDerive(t, root), "hsm1", "keys/k1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := barrier.New(tc.root, barrier.Storage, tc.namespace)
			if err != nil {
				// A namespace that could blur the namespace/path boundary
				// may be refused outright; that is binding too.
				if strings.Contains(tc.namespace, "\x00") {
					return
				}
				t.Fatalf("New: %v", err)
			}
			pt, err := b.Open(tc.path, sealed)
			wantErrOpen(t, "Open", pt, err)
		})
	}

	// The right barrier still opens it, and a barrier made anew from the
	// same root bytes too.
	for _, b := range []*barrier.Barrier{sealer, newBarrier(t, seqKey(t, 0), "hsm1")} {
		if pt, err := b.Open("keys/k1", sealed); err != nil || string(pt) != "secret" {
			t.Fatalf("Open with the right barrier = %q, %v", pt, err)
		}
	}
}

func mustRootKeyFromDerive(t *testing.T, k *barrier.RootKey) *barrier.RootKey {
	t.Helper()
	b, err := k.Derive("test/other", barrier.RootKeySize)
	if err != nil {
		t.Fatal(err)
	}
	o, err := barrier.RootKeyFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestNewRejectsNULInNamespace(t *testing.T) {
	// With a NUL in the namespace, (namespace, path) pairs would share
	// additional data: ("a\x00b", "c") and ("a", "b\x00c").
	if b, err := barrier.New(randomKey(t), barrier.Storage, "a\x00b"); err == nil {
		t.Fatalf("New with a NUL in the namespace = %v, want an error", b)
	}
}

func TestOpenTamper(t *testing.T) {
	b := newBarrier(t, randomKey(t), "hsm1")
	sealed := mustSeal(t, b, "keys/k1", []byte("some key material"))
	for i := range sealed {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			t.Run(fmt.Sprintf("byte %d xor %#02x", i, mask), func(t *testing.T) {
				bad := bytes.Clone(sealed)
				bad[i] ^= mask
				pt, err := b.Open("keys/k1", bad)
				wantErrOpen(t, "Open", pt, err)
			})
		}
	}
	t.Run("appended byte", func(t *testing.T) {
		pt, err := b.Open("keys/k1", append(bytes.Clone(sealed), 0))
		wantErrOpen(t, "Open", pt, err)
	})
	t.Run("unchanged still opens", func(t *testing.T) {
		if _, err := b.Open("keys/k1", sealed); err != nil {
			t.Fatalf("Open: %v", err)
		}
	})
}

func TestOpenMalformed(t *testing.T) {
	b := newBarrier(t, randomKey(t), "hsm1")
	sealed := mustSeal(t, b, "p", []byte("v"))
	empty := mustSeal(t, b, "p", nil)

	tests := map[string][]byte{
		"nil":              nil,
		"empty":            {},
		"version only":     {0x01},
		"header only":      sealed[:headerSize],
		"no tag":           sealed[:headerSize+1],
		"one short":        sealed[:len(sealed)-1],
		"empty one short":  empty[:len(empty)-1],
		"tag only":         sealed[len(sealed)-tagSize:],
		"version 0":        append([]byte{0x00}, sealed[1:]...),
		"version 2":        append([]byte{0x02}, sealed[1:]...),
		"version 0xff":     append([]byte{0xff}, sealed[1:]...),
		"version missing":  sealed[1:],
		"version doubled":  append([]byte{0x01}, sealed...),
		"zeros":            make([]byte, len(sealed)),
		"sealed elsewhere": append([]byte{0x01}, make([]byte, len(sealed)-1)...),
	}
	for n := range len(sealed) {
		tests[fmt.Sprintf("truncated to %d", n)] = sealed[:n]
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			pt, err := b.Open("p", in)
			wantErrOpen(t, "Open", pt, err)
		})
	}
}

func TestBarrierConcurrent(t *testing.T) {
	b := newBarrier(t, randomKey(t), "hsm1")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			path := fmt.Sprintf("keys/k%d", i)
			for j := range 50 {
				pt := fmt.Appendf(nil, "value %d/%d", i, j)
				sealed, err := b.Seal(path, pt)
				if err == nil {
					var got []byte
					got, err = b.Open(path, sealed)
					if err == nil && !bytes.Equal(got, pt) {
						err = fmt.Errorf("got %q, want %q", got, pt)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// ---------------------------------------------------------------------------
// known answers

// Root key 00 01 … 1f. The expected values were computed outside Go (Python
// hmac/hashlib HKDF and pyca/cryptography AES-GCM) and are checked again here
// with crypto/hkdf directly.
const (
	katStorageKey = "b37be262c45cdb0918cc2a416a40c84aa45157a7b93480d7ff6288ddf8e2589c"
	katRootKeyID  = "24fddae8770cff5212abe086eaeb81c8"
	// version 01 ‖ nonce 10…1b ‖ AES-256-GCM("hello, tresor", aad "hsm1\x00keys/k1")
	katSealed = "01101112131415161718191a1b25a21d1889817902fef61dcfbb866b53db7dc26cd07f659f5e86445257"
)

func TestStorageKeyKnownAnswer(t *testing.T) {
	root := seqKey(t, 0)
	direct, err := hkdf.Key(sha256.New, root.InsecureBytes(), nil, "tresor/storage/v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(direct); got != katStorageKey {
		t.Fatalf("HKDF-SHA-256(root, info %q) = %s, want %s", "tresor/storage/v1", got, katStorageKey)
	}
	derived, err := root.Derive("tresor/storage/v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(derived, direct) {
		t.Fatalf("Derive = %x, want %x", derived, direct)
	}

	b := newBarrier(t, root, "hsm1")

	// The barrier opens a value sealed outside it under the storage key.
	pt, err := b.Open("keys/k1", mustHex(t, katSealed))
	if err != nil || string(pt) != "hello, tresor" {
		t.Fatalf("Open(known sealed value) = %q, %v", pt, err)
	}

	// And what the barrier seals opens with plain AES-256-GCM under the
	// storage key, with additional data namespace ‖ 0x00 ‖ path.
	sealed := mustSeal(t, b, "keys/k2", []byte("another value"))
	block, err := aes.NewCipher(direct)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gcm.Open(nil, sealed[1:headerSize], sealed[headerSize:], []byte("hsm1\x00keys/k2"))
	if err != nil || string(got) != "another value" {
		t.Fatalf("AES-GCM open of a barrier value = %q, %v", got, err)
	}
}

func TestRootKeyIDKnownAnswer(t *testing.T) {
	root := seqKey(t, 0)
	if got := root.ID(); got != katRootKeyID {
		t.Fatalf("ID() = %s, want %s", got, katRootKeyID)
	}
	direct, err := hkdf.Key(sha256.New, root.InsecureBytes(), nil, "tresor/root-key-id/v1", 16)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(direct); got != katRootKeyID {
		t.Fatalf("HKDF for the ID = %s, want %s", got, katRootKeyID)
	}
}

// ---------------------------------------------------------------------------
// root keys

func TestRootKeyID(t *testing.T) {
	a, b := randomKey(t), randomKey(t)
	aCopy, err := barrier.RootKeyFromBytes(a.InsecureBytes())
	if err != nil {
		t.Fatal(err)
	}
	id := a.ID()
	if len(id) != 32 {
		t.Fatalf("ID() = %q, want 32 hex digits", id)
	}
	if _, err := hex.DecodeString(id); err != nil {
		t.Fatalf("ID() = %q is not hex: %v", id, err)
	}
	if a.ID() != id || aCopy.ID() != id {
		t.Fatalf("ID not stable: %s, %s, %s", id, a.ID(), aCopy.ID())
	}
	if b.ID() == id {
		t.Fatal("two random keys have the same ID")
	}
	if strings.Contains(hex.EncodeToString(a.InsecureBytes()), id) {
		t.Fatal("ID is part of the key")
	}
}

func TestRootKeyConstructors(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31, 33, 64} {
		t.Run(fmt.Sprintf("%d bytes", n), func(t *testing.T) {
			if k, err := barrier.RootKeyFromBytes(make([]byte, n)); err == nil {
				t.Fatalf("RootKeyFromBytes(%d bytes) = %v, want an error", n, k)
			}
		})
	}
	t.Run("copies its input", func(t *testing.T) {
		in := bytes.Repeat([]byte{7}, barrier.RootKeySize)
		k, err := barrier.RootKeyFromBytes(in)
		if err != nil {
			t.Fatal(err)
		}
		in[0] = 8
		if k.InsecureBytes()[0] != 7 {
			t.Fatal("RootKeyFromBytes keeps the caller's slice")
		}
	})
	t.Run("short reader", func(t *testing.T) {
		if k, err := barrier.NewRootKey(bytes.NewReader(make([]byte, 31))); err == nil {
			t.Fatalf("NewRootKey from 31 bytes = %v, want an error", k)
		}
	})
	t.Run("reader", func(t *testing.T) {
		k, err := barrier.NewRootKey(bytes.NewReader(seqKey(t, 0).InsecureBytes()))
		if err != nil {
			t.Fatal(err)
		}
		if !k.Equal(seqKey(t, 0)) {
			t.Fatal("NewRootKey did not use the reader's bytes")
		}
	})
	t.Run("random keys differ", func(t *testing.T) {
		if randomKey(t).Equal(randomKey(t)) {
			t.Fatal("two random keys are equal")
		}
	})
	t.Run("equal", func(t *testing.T) {
		if !seqKey(t, 3).Equal(seqKey(t, 3)) || seqKey(t, 3).Equal(seqKey(t, 4)) {
			t.Fatal("Equal is wrong")
		}
	})
}

func TestDerive(t *testing.T) {
	k := randomKey(t)
	labels := []string{"tresor/storage/v1", "tresor/backup/v1", "tresor/root-key-id/v1", "tresor/storage/v2", "", "tresor/storage/v1\x00"}
	seen := map[string]string{}
	for _, label := range labels {
		d, err := k.Derive(label, 32)
		if err != nil {
			t.Fatalf("Derive(%q): %v", label, err)
		}
		if len(d) != 32 {
			t.Fatalf("Derive(%q) gave %d bytes", label, len(d))
		}
		if other, ok := seen[string(d)]; ok {
			t.Fatalf("Derive(%q) = Derive(%q)", label, other)
		}
		seen[string(d)] = label
		if bytes.Equal(d, k.InsecureBytes()) {
			t.Fatalf("Derive(%q) returned the root key", label)
		}
		again, err := k.Derive(label, 32)
		if err != nil || !bytes.Equal(again, d) {
			t.Fatalf("Derive(%q) not deterministic", label)
		}
	}
	other, err := randomKey(t).Derive(labels[0], 32)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := seen[string(other)]; ok {
		t.Fatal("two root keys derive the same key")
	}
	for _, n := range []int{1, 16, 64} {
		if d, err := k.Derive("x", n); err != nil || len(d) != n {
			t.Fatalf("Derive(x, %d) = %d bytes, %v", n, len(d), err)
		}
	}
	if _, err := k.Derive("x", 255*32+1); err == nil {
		t.Fatal("Derive of more than 255 hashes succeeded")
	}
}

func TestRootKeyNeverPrints(t *testing.T) {
	k := seqKey(t, 0xA0) // a0 a1 … bf
	raw := k.InsecureBytes()
	forbidden := []string{
		string(raw[:4]),
		hex.EncodeToString(raw[:4]),
		strings.ToUpper(hex.EncodeToString(raw[:4])),
		"160 161 162 163", // decimal, as fmt prints a []byte
		"0xa0, 0xa1",      // %#v of a []byte
		"\\xa0\\xa1",      // %q
		"oKGio",           // base64 of a0 a1 a2 a3
	}
	type holder struct {
		Key *barrier.RootKey
	}
	type valueHolder struct {
		Key barrier.RootKey
	}
	values := map[string]any{
		"pointer":             k,
		"value":               *k,
		"in struct":           holder{k},
		"pointer to struct":   &holder{k},
		"value in struct":     valueHolder{*k},
		"in slice":            []*barrier.RootKey{k},
		"in map":              map[string]*barrier.RootKey{"k": k},
		"value in map":        map[string]barrier.RootKey{"k": *k},
		"pointer in pointer":  &k,
		"interface in struct": struct{ V any }{*k},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%T", "%p"}
	for name, v := range values {
		for _, verb := range verbs {
			t.Run(name+" "+verb, func(t *testing.T) {
				checkNoKey(t, fmt.Sprintf(verb, v), forbidden)
			})
		}
		t.Run(name+" Sprint", func(t *testing.T) {
			checkNoKey(t, fmt.Sprint(v)+fmt.Sprintln(v), forbidden)
		})
		t.Run(name+" json", func(t *testing.T) {
			out, err := json.Marshal(v)
			if err == nil {
				checkNoKey(t, string(out), forbidden)
			}
		})
		t.Run(name+" slog", func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "key", v)
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "key", v)
			checkNoKey(t, buf.String(), forbidden)
		})
	}
	if got := k.String(); !strings.Contains(got, "REDACTED") {
		t.Fatalf("String() = %q, want it to say REDACTED", got)
	}
	if got := k.GoString(); !strings.Contains(got, "REDACTED") {
		t.Fatalf("GoString() = %q, want it to say REDACTED", got)
	}
}

func checkNoKey(t *testing.T, out string, forbidden []string) {
	t.Helper()
	for _, f := range forbidden {
		if strings.Contains(out, f) {
			t.Fatalf("output %q contains key bytes (%q)", out, f)
		}
	}
}

// ---------------------------------------------------------------------------
// file seal

func openSeal(t *testing.T, path string, create bool) *barrier.FileSeal {
	t.Helper()
	s, err := barrier.OpenFileSeal(path, create)
	if err != nil {
		t.Fatalf("OpenFileSeal(%s, %v): %v", path, create, err)
	}
	return s
}

func TestFileSealCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seal.key")
	s := openSeal(t, path, true)

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode(); got != 0o600 {
		t.Fatalf("seal key file mode %v, want -rw-------", got)
	}
	if st.Size() != 32 {
		t.Fatalf("seal key file holds %d bytes, want 32", st.Size())
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Fatalf("directory holds %v (%v), want only the key file", entries, err)
	}

	wrapped, err := s.Wrap([]byte("root key bytes"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(path)
	if bytes.Contains(wrapped, []byte("root key bytes")) || bytes.Contains(wrapped, key) {
		t.Fatal("wrapped value shows the plaintext or the seal key")
	}

	reopened := map[string]bool{"reopen": false, "reopen with create": true}
	for name, create := range reopened {
		t.Run(name, func(t *testing.T) {
			s2 := openSeal(t, path, create)
			got, err := s2.Unwrap(wrapped, []byte("aad"))
			if err != nil || string(got) != "root key bytes" {
				t.Fatalf("Unwrap after reopen = %q, %v", got, err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, key) {
				t.Fatal("reopening changed the key file")
			}
		})
	}

	t.Run("other seal", func(t *testing.T) {
		other := openSeal(t, filepath.Join(t.TempDir(), "seal.key"), true)
		pt, err := other.Unwrap(wrapped, []byte("aad"))
		wantErrOpen(t, "Unwrap with another seal", pt, err)
	})
	t.Run("other aad", func(t *testing.T) {
		pt, err := s.Unwrap(wrapped, []byte("aae"))
		wantErrOpen(t, "Unwrap with other aad", pt, err)
	})
	t.Run("tampered", func(t *testing.T) {
		for i := range wrapped {
			bad := bytes.Clone(wrapped)
			bad[i] ^= 1
			pt, err := s.Unwrap(bad, []byte("aad"))
			wantErrOpen(t, fmt.Sprintf("Unwrap with byte %d flipped", i), pt, err)
		}
	})
}

func TestFileSealCreateIgnoresStaleTemp(t *testing.T) {
	// A crash may leave a temporary file behind, possibly with a wider mode;
	// the key file must still end up 0600.
	dir := t.TempDir()
	path := filepath.Join(dir, "seal.key")
	if err := os.WriteFile(path+".tmp", []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	openSeal(t, path, true)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode(); got != 0o600 {
		t.Fatalf("seal key file mode %v, want -rw-------", got)
	}
	openSeal(t, path, false)
}

func TestFileSealRefused(t *testing.T) {
	tests := map[string]struct {
		mode os.FileMode
		size int
	}{
		"mode 0644":         {0o644, 32},
		"mode 0640":         {0o640, 32},
		"mode 0604":         {0o604, 32},
		"mode 0660":         {0o660, 32},
		"mode 0606":         {0o606, 32},
		"mode 0777":         {0o777, 32},
		"mode 0610":         {0o610, 32},
		"empty":             {0o600, 0},
		"31 bytes":          {0o600, 31},
		"33 bytes":          {0o600, 33},
		"64 bytes":          {0o600, 64},
		"16 bytes":          {0o600, 16},
		"wrong size, 0644":  {0o644, 16},
		"wide, with create": {0o644, 32},
	}
	for name, tc := range tests {
		for _, create := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s create=%v", name, create), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "seal.key")
				content := bytes.Repeat([]byte{0x42}, tc.size)
				if err := os.WriteFile(path, content, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.mode); err != nil {
					t.Fatal(err)
				}
				if s, err := barrier.OpenFileSeal(path, create); err == nil {
					t.Fatalf("OpenFileSeal = %v, want an error", s)
				}
				// The refused file is left as it was.
				if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, content) {
					t.Fatalf("key file changed: %x, %v", after, err)
				}
			})
		}
	}
}

func TestFileSealOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		path   string
		create bool
	}{
		"missing, no create":        {filepath.Join(dir, "missing.key"), false},
		"missing directory":         {filepath.Join(dir, "nodir", "seal.key"), true},
		"directory":                 {dir, false},
		"directory with create":     {dir, true},
		"missing dir and no create": {filepath.Join(dir, "nodir", "seal.key"), false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if s, err := barrier.OpenFileSeal(tc.path, tc.create); err == nil {
				t.Fatalf("OpenFileSeal = %v, want an error", s)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenFileSeal without create made a file: %v", err)
	}
}

func TestFileSealAcceptsReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	if err := os.WriteFile(path, bytes.Repeat([]byte{1}, 32), 0o400); err != nil {
		t.Fatal(err)
	}
	openSeal(t, path, false)
}

func TestWrapRootKey(t *testing.T) {
	s := openSeal(t, filepath.Join(t.TempDir(), "seal.key"), true)
	k := randomKey(t)
	wrapped, err := barrier.WrapRootKey(s, k, "hsm1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wrapped, k.InsecureBytes()) {
		t.Fatal("wrapped root key shows the key")
	}
	got, err := barrier.UnwrapRootKey(s, wrapped, "hsm1")
	if err != nil {
		t.Fatalf("UnwrapRootKey: %v", err)
	}
	if !got.Equal(k) || got.ID() != k.ID() {
		t.Fatal("unwrapped root key differs")
	}

	names := map[string]string{
		"other name":  "hsm2",
		"prefix":      "hsm",
		"extended":    "hsm1/",
		"empty":       "",
		"case":        "HSM1",
		"with prefix": "tresor/root/hsm1",
	}
	for name, other := range names {
		t.Run(name, func(t *testing.T) {
			k2, err := barrier.UnwrapRootKey(s, wrapped, other)
			if !errors.Is(err, barrier.ErrOpen) || k2 != nil {
				t.Fatalf("UnwrapRootKey(%q) = %v, %v; want ErrOpen", other, k2, err)
			}
		})
	}
	t.Run("plain unwrap needs the binding", func(t *testing.T) {
		pt, err := s.Unwrap(wrapped, []byte("hsm1"))
		wantErrOpen(t, "Unwrap without the root binding", pt, err)
	})
	t.Run("wrong size inside", func(t *testing.T) {
		short, err := s.Wrap(make([]byte, 16), []byte("tresor/root/hsm1"))
		if err != nil {
			t.Fatal(err)
		}
		if k2, err := barrier.UnwrapRootKey(s, short, "hsm1"); err == nil {
			t.Fatalf("UnwrapRootKey of a 16-byte secret = %v, want an error", k2)
		}
	})
}

func TestZeroRootKeyUnusable(t *testing.T) {
	// A RootKey not made by the constructors has no key; using it must not
	// quietly derive keys from empty input.
	uses := map[string]func(k *barrier.RootKey){
		"Derive":        func(k *barrier.RootKey) { k.Derive("x", 32) },
		"ID":            func(k *barrier.RootKey) { _ = k.ID() },
		"New":           func(k *barrier.RootKey) { barrier.New(k, barrier.Storage, "hsm1") },
		"InsecureBytes": func(k *barrier.RootKey) { _ = k.InsecureBytes() },
		"Equal":         func(k *barrier.RootKey) { k.Equal(k) },
	}
	for name, use := range uses {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			use(&barrier.RootKey{})
		})
	}
}

// TestPurposesAreSeparate: a value sealed for one purpose opens under no
// other, with the same root, namespace and path.
func TestPurposesAreSeparate(t *testing.T) {
	root := seqKey(t, 0)
	purposes := map[string]barrier.Purpose{
		"storage": barrier.Storage, "full backup": barrier.FullBackup, "key backup": barrier.KeyBackup,
	}
	for sealName, sp := range purposes {
		sealer, err := barrier.New(root, sp, "hsm1")
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := sealer.Seal("p", []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != len("secret")+barrier.Overhead {
			t.Errorf("%s: sealed %d bytes, want plaintext + Overhead (%d)", sealName, len(sealed), len("secret")+barrier.Overhead)
		}
		for openName, op := range purposes {
			opener, err := barrier.New(root, op, "hsm1")
			if err != nil {
				t.Fatal(err)
			}
			pt, err := opener.Open("p", sealed)
			if sealName == openName {
				if err != nil || string(pt) != "secret" {
					t.Errorf("%s: Open = %q, %v", sealName, pt, err)
				}
				continue
			}
			wantErrOpen(t, sealName+" opened as "+openName, pt, err)
		}
	}
	if _, err := barrier.New(root, barrier.Purpose{}, "hsm1"); err == nil {
		t.Error("New with the zero Purpose succeeded")
	}
}
