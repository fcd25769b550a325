package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"tresor/internal/crypto/keyops"
	"tresor/internal/wire"
)

// KeysAPIVersion is the api-version of the requests a [Workload] describes.
const KeysAPIVersion = "7.5"

// Operations, in the order `tresor bench` runs them.
const (
	OpCreate  = "create"
	OpGet     = "get"
	OpSign    = "sign"
	OpVerify  = "verify"
	OpEncrypt = "encrypt"
	OpDecrypt = "decrypt"
	OpWrap    = "wrap"
	OpUnwrap  = "unwrap"
	// OpEmpty is the bare server's empty request (no body, no crypto, "{}"
	// back): the floor of what any HTTPS request costs with this client.
	OpEmpty = "empty"
)

// NewKeyPlaceholder is the part of a create workload's path that the
// sender replaces with a number unique to the call.
const NewKeyPlaceholder = "{n}"

// Ops are the operations a key can be measured with, in order.
var Ops = []string{OpCreate, OpGet, OpSign, OpVerify, OpEncrypt, OpDecrypt, OpWrap, OpUnwrap}

// KeySpec is a key type as `tresor bench --keys` names it, with the
// algorithm each operation uses.
type KeySpec struct {
	Name   string // e.g. "RSA-2048", "P-256", "AES-256-GCM"
	Kty    string // Key Vault key type: RSA-HSM, EC-HSM or oct-HSM
	Size   int    // bits (RSA, oct); 0 for EC
	Curve  string // EC curve; "" otherwise
	Sign   string // sign and verify algorithm; "" if the key cannot sign
	Cipher string // encrypt and decrypt algorithm; "" if none
	Wrap   string // wrap and unwrap algorithm; "" if none
	// Plaintext is the size in bytes of what encrypt encrypts.
	Plaintext int
}

// KeySpecs are the key types `tresor bench` knows, in order. AES keys come
// once per mode, since the mode is what costs: GCM and CBC for encrypt and
// decrypt of 1 KiB, KW for wrap and unwrap of a 256-bit key.
var KeySpecs = []KeySpec{
	{Name: "RSA-2048", Kty: "RSA-HSM", Size: 2048, Sign: "RS256", Cipher: "RSA-OAEP-256", Wrap: "RSA-OAEP-256", Plaintext: 32},
	{Name: "RSA-3072", Kty: "RSA-HSM", Size: 3072, Sign: "RS256", Cipher: "RSA-OAEP-256", Wrap: "RSA-OAEP-256", Plaintext: 32},
	{Name: "RSA-4096", Kty: "RSA-HSM", Size: 4096, Sign: "RS256", Cipher: "RSA-OAEP-256", Wrap: "RSA-OAEP-256", Plaintext: 32},
	{Name: "P-256", Kty: "EC-HSM", Curve: "P-256", Sign: "ES256"},
	{Name: "P-384", Kty: "EC-HSM", Curve: "P-384", Sign: "ES384"},
	{Name: "P-521", Kty: "EC-HSM", Curve: "P-521", Sign: "ES512"},
	{Name: "P-256K", Kty: "EC-HSM", Curve: "P-256K", Sign: "ES256K"},
	{Name: "AES-128-GCM", Kty: "oct-HSM", Size: 128, Cipher: "A128GCM", Plaintext: 1024},
	{Name: "AES-256-GCM", Kty: "oct-HSM", Size: 256, Cipher: "A256GCM", Plaintext: 1024},
	{Name: "AES-128-CBC", Kty: "oct-HSM", Size: 128, Cipher: "A128CBC", Plaintext: 1024},
	{Name: "AES-256-CBC", Kty: "oct-HSM", Size: 256, Cipher: "A256CBC", Plaintext: 1024},
	{Name: "AES-128-KW", Kty: "oct-HSM", Size: 128, Wrap: "A128KW"},
	{Name: "AES-256-KW", Kty: "oct-HSM", Size: 256, Wrap: "A256KW"},
}

// LookupKeySpec returns the spec called name (case-insensitive).
func LookupKeySpec(name string) (KeySpec, bool) {
	for _, s := range KeySpecs {
		if strings.EqualFold(s.Name, name) {
			return s, true
		}
	}
	return KeySpec{}, false
}

