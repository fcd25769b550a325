package keyops

import (
	"crypto"
	"crypto/fips140"
	"fmt"
)

// KeyType is a Managed HSM key type. Every key of this package lives "in the
// HSM", so only the -HSM forms exist; [NormalizeKeyType] maps the plain Key
// Vault names to them.
type KeyType string

// The key types of a Managed HSM.
const (
	RSA KeyType = "RSA-HSM" // RSA, 2048, 3072 or 4096 bits
	EC  KeyType = "EC-HSM"  // ECDSA on P-256, P-256K, P-384 or P-521
	Oct KeyType = "oct-HSM" // AES, 128, 192 or 256 bits
)

// NormalizeKeyType maps a JSON Web Key "kty" value to its [KeyType]: "RSA"
// and "RSA-HSM" give [RSA], "EC" and "EC-HSM" give [EC], "oct" and "oct-HSM"
// give [Oct], as a Managed HSM does (it stores every key in the HSM). Any other
// value, in any other case, gives an error wrapping [ErrInvalidInput].
func NormalizeKeyType(kty string) (KeyType, error) {
	switch kty {
	case "RSA", "RSA-HSM":
		return RSA, nil
	case "EC", "EC-HSM":
		return EC, nil
	case "oct", "oct-HSM":
		return Oct, nil
	}
	return "", errorf(ErrInvalidInput, "unknown key type %s", quote(kty))
}

// Curve names, as Key Vault spells them.
const (
	CurveP256  = "P-256"
	CurveP256K = "P-256K" // secp256k1; not approved in FIPS 140-3 mode
	CurveP384  = "P-384"
	CurveP521  = "P-521"
)

type signKind int

const (
	kindPKCS1v15 signKind = iota + 1
	kindPSS
	kindECDSA
)

type signAlg struct {
	kind  signKind
	hash  crypto.Hash
	curve string // for ECDSA: the only curve the algorithm works with
	fips  bool   // approved in FIPS 140-3 mode
}

// signAlgs lists the signature algorithms by their Key Vault names.
var signAlgs = map[string]signAlg{
	"RS256":  {kindPKCS1v15, crypto.SHA256, "", true},
	"RS384":  {kindPKCS1v15, crypto.SHA384, "", true},
	"RS512":  {kindPKCS1v15, crypto.SHA512, "", true},
	"PS256":  {kindPSS, crypto.SHA256, "", true},
	"PS384":  {kindPSS, crypto.SHA384, "", true},
	"PS512":  {kindPSS, crypto.SHA512, "", true},
	"ES256":  {kindECDSA, crypto.SHA256, CurveP256, true},
	"ES256K": {kindECDSA, crypto.SHA256, CurveP256K, false},
	"ES384":  {kindECDSA, crypto.SHA384, CurveP384, true},
	"ES512":  {kindECDSA, crypto.SHA512, CurveP521, true},
}

type cipherKind int

const (
	cipherRSA15 cipherKind = iota + 1
	cipherOAEP
	cipherOAEP256
	cipherGCM
	cipherCBC
	cipherCBCPad
	cipherKW
)

type cipherAlg struct {
	kind     cipherKind
	keyBytes int  // AES: the key size the algorithm needs
	encrypt  bool // valid for Encrypt/Decrypt
	wrap     bool // valid for WrapKey/UnwrapKey
	fips     bool // approved in FIPS 140-3 mode
}

func (a cipherAlg) isRSA() bool {
	return a.kind == cipherRSA15 || a.kind == cipherOAEP || a.kind == cipherOAEP256
}

