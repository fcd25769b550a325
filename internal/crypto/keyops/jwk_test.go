package keyops_test

import (
	"crypto/elliptic"
	"crypto/fips140"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"tresor/internal/crypto/keyops"
)

func TestImportJWK(t *testing.T) {
	for _, name := range testKeyNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			orig := testKey(t, name)
			j := privateJWK(t, orig)
			if name == "P-256K" && fips140.Enabled() {
				k, err := keyops.ImportJWK(j)
				if !errors.Is(err, keyops.ErrNotApprovedInFIPSMode) || k != nil {
					t.Fatalf("ImportJWK(P-256K) in FIPS mode = %v, %v; want ErrNotApprovedInFIPSMode", k, err)
				}
				return
			}
			variants := map[string]func(j keyops.JWK) keyops.JWK{
				"as is": func(j keyops.JWK) keyops.JWK { return j },
				"plain kty": func(j keyops.JWK) keyops.JWK {
					j.Kty = strings.TrimSuffix(j.Kty, "-HSM")
					return j
				},
				"padded base64": func(j keyops.JWK) keyops.JWK {
					for _, p := range []*string{&j.N, &j.E, &j.D, &j.P, &j.Q, &j.DP, &j.DQ, &j.QI, &j.K, &j.X, &j.Y} {
						if *p != "" && len(*p)%4 != 0 {
							*p += strings.Repeat("=", 4-len(*p)%4)
						}
					}
					return j
				},
				"kid and key_ops ignored": func(j keyops.JWK) keyops.JWK {
					j.Kid = "https://x.managedhsm.local/keys/k/0123"
					j.KeyOps = []string{"sign"}
					return j
				},
			}
			if orig.Type() == keyops.RSA {
				variants["without CRT values"] = func(j keyops.JWK) keyops.JWK {
					j.DP, j.DQ, j.QI = "", "", ""
					return j
				}
			}
			for vname, f := range variants {
				k, err := keyops.ImportJWK(f(j))
				if err != nil {
					t.Fatalf("%s: ImportJWK: %v", vname, err)
				}
				if !k.Equal(orig) {
					t.Fatalf("%s: imported key differs from the original", vname)
				}
				if k.Type() != orig.Type() {
					t.Fatalf("%s: type %s, want %s", vname, k.Type(), orig.Type())
				}
			}
			// JSON round trip of the JWK type itself.
			b, err := json.Marshal(j)
			if err != nil {
				t.Fatal(err)
			}
			var back keyops.JWK
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if k, err := keyops.ImportJWK(back); err != nil || !k.Equal(orig) {
				t.Fatalf("ImportJWK after JSON round trip: %v", err)
			}
		})
	}
}

