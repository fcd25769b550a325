package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestSigningKeyPKCS8RoundTrip(t *testing.T) {
	k, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := k.MarshalPKCS8()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParseSigningKey(der)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Equal(k2) || k.KeyID() != k2.KeyID() {
		t.Fatal("parsed key differs from the marshalled one")
	}
	if k.Equal(signingKey(t, 0)) {
		t.Fatal("Equal reports two different keys as equal")
	}
	if k.Equal(nil) {
		t.Fatal("Equal(nil) = true")
	}
}

func TestParseSigningKeyRejects(t *testing.T) {
	p384, err := x509.MarshalPKCS8PrivateKey(newECKey(t, elliptic.P384()))
	check(t, err)
	rsaDER, err := x509.MarshalPKCS8PrivateKey(rsaKey(t, 0))
	check(t, err)
	sec1, err := x509.MarshalECPrivateKey(newECKey(t, elliptic.P256()))
	check(t, err)

	tests := map[string][]byte{
		"nil":          nil,
		"garbage":      []byte("not a key"),
		"P-384":        p384,
		"RSA":          rsaDER,
		"SEC 1 not P8": sec1,
	}
	for name, der := range tests {
		t.Run(name, func(t *testing.T) {
			if k, err := ParseSigningKey(der); err == nil || k != nil {
				t.Fatalf("ParseSigningKey = %v, %v; want nil, error", k, err)
			}
		})
	}
}

// TestKeyIDIsThumbprint computes the RFC 7638 thumbprint by hand.
func TestKeyIDIsThumbprint(t *testing.T) {
	k := signingKey(t, 0)
	jwk := k.PublicJWK()
	raw, err := json.Marshal(jwk)
	check(t, err)
	var fields map[string]string
	check(t, json.Unmarshal(raw, &fields))
	// Members in lexicographic order, no whitespace (RFC 7638 §3).
	input := `{"crv":"P-256","kty":"EC","x":"` + fields["x"] + `","y":"` + fields["y"] + `"}`
	sum := sha256.Sum256([]byte(input))
	if got, want := k.KeyID(), b64(sum[:]); got != want {
		t.Fatalf("KeyID = %s, want %s", got, want)
	}
	if len(k.KeyID()) != 43 {
		t.Fatalf("KeyID length = %d, want 43", len(k.KeyID()))
	}
}

func TestPublicJWK(t *testing.T) {
	k := signingKey(t, 0)
	jwk := k.PublicJWK()
	if !jwk.IsPublic() || !jwk.Valid() {
		t.Fatal("PublicJWK is not a valid public key")
	}
	if jwk.KeyID != k.KeyID() || jwk.Algorithm != "ES256" || jwk.Use != "sig" {
		t.Fatalf("PublicJWK = kid %q alg %q use %q", jwk.KeyID, jwk.Algorithm, jwk.Use)
	}
	// A caller modifying the returned key must not change the signing key.
	pub := jwk.Key.(*ecdsa.PublicKey)
	*pub = ecdsa.PublicKey{}
	if k.PublicJWK().Key.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Fatal("PublicJWK returned a shared key")
	}
	raw, err := json.Marshal(k.PublicJWK())
	check(t, err)
	if strings.Contains(string(raw), `"d"`) {
		t.Fatalf("public JWK contains the private key: %s", raw)
	}
}

func TestSigningKeyDoesNotPrintSecret(t *testing.T) {
	k := signingKey(t, 0)
	der, err := k.MarshalPKCS8()
	check(t, err)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	check(t, err)
	d, err := parsed.(*ecdsa.PrivateKey).Bytes()
	check(t, err)
	secrets := []string{fmt.Sprintf("%x", d), fmt.Sprintf("%X", d), b64(d), fmt.Sprint(d)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, k)
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("%s prints the private key: %s", verb, out)
			}
		}
		if !strings.Contains(out, k.KeyID()) {
			t.Errorf("%s = %q, want it to name the key id", verb, out)
		}
	}
}
