package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"testing"

	"tresor/internal/barrier"
)

// TestBackupFormatV1Compatible: a single-key backup sealed the way format v1
// was first written (AES-256-GCM under HKDF label tresor/key-backup/v1,
// additional data format ‖ NUL ‖ root id) still opens, and a backup sealed
// now opens the same way (the barrier of purpose KeyBackup is byte for byte
// that envelope).
func TestBackupFormatV1Compatible(t *testing.T) {
	root, err := barrier.NewRootKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := backupPayload{Name: "k1", Record: keyRecord{Name: "k1", Versions: []string{"v1"}, Current: "v1"},
		Versions: []versionRecord{{Version: "v1", Material: []byte{1, 2, 3}, Enabled: true}}}
	pt, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	k, err := root.Derive("tresor/key-backup/v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(k)
	aead, _ := cipher.NewGCM(block)
	env := backupEnvelope{Format: backupFormat, RootID: root.ID(), Nonce: make([]byte, 12)}
	_, _ = rand.Read(env.Nonce)
	aad := []byte(backupFormat + "\x00" + env.RootID)
	env.Ciphertext = aead.Seal(nil, env.Nonce, pt, aad)
	old, _ := json.Marshal(env)
	if got, err := openBackup(root, old); err != nil || got.Name != "k1" {
		t.Fatalf("open a v1 backup sealed by hand = %+v, %v", got, err)
	}

	blob, err := sealBackup(root, p)
	if err != nil {
		t.Fatal(err)
	}
	var now backupEnvelope
	if err := json.Unmarshal(blob, &now); err != nil {
		t.Fatal(err)
	}
	if _, err := aead.Open(nil, now.Nonce, now.Ciphertext, aad); err != nil {
		t.Fatalf("a backup sealed now does not open as format v1: %v", err)
	}
}
