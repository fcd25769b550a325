package securitydomain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestDirRoundTrip(t *testing.T) {
	cek := bytes.Repeat([]byte{7}, 64)
	for _, n := range []int{0, 1, 15, 16, 17, 1000} {
		pt := bytes.Repeat([]byte{0xab}, n)
		jwe, err := EncryptDir(cek, "hsm_backup", pt, nil)
		if err != nil {
			t.Fatal(err)
		}
		hdr := strings.Split(jwe, ".")[0]
		if want := b64.EncodeToString([]byte(`{"alg":"dir","enc":"A256CBC-HS512","kid":"hsm_backup"}`)); hdr != want {
			t.Errorf("header = %s, want %s", hdr, want)
		}
		if parts := strings.Split(jwe, "."); parts[1] != "" {
			t.Errorf("dir JWE has encrypted key %q", parts[1])
		}
		got, kid, err := DecryptDir(cek, jwe)
		if err != nil || kid != "hsm_backup" || !bytes.Equal(got, pt) {
			t.Errorf("len %d: DecryptDir = %x, %q, %v", n, got, kid, err)
		}
	}
	if _, err := EncryptDir(cek[:32], "x", nil, nil); err == nil {
		t.Error("EncryptDir accepted a 32-byte CEK")
	}
}

func TestRSARoundTrip(t *testing.T) {
	c := genCustodian(t, 0)
	jwe, err := EncryptRSA(c.Cert.Public, []byte("share"), nil)
	if err != nil {
		t.Fatal(err)
	}
	hdr := strings.Split(jwe, ".")[0]
	if want := b64.EncodeToString([]byte(`{"alg":"RSA-OAEP-256","enc":"A256CBC-HS512","kid":"not used"}`)); hdr != want {
		t.Errorf("header = %s, want %s", hdr, want)
	}
	got, err := DecryptRSA(c.Key, jwe)
	if err != nil || string(got) != "share" {
		t.Fatalf("DecryptRSA = %q, %v", got, err)
	}
	other := genCustodian(t, 1)
	if got, err := DecryptRSA(other.Key, jwe); !errors.Is(err, ErrTampered) || got != nil {
		t.Errorf("DecryptRSA with another key = %x, %v; want ErrTampered", got, err)
	}
	small := cachedRSAKey(t, "small", 1024)
	if _, err := EncryptRSA(&small.PublicKey, []byte("x"), nil); err == nil {
		t.Error("EncryptRSA accepted a 1024-bit key")
	}
	if _, err := EncryptRSA(nil, []byte("x"), nil); err == nil {
		t.Error("EncryptRSA accepted a nil key")
	}
	if _, err := DecryptRSA(nil, jwe); err == nil {
		t.Error("DecryptRSA accepted a nil key")
	}
}

// flipPart flips one bit of the decoded bytes of part i of a compact JWE.
func flipPart(t *testing.T, jwe string, part, byteIdx int, bit uint) string {
	t.Helper()
	parts := strings.Split(jwe, ".")
	b, err := decodeB64(parts[part])
	if err != nil {
		t.Fatal(err)
	}
	b[byteIdx%len(b)] ^= 1 << (bit % 8)
	parts[part] = b64.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestDirTamper(t *testing.T) {
	cek := bytes.Repeat([]byte{9}, 64)
	jwe, err := EncryptDir(cek, "t", bytes.Repeat([]byte("x"), 40), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		"header":     flipPart(t, jwe, 0, 30, 0), // inside "A256CBC-HS512"/kid: still JSON
		"iv":         flipPart(t, jwe, 2, 0, 0),
		"ciphertext": flipPart(t, jwe, 3, 5, 3),
		"tag":        flipPart(t, jwe, 4, 31, 7),
	}
	for name, bad := range tests {
		t.Run(name, func(t *testing.T) {
			pt, kid, err := DecryptDir(cek, bad)
			if err == nil || pt != nil || kid != "" {
				t.Fatalf("DecryptDir = %x, %q, %v; want error", pt, kid, err)
			}
			if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v is neither ErrTampered nor ErrMalformed", err)
			}
		})
	}
	t.Run("ciphertext-is-tampered", func(t *testing.T) {
		if _, _, err := DecryptDir(cek, tests["ciphertext"]); !errors.Is(err, ErrTampered) {
			t.Errorf("err = %v, want ErrTampered", err)
		}
	})
	t.Run("wrong-key", func(t *testing.T) {
		other := bytes.Repeat([]byte{8}, 64)
		if _, _, err := DecryptDir(other, jwe); !errors.Is(err, ErrTampered) {
			t.Errorf("err = %v, want ErrTampered", err)
		}
	})
}

