package keyops_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"tresor/internal/crypto/keyops"
)

// FuzzImportJWK feeds JSON to ImportJWK. It must never panic; an error must
// come with a nil key and wrap one of the package's sentinels; an imported
// key must survive storage and re-import unchanged and show no private
// member in its public JWK.
func FuzzImportJWK(f *testing.F) {
	for _, name := range testKeyNames {
		b, err := json.Marshal(privateJWK(f, testKey(f, name)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{}`, `{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA"}`, `{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA=="}`,
		`{"kty":"EC","crv":"P-256","x":"","y":"","d":""}`, `{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQ","p":"Aw","q":"BQ"}`,
		`{"kty":"EC-HSM","crv":"P-521","x":"AA","y":"AA","d":"AQ"}`, `{"kty":"oct-HSM","key_hsm":"e30"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var j keyops.JWK
		if json.Unmarshal(data, &j) != nil {
			return
		}
		k, err := keyops.ImportJWK(j)
		if err != nil {
			if k != nil {
				t.Fatalf("ImportJWK returned a key with error %v", err)
			}
			if !errors.Is(err, keyops.ErrInvalidKey) && !errors.Is(err, keyops.ErrNotApprovedInFIPSMode) {
				t.Fatalf("ImportJWK error %v wraps no expected sentinel", err)
			}
			return
		}
		b, err := k.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary: %v", err)
		}
		k2, err := keyops.UnmarshalKey(b)
		if err != nil || !k2.Equal(k) {
			t.Fatalf("storage round trip: %v", err)
		}
		k3, err := keyops.ImportJWK(privateJWK(t, k))
		if err != nil || !k3.Equal(k) {
			t.Fatalf("re-import: %v", err)
		}
		pub := k.PublicJWK()
		if pub.D != "" || pub.P != "" || pub.Q != "" || pub.DP != "" || pub.DQ != "" || pub.QI != "" || pub.K != "" {
			t.Fatal("public JWK has private members")
		}
	})
}

// FuzzUnmarshalKey feeds bytes to UnmarshalKey. It must never panic; an
// error must come with a nil key and wrap ErrInvalidKey; a parsed key must
// re-encode to bytes that parse to the same key and encode identically, and
// (for EC and oct keys, which are cheap) work.
func FuzzUnmarshalKey(f *testing.F) {
	for _, name := range testKeyNames {
		f.Add(mustMarshal(f, testKey(f, name)))
	}
	f.Add([]byte{})
	f.Add([]byte("TK"))
	f.Add([]byte{'T', 'K', 1, 4})
	f.Add(append([]byte{'T', 'K', 1, 3}, bytes.Repeat([]byte{0xff}, 32)...))
	f.Add(append([]byte{'T', 'K', 1, 1}, 0x30, 0x00))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := keyops.UnmarshalKey(data)
		if err != nil {
			if k != nil {
				t.Fatalf("UnmarshalKey returned a key with error %v", err)
			}
			if !errors.Is(err, keyops.ErrInvalidKey) {
				t.Fatalf("UnmarshalKey error %v does not wrap ErrInvalidKey", err)
			}
			return
		}
		b, err := k.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary: %v", err)
		}
		k2, err := keyops.UnmarshalKey(b)
		if err != nil || !k2.Equal(k) {
			t.Fatalf("re-parse: %v", err)
		}
		if b2 := mustMarshal(t, k2); !bytes.Equal(b, b2) {
			t.Fatal("encoding is not stable")
		}
		_ = k.PublicJWK()
		switch k.Type() {
		case keyops.EC:
			alg := map[string]string{"P-256": "ES256", "P-256K": "ES256K", "P-384": "ES384", "P-521": "ES512"}[k.Curve()]
			digest := make([]byte, map[string]int{"ES256": 32, "ES256K": 32, "ES384": 48, "ES512": 64}[alg])
			sig, err := k.Sign(alg, digest, nil)
			if errors.Is(err, keyops.ErrNotApprovedInFIPSMode) {
				return
			}
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if ok, err := k.Verify(alg, digest, sig); !ok || err != nil {
				t.Fatalf("Verify = %v, %v", ok, err)
			}
		case keyops.Oct:
			alg := map[int]string{128: "A128KW", 192: "A192KW", 256: "A256KW"}[k.Size()]
			w, err := k.WrapKey(alg, make([]byte, 16), nil)
			if err != nil {
				t.Fatalf("WrapKey: %v", err)
			}
			if p, err := k.UnwrapKey(alg, w); err != nil || !bytes.Equal(p, make([]byte, 16)) {
				t.Fatalf("UnwrapKey = %x, %v", p, err)
			}
		}
	})
}
