package keywrap_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/c2sp/wycheproof"

	"tresor/internal/crypto/keywrap"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

const (
	kek128 = "000102030405060708090A0B0C0D0E0F"
	kek192 = "000102030405060708090A0B0C0D0E0F1011121314151617"
	kek256 = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
)

// rfc3394Vectors are the test vectors of RFC 3394 §4.
var rfc3394Vectors = []struct {
	name, kek, key, wrapped string
}{
	{"4.1 128-bit key with 128-bit KEK", kek128,
		"00112233445566778899AABBCCDDEEFF",
		"1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"},
	{"4.2 128-bit key with 192-bit KEK", kek192,
		"00112233445566778899AABBCCDDEEFF",
		"96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D"},
	{"4.3 128-bit key with 256-bit KEK", kek256,
		"00112233445566778899AABBCCDDEEFF",
		"64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7"},
	{"4.4 192-bit key with 192-bit KEK", kek192,
		"00112233445566778899AABBCCDDEEFF0001020304050607",
		"031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2"},
	{"4.5 192-bit key with 256-bit KEK", kek256,
		"00112233445566778899AABBCCDDEEFF0001020304050607",
		"A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1"},
	{"4.6 256-bit key with 256-bit KEK", kek256,
		"00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
		"28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21"},
}

func TestRFC3394Vectors(t *testing.T) {
	for _, tc := range rfc3394Vectors {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kek, key, want := unhex(t, tc.kek), unhex(t, tc.key), unhex(t, tc.wrapped)
			got, err := keywrap.Wrap(kek, key)
			if err != nil {
				t.Fatalf("Wrap: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Wrap = %X, want %X", got, want)
			}
			back, err := keywrap.Unwrap(kek, want)
			if err != nil {
				t.Fatalf("Unwrap: %v", err)
			}
			if !bytes.Equal(back, key) {
				t.Fatalf("Unwrap = %X, want %X", back, key)
			}
			// Any single flipped bit must fail the integrity check.
			for i := range want {
				bad := bytes.Clone(want)
				bad[i] ^= 0x01
				if out, err := keywrap.Unwrap(kek, bad); !errors.Is(err, keywrap.ErrUnwrap) || out != nil {
					t.Fatalf("Unwrap with byte %d flipped = %X, %v; want nil, ErrUnwrap", i, out, err)
				}
			}
		})
	}
}

// rfc5649Vectors are the test vectors of RFC 5649 §6.
var rfc5649Vectors = []struct {
	name, kek, key, wrapped string
}{
	{"20 octets", "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8",
		"c37b7e6492584340 bed1220780894115 5068f738",
		"138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a"},
	{"7 octets", "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8",
		"466f7250617369",
		"afbeb0f07dfbf541 9200f2ccb50bb24f"},
}