// cipherAlgs lists the encryption and key wrapping algorithms by their Key
// Vault names. As on a Managed HSM, AES keys encrypt with GCM and CBC and wrap
// with AES-KW only; RSA keys do both with the same paddings.
var cipherAlgs = map[string]cipherAlg{
	"RSA1_5":       {cipherRSA15, 0, true, true, false},
	"RSA-OAEP":     {cipherOAEP, 0, true, true, false},
	"RSA-OAEP-256": {cipherOAEP256, 0, true, true, true},
	"A128GCM":      {cipherGCM, 16, true, false, true},
	"A192GCM":      {cipherGCM, 24, true, false, true},
	"A256GCM":      {cipherGCM, 32, true, false, true},
	"A128CBC":      {cipherCBC, 16, true, false, true},
	"A192CBC":      {cipherCBC, 24, true, false, true},
	"A256CBC":      {cipherCBC, 32, true, false, true},
	"A128CBCPAD":   {cipherCBCPad, 16, true, false, true},
	"A192CBCPAD":   {cipherCBCPad, 24, true, false, true},
	"A256CBCPAD":   {cipherCBCPad, 32, true, false, true},
	"A128KW":       {cipherKW, 16, false, true, true},
	"A192KW":       {cipherKW, 24, false, true, true},
	"A256KW":       {cipherKW, 32, false, true, true},
}

// Algorithm lists per key type, in the order Algorithms returns them.
var (
	rsaSignAlgs   = []string{"PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}
	ecSignAlgs    = []string{"ES256", "ES256K", "ES384", "ES512"}
	rsaCipherAlgs = []string{"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"}
	aesEncAlgs    = []string{"A128GCM", "A192GCM", "A256GCM", "A128CBC", "A192CBC", "A256CBC", "A128CBCPAD", "A192CBCPAD", "A256CBCPAD"}
	aesWrapAlgs   = []string{"A128KW", "A192KW", "A256KW"}
)

// Algorithms returns the names of the signature, encryption and key
// wrapping algorithms that keys of type kty support, in Key Vault's
// spelling. Whether a given key accepts one also depends on its size or
// curve: ES384 needs a P-384 key, A256GCM a 256-bit AES key. When the process
// runs in FIPS 140-3 mode the algorithms refused with
// [ErrNotApprovedInFIPSMode] are left out. kty may be any form that
// [NormalizeKeyType] accepts; an unknown type gives three nil slices. The
// slices are fresh copies.
func Algorithms(kty KeyType) (sign, encrypt, wrap []string) {
	t, err := NormalizeKeyType(string(kty))
	if err != nil {
		return nil, nil, nil
	}
	switch t {
	case RSA:
		return approved(rsaSignAlgs), approved(rsaCipherAlgs), approved(rsaCipherAlgs)
	case EC:
		return approved(ecSignAlgs), nil, nil
	default:
		return nil, approved(aesEncAlgs), approved(aesWrapAlgs)
	}
}

// approved returns the names of algs usable in the current FIPS mode.
func approved(algs []string) []string {
	out := make([]string, 0, len(algs))
	for _, a := range algs {
		if !fips140.Enabled() || algApproved(a) {
			out = append(out, a)
		}
	}
	return out
}

func algApproved(name string) bool {
	if a, ok := signAlgs[name]; ok {
		return a.fips
	}
	if a, ok := cipherAlgs[name]; ok {
		return a.fips
	}
	return false
}

// DefaultKeyOps returns the key operations a Managed HSM grants a new key of
// type kty when the request names none: for RSA encrypt, decrypt, sign,
// verify, wrapKey and unwrapKey; for EC sign and verify; for oct encrypt,
// decrypt, wrapKey and unwrapKey. kty may be any form that
// [NormalizeKeyType] accepts; an unknown type gives nil. The slice is a fresh
// copy.
func DefaultKeyOps(kty KeyType) []string {
	t, err := NormalizeKeyType(string(kty))
	if err != nil {
		return nil
	}
	switch t {
	case RSA:
		return []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}
	case EC:
		return []string{"sign", "verify"}
	default:
		return []string{"encrypt", "decrypt", "wrapKey", "unwrapKey"}
	}
}

// requireFIPSApproved returns ErrNotApprovedInFIPSMode if the process runs in
// FIPS 140-3 mode and what is not approved.
func requireFIPSApproved(ok bool, what string) error {
	if !ok && fips140.Enabled() {
		return fmt.Errorf("%w: %s", ErrNotApprovedInFIPSMode, what)
	}
	return nil
}
