package securitydomain

import (
	"bytes"
	"testing"
)

// Vectors from spec §2.5 (the first is the Azure CLI / PowerShell self-test).
func TestKDFVectors(t *testing.T) {
	seq := make([]byte, 32)
	for i := range seq {
		seq[i] = byte(i)
	}
	tests := []struct {
		name    string
		key     []byte
		label   string
		context string
		bits    int
		want    string
	}{
		{"cli-self-test", bytes.Repeat([]byte{0x41}, 32), "label", "context", 256,
			"f0ca51f6308791404bf68b56024ee7c64d6c737716f81d47e1e68b5c4e399575"},
		{"hsm_backup", seq, "hsm_backup", "", 512,
			"2d34f55a1dd64e68d793ce19439e032e913bc2c83a99237a33c1bde888fb91da91626f37c72aaff2d718d3e7a37f0a39417a66839669da3c76fe4336aec9747c"},
		{"base_enclave_backup", seq, "base_enclave_backup", "", 512,
			"78be6b420dfb42efeb121abb53daebe68f7153b411a85a6eb209a14b608c78fa537366c5d7f0121a7bf9a1f387567393a638a4f679041629e1a11fd03b8dc74e"},
		{"partition_enclave_backup", seq, "partition_enclave_backup", "", 512,
			"79c6bafac278e74d8c05565c0859f5c4acd0a02904534042ce0a1f6db6cc0fe02b6c83cc3f428b50433412caf92dea7c5bd6fd885f1c77611f63ecffcf10a9e4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KDF(tc.key, tc.label, tc.context, tc.bits)
			if err != nil {
				t.Fatal(err)
			}
			if want := mustHex(t, tc.want); !bytes.Equal(got, want) {
				t.Errorf("KDF = %x, want %x", got, want)
			}
		})
	}
}

// The Azure vector's per-tag CEKs (expected.json) come from the same KDF.
func TestKDFAzureCEKs(t *testing.T) {
	e := loadExpected(t)
	master := mustHex(t, e.MasterKeyHex)
	for _, d := range e.EncData {
		got, err := KDF(master, d.Tag, "", 512)
		if err != nil {
			t.Fatal(err)
		}
		if want := mustHex(t, d.CEKHex); !bytes.Equal(got, want) {
			t.Errorf("%s: CEK = %x, want %x", d.Tag, got, want)
		}
	}
}

func TestKDFLengths(t *testing.T) {
	key := []byte("k")
	for _, bits := range []int{-8, 0, 7, 100, 520, 1024} {
		if out, err := KDF(key, "l", "c", bits); err == nil || out != nil {
			t.Errorf("KDF(bits=%d) = %x, %v; want nil, error", bits, out, err)
		}
	}
	for _, bits := range []int{8, 128, 256, 384, 512} {
		out, err := KDF(key, "l", "c", bits)
		if err != nil || len(out) != bits/8 {
			t.Errorf("KDF(bits=%d) = %d bytes, %v", bits, len(out), err)
		}
	}
	// L is part of the PRF input, so a shorter output is not a prefix of a
	// longer one.
	short, _ := KDF(key, "l", "c", 256)
	long, _ := KDF(key, "l", "c", 512)
	if bytes.Equal(short, long[:32]) {
		t.Error("KDF output does not depend on the requested length")
	}
}