func TestImportJWKInvalid(t *testing.T) {
	rsaJWK := privateJWK(t, testKey(t, "RSA-2048"))
	rsa3072 := privateJWK(t, testKey(t, "RSA-3072"))
	p256 := privateJWK(t, testKey(t, "P-256"))
	p384 := privateJWK(t, testKey(t, "P-384"))
	otherP256, err := keyops.Generate(keyops.GenerateOptions{Type: "EC"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherD := privateJWK(t, otherP256).D

	// A point not on P-256: y + 1.
	y := new(big.Int).SetBytes(decodeMember(t, "y", p256.Y))
	y.Add(y, big.NewInt(1))
	offCurve := b64(y.FillBytes(make([]byte, 32)))
	// d from a key of another modulus but with the same size and e.
	wrongD := func() string {
		// Another 2048-bit key's d: take Wycheproof-independent material by
		// generating one more key (fast enough for 2048 bits).
		k, err := keyops.Generate(keyops.GenerateOptions{Type: "RSA"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return privateJWK(t, k).D
	}()
	// A modulus of 1024 bits.
	n1024 := b64(new(big.Int).Lsh(big.NewInt(1), 1023).Bytes())

	tests := map[string]struct {
		jwk  keyops.JWK
		want string // expected fragment of the error message
	}{
		"unknown kty":                    {keyops.JWK{Kty: "OKP", D: "AA"}, "unknown key type"},
		"empty kty":                      {keyops.JWK{K: b64(make([]byte, 16))}, "unknown key type"},
		"key_hsm":                        {keyops.JWK{Kty: "RSA-HSM", KeyHSM: "eyJ9"}, "key_hsm"},
		"RSA d from another key":         {with(rsaJWK, func(j *keyops.JWK) { j.D = wrongD }), "inconsistent"},
		"RSA d from another key, no CRT": {with(rsaJWK, func(j *keyops.JWK) { j.D = wrongD; j.DP, j.DQ, j.QI = "", "", "" }), "inconsistent"},
		"RSA p from another key":         {with(rsaJWK, func(j *keyops.JWK) { j.P = rsa3072.P }), ""},
		"RSA wrong dp":                   {with(rsaJWK, func(j *keyops.JWK) { j.DP = rsaJWK.DQ }), "dp does not match"},
		"RSA wrong qi":                   {with(rsaJWK, func(j *keyops.JWK) { j.QI = b64([]byte{1}) }), "qi does not match"},
		"RSA dp alone":                   {with(rsaJWK, func(j *keyops.JWK) { j.DQ, j.QI = "", "" }), "together"},
		"RSA missing p":                  {with(rsaJWK, func(j *keyops.JWK) { j.P = "" }), "member p is missing"},
		"RSA missing d":                  {with(rsaJWK, func(j *keyops.JWK) { j.D = "" }), "member d is missing"},
		"RSA public only":                {keyops.JWK{Kty: "RSA", N: rsaJWK.N, E: rsaJWK.E}, "member d is missing"},
		"RSA 1024-bit modulus":           {with(rsaJWK, func(j *keyops.JWK) { j.N = n1024 }), "2048, 3072 or 4096"},
		"RSA e=3":                        {with(rsaJWK, func(j *keyops.JWK) { j.E = b64([]byte{3}) }), "exponent"},
		"RSA consistent key with e=3": {func() keyops.JWK {
			k := rsaKeyWithE3(t)
			return keyops.JWK{Kty: "RSA", N: b64(k.N.Bytes()), E: b64([]byte{3}), D: b64(k.D.Bytes()),
				P: b64(k.Primes[0].Bytes()), Q: b64(k.Primes[1].Bytes())}
		}(), "exponent"},
		"RSA e even":              {with(rsaJWK, func(j *keyops.JWK) { j.E = b64([]byte{1, 0, 2}) }), "exponent"},
		"RSA e huge":              {with(rsaJWK, func(j *keyops.JWK) { j.E = b64([]byte{1, 0, 0, 0, 1}) }), "exponent"},
		"RSA bad base64":          {with(rsaJWK, func(j *keyops.JWK) { j.D = "not*base64" }), "member d is not valid base64url"},
		"RSA standard base64":     {with(rsaJWK, func(j *keyops.JWK) { j.Q = "ab+/" }), "member q is not valid base64url"},
		"RSA with k":              {with(rsaJWK, func(j *keyops.JWK) { j.K = "AAAA" }), "member k does not belong"},
		"RSA with crv":            {with(rsaJWK, func(j *keyops.JWK) { j.Crv = "P-256" }), "member crv does not belong"},
		"EC point not on curve":   {with(p256, func(j *keyops.JWK) { j.Y = offCurve }), "not on curve"},
		"EC d of another key":     {with(p256, func(j *keyops.JWK) { j.D = otherD }), "does not match"},
		"EC P-384 point on P-256": {with(p384, func(j *keyops.JWK) { j.Crv = "P-256" }), "too long"},
		"EC d zero":               {with(p256, func(j *keyops.JWK) { j.D = b64(make([]byte, 32)) }), "out of range"},
		"EC d = order":            {with(p256, func(j *keyops.JWK) { j.D = b64(elliptic.P256().Params().N.Bytes()) }), "out of range"},
		"EC unknown curve":        {with(p256, func(j *keyops.JWK) { j.Crv = "P-224" }), "unsupported curve"},
		"EC curve missing":        {with(p256, func(j *keyops.JWK) { j.Crv = "" }), "crv is missing"},
		"EC missing d":            {with(p256, func(j *keyops.JWK) { j.D = "" }), "member d is missing"},
		"EC missing x":            {with(p256, func(j *keyops.JWK) { j.X = "" }), "member x is missing"},
		"EC with n":               {with(p256, func(j *keyops.JWK) { j.N = rsaJWK.N }), "member n does not belong"},
		"oct 15 bytes":            {keyops.JWK{Kty: "oct", K: b64(make([]byte, 15))}, "16, 24 or 32"},
		"oct 64 bytes":            {keyops.JWK{Kty: "oct-HSM", K: b64(make([]byte, 64))}, "16, 24 or 32"},
		"oct missing k":           {keyops.JWK{Kty: "oct"}, "member k is missing"},
		"oct empty padded k":      {keyops.JWK{Kty: "oct", K: "=="}, "member k is empty"},
		"oct with d":              {keyops.JWK{Kty: "oct", K: b64(make([]byte, 16)), D: "AA"}, "member d does not belong"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k, err := keyops.ImportJWK(tc.jwk)
			if err == nil || k != nil {
				t.Fatalf("ImportJWK = %v, %v; want an error", k, err)
			}
			if !errors.Is(err, keyops.ErrInvalidKey) {
				t.Fatalf("error %q does not wrap ErrInvalidKey", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			// The message never echoes key material.
			for _, v := range []string{tc.jwk.N, tc.jwk.D, tc.jwk.P, tc.jwk.Q, tc.jwk.DP, tc.jwk.DQ, tc.jwk.QI, tc.jwk.K, tc.jwk.X, tc.jwk.Y, tc.jwk.KeyHSM} {
				if len(v) >= 4 && strings.Contains(err.Error(), v) {
					t.Fatalf("error %q echoes a member value", err)
				}
			}
		})
	}
}

func with(j keyops.JWK, f func(*keyops.JWK)) keyops.JWK {
	f(&j)
	return j
}