func TestRFC5649Vectors(t *testing.T) {
	for _, tc := range rfc5649Vectors {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kek, key, want := unhex(t, tc.kek), unhex(t, tc.key), unhex(t, tc.wrapped)
			got, err := keywrap.WrapPad(kek, key)
			if err != nil {
				t.Fatalf("WrapPad: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("WrapPad = %x, want %x", got, want)
			}
			back, err := keywrap.UnwrapPad(kek, want)
			if err != nil {
				t.Fatalf("UnwrapPad: %v", err)
			}
			if !bytes.Equal(back, key) {
				t.Fatalf("UnwrapPad = %x, want %x", back, key)
			}
			for i := range want {
				bad := bytes.Clone(want)
				bad[i] ^= 0x80
				if out, err := keywrap.UnwrapPad(kek, bad); !errors.Is(err, keywrap.ErrUnwrap) || out != nil {
					t.Fatalf("UnwrapPad with byte %d flipped = %x, %v; want nil, ErrUnwrap", i, out, err)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	k16 := make([]byte, 16)
	tests := map[string]struct {
		fn   func() ([]byte, error)
		want error
	}{
		"Wrap empty KEK":            {func() ([]byte, error) { return keywrap.Wrap(nil, make([]byte, 16)) }, keywrap.ErrInvalidKeySize},
		"Wrap 15-byte KEK":          {func() ([]byte, error) { return keywrap.Wrap(make([]byte, 15), make([]byte, 16)) }, keywrap.ErrInvalidKeySize},
		"Wrap 33-byte KEK":          {func() ([]byte, error) { return keywrap.Wrap(make([]byte, 33), make([]byte, 16)) }, keywrap.ErrInvalidKeySize},
		"Unwrap 20-byte KEK":        {func() ([]byte, error) { return keywrap.Unwrap(make([]byte, 20), make([]byte, 24)) }, keywrap.ErrInvalidKeySize},
		"WrapPad 8-byte KEK":        {func() ([]byte, error) { return keywrap.WrapPad(make([]byte, 8), []byte{1}) }, keywrap.ErrInvalidKeySize},
		"UnwrapPad 0-byte KEK":      {func() ([]byte, error) { return keywrap.UnwrapPad(nil, make([]byte, 16)) }, keywrap.ErrInvalidKeySize},
		"Wrap empty plaintext":      {func() ([]byte, error) { return keywrap.Wrap(k16, nil) }, keywrap.ErrInvalidLength},
		"Wrap 8-byte plaintext":     {func() ([]byte, error) { return keywrap.Wrap(k16, make([]byte, 8)) }, keywrap.ErrInvalidLength},
		"Wrap 17-byte plaintext":    {func() ([]byte, error) { return keywrap.Wrap(k16, make([]byte, 17)) }, keywrap.ErrInvalidLength},
		"Unwrap 16-byte ciphertext": {func() ([]byte, error) { return keywrap.Unwrap(k16, make([]byte, 16)) }, keywrap.ErrInvalidLength},
		"Unwrap 25-byte ciphertext": {func() ([]byte, error) { return keywrap.Unwrap(k16, make([]byte, 25)) }, keywrap.ErrInvalidLength},
		"Unwrap zero ciphertext":    {func() ([]byte, error) { return keywrap.Unwrap(k16, make([]byte, 24)) }, keywrap.ErrUnwrap},
		"WrapPad empty plaintext":   {func() ([]byte, error) { return keywrap.WrapPad(k16, nil) }, keywrap.ErrInvalidLength},
		"UnwrapPad 8-byte":          {func() ([]byte, error) { return keywrap.UnwrapPad(k16, make([]byte, 8)) }, keywrap.ErrInvalidLength},
		"UnwrapPad 23-byte":         {func() ([]byte, error) { return keywrap.UnwrapPad(k16, make([]byte, 23)) }, keywrap.ErrInvalidLength},
		"UnwrapPad zero 16-byte":    {func() ([]byte, error) { return keywrap.UnwrapPad(k16, make([]byte, 16)) }, keywrap.ErrUnwrap},
		"UnwrapPad zero 32-byte":    {func() ([]byte, error) { return keywrap.UnwrapPad(k16, make([]byte, 32)) }, keywrap.ErrUnwrap},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := tc.fn()
			if !errors.Is(err, tc.want) || out != nil {
				t.Fatalf("got %x, %v; want nil, %v", out, err, tc.want)
			}
		})
	}
}

// TestKWPRejectsKWCiphertext checks that the two algorithms' initial values
// keep them apart: an RFC 3394 ciphertext does not unwrap as RFC 5649 and
// vice versa.
func TestKWPRejectsKWCiphertext(t *testing.T) {
	kek := unhex(t, kek256)
	key := unhex(t, "00112233445566778899AABBCCDDEEFF")
	kw, _ := keywrap.Wrap(kek, key)
	if _, err := keywrap.UnwrapPad(kek, kw); !errors.Is(err, keywrap.ErrUnwrap) {
		t.Errorf("UnwrapPad(Wrap(...)) error = %v, want ErrUnwrap", err)
	}
	kwp, _ := keywrap.WrapPad(kek, key)
	if _, err := keywrap.Unwrap(kek, kwp); !errors.Is(err, keywrap.ErrUnwrap) {
		t.Errorf("Unwrap(WrapPad(...)) error = %v, want ErrUnwrap", err)
	}
}

func TestRoundTripSizes(t *testing.T) {
	for _, kekLen := range []int{16, 24, 32} {
		kek := bytes.Repeat([]byte{byte(kekLen)}, kekLen)
		for n := 1; n <= 80; n++ {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(i*7 + n)
			}
			c, err := keywrap.WrapPad(kek, p)
			if err != nil {
				t.Fatalf("WrapPad(%d bytes): %v", n, err)
			}
			if want := (n+7)/8*8 + 8; len(c) != want {
				t.Fatalf("WrapPad(%d bytes) gave %d bytes, want %d", n, len(c), want)
			}
			if back, err := keywrap.UnwrapPad(kek, c); err != nil || !bytes.Equal(back, p) {
				t.Fatalf("UnwrapPad(WrapPad(%d bytes)) = %x, %v", n, back, err)
			}
			if n < 16 || n%8 != 0 {
				continue
			}
			c, err = keywrap.Wrap(kek, p)
			if err != nil {
				t.Fatalf("Wrap(%d bytes): %v", n, err)
			}
			if back, err := keywrap.Unwrap(kek, c); err != nil || !bytes.Equal(back, p) {
				t.Fatalf("Unwrap(Wrap(%d bytes)) = %x, %v", n, back, err)
			}
		}
	}
}

// Wycheproof keywrap_test_schema_v1.json.
type wycheproofKeywrapFile struct {
	Algorithm  string `json:"algorithm"`
	TestGroups []struct {
		KeySize int `json:"keySize"`
		Tests   []struct {
			TcID    int      `json:"tcId"`
			Comment string   `json:"comment"`
			Flags   []string `json:"flags"`
			Key     string   `json:"key"`
			Msg     string   `json:"msg"`
			Ct      string   `json:"ct"`
			Result  string   `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func loadWycheproofKeywrap(t *testing.T, name string) wycheproofKeywrapFile {
	t.Helper()
	b, err := fs.ReadFile(wycheproof.TestVectors, name)
	if err != nil {
		t.Fatalf("reading Wycheproof %s: %v", name, err)
	}
	var f wycheproofKeywrapFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("parsing Wycheproof %s: %v", name, err)
	}
	if len(f.TestGroups) == 0 {
		t.Fatalf("Wycheproof %s has no test groups", name)
	}
	return f
}

func TestWycheproof(t *testing.T) {
	files := []struct {
		file         string
		wrap, unwrap func(kek, in []byte) ([]byte, error)
	}{
		{"aes_wrap_test.json", keywrap.Wrap, keywrap.Unwrap},
		{"aes_kwp_test.json", keywrap.WrapPad, keywrap.UnwrapPad},
	}
	for _, file := range files {
		t.Run(file.file, func(t *testing.T) {
			t.Parallel()
			f := loadWycheproofKeywrap(t, file.file)
			count := 0
			for _, g := range f.TestGroups {
				for _, tc := range g.Tests {
					count++
					name := fmt.Sprintf("tcId=%d/%s", tc.TcID, strings.Join(tc.Flags, ","))
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						kek, msg, ct := unhex(t, tc.Key), unhex(t, tc.Msg), unhex(t, tc.Ct)
						got, err := file.unwrap(kek, ct)
						switch tc.Result {
						case "valid":
							if err != nil || !bytes.Equal(got, msg) {
								t.Fatalf("unwrap = %x, %v; want %x (%s)", got, err, msg, tc.Comment)
							}
							w, err := file.wrap(kek, msg)
							if err != nil || !bytes.Equal(w, ct) {
								t.Fatalf("wrap = %x, %v; want %x (%s)", w, err, ct, tc.Comment)
							}
						case "invalid":
							if err == nil || got != nil {
								t.Fatalf("unwrap of invalid vector = %x, nil; want an error (%s)", got, tc.Comment)
							}
						case "acceptable":
							if err == nil && !bytes.Equal(got, msg) {
								t.Fatalf("unwrap of acceptable vector = %x, want %x or an error", got, msg)
							}
						default:
							t.Fatalf("unknown result %q", tc.Result)
						}
					})
				}
			}
			if count < 100 {
				t.Fatalf("only %d vectors in %s", count, file.file)
			}
		})
	}
}

// FuzzUnwrap checks that Unwrap and UnwrapPad never panic, return nil output
// with every error, and that whatever unwraps wraps back to the same bytes
// (both algorithms are deterministic).
func FuzzUnwrap(f *testing.F) {
	for _, v := range rfc3394Vectors {
		f.Add(unhex(f, v.kek), unhex(f, v.wrapped))
	}
	for _, v := range rfc5649Vectors {
		f.Add(unhex(f, v.kek), unhex(f, v.wrapped))
	}
	f.Add(make([]byte, 16), make([]byte, 24))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, kek, ct []byte) {
		for _, alg := range []struct {
			name         string
			wrap, unwrap func(kek, in []byte) ([]byte, error)
		}{
			{"KW", keywrap.Wrap, keywrap.Unwrap},
			{"KWP", keywrap.WrapPad, keywrap.UnwrapPad},
		} {
			p, err := alg.unwrap(kek, ct)
			if err != nil {
				if p != nil {
					t.Fatalf("%s: error %v with non-nil output", alg.name, err)
				}
				if !errors.Is(err, keywrap.ErrUnwrap) && !errors.Is(err, keywrap.ErrInvalidKeySize) && !errors.Is(err, keywrap.ErrInvalidLength) {
					t.Fatalf("%s: unexpected error %v", alg.name, err)
				}
				continue
			}
			again, err := alg.wrap(kek, p)
			if err != nil || !bytes.Equal(again, ct) {
				t.Fatalf("%s: wrap(unwrap(ct)) = %x, %v; want %x", alg.name, again, err, ct)
			}
		}
	})
}
