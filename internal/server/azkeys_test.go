package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"tresor/internal/server/servertest"
)

// keySpec is one key type and size of the conformance matrix.
type keySpec struct {
	name  string
	kty   azkeys.KeyType // as requested; the answer is the -HSM type
	size  int32
	curve azkeys.CurveName
}

var keySpecs = []keySpec{
	{"rsa2048", azkeys.KeyTypeRSA, 2048, ""},
	{"rsa3072", azkeys.KeyTypeRSAHSM, 3072, ""},
	{"rsa4096", azkeys.KeyTypeRSAHSM, 4096, ""},
	{"p256", azkeys.KeyTypeEC, 0, azkeys.CurveNameP256},
	{"p256k", azkeys.KeyTypeECHSM, 0, azkeys.CurveNameP256K},
	{"p384", azkeys.KeyTypeECHSM, 0, azkeys.CurveNameP384},
	{"p521", azkeys.KeyTypeECHSM, 0, azkeys.CurveNameP521},
	{"aes128", azkeys.KeyTypeOct, 128, ""},
	{"aes192", azkeys.KeyTypeOctHSM, 192, ""},
	{"aes256", azkeys.KeyTypeOctHSM, 256, ""},
}

func hsmType(k azkeys.KeyType) azkeys.KeyType {
	switch k {
	case azkeys.KeyTypeRSA:
		return azkeys.KeyTypeRSAHSM
	case azkeys.KeyTypeEC:
		return azkeys.KeyTypeECHSM
	case azkeys.KeyTypeOct:
		return azkeys.KeyTypeOctHSM
	}
	return k
}

func digestFor(alg azkeys.SignatureAlgorithm, msg []byte) ([]byte, crypto.Hash) {
	var h hash.Hash
	var id crypto.Hash
	switch alg {
	case azkeys.SignatureAlgorithmRS256, azkeys.SignatureAlgorithmPS256, azkeys.SignatureAlgorithmES256, azkeys.SignatureAlgorithmES256K:
		h, id = sha256.New(), crypto.SHA256
	case azkeys.SignatureAlgorithmRS384, azkeys.SignatureAlgorithmPS384, azkeys.SignatureAlgorithmES384:
		h, id = sha512.New384(), crypto.SHA384
	default:
		h, id = sha512.New(), crypto.SHA512
	}
	h.Write(msg)
	return h.Sum(nil), id
}

func rsaPublic(t *testing.T, k *azkeys.JSONWebKey) *rsa.PublicKey {
	t.Helper()
	if k.N == nil || k.E == nil {
		t.Fatal("RSA key without n or e")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(k.N), E: int(new(big.Int).SetBytes(k.E).Int64())}
}

func ecPublic(t *testing.T, k *azkeys.JSONWebKey) *ecdsa.PublicKey {
	t.Helper()
	var c elliptic.Curve
	switch *k.Crv {
	case azkeys.CurveNameP256:
		c = elliptic.P256()
	case azkeys.CurveNameP384:
		c = elliptic.P384()
	case azkeys.CurveNameP521:
		c = elliptic.P521()
	default:
		return nil
	}
	//lint:ignore SA1019 the SDK gives the coordinates; the key is only used to verify
	return &ecdsa.PublicKey{Curve: c, X: new(big.Int).SetBytes(k.X), Y: new(big.Int).SetBytes(k.Y)}
}

func noPrivateParts(t *testing.T, k *azkeys.JSONWebKey) {
	t.Helper()
	for name, v := range map[string][]byte{"d": k.D, "p": k.P, "q": k.Q, "dp": k.DP, "dq": k.DQ, "qi": k.QI, "k": k.K, "t": k.T} {
		if len(v) > 0 {
			t.Fatalf("the key answer carries private part %s", name)
		}
	}
}

