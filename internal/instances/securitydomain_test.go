package instances

import (
	"crypto/rand"
	"crypto/rsa"
	"os"
	"strings"
	"testing"

	"tresor/internal/securitydomain"
)

// TestOpenUploadOfAzureBlob runs the server's upload path on a blob that the
// real Azure CLI built: it must open (decrypt and authenticate) with the
// exchange key, and then be refused only because its blobs are Azure's own
// format, not a Tresor security domain.
func TestOpenUploadOfAzureBlob(t *testing.T) {
	blob, err := os.ReadFile("testdata/restore-blob.sd1-sd2.json")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := os.ReadFile("testdata/exchange.cer")
	keyPEM, _ := os.ReadFile("testdata/exchange.key")
	cert, err := securitydomain.ParseCertificatePEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	key, err := securitydomain.ParsePrivateKeyPEM(keyPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{}
	_, err = s.openUpload(blob, cert.DER, key)
	if err == nil || !strings.Contains(err.Error(), "not a Tresor security domain") {
		t.Fatalf("openUpload of the Azure blob: %v, want it opened and refused as a foreign format", err)
	}
	// With another exchange key it does not open at all.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err == nil {
		_, err = s.openUpload(blob, cert.DER, other)
		if err == nil || strings.Contains(err.Error(), "not a Tresor security domain") {
			t.Fatalf("openUpload with a wrong private key: %v", err)
		}
	}
}
