package keyops

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// SelfTest runs known-answer tests of the constructions this package adds to
// the Go Cryptographic Module (which tests its own primitives when it
// starts): AES key wrap, AES-CBC with and without padding, AES-GCM with a
// separate IV and tag, the r||s encoding of ECDSA signatures, and secp256k1
// (skipped in FIPS 140-3 mode, where it is refused). A server should call it
// once at startup and refuse to serve if it fails. It returns nil or an error
// naming the failed test.
func SelfTest() error {
	for _, t := range selfTests {
		if err := t.run(); err != nil {
			return fmt.Errorf("keyops: self-test %s failed: %w", t.name, err)
		}
	}
	return nil
}

var errKAT = errors.New("wrong answer")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

var selfTests = []struct {
	name string
	run  func() error
}{
	{"AES-KW (RFC 3394 §4.1)", func() error {
		k := &Key{kty: Oct, oct: mustHex("000102030405060708090a0b0c0d0e0f")}
		pt := mustHex("00112233445566778899aabbccddeeff")
		want := mustHex("1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5")
		got, err := k.WrapKey("A128KW", pt, nil)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return errKAT
		}
		back, err := k.UnwrapKey("A128KW", want)
		if err != nil {
			return err
		}
		if !bytes.Equal(back, pt) {
			return errKAT
		}
		return nil
	}},
	{"AES-CBC and AES-CBCPAD (SP 800-38A F.2.1)", func() error {
		k := &Key{kty: Oct, oct: mustHex("2b7e151628aed2a6abf7158809cf4f3c")}
		iv := mustHex("000102030405060708090a0b0c0d0e0f")
		pt := mustHex("6bc1bee22e409f96e93d7e117393172a")
		want := mustHex("7649abac8119b246cee98e9b12e9197d")
		for _, alg := range []string{"A128CBC", "A128CBCPAD"} {
			res, err := k.Encrypt(alg, EncryptParams{Plaintext: pt, IV: iv}, nil)
			if err != nil {
				return err
			}
			if !bytes.Equal(res.Ciphertext[:16], want) {
				return errKAT
			}
			if alg == "A128CBCPAD" && len(res.Ciphertext) != 32 {
				return errKAT
			}
			back, err := k.Decrypt(alg, DecryptParams{Ciphertext: res.Ciphertext, IV: iv})
			if err != nil {
				return err
			}
			if !bytes.Equal(back, pt) {
				return errKAT
			}
		}
		return nil
	}},
	{"AES-GCM decryption (Wycheproof aes_gcm tcId 1)", func() error {
		k := &Key{kty: Oct, oct: mustHex("5b9604fe14eadba931b0ccf34843dab9")}
		p := DecryptParams{
			IV:         mustHex("028318abc1824029138141a2"),
			Ciphertext: mustHex("26073cc1d851beff176384dc9896d5ff"),
			Tag:        mustHex("0a3ea7a5487cb5f7d70fb6c58d038554"),
		}
		got, err := k.Decrypt("A128GCM", p)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, mustHex("001d0c231287c1182784554ca3a21908")) {
			return errKAT
		}
		p.Tag = bytes.Clone(p.Tag)
		p.Tag[0] ^= 1
		if _, err := k.Decrypt("A128GCM", p); err != ErrDecrypt {
			return errKAT
		}
		return nil
	}},
	{"ES256 verification (Wycheproof ecdsa_secp256r1_sha256_p1363 tcId 1)", func() error {
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), mustHex(
			"042927b10512bae3eddcfe467828128bad2903269919f7086069c8c4df6c732838c7787964eaac00e5921fb1498a60f4606766b3d9685001558d1a974e7341513e"))
		if err != nil {
			return err
		}
		return checkVerifyKAT("ES256", pub, mustHex(
			"2ba3a8be6b94d5ec80a6d9d1190a436effe50d85a1eee859b8cc6af9bd5c2e184cd60b855d442f5b3c7b11eb6c4e0ae7525fe710fab9aa7c77a67f79e6fadd76"))
	}},
	{"ES256K verification (Wycheproof ecdsa_secp256k1_sha256_p1363 tcId 1)", func() error {
		if fips140.Enabled() {
			return nil // refused in FIPS 140-3 mode
		}
		pub, err := secp256k1.ParsePubKey(mustHex(
			"04b838ff44e5bc177bf21189d0766082fc9d843226887fc9760371100b7ee20a6ff0c9d75bfba7b31a6bca1974496eeb56de357071955d83c4b1badaa0b21832e9"))
		if err != nil {
			return err
		}
		return checkVerifyKAT("ES256K", pub, mustHex(
			"813ef79ccefa9a56f7ba805f0e478584fe5f0dd5f567bc09b5123ccbc9832365900e75ad233fcc908509dbff5922647db37c21f4afd3203ae8dc4ae7794b0f87"))
	}},
}

// checkVerifyKAT checks that sig verifies over SHA-256("123400") and that a
// modified signature does not.
func checkVerifyKAT(alg string, pub any, sig []byte) error {
	digest := mustHex("bb5a52f42f9c9261ed4361f59422a1e30036e7c32b270c8807a419feca605023")
	a := signAlgs[alg]
	if !verifyWith(a, pub, digest, sig) {
		return errKAT
	}
	bad := bytes.Clone(sig)
	bad[len(bad)-1] ^= 1
	if verifyWith(a, pub, digest, bad) {
		return errKAT
	}
	return nil
}