func httpStatus(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

func errCode(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// TestAzkeysConformance drives the key routes through the official Azure
// SDK for Go and checks the results independently.
func TestAzkeysConformance(t *testing.T) {
	s := servertest.Start(t)
	activeHSM(t, s, "conform")
	kc := sdkClient(t, s, "conform", s.ClientID, s.ClientSecret)
	ctx := context.Background()
	msg := []byte("the quick brown fox jumps over the lazy dog")

	created := map[string]azkeys.KeyBundle{}
	for _, spec := range keySpecs {
		params := azkeys.CreateKeyParameters{Kty: to.Ptr(spec.kty), Tags: map[string]*string{"spec": to.Ptr(spec.name)}}
		if spec.size != 0 {
			params.KeySize = to.Ptr(spec.size)
		}
		if spec.curve != "" {
			params.Curve = to.Ptr(spec.curve)
		}
		resp, err := kc.CreateKey(ctx, spec.name, params, nil)
		if fips140.Enabled() && spec.curve == azkeys.CurveNameP256K {
			// secp256k1 is not approved in FIPS 140-3 mode: a clear refusal.
			if httpStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "FIPS") {
				t.Fatalf("create %s in FIPS mode: %v", spec.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("create %s: %v", spec.name, err)
		}
		if *resp.Key.Kty != hsmType(spec.kty) {
			t.Fatalf("create %s: kty %s, want %s", spec.name, *resp.Key.Kty, hsmType(spec.kty))
		}
		noPrivateParts(t, resp.Key)
		got, err := kc.GetKey(ctx, spec.name, "", nil)
		if err != nil {
			t.Fatalf("get %s: %v", spec.name, err)
		}
		noPrivateParts(t, got.Key)
		if got.Key.KID.Version() != resp.Key.KID.Version() || *got.Tags["spec"] != spec.name {
			t.Fatalf("get %s: %s, tags %v", spec.name, *got.Key.KID, got.Tags)
		}
		if *got.Attributes.RecoveryLevel != "CustomizedRecoverable+Purgeable" || *got.Attributes.RecoverableDays != 7 {
			t.Fatalf("get %s: recovery %s/%d", spec.name, *got.Attributes.RecoveryLevel, *got.Attributes.RecoverableDays)
		}
		created[spec.name] = got.KeyBundle
	}
	if n := len(created["rsa3072"].Key.N) * 8; n != 3072 {
		t.Fatalf("rsa3072 modulus is %d bits", n)
	}

	t.Run("sign and verify", func(t *testing.T) {
		cases := map[string][]azkeys.SignatureAlgorithm{
			"rsa2048": {azkeys.SignatureAlgorithmRS256, azkeys.SignatureAlgorithmRS384, azkeys.SignatureAlgorithmRS512, azkeys.SignatureAlgorithmPS256, azkeys.SignatureAlgorithmPS384, azkeys.SignatureAlgorithmPS512},
			"rsa3072": {azkeys.SignatureAlgorithmRS256, azkeys.SignatureAlgorithmRS384, azkeys.SignatureAlgorithmRS512, azkeys.SignatureAlgorithmPS256, azkeys.SignatureAlgorithmPS384, azkeys.SignatureAlgorithmPS512},
			"rsa4096": {azkeys.SignatureAlgorithmRS256, azkeys.SignatureAlgorithmRS384, azkeys.SignatureAlgorithmRS512, azkeys.SignatureAlgorithmPS256, azkeys.SignatureAlgorithmPS384, azkeys.SignatureAlgorithmPS512},
			"p256":    {azkeys.SignatureAlgorithmES256},
			"p256k":   {azkeys.SignatureAlgorithmES256K},
			"p384":    {azkeys.SignatureAlgorithmES384},
			"p521":    {azkeys.SignatureAlgorithmES512},
		}
		for name, algs := range cases {
			if _, ok := created[name]; !ok {
				continue // not made in FIPS mode
			}
			for _, alg := range algs {
				t.Run(name+"/"+string(alg), func(t *testing.T) {
					digest, h := digestFor(alg, msg)
					sig, err := kc.Sign(ctx, name, "", azkeys.SignParameters{Algorithm: to.Ptr(alg), Value: digest}, nil)
					if err != nil {
						t.Fatal(err)
					}
					key := created[name].Key
					switch {
					case strings.HasPrefix(string(alg), "RS"):
						if err := rsa.VerifyPKCS1v15(rsaPublic(t, key), h, digest, sig.Result); err != nil {
							t.Fatalf("signature does not verify locally: %v", err)
						}
					case strings.HasPrefix(string(alg), "PS"):
						if err := rsa.VerifyPSS(rsaPublic(t, key), h, digest, sig.Result, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}); err != nil {
							t.Fatalf("signature does not verify locally: %v", err)
						}
					default:
						if pub := ecPublic(t, key); pub != nil {
							half := len(sig.Result) / 2
							r, s := new(big.Int).SetBytes(sig.Result[:half]), new(big.Int).SetBytes(sig.Result[half:])
							if !ecdsa.Verify(pub, digest, r, s) {
								t.Fatal("signature does not verify locally")
							}
						}
					}
					v, err := kc.Verify(ctx, name, "", azkeys.VerifyParameters{Algorithm: to.Ptr(alg), Digest: digest, Signature: sig.Result}, nil)
					if err != nil || !*v.Value {
						t.Fatalf("verify through the API: %v %v", err, v.Value)
					}
					bad := bytes.Clone(sig.Result)
					bad[len(bad)/3] ^= 1
					v, err = kc.Verify(ctx, name, "", azkeys.VerifyParameters{Algorithm: to.Ptr(alg), Digest: digest, Signature: bad}, nil)
					if err != nil || *v.Value {
						t.Fatalf("a damaged signature verified: %v %v", err, v.Value)
					}
				})
			}
		}
	})

	t.Run("RSA encrypt locally, decrypt and unwrap through the API", func(t *testing.T) {
		secret := []byte("0123456789abcdef0123456789abcdef")
		for _, name := range []string{"rsa2048", "rsa3072", "rsa4096"} {
			pub := rsaPublic(t, created[name].Key)
			for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmRSA15, azkeys.EncryptionAlgorithmRSAOAEP, azkeys.EncryptionAlgorithmRSAOAEP256} {
				t.Run(name+"/"+string(alg), func(t *testing.T) {
					if fips140.Enabled() && alg != azkeys.EncryptionAlgorithmRSAOAEP256 {
						// Not approved in FIPS 140-3 mode: a clear refusal.
						_, err := kc.Encrypt(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: secret}, nil)
						if httpStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "FIPS") {
							t.Fatalf("%s in FIPS mode: %v", alg, err)
						}
						return
					}
					var ct []byte
					var err error
					switch alg {
					case azkeys.EncryptionAlgorithmRSA15:
						//lint:ignore SA1019 RSA1_5 is an algorithm of the Key Vault API
						ct, err = rsa.EncryptPKCS1v15(rand.Reader, pub, secret)
					case azkeys.EncryptionAlgorithmRSAOAEP:
						ct, err = rsa.EncryptOAEP(crypto.SHA1.New(), rand.Reader, pub, secret, nil)
					default:
						ct, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, secret, nil)
					}
					if err != nil {
						t.Fatal(err)
					}
					dec, err := kc.Decrypt(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: ct}, nil)
					if err != nil || !bytes.Equal(dec.Result, secret) {
						t.Fatalf("decrypt: %v", err)
					}
					un, err := kc.UnwrapKey(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: ct}, nil)
					if err != nil || !bytes.Equal(un.Result, secret) {
						t.Fatalf("unwrap: %v", err)
					}
					// And the other way: the API encrypts, the API decrypts.
					enc, err := kc.Encrypt(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: secret}, nil)
					if err != nil {
						t.Fatal(err)
					}
					dec, err = kc.Decrypt(ctx, name, enc.KID.Version(), azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: enc.Result}, nil)
					if err != nil || !bytes.Equal(dec.Result, secret) {
						t.Fatalf("decrypt of the API's ciphertext: %v", err)
					}
				})
			}
		}
	})

	t.Run("AES with imported keys matches local computation", func(t *testing.T) {
		for _, bits := range []int{128, 192, 256} {
			raw := make([]byte, bits/8)
			rand.Read(raw)
			name := fmt.Sprintf("imported-aes%d", bits)
			imp, err := kc.ImportKey(ctx, name, azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{
				Kty: to.Ptr(azkeys.KeyTypeOctHSM), K: raw,
				KeyOps: to.SliceOfPtrs(azkeys.KeyOperationEncrypt, azkeys.KeyOperationDecrypt, azkeys.KeyOperationWrapKey, azkeys.KeyOperationUnwrapKey),
			}}, nil)
			if err != nil {
				t.Fatalf("import %s: %v", name, err)
			}
			noPrivateParts(t, imp.Key)
			block, _ := aes.NewCipher(raw)
			pt := []byte("sixteen byte msg and more: 32 b.")
			aad := []byte("context")

			gcmAlg := azkeys.EncryptionAlgorithm(fmt.Sprintf("A%dGCM", bits))
			enc, err := kc.Encrypt(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(gcmAlg), Value: pt, AdditionalAuthenticatedData: aad}, nil)
			if err != nil {
				t.Fatalf("%s: %v", gcmAlg, err)
			}
			gcm, _ := cipher.NewGCM(block)
			local, err := gcm.Open(nil, enc.IV, append(bytes.Clone(enc.Result), enc.AuthenticationTag...), aad)
			if err != nil || !bytes.Equal(local, pt) {
				t.Fatalf("%s: the API's ciphertext does not open locally: %v", gcmAlg, err)
			}
			dec, err := kc.Decrypt(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(gcmAlg), Value: enc.Result, IV: enc.IV, AuthenticationTag: enc.AuthenticationTag, AdditionalAuthenticatedData: aad}, nil)
			if err != nil || !bytes.Equal(dec.Result, pt) {
				t.Fatalf("%s decrypt: %v", gcmAlg, err)
			}

			iv := make([]byte, 16)
			rand.Read(iv)
			cbcAlg := azkeys.EncryptionAlgorithm(fmt.Sprintf("A%dCBC", bits))
			enc, err = kc.Encrypt(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(cbcAlg), Value: pt, IV: iv}, nil)
			if err != nil {
				t.Fatalf("%s: %v", cbcAlg, err)
			}
			want := make([]byte, len(pt))
			cipher.NewCBCEncrypter(block, iv).CryptBlocks(want, pt)
			if !bytes.Equal(enc.Result, want) {
				t.Fatalf("%s differs from the local computation", cbcAlg)
			}
			padAlg := azkeys.EncryptionAlgorithm(fmt.Sprintf("A%dCBCPAD", bits))
			odd := []byte("not a multiple of sixteen")
			enc, err = kc.Encrypt(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(padAlg), Value: odd, IV: iv}, nil)
			if err != nil {
				t.Fatalf("%s: %v", padAlg, err)
			}
			padded := append(bytes.Clone(odd), bytes.Repeat([]byte{byte(16 - len(odd)%16)}, 16-len(odd)%16)...)
			want = make([]byte, len(padded))
			cipher.NewCBCEncrypter(block, iv).CryptBlocks(want, padded)
			if !bytes.Equal(enc.Result, want) {
				t.Fatalf("%s differs from the local computation", padAlg)
			}
			dec, err = kc.Decrypt(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(padAlg), Value: enc.Result, IV: iv}, nil)
			if err != nil || !bytes.Equal(dec.Result, odd) {
				t.Fatalf("%s decrypt: %v", padAlg, err)
			}

			kwAlg := azkeys.EncryptionAlgorithm(fmt.Sprintf("A%dKW", bits))
			cek := make([]byte, 32)
			rand.Read(cek)
			wr, err := kc.WrapKey(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(kwAlg), Value: cek}, nil)
			if err != nil || len(wr.Result) != 40 {
				t.Fatalf("%s: %v", kwAlg, err)
			}
			un, err := kc.UnwrapKey(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(kwAlg), Value: wr.Result}, nil)
			if err != nil || !bytes.Equal(un.Result, cek) {
				t.Fatalf("%s unwrap: %v", kwAlg, err)
			}
		}
		// RFC 3394 §4.1 through the API: the KEK 000102…0F wraps 00112233…FF.
		kek, _ := hex.DecodeString("000102030405060708090A0B0C0D0E0F")
		data, _ := hex.DecodeString("00112233445566778899AABBCCDDEEFF")
		want, _ := hex.DecodeString("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5")
		if _, err := kc.ImportKey(ctx, "rfc3394", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeOctHSM), K: kek}}, nil); err != nil {
			t.Fatal(err)
		}
		wr, err := kc.WrapKey(ctx, "rfc3394", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA128KW), Value: data}, nil)
		if err != nil || !bytes.Equal(wr.Result, want) {
			t.Fatalf("RFC 3394 vector: %x, %v", wr.Result, err)
		}
	})

	t.Run("import RSA and EC", func(t *testing.T) {
		rk, _ := rsa.GenerateKey(rand.Reader, 2048)
		jwk := &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), N: rk.N.Bytes(), E: big.NewInt(int64(rk.E)).Bytes(), D: rk.D.Bytes(),
			P: rk.Primes[0].Bytes(), Q: rk.Primes[1].Bytes(), DP: rk.Precomputed.Dp.Bytes(), DQ: rk.Precomputed.Dq.Bytes(), QI: rk.Precomputed.Qinv.Bytes()}
		imp, err := kc.ImportKey(ctx, "imported-rsa", azkeys.ImportKeyParameters{Key: jwk}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if *imp.Key.Kty != azkeys.KeyTypeRSAHSM || !bytes.Equal(imp.Key.N, rk.N.Bytes()) {
			t.Fatal("imported RSA key differs")
		}
		digest, _ := digestFor(azkeys.SignatureAlgorithmPS256, msg)
		sig, err := kc.Sign(ctx, "imported-rsa", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest}, nil)
		if err != nil || rsa.VerifyPSS(&rk.PublicKey, crypto.SHA256, digest, sig.Result, nil) != nil {
			t.Fatalf("sign with imported key: %v", err)
		}
		// Inconsistent private parts are refused, and nothing is stored.
		other, _ := rsa.GenerateKey(rand.Reader, 2048)
		bad := *jwk
		bad.D = other.D.Bytes()
		_, err = kc.ImportKey(ctx, "inconsistent", azkeys.ImportKeyParameters{Key: &bad}, nil)
		if httpStatus(err) != 400 {
			t.Fatalf("inconsistent RSA import: %v", err)
		}
		if _, err := kc.GetKey(ctx, "inconsistent", "", nil); httpStatus(err) != 404 {
			t.Fatalf("a refused import left a key: %v", err)
		}
		ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		ekPub, _ := ek.PublicKey.Bytes() // 0x04 || X || Y
		ekD, _ := ek.Bytes()
		ecJWK := &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP384), X: ekPub[1:49], Y: ekPub[49:97], D: ekD}
		if _, err := kc.ImportKey(ctx, "imported-ec", azkeys.ImportKeyParameters{Key: ecJWK}, nil); err != nil {
			t.Fatal(err)
		}
		digest, _ = digestFor(azkeys.SignatureAlgorithmES384, msg)
		sig, err = kc.Sign(ctx, "imported-ec", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES384), Value: digest}, nil)
		if err != nil || !ecdsa.Verify(&ek.PublicKey, digest, new(big.Int).SetBytes(sig.Result[:48]), new(big.Int).SetBytes(sig.Result[48:])) {
			t.Fatalf("sign with imported EC key: %v", err)
		}
	})

	t.Run("versions, attributes, tags, rotation", func(t *testing.T) {
		first, err := kc.CreateKey(ctx, "versioned", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM), Curve: to.Ptr(azkeys.CurveNameP256)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		second, err := kc.CreateKey(ctx, "versioned", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM), Curve: to.Ptr(azkeys.CurveNameP256)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if first.Key.KID.Version() == second.Key.KID.Version() {
			t.Fatal("a second create did not make a new version")
		}
		rot, err := kc.RotateKey(ctx, "versioned", nil)
		if err != nil {
			t.Fatal(err)
		}
		var versions []string
		pager := kc.NewListKeyPropertiesVersionsPager("versioned", nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page.Value {
				versions = append(versions, p.KID.Version())
			}
		}
		if len(versions) != 3 {
			t.Fatalf("versions %v", versions)
		}
		latest, _ := kc.GetKey(ctx, "versioned", "", nil)
		if latest.Key.KID.Version() != rot.Key.KID.Version() {
			t.Fatal("the rotated version is not the current one")
		}
		// Update an older version: disable it, tag it, restrict key_ops.
		upd, err := kc.UpdateKey(ctx, "versioned", first.Key.KID.Version(), azkeys.UpdateKeyParameters{
			KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)},
			Tags:          map[string]*string{"state": to.Ptr("retired")},
		}, nil)
		if err != nil || *upd.Attributes.Enabled || *upd.Tags["state"] != "retired" {
			t.Fatalf("update: %v", err)
		}
		digest, _ := digestFor(azkeys.SignatureAlgorithmES256, msg)
		_, err = kc.Sign(ctx, "versioned", first.Key.KID.Version(), azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest}, nil)
		if httpStatus(err) != http.StatusForbidden {
			t.Fatalf("sign with a disabled version: %v", err)
		}
		if _, err := kc.Sign(ctx, "versioned", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest}, nil); err != nil {
			t.Fatalf("the current version should still sign: %v", err)
		}
		_, err = kc.UpdateKey(ctx, "versioned", "", azkeys.UpdateKeyParameters{KeyOps: to.SliceOfPtrs(azkeys.KeyOperationVerify)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = kc.Sign(ctx, "versioned", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest}, nil)
		if httpStatus(err) != http.StatusForbidden {
			t.Fatalf("sign outside key_ops: %v", err)
		}
		// Expired and not-yet-valid keys.
		past := time.Now().Add(-time.Hour)
		future := time.Now().Add(time.Hour)
		for name, at := range map[string]*azkeys.KeyAttributes{"expired": {Expires: &past}, "early": {NotBefore: &future}} {
			if _, err := kc.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM), KeyAttributes: at}, nil); err != nil {
				t.Fatal(err)
			}
			_, err := kc.Sign(ctx, name, "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest}, nil)
			if httpStatus(err) != http.StatusForbidden {
				t.Fatalf("sign with %s key: %v", name, err)
			}
		}
		// Rotation policy.
		pol, err := kc.GetKeyRotationPolicy(ctx, "versioned", nil)
		if err != nil || len(pol.LifetimeActions) == 0 {
			t.Fatalf("default policy: %v", err)
		}
		_, err = kc.UpdateKeyRotationPolicy(ctx, "versioned", azkeys.KeyRotationPolicy{
			Attributes:      &azkeys.KeyRotationPolicyAttributes{ExpiryTime: to.Ptr("P7D")},
			LifetimeActions: []*azkeys.LifetimeAction{{Action: &azkeys.LifetimeActionType{Type: to.Ptr(azkeys.KeyRotationPolicyActionRotate)}, Trigger: &azkeys.LifetimeActionTrigger{TimeAfterCreate: to.Ptr("P1D")}}},
		}, nil)
		if httpStatus(err) != 400 {
			t.Fatalf("a policy with expiryTime under 28 days: %v", err)
		}
		set, err := kc.UpdateKeyRotationPolicy(ctx, "versioned", azkeys.KeyRotationPolicy{
			Attributes: &azkeys.KeyRotationPolicyAttributes{ExpiryTime: to.Ptr("P90D")},
			LifetimeActions: []*azkeys.LifetimeAction{
				{Action: &azkeys.LifetimeActionType{Type: to.Ptr(azkeys.KeyRotationPolicyActionRotate)}, Trigger: &azkeys.LifetimeActionTrigger{TimeAfterCreate: to.Ptr("P30D")}},
			},
		}, nil)
		if err != nil || *set.Attributes.ExpiryTime != "P90D" {
			t.Fatalf("set policy: %v", err)
		}
		rot2, err := kc.RotateKey(ctx, "versioned", nil)
		if err != nil || rot2.Attributes.Expires == nil || time.Until(*rot2.Attributes.Expires) < 89*24*time.Hour {
			t.Fatalf("a rotated version takes its expiry from the policy: %v %v", err, rot2.Attributes.Expires)
		}
	})

	t.Run("list with paging", func(t *testing.T) {
		names := map[string]bool{}
		pager := kc.NewListKeyPropertiesPager(nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page.Value {
				names[p.KID.Name()] = true
			}
		}
		for _, spec := range keySpecs {
			if _, ok := created[spec.name]; ok && !names[spec.name] {
				t.Fatalf("list misses %s (%d keys listed)", spec.name, len(names))
			}
		}
		// Small pages through raw HTTP; nextLink is followed verbatim.
		c := newCall(t, s)
		tok := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
		next := s.HSMURL("conform") + "/keys?api-version=7.4&maxresults=4"
		seen := 0
		for pages := 0; next != ""; pages++ {
			code, _, body := c.do("GET", next, tok, nil)
			if code != 200 || pages > 20 {
				t.Fatalf("page: %d %s", code, body)
			}
			var page struct {
				Value    []any   `json:"value"`
				NextLink *string `json:"nextLink"`
			}
			mustJSON(t, body, &page)
			if len(page.Value) > 4 {
				t.Fatalf("a page of %d with maxresults=4", len(page.Value))
			}
			seen += len(page.Value)
			next = ""
			if page.NextLink != nil {
				next = *page.NextLink
			}
		}
		if seen != len(names) {
			t.Fatalf("paging saw %d keys, the SDK %d", seen, len(names))
		}
		// Versions page in creation order: every version exactly once.
		var made []string
		for range 7 {
			v, err := kc.CreateKey(ctx, "many-versions", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			made = append(made, v.Key.KID.Version())
		}
		var listed []string
		next = s.HSMURL("conform") + "/keys/many-versions/versions?api-version=7.4&maxresults=2"
		for pages := 0; next != ""; pages++ {
			code, _, body := c.do("GET", next, tok, nil)
			if code != 200 || pages > 10 {
				t.Fatalf("versions page: %d %s", code, body)
			}
			var page struct {
				Value []struct {
					Kid string `json:"kid"`
				} `json:"value"`
				NextLink *string `json:"nextLink"`
			}
			mustJSON(t, body, &page)
			for _, v := range page.Value {
				listed = append(listed, v.Kid[strings.LastIndex(v.Kid, "/")+1:])
			}
			next = ""
			if page.NextLink != nil {
				next = *page.NextLink
			}
		}
		if strings.Join(listed, ",") != strings.Join(made, ",") {
			t.Fatalf("versions paged as %v, made %v", listed, made)
		}
	})

	t.Run("soft delete, recover, purge", func(t *testing.T) {
		if _, err := kc.CreateKey(ctx, "doomed", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM)}, nil); err != nil {
			t.Fatal(err)
		}
		del, err := kc.DeleteKey(ctx, "doomed", nil)
		if err != nil || del.RecoveryID == nil || del.ScheduledPurgeDate.Sub(*del.DeletedDate) != 7*24*time.Hour {
			t.Fatalf("delete: %v", err)
		}
		if _, err := kc.GetKey(ctx, "doomed", "", nil); httpStatus(err) != 404 {
			t.Fatalf("get of a deleted key: %v", err)
		}
		if _, err := kc.CreateKey(ctx, "doomed", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM)}, nil); httpStatus(err) != 409 {
			t.Fatalf("reuse of a deleted name: %v", err)
		}
		found := false
		pager := kc.NewListDeletedKeyPropertiesPager(nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page.Value {
				found = found || p.KID.Name() == "doomed"
			}
		}
		if !found {
			t.Fatal("the deleted key is not listed")
		}
		if _, err := kc.GetDeletedKey(ctx, "doomed", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := kc.RecoverDeletedKey(ctx, "doomed", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := kc.GetKey(ctx, "doomed", "", nil); err != nil {
			t.Fatalf("get after recover: %v", err)
		}
		kc.DeleteKey(ctx, "doomed", nil)
		if _, err := kc.PurgeDeletedKey(ctx, "doomed", nil); err != nil {
			t.Fatalf("purge: %v", err)
		}
		if _, err := kc.GetDeletedKey(ctx, "doomed", nil); httpStatus(err) != 404 {
			t.Fatalf("get of a purged key: %v", err)
		}
		if _, err := kc.CreateKey(ctx, "doomed", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM)}, nil); err != nil {
			t.Fatalf("the name is free after purge: %v", err)
		}
	})

	t.Run("random bytes", func(t *testing.T) {
		rb, err := kc.GetRandomBytes(ctx, azkeys.GetRandomBytesParameters{Count: to.Ptr(int32(32))}, nil)
		if err != nil || len(rb.Value) != 32 {
			t.Fatalf("rng: %v", err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		digest256, _ := digestFor(azkeys.SignatureAlgorithmRS256, msg)
		tests := map[string]struct {
			call func() error
			want int
		}{
			"wrong digest length": {func() error {
				_, err := kc.Sign(ctx, "rsa2048", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS512), Value: digest256}, nil)
				return err
			}, 400},
			"unknown algorithm": {func() error {
				_, err := kc.Sign(ctx, "rsa2048", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithm("RS999")), Value: digest256}, nil)
				return err
			}, 400},
			"algorithm for another key type": {func() error {
				_, err := kc.Sign(ctx, "p256", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digest256}, nil)
				return err
			}, 400},
			"operation not in key_ops": {func() error {
				_, err := kc.Encrypt(ctx, "p256", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: []byte("x")}, nil)
				return err
			}, 403},
			"unknown version": {func() error {
				_, err := kc.GetKey(ctx, "rsa2048", "00000000000000000000000000000000", nil)
				return err
			}, 404},
			"unknown key": {func() error {
				_, err := kc.GetKey(ctx, "no-such-key", "", nil)
				return err
			}, 404},
			"bad kty": {func() error {
				_, err := kc.CreateKey(ctx, "badkty", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyType("DSA"))}, nil)
				return err
			}, 400},
			"bad RSA size": {func() error {
				_, err := kc.CreateKey(ctx, "badsize", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), KeySize: to.Ptr(int32(1024))}, nil)
				return err
			}, 400},
			"GCM tag mismatch": {func() error {
				_, err := kc.Decrypt(ctx, "aes256", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: []byte("0123456789abcdef"), IV: make([]byte, 12), AuthenticationTag: make([]byte, 16)}, nil)
				return err
			}, 400},
			"restore of garbage": {func() error {
				_, err := kc.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: []byte("not a backup")}, nil)
				return err
			}, 400},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				err := tc.call()
				if httpStatus(err) != tc.want || errCode(err) == "" {
					t.Fatalf("got %v, want status %d with an Azure error code", err, tc.want)
				}
			})
		}
		// Raw requests the SDK cannot send.
		c := newCall(t, s)
		tok := s.Token(t, s.ClientID, s.ClientSecret, s.HSMResource())
		base := s.HSMURL("conform")
		code, _, body := c.do("POST", base+"/keys/rsa2048/sign?api-version=7.4", tok, `{"alg":"RS256","value":"***not base64url***"}`)
		wantError(t, code, body, 400, "BadParameter")
		code, _, body = c.do("POST", base+"/keys/rsa2048/sign?api-version=7.4", tok, `{"alg":"RS256","value":"`+strings.Repeat("A", 300<<10)+`"}`)
		wantError(t, code, body, http.StatusRequestEntityTooLarge, "")
		code, _, body = c.do("POST", base+"/keys/newkey/create?api-version=7.4", tok, `{"kty":"RSA","key_size":"big"}`)
		wantError(t, code, body, 400, "BadParameter")
		code, _, body = c.do("POST", base+"/keys/bad_name!/create?api-version=7.4", tok, `{"kty":"RSA"}`)
		wantError(t, code, body, 400, "BadParameter")
		// None of these left a key behind.
		for _, n := range []string{"badkty", "badsize", "newkey"} {
			if _, err := kc.GetKey(ctx, n, "", nil); httpStatus(err) != 404 {
				t.Fatalf("a refused request stored %s: %v", n, err)
			}
		}
	})
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := jsonUnmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}
