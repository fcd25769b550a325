package securitydomain

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

// The parser is tested in internal/crypto/pemkey; these tests check what
// ParsePrivateKeyPEM adds: RSA keys only, its own error sentinels, and DER
// input.
func TestParsePrivateKeyPEM(t *testing.T) {
	want := loadKey(t, "sd1.pem")
	data := readTestdata(t, "keys/sd1-pkcs8-aes256.pem")
	key, err := ParsePrivateKeyPEM(data, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equal(want) {
		t.Error("key differs from sd1.pem")
	}
	if k, err := ParsePrivateKeyPEM(data, []byte("wrong")); !errors.Is(err, ErrIncorrectPassword) || k != nil {
		t.Errorf("wrong password: %v", err)
	}
	if k, err := ParsePrivateKeyPEM(data, nil); !errors.Is(err, ErrPasswordRequired) || k != nil {
		t.Errorf("no password: %v", err)
	}
}

func TestParsePrivateKeyPEMRejects(t *testing.T) {
	sd1 := readAzure(t, "sd1.pem")
	der, _ := pem.Decode(sd1)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string][]byte{
		"ec key":        pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}),
		"ec key DER":    ecDER,
		"certificate":   readAzure(t, "sd1.cer"),
		"empty":         nil,
		"junk":          []byte("not a key"),
		"truncated DER": der.Bytes[:100],
		"bad PEM body":  []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			k, err := ParsePrivateKeyPEM(data, []byte("secret"))
			if err == nil || k != nil {
				t.Fatalf("ParsePrivateKeyPEM = %v; want error", err)
			}
			if !strings.HasPrefix(err.Error(), "securitydomain: ") {
				t.Errorf("err = %q, want the prefix securitydomain:", err)
			}
		})
	}
	// DER input (PKCS#8 and PKCS#1) and a file with a certificate before the
	// key all work.
	if k, err := ParsePrivateKeyPEM(der.Bytes, nil); err != nil || !k.Equal(loadKey(t, "sd1.pem")) {
		t.Errorf("DER PKCS#8: %v", err)
	}
	if k, err := ParsePrivateKeyPEM(x509.MarshalPKCS1PrivateKey(loadKey(t, "sd1.pem")), nil); err != nil || k == nil {
		t.Errorf("DER PKCS#1: %v", err)
	}
	combined := append(append([]byte{}, readAzure(t, "sd1.cer")...), sd1...)
	if k, err := ParsePrivateKeyPEM(combined, nil); err != nil || k == nil {
		t.Errorf("cert + key PEM: %v", err)
	}
}

func TestCertificatePEM(t *testing.T) {
	sdex := readAzure(t, "sdex.pem")
	c, err := ParseCertificatePEM(sdex)
	if err != nil {
		t.Fatal(err)
	}
	if c.Public.N.BitLen() != 4096 {
		t.Errorf("sdex.pem: %d bits", c.Public.N.BitLen())
	}
	// az init-recovery wrote sdex.pem: 65-character lines, no final newline.
	if got := CertificatePEM(c.DER); !bytes.Equal(got, sdex) {
		t.Errorf("CertificatePEM differs from sdex.pem:\n%s", got)
	}
	back, err := ParseCertificatePEM(CertificatePEM(c.DER))
	if err != nil || !bytes.Equal(back.DER, c.DER) {
		t.Errorf("round trip: %v", err)
	}
	// DER input.
	if d, err := ParseCertificatePEM(c.DER); err != nil || !bytes.Equal(d.DER, c.DER) {
		t.Errorf("DER input: %v", err)
	}
	for name, in := range map[string][]byte{
		"key only": readAzure(t, "sd1.pem"),
		"junk":     []byte("junk"),
		"empty":    nil,
	} {
		if c, err := ParseCertificatePEM(in); err == nil || c != nil {
			t.Errorf("%s: ParseCertificatePEM = %v; want error", name, err)
		}
	}
}
