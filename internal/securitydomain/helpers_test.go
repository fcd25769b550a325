package securitydomain

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAzure(t testing.TB, name string) []byte {
	t.Helper()
	return readTestdata(t, filepath.Join("azure-security-domain", name))
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expected mirrors testdata/azure-security-domain/expected.json.
type expected struct {
	Version      int    `json:"version"`
	Required     int    `json:"required"`
	MasterKeyHex string `json:"master_key_hex"`
	Custodians   []struct {
		Cert              string `json:"cert"`
		PrivateKey        string `json:"private_key"`
		X5T256            string `json:"x5t_256"`
		EncSharesIndex    int    `json:"enc_shares_index"`
		ShamirX           int    `json:"shamir_x"`
		SharePlaintextHex string `json:"share_plaintext_hex"`
	} `json:"custodians"`
	EncData []struct {
		Tag        string `json:"tag"`
		CEKHex     string `json:"cek_hex"`
		Len        int    `json:"plaintext_len"`
		First64Hex string `json:"plaintext_first64_hex"`
		SHA256Hex  string `json:"plaintext_sha256"`
	} `json:"enc_data"`
	KeyBackup struct {
		File      string `json:"file"`
		JWEKid    string `json:"jwe_kid"`
		KeyHex    string `json:"key_hex"`
		Len       int    `json:"plaintext_len"`
		SHA256Hex string `json:"plaintext_sha256"`
	} `json:"key_backup"`
	Exchange struct {
		Cert          string `json:"cert"`
		PrivateKey    string `json:"private_key"`
		X5T256        string `json:"x5t_256"`
		AzRestoreBlob string `json:"az_restore_blob"`
	} `json:"exchange"`
}

func loadExpected(t testing.TB) *expected {
	t.Helper()
	var e expected
	if err := json.Unmarshal(readAzure(t, "expected.json"), &e); err != nil {
		t.Fatal(err)
	}
	return &e
}

func loadCert(t testing.TB, name string) *Certificate {
	t.Helper()
	c, err := ParseCertificatePEM(readAzure(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

func loadKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	k, err := ParsePrivateKeyPEM(readAzure(t, name), nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return k
}

// azureCustodian returns custodian n (1..3) of the Azure vector.
func azureCustodian(t testing.TB, n int) Custodian {
	t.Helper()
	return Custodian{Cert: loadCert(t, fmt.Sprintf("sd%d.cer", n)), Key: loadKey(t, fmt.Sprintf("sd%d.pem", n))}
}

// Generated RSA keys are cached across tests: key generation dominates the
// run time otherwise.
var (
	keyCacheMu sync.Mutex
	keyCache   = map[string]*rsa.PrivateKey{}
)

func cachedRSAKey(t testing.TB, name string, bits int) *rsa.PrivateKey {
	t.Helper()
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	id := fmt.Sprintf("%s/%d", name, bits)
	if k, ok := keyCache[id]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	keyCache[id] = k
	return k
}

// selfSigned makes a self-signed certificate DER for key.
func selfSigned(t testing.TB, cn string, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// genCustodian returns custodian i: a fresh self-signed certificate named
// custodian-i over cached key i. Custodians never share a key: a file
// refuses two certificates of one key.
func genCustodian(t testing.TB, i int) Custodian {
	t.Helper()
	key := cachedRSAKey(t, fmt.Sprintf("pool-%d", i), 2048)
	der := selfSigned(t, fmt.Sprintf("custodian-%d", i), key)
	c, err := ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return Custodian{Cert: c, Key: key}
}

func genECCertDER(t testing.TB) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return selfSigned(t, "ec", k)
}

// tresorBlobs are sample plaintexts under the three Tresor tags.
func tresorBlobs() []Blob {
	return []Blob{
		{Tag: TagHSMBackup, Data: []byte("hsm backup plaintext")},
		{Tag: TagBaseEnclaveBackup, Data: make([]byte, 100)},
		{Tag: TagPartitionEnclaveBackup, Data: []byte{}},
	}
}
