package securitydomain

import (
	"bytes"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePrivateKeyPEM(t *testing.T) {
	want := loadKey(t, "sd1.pem")
	tests := map[string]struct {
		password string
	}{
		"sd1-pkcs8-aes256.pem":      {"secret"},
		"sd1-pkcs8-aes128-sha1.pem": {"secret"},
		"sd1-pkey-aes256.pem":       {"secret"},
		"sd1-legacy-aes256.pem":     {"secret"},
		"sd1-pkcs1.pem":             {""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data := readTestdata(t, filepath.Join("keys", name))
			key, err := ParsePrivateKeyPEM(data, []byte(tc.password))
			if err != nil {
				t.Fatal(err)
			}
			if !key.Equal(want) {
				t.Error("key differs from sd1.pem")
			}
			if tc.password == "" {
				return
			}
			if k, err := ParsePrivateKeyPEM(data, []byte("wrong")); !errors.Is(err, ErrIncorrectPassword) || k != nil {
				t.Errorf("wrong password: %v", err)
			}
			if k, err := ParsePrivateKeyPEM(data, nil); !errors.Is(err, ErrPasswordRequired) || k != nil {
				t.Errorf("no password: %v", err)
			}
		})
	}
}

// Many wrong passwords: CBC has no MAC, so some pass the padding check;
// they must still give ErrIncorrectPassword, never a key.
func TestParsePrivateKeyPEMManyWrongPasswords(t *testing.T) {
	for _, name := range []string{"sd1-pkcs8-aes128-sha1.pem", "sd1-legacy-aes256.pem"} {
		data := readTestdata(t, filepath.Join("keys", name))
		for i := range 300 {
			pw := []byte("wrong-" + strings.Repeat("x", i))
			if k, err := ParsePrivateKeyPEM(data, pw); !errors.Is(err, ErrIncorrectPassword) || k != nil {
				t.Fatalf("%s, password %d: %v", name, i, err)
			}
		}
	}
}

func TestParsePrivateKeyPEMRejects(t *testing.T) {
	sd1 := readAzure(t, "sd1.pem")
	der, _ := pem.Decode(sd1)
	tests := map[string][]byte{
		"pkcs8 3des":     readTestdata(t, "keys/sd1-pkcs8-des3.pem"),
		"pkcs8 pbes1":    readTestdata(t, "keys/sd1-pkcs8-pbes1.pem"),
		"ec key":         readTestdata(t, "keys/ec-pkcs8.pem"),
		"certificate":    readAzure(t, "sd1.cer"),
		"empty":          nil,
		"junk":           []byte("not a key"),
		"truncated DER":  der.Bytes[:100],
		"bad PEM body":   []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		"bad enc PEM":    []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
		"bad PKCS1 body": []byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if k, err := ParsePrivateKeyPEM(data, []byte("secret")); err == nil || k != nil {
				t.Errorf("ParsePrivateKeyPEM = %v; want error", err)
			}
		})
	}
	// DER input and a file with a certificate before the key both work.
	if k, err := ParsePrivateKeyPEM(der.Bytes, nil); err != nil || k == nil {
		t.Errorf("DER PKCS#8: %v", err)
	}
	combined := append(append([]byte{}, readAzure(t, "sd1.cer")...), sd1...)
	if k, err := ParsePrivateKeyPEM(combined, nil); err != nil || k == nil {
		t.Errorf("cert + key PEM: %v", err)
	}
}

func TestErrorsCarryNoSecrets(t *testing.T) {
	data := readTestdata(t, "keys/sd1-pkcs8-aes256.pem")
	_, err := ParsePrivateKeyPEM(data, []byte("hunter2-password"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v", err)
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