// Supports reports whether op applies to keys of this spec: create and get
// to all, sign and verify with a Sign algorithm, encrypt and decrypt with
// a Cipher, wrap and unwrap with a Wrap algorithm.
func (s KeySpec) Supports(op string) bool {
	switch op {
	case OpCreate, OpGet:
		return true
	case OpSign, OpVerify:
		return s.Sign != ""
	case OpEncrypt, OpDecrypt:
		return s.Cipher != ""
	case OpWrap, OpUnwrap:
		return s.Wrap != ""
	}
	return false
}

// Key is a key of one spec, made here so that the same key material can
// be imported into Tresor, served by the bare server and used in process.
type Key struct {
	Spec KeySpec
	k    *keyops.Key
	jwk  wire.JSONWebKey // with the private parts
}

// NewKey generates a key of spec s.
func NewKey(s KeySpec) (*Key, error) {
	var j wire.JSONWebKey
	switch {
	case strings.HasPrefix(s.Kty, "RSA"):
		k, err := rsa.GenerateKey(rand.Reader, s.Size)
		if err != nil {
			return nil, err
		}
		k.Precompute()
		i := func(x *big.Int) string { return b64(x.Bytes()) }
		j = wire.JSONWebKey{Kty: "RSA", N: i(k.N), E: i(big.NewInt(int64(k.E))), D: i(k.D),
			P: i(k.Primes[0]), Q: i(k.Primes[1]), DP: i(k.Precomputed.Dp), DQ: i(k.Precomputed.Dq), QI: i(k.Precomputed.Qinv)}
	case s.Curve == "P-256K":
		priv, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			return nil, err
		}
		pub := priv.PubKey().SerializeUncompressed()
		d := priv.Key.Bytes()
		j = wire.JSONWebKey{Kty: "EC", Crv: "P-256K", X: b64(pub[1:33]), Y: b64(pub[33:65]), D: b64(d[:])}
	case strings.HasPrefix(s.Kty, "EC"):
		curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
		c, ok := curves[s.Curve]
		if !ok {
			return nil, fmt.Errorf("bench: unknown curve %q", s.Curve)
		}
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			return nil, err
		}
		pub, err := k.PublicKey.Bytes()
		if err != nil {
			return nil, err
		}
		d, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		size := (len(pub) - 1) / 2
		j = wire.JSONWebKey{Kty: "EC", Crv: s.Curve, X: b64(pub[1 : 1+size]), Y: b64(pub[1+size:]), D: b64(d)}
	default:
		raw := make([]byte, s.Size/8)
		_, _ = rand.Read(raw)
		j = wire.JSONWebKey{Kty: "oct", K: b64(raw)}
	}
	return KeyFromJWK(s, j)
}

// KeyFromJWK makes a Key of spec s from a JWK with private parts (as
// [Key.JWK] returns it).
func KeyFromJWK(s KeySpec, j wire.JSONWebKey) (*Key, error) {
	k, err := keyops.ImportJWK(keyops.JWK{Kty: j.Kty, N: j.N, E: j.E, D: j.D, DP: j.DP, DQ: j.DQ, QI: j.QI,
		P: j.P, Q: j.Q, K: j.K, Crv: j.Crv, X: j.X, Y: j.Y})
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", s.Name, err)
	}
	return &Key{Spec: s, k: k, jwk: j}, nil
}

// JWK returns the key as a JWK with its private parts, for a key import.
// It is benchmark key material: whoever holds it holds the key.
func (k *Key) JWK() wire.JSONWebKey { return k.jwk }

// Workload is one operation on one key: the request to send to an HSM
// (Tresor's or the bare server's), the same operation in process, and
// the bare server's answer to the request.
type Workload struct {
	Key, Op string
	// Method and Path are the request's, Path relative to the HSM's base
	// URL and with the api-version (e.g. "/keys/b/sign?api-version=7.5").
	Method, Path string
	// Body is the JSON request body (nil for none).
	Body []byte
	key  *Key
	// inputs of the operation, prepared once
	digest, sig, plain, iv, cipher, tag, wrapped []byte
}

