package securitydomain

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"
)

// Sample vector from spec §2.6 (k=2, N=3, secret 00 ff 10 80).
var sampleShares = []string{"44021e029202bc02", "88043e041304f804", "cc065e0695063306"}

func TestCombineSampleVector(t *testing.T) {
	want := mustHex(t, "00ff1080")
	for i := range sampleShares {
		for j := range sampleShares {
			if i == j {
				continue
			}
			got, err := Combine([][]byte{mustHex(t, sampleShares[i]), mustHex(t, sampleShares[j])})
			if err != nil {
				t.Fatalf("shares %d,%d: %v", i+1, j+1, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("shares %d,%d: got %x, want %x", i+1, j+1, got, want)
			}
		}
	}
	all := [][]byte{mustHex(t, sampleShares[0]), mustHex(t, sampleShares[1]), mustHex(t, sampleShares[2])}
	if got, err := Combine(all); err != nil || !bytes.Equal(got, want) {
		t.Errorf("all three: got %x, %v", got, err)
	}
}

func TestShareWordDecoding(t *testing.T) {
	share := mustHex(t, sampleShares[0])
	w := binary.LittleEndian.Uint16(share)
	if w != 0x0244 {
		t.Fatalf("first word = %#04x, want 0x0244", w)
	}
	if x, v := w>>9, w&0x1ff; x != 1 || v != 68 {
		t.Errorf("word 0x0244: x=%d v=%d, want x=1 v=68", x, v)
	}
}

// Split must produce the sample vector's encoding: share i has x = i+1 and
// value f(x); with a fixed slope we can predict every word.
func TestSplitEncoding(t *testing.T) {
	secret := []byte{0x00, 0xff, 0x10, 0x80}
	// randomElement reads 2 bytes little-endian and keeps the low 9 bits,
	// so values below 257 pass through: these are the sample's slopes.
	slopes := []uint16{68, 32, 130, 60}
	var stream []byte
	for _, s := range slopes {
		stream = binary.LittleEndian.AppendUint16(stream, s)
	}
	shares, err := Split(secret, 2, 3, bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	for i, sh := range shares {
		x := uint16(i + 1)
		for j, s := range secret {
			w := binary.LittleEndian.Uint16(sh[2*j:])
			wantV := (slopes[j]*x + uint16(s)) % 257
			if w != x<<9|wantV {
				t.Errorf("share %d byte %d: word %#04x, want %#04x", i, j, w, x<<9|wantV)
			}
		}
	}
	for i, sh := range shares {
		if !bytes.Equal(sh, mustHex(t, sampleShares[i])) {
			t.Errorf("share %d = %x, want %s", i+1, sh, sampleShares[i])
		}
	}
}

func TestSplitArgs(t *testing.T) {
	tests := map[string]struct {
		secret      []byte
		required, n int
	}{
		"empty secret":      {nil, 2, 3},
		"required 1":        {[]byte{1}, 1, 3},
		"required above n":  {[]byte{1}, 4, 3},
		"too many shares":   {[]byte{1}, 2, 127},
		"negative required": {[]byte{1}, -1, 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if s, err := Split(tc.secret, tc.required, tc.n, nil); err == nil || s != nil {
				t.Errorf("Split = %x, %v; want nil, error", s, err)
			}
		})
	}
	if s, err := Split([]byte{1, 2}, 2, 3, bytes.NewReader(nil)); err == nil || s != nil {
		t.Errorf("Split with empty randomness = %x, %v", s, err)
	}
	if s, err := Split([]byte{1}, 126, 126, nil); err != nil || len(s) != 126 {
		t.Errorf("Split 126 of 126: %d shares, %v", len(s), err)
	}
}

func TestCombineRejects(t *testing.T) {
	w := func(words ...uint16) []byte {
		var b []byte
		for _, x := range words {
			b = binary.LittleEndian.AppendUint16(b, x)
		}
		return b
	}
	s1 := mustHex(t, sampleShares[0])
	s2 := mustHex(t, sampleShares[1])
	tests := map[string][][]byte{
		"no shares":         nil,
		"one share":         {s1},
		"duplicate x":       {s1, s1},
		"x zero":            {w(0<<9|5, 0<<9|5), w(1<<9|5, 1<<9|5)},
		"value 257":         {w(1<<9|257, 1<<9|3), w(2<<9|3, 2<<9|3)},
		"value 511":         {w(1<<9 | 511), w(2<<9 | 3)},
		"length mismatch":   {s1, s2[:6]},
		"odd length":        {s1[:3], s2[:3]},
		"empty shares":      {{}, {}},
		"x varies in share": {w(1<<9|1, 3<<9|1), w(2<<9|1, 2<<9|1)},
		// x=1 v=0 and x=2 v=1: f(0) = 2*0 - 1 = -1 = 256 mod 257.
		"result above 255": {w(1 << 9), w(2<<9 | 1)},
	}
	for name, shares := range tests {
		t.Run(name, func(t *testing.T) {
			if got, err := Combine(shares); err == nil || got != nil {
				t.Errorf("Combine = %x, %v; want nil, error", got, err)
			}
		})
	}
}

func TestInverse(t *testing.T) {
	for a := uint32(1); a < prime; a++ {
		if a*inverse(a)%prime != 1 {
			t.Fatalf("inverse(%d) = %d is wrong", a, inverse(a))
		}
	}
}

// chacha returns a deterministic io.Reader seeded by rapid, so that rapid's
// shrinking cannot turn the coefficients into zeros.
func chacha(t *rapid.T) *rand.ChaCha8 {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], rapid.Uint64().Draw(t, "seed"))
	return rand.NewChaCha8(seed)
}

func TestShamirQuorumProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 20).Draw(t, "n")
		k := rapid.IntRange(2, n).Draw(t, "k")
		secret := rapid.SliceOfN(rapid.Byte(), 1, 48).Draw(t, "secret")
		shares, err := Split(secret, k, n, chacha(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range shares {
			if len(s) != 2*len(secret) {
				t.Fatalf("share length %d, want %d", len(s), 2*len(secret))
			}
		}
		// Any k or more distinct shares, in any order, reconstruct.
		m := rapid.IntRange(k, n).Draw(t, "m")
		idx := rapid.Permutation(rangeInts(n)).Draw(t, "order")[:m]
		subset := make([][]byte, m)
		for i, j := range idx {
			subset[i] = shares[j]
		}
		got, err := Combine(subset)
		if err != nil {
			t.Fatalf("Combine(%v): %v", idx, err)
		}
		if !bytes.Equal(got, secret) {
			t.Fatalf("Combine(%v) = %x, want %x", idx, got, secret)
		}
	})
}

func TestShamirBelowQuorumProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(3, 20).Draw(t, "n")
		k := rapid.IntRange(3, n).Draw(t, "k")
		// 16+ bytes: each byte of a below-quorum result matches the secret
		// with probability about 1/257, so all of them essentially never do.
		secret := rapid.SliceOfN(rapid.Byte(), 16, 48).Draw(t, "secret")
		shares, err := Split(secret, k, n, chacha(t))
		if err != nil {
			t.Fatal(err)
		}
		m := rapid.IntRange(2, k-1).Draw(t, "m")
		idx := rapid.Permutation(rangeInts(n)).Draw(t, "order")[:m]
		subset := make([][]byte, m)
		for i, j := range idx {
			subset[i] = shares[j]
		}
		got, err := Combine(subset)
		if err == nil && bytes.Equal(got, secret) {
			t.Fatalf("%d of %d required shares %v reconstructed the secret", m, k, idx)
		}
	})
}

func rangeInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