// The MAC covers the header text exactly as received: a header with the
// same JSON but different bytes (here, a space) must fail.
func TestHeaderMACIsVerbatim(t *testing.T) {
	cek := bytes.Repeat([]byte{3}, 64)
	hdr := b64.EncodeToString([]byte(`{"alg": "dir", "enc": "A256CBC-HS512", "kid": "a"}`))
	jwe, err := seal(cek, hdr, nil, []byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pt, kid, err := DecryptDir(cek, jwe)
	if err != nil || string(pt) != "hello" || kid != "a" {
		t.Fatalf("spaced header: %q %q %v", pt, kid, err)
	}
	compact := b64.EncodeToString([]byte(`{"alg":"dir","enc":"A256CBC-HS512","kid":"a"}`))
	swapped := compact + jwe[len(hdr):]
	if _, _, err := DecryptDir(cek, swapped); !errors.Is(err, ErrTampered) {
		t.Errorf("re-encoded header: err = %v, want ErrTampered", err)
	}
}

func TestParseCompactRejects(t *testing.T) {
	cek := bytes.Repeat([]byte{1}, 64)
	good, err := EncryptDir(cek, "k", []byte("p"), nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	hdr := func(s string) string { return b64.EncodeToString([]byte(s)) }
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, ".")
	}
	tests := map[string]string{
		"empty":          "",
		"four parts":     strings.Join(parts[:4], "."),
		"six parts":      good + ".",
		"header not b64": with(0, "!!"),
		"header not obj": with(0, hdr(`[1]`)),
		"header null":    with(0, hdr(`null`)),
		"alg rsa":        with(0, hdr(`{"alg":"RSA-OAEP-256","enc":"A256CBC-HS512"}`)),
		"alg missing":    with(0, hdr(`{"enc":"A256CBC-HS512"}`)),
		"alg number":     with(0, hdr(`{"alg":1,"enc":"A256CBC-HS512"}`)),
		"alg uppercase":  with(0, hdr(`{"ALG":"dir","enc":"A256CBC-HS512"}`)),
		"enc gcm":        with(0, hdr(`{"alg":"dir","enc":"A256GCM"}`)),
		"zip":            with(0, hdr(`{"alg":"dir","enc":"A256CBC-HS512","zip":"DEF"}`)),
		"crit":           with(0, hdr(`{"alg":"dir","enc":"A256CBC-HS512","crit":["x"]}`)),
		"kid number":     with(0, hdr(`{"alg":"dir","enc":"A256CBC-HS512","kid":5}`)),
		"dir with key":   with(1, "AAAA"),
		"short iv":       with(2, "AAAA"),
		"empty ct":       with(3, ""),
		"ct not block":   with(3, "AAAA"),
		"short tag":      with(4, "AAAA"),
		"tag not b64":    with(4, "*"),
	}
	for name, jwe := range tests {
		t.Run(name, func(t *testing.T) {
			pt, kid, err := DecryptDir(cek, jwe)
			if !errors.Is(err, ErrMalformed) || pt != nil || kid != "" {
				t.Errorf("DecryptDir = %x, %q, %v; want ErrMalformed", pt, kid, err)
			}
		})
	}
}

func TestThumbprints(t *testing.T) {
	e := loadExpected(t)
	for _, c := range e.Custodians {
		if got := loadCert(t, c.Cert).Thumbprint(); got != c.X5T256 {
			t.Errorf("%s: x5t_256 = %s, want %s", c.Cert, got, c.X5T256)
		}
	}
	if got := Thumbprint(loadCert(t, "exchange.cer").DER); got != e.Exchange.X5T256 {
		t.Errorf("exchange: x5t_256 = %s, want %s", got, e.Exchange.X5T256)
	}
}

// key.bak is a key backup from the same HSM, a dir JWE under the
// backup_protection_key found inside the partition_enclave_backup blob.
func TestKeyBackupDecrypts(t *testing.T) {
	e := loadExpected(t)
	key := mustHex(t, e.KeyBackup.KeyHex)
	pt, kid, err := DecryptDir(key, strings.TrimSpace(string(readAzure(t, e.KeyBackup.File))))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pt)
	if kid != e.KeyBackup.JWEKid || len(pt) != e.KeyBackup.Len || hex.EncodeToString(sum[:]) != e.KeyBackup.SHA256Hex {
		t.Errorf("key.bak: kid %q, %d bytes, sha256 %x", kid, len(pt), sum)
	}
}