// Workload returns the workload of op on k, which a region holds under the
// key name name. Create makes a new key per call, named name+"-new-{n}":
// the sender replaces the "{n}" of the path ([NewKeyPlaceholder]) with a
// number unique to the call (a key holds at most 100 versions, so new
// versions of one key would not do).
func (k *Key) Workload(op, name string) (*Workload, error) {
	s := k.Spec
	if !s.Supports(op) {
		return nil, fmt.Errorf("bench: %s keys do not support %s", s.Name, op)
	}
	w := &Workload{Key: s.Name, Op: op, Method: "POST", key: k}
	path := func(suffix string) string {
		return "/keys/" + url.PathEscape(name) + suffix + "?api-version=" + KeysAPIVersion
	}
	var body any
	var err error
	switch op {
	case OpCreate:
		w.Path = path("-new-" + NewKeyPlaceholder + "/create")
		p := wire.KeyCreateParameters{Kty: s.Kty, Curve: s.Curve}
		if s.Size != 0 {
			size := s.Size
			p.KeySize = &size
		}
		body = p
	case OpGet:
		w.Method, w.Path = "GET", path("/")
	case OpSign, OpVerify:
		w.digest = digestFor(s.Sign)
		body = wire.KeySignParameters{Alg: s.Sign, Value: b64(w.digest)}
		w.Path = path("/sign")
		if op == OpVerify {
			if w.sig, err = k.k.Sign(s.Sign, w.digest, nil); err != nil {
				return nil, err
			}
			body = wire.KeyVerifyParameters{Alg: s.Sign, Digest: b64(w.digest), Value: b64(w.sig)}
			w.Path = path("/verify")
		}
	case OpEncrypt, OpDecrypt:
		w.plain = make([]byte, s.Plaintext)
		_, _ = rand.Read(w.plain)
		if strings.Contains(s.Cipher, "CBC") {
			w.iv = make([]byte, 16)
			_, _ = rand.Read(w.iv)
		}
		body = wire.KeyOperationsParameters{Alg: s.Cipher, Value: b64(w.plain), IV: b64(w.iv)}
		w.Path = path("/encrypt")
		if op == OpDecrypt {
			res, err := k.k.Encrypt(s.Cipher, keyops.EncryptParams{Plaintext: w.plain, IV: w.iv}, nil)
			if err != nil {
				return nil, err
			}
			w.cipher, w.iv, w.tag = res.Ciphertext, res.IV, res.Tag
			body = wire.KeyOperationsParameters{Alg: s.Cipher, Value: b64(w.cipher), IV: b64(w.iv), Tag: b64(w.tag)}
			w.Path = path("/decrypt")
		}
	case OpWrap, OpUnwrap:
		w.plain = make([]byte, 32)
		_, _ = rand.Read(w.plain)
		body = wire.KeyOperationsParameters{Alg: s.Wrap, Value: b64(w.plain)}
		w.Path = path("/wrapkey")
		if op == OpUnwrap {
			if w.wrapped, err = k.k.WrapKey(s.Wrap, w.plain, nil); err != nil {
				return nil, err
			}
			body = wire.KeyOperationsParameters{Alg: s.Wrap, Value: b64(w.wrapped)}
			w.Path = path("/unwrapkey")
		}
	}
	if body != nil {
		if w.Body, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// EmptyWorkload is [OpEmpty]: a GET the bare server answers with "{}".
func EmptyWorkload() *Workload {
	return &Workload{Key: "-", Op: OpEmpty, Method: "GET", Path: "/empty"}
}

// Local does the operation in process, with the key's own crypto (the
// crypto ceiling); get marshals the public key as the answer would.
func (w *Workload) Local() error {
	if w.Op == OpEmpty {
		return nil
	}
	k, s := w.key, w.key.Spec
	var err error
	switch w.Op {
	case OpCreate:
		_, err = keyops.Generate(keyops.GenerateOptions{Type: keyops.KeyType(s.Kty), Size: s.Size, Curve: s.Curve}, nil)
	case OpGet:
		_, err = json.Marshal(k.k.PublicJWK())
	case OpSign:
		_, err = k.k.Sign(s.Sign, w.digest, nil)
	case OpVerify:
		var ok bool
		if ok, err = k.k.Verify(s.Sign, w.digest, w.sig); err == nil && !ok {
			err = errors.New("bench: signature does not verify")
		}
	case OpEncrypt:
		_, err = k.k.Encrypt(s.Cipher, keyops.EncryptParams{Plaintext: w.plain, IV: w.iv}, nil)
	case OpDecrypt:
		_, err = k.k.Decrypt(s.Cipher, keyops.DecryptParams{Ciphertext: w.cipher, IV: w.iv, Tag: w.tag})
	case OpWrap:
		_, err = k.k.WrapKey(s.Wrap, w.plain, nil)
	case OpUnwrap:
		_, err = k.k.UnwrapKey(s.Wrap, w.wrapped)
	default:
		err = fmt.Errorf("bench: unknown operation %q", w.Op)
	}
	return err
}

// Serve is the bare server's answer to body, a request of this workload:
// it decodes the JSON as Tresor's wire types, does the operation and
// encodes the minimal answer (no kid, attributes or store). Errors mean
// a bad request.
func (w *Workload) Serve(body []byte) ([]byte, error) {
	k := w.key
	dec := func(field string, v string) ([]byte, error) {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
		if err != nil {
			return nil, fmt.Errorf("bad %s", field)
		}
		return b, nil
	}
	var out any
	switch w.Op {
	case OpEmpty:
		return []byte("{}"), nil
	case OpGet:
		out = map[string]any{"key": k.k.PublicJWK()}
	case OpCreate:
		var p wire.KeyCreateParameters
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, err
		}
		size := 0
		if p.KeySize != nil {
			size = *p.KeySize
		}
		nk, err := keyops.Generate(keyops.GenerateOptions{Type: keyops.KeyType(p.Kty), Size: size, Curve: p.Curve}, nil)
		if err != nil {
			return nil, err
		}
		out = map[string]any{"key": nk.PublicJWK()}
	case OpSign:
		var p wire.KeySignParameters
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, err
		}
		d, err := dec("value", p.Value)
		if err != nil {
			return nil, err
		}
		sig, err := k.k.Sign(p.Alg, d, nil)
		if err != nil {
			return nil, err
		}
		out = wire.KeyOperationResult{Value: b64(sig)}
	case OpVerify:
		var p wire.KeyVerifyParameters
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, err
		}
		d, err := dec("digest", p.Digest)
		if err != nil {
			return nil, err
		}
		sig, err := dec("value", p.Value)
		if err != nil {
			return nil, err
		}
		ok, err := k.k.Verify(p.Alg, d, sig)
		if err != nil {
			return nil, err
		}
		out = wire.KeyVerifyResult{Value: ok}
	default:
		var p wire.KeyOperationsParameters
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, err
		}
		v, err := dec("value", p.Value)
		if err != nil {
			return nil, err
		}
		iv, err := dec("iv", p.IV)
		if err != nil {
			return nil, err
		}
		tag, err := dec("tag", p.Tag)
		if err != nil {
			return nil, err
		}
		var res wire.KeyOperationResult
		switch w.Op {
		case OpEncrypt:
			r, err := k.k.Encrypt(p.Alg, keyops.EncryptParams{Plaintext: v, IV: iv}, nil)
			if err != nil {
				return nil, err
			}
			res = wire.KeyOperationResult{Value: b64(r.Ciphertext), IV: b64(r.IV), Tag: b64(r.Tag)}
		case OpDecrypt:
			pt, err := k.k.Decrypt(p.Alg, keyops.DecryptParams{Ciphertext: v, IV: iv, Tag: tag})
			if err != nil {
				return nil, err
			}
			res.Value = b64(pt)
		case OpWrap:
			c, err := k.k.WrapKey(p.Alg, v, nil)
			if err != nil {
				return nil, err
			}
			res.Value = b64(c)
		case OpUnwrap:
			pt, err := k.k.UnwrapKey(p.Alg, v)
			if err != nil {
				return nil, err
			}
			res.Value = b64(pt)
		}
		out = res
	}
	return json.Marshal(out)
}

// digestFor returns a digest of the size alg signs.
func digestFor(alg string) []byte {
	var d []byte
	switch alg[len(alg)-3:] {
	case "384":
		h := sha512.Sum384([]byte("tresor bench"))
		d = h[:]
	case "512":
		h := sha512.Sum512([]byte("tresor bench"))
		d = h[:]
	default: // 256, 56K
		h := sha256.Sum256([]byte("tresor bench"))
		d = h[:]
	}
	return d
}

func b64(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
