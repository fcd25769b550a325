package identity

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
)

func TestNewSecret(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		s, err := NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s, SecretPrefix) {
			t.Fatalf("secret %q lacks prefix %q", s, SecretPrefix)
		}
		if len(s) != len(SecretPrefix)+40 {
			t.Fatalf("secret length = %d, want %d", len(s), len(SecretPrefix)+40)
		}
		for _, r := range strings.TrimPrefix(s, SecretPrefix) {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				t.Fatalf("secret %q has a character that is not url-safe: %q", s, r)
			}
		}
		if seen[s] {
			t.Fatalf("NewSecret repeated %q", s)
		}
		seen[s] = true
	}
}

func TestHashSecret(t *testing.T) {
	const secret = "tsr~0123456789abcdefghijABCDEFGHIJ-_0123456"
	h := HashSecret(secret)
	if len(h) != 16+sha256.Size {
		t.Fatalf("hash length = %d, want %d", len(h), 16+sha256.Size)
	}
	// Format: salt || SHA-256(salt || secret).
	want := sha256.Sum256(append(append([]byte(nil), h[:16]...), secret...))
	if !bytes.Equal(h[16:], want[:]) {
		t.Fatal("hash is not salt || SHA-256(salt || secret)")
	}
	if bytes.Equal(h, HashSecret(secret)) {
		t.Fatal("two hashes of one secret are equal: salt not random")
	}
	if bytes.Contains(h, []byte(secret)) {
		t.Fatal("hash contains the secret")
	}
}

func TestCheckSecret(t *testing.T) {
	const secret = "tsr~correct-horse-battery-staple-0123456789"
	good := HashSecret(secret)
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	saltFlipped := bytes.Clone(good)
	saltFlipped[0] ^= 1

	tests := map[string]struct {
		hash   []byte
		secret string
		want   bool
	}{
		"correct":            {good, secret, true},
		"wrong secret":       {good, secret + "x", false},
		"prefix of secret":   {good, secret[:len(secret)-1], false},
		"empty secret":       {good, "", false},
		"empty secret hash":  {HashSecret(""), "", true},
		"nil hash":           {nil, secret, false},
		"truncated hash":     {good[:len(good)-1], secret, false},
		"hash with extra":    {append(bytes.Clone(good), 0), secret, false},
		"flipped digest bit": {flipped, secret, false},
		"flipped salt bit":   {saltFlipped, secret, false},
		"digest only":        {good[16:], secret, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := CheckSecret(tc.hash, tc.secret); got != tc.want {
				t.Fatalf("CheckSecret = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewSecretRoundTrip(t *testing.T) {
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	h := HashSecret(s)
	if !CheckSecret(h, s) {
		t.Fatal("CheckSecret rejects the hashed secret")
	}
	if CheckSecret(h, s2) {
		t.Fatal("CheckSecret accepts another secret")
	}
}
