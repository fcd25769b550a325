package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"tresor/internal/crypto/pemkey"
	"tresor/internal/wire"
)

// Key calls (spec §4). They go to an HSM's data plane: hsmURL is its base
// URL, as [Client.HSMURL] returns it. An empty version means the key's
// current version: reads and updates then go to /keys/{name}/ (with the
// trailing slash az sends) and operations to /keys/{name}/{op} (as the Go
// SDK sends them, spec §9.13). Binary values are passed as bytes and sent
// as base64url without padding.

// KeysAPIVersion is the api-version of key calls.
const KeysAPIVersion = "7.5"

// maxKeyPage is the largest page the service hands out (spec §1.4).
const maxKeyPage = 25

// keyURL returns hsmURL + "/" + the escaped path segments + the api-version.
// Empty segments stay empty (a trailing slash for the current version).
func keyURL(hsmURL string, segs ...string) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(hsmURL, "/"))
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	b.WriteString("?api-version=" + KeysAPIVersion)
	return b.String()
}

// keyOpURL returns the URL of an operation (sign, encrypt, …) on a version
// of a key, without a version segment for the current version.
func keyOpURL(hsmURL, name, version, op string) string {
	if version == "" {
		return keyURL(hsmURL, "keys", name, op)
	}
	return keyURL(hsmURL, "keys", name, version, op)
}

func checkKeyName(name string) error {
	if name == "" {
		return errors.New("client: key name is empty")
	}
	return nil
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeB64U decodes a base64url value of an answer, with or without padding.
func decodeB64U(field, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("client: the answer's %s is not base64url", field)
	}
	return b, nil
}

// keyBundleCall sends a request whose answer is a KeyBundle.
func (c *Client) keyBundleCall(ctx context.Context, method, u string, in any) (*wire.KeyBundle, error) {
	var out wire.KeyBundle
	if _, err := c.DoJSON(ctx, method, u, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateKey creates a key, or a new version of an existing one
// (POST /keys/{name}/create).
func (c *Client) CreateKey(ctx context.Context, hsmURL, name string, p wire.KeyCreateParameters) (*wire.KeyBundle, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	return c.keyBundleCall(ctx, http.MethodPost, keyURL(hsmURL, "keys", name, "create"), p)
}

// ImportKey imports a key (a JWK with its private parts), or a new version
// of an existing one (PUT /keys/{name}).
func (c *Client) ImportKey(ctx context.Context, hsmURL, name string, p wire.KeyImportParameters) (*wire.KeyBundle, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	if p.Key == nil {
		return nil, errors.New("client: the key to import is missing")
	}
	return c.keyBundleCall(ctx, http.MethodPut, keyURL(hsmURL, "keys", name), p)
}

// GetKey returns a version of a key ("" for the current one), public parts
// only (GET /keys/{name}/{version}).
func (c *Client) GetKey(ctx context.Context, hsmURL, name, version string) (*wire.KeyBundle, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	return c.keyBundleCall(ctx, http.MethodGet, keyURL(hsmURL, "keys", name, version), nil)
}

// KeyUpdate is what [Client.UpdateKey] changes; nil fields stay as they
// are. A non-nil empty Tags removes every tag.
type KeyUpdate struct {
	KeyOps     []string
	Attributes *wire.KeyAttributes
	Tags       map[string]string
}

// keyUpdateBody is the PATCH body: unlike wire.KeyUpdateParameters it
// keeps an empty tag map, which clears the tags.
type keyUpdateBody struct {
	KeyOps     []string            `json:"key_ops,omitempty"`
	Attributes *wire.KeyAttributes `json:"attributes,omitempty"`
	Tags       map[string]string   `json:"tags,omitzero"`
}

// UpdateKey changes the attributes, key_ops and tags of a version of a key
// ("" for the current one) (PATCH /keys/{name}/{version}).
func (c *Client) UpdateKey(ctx context.Context, hsmURL, name, version string, u KeyUpdate) (*wire.KeyBundle, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	body := keyUpdateBody(u)
	return c.keyBundleCall(ctx, http.MethodPatch, keyURL(hsmURL, "keys", name, version), body)
}

// listKeyPages follows nextLink from u until max items (0: all) are in.
func listKeyPages[T any](ctx context.Context, c *Client, u string, max int) ([]T, error) {
	out := []T{}
	for u != "" && (max <= 0 || len(out) < max) {
		var page struct {
			Value    []T     `json:"value"`
			NextLink *string `json:"nextLink"`
		}
		if _, err := c.DoJSON(ctx, http.MethodGet, u, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Value...)
		u = ""
		if page.NextLink != nil {
			u = *page.NextLink
		}
	}
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out, nil
}

// withMaxResults adds maxresults (at most a page) to a list URL.
func withMaxResults(u string, max int) string {
	if max <= 0 {
		return u
	}
	return u + "&maxresults=" + strconv.Itoa(min(max, maxKeyPage))
}

// ListKeys lists the keys of the HSM, their current versions (GET /keys),
// following nextLink; max > 0 stops after max keys.
func (c *Client) ListKeys(ctx context.Context, hsmURL string, max int) ([]wire.KeyItem, error) {
	return listKeyPages[wire.KeyItem](ctx, c, withMaxResults(keyURL(hsmURL, "keys"), max), max)
}

// ListKeyVersions lists the versions of a key (GET /keys/{name}/versions);
// max > 0 stops after max versions.
func (c *Client) ListKeyVersions(ctx context.Context, hsmURL, name string, max int) ([]wire.KeyItem, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	return listKeyPages[wire.KeyItem](ctx, c, withMaxResults(keyURL(hsmURL, "keys", name, "versions"), max), max)
}

// DeleteKey soft-deletes a key with all its versions (DELETE /keys/{name}).
func (c *Client) DeleteKey(ctx context.Context, hsmURL, name string) (*wire.DeletedKeyBundle, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	var out wire.DeletedKeyBundle
	if _, err := c.DoJSON(ctx, http.MethodDelete, keyURL(hsmURL, "keys", name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListDeletedKeys lists the soft-deleted keys (GET /deletedkeys); max > 0
// stops after max keys.
func (c *Client) ListDeletedKeys(ctx context.Context, hsmURL string, max int) ([]wire.DeletedKeyItem, error) {
	return listKeyPages[wire.DeletedKeyItem](ctx, c, withMaxResults(keyURL(hsmURL, "deletedkeys"), max), max)
}

// GetDeletedKey returns a soft-deleted key (GET /deletedkeys/{name}).
func (c *Client) GetDeletedKey(ctx context.Context, hsmURL, name string) (*wire.DeletedKeyBundle, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	var out wire.DeletedKeyBundle
	if _, err := c.DoJSON(ctx, http.MethodGet, keyURL(hsmURL, "deletedkeys", name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RecoverDeletedKey brings a soft-deleted key back
// (POST /deletedkeys/{name}/recover).
func (c *Client) RecoverDeletedKey(ctx context.Context, hsmURL, name string) (*wire.KeyBundle, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	return c.keyBundleCall(ctx, http.MethodPost, keyURL(hsmURL, "deletedkeys", name, "recover"), nil)
}

// PurgeDeletedKey destroys a soft-deleted key for good
// (DELETE /deletedkeys/{name}, 204).
func (c *Client) PurgeDeletedKey(ctx context.Context, hsmURL, name string) error {
	if err := checkKeyName(name); err != nil {
		return err
	}
	_, err := c.DoJSON(ctx, http.MethodDelete, keyURL(hsmURL, "deletedkeys", name), nil, nil)
	return err
}

// BackupKey returns the backup blob of a key with all its versions, its
// bytes as the service encodes them in base64url (POST /keys/{name}/backup).
func (c *Client) BackupKey(ctx context.Context, hsmURL, name string) ([]byte, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	var out wire.BackupKeyResult
	if _, err := c.DoJSON(ctx, http.MethodPost, keyURL(hsmURL, "keys", name, "backup"), nil, &out); err != nil {
		return nil, err
	}
	if out.Value == "" {
		return nil, errors.New("client: the backup answer has no value")
	}
	return decodeB64U("value", out.Value)
}

// RestoreKey restores a key from a backup blob (POST /keys/restore).
func (c *Client) RestoreKey(ctx context.Context, hsmURL string, blob []byte) (*wire.KeyBundle, error) {
	if len(blob) == 0 {
		return nil, errors.New("client: the backup blob is empty")
	}
	return c.keyBundleCall(ctx, http.MethodPost, keyURL(hsmURL, "keys", "restore"), wire.KeyRestoreParameters{Value: b64u(blob)})
}

// RotateKey makes a new version of a key with the same type and size
// (POST /keys/{name}/rotate).
func (c *Client) RotateKey(ctx context.Context, hsmURL, name string) (*wire.KeyBundle, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	return c.keyBundleCall(ctx, http.MethodPost, keyURL(hsmURL, "keys", name, "rotate"), nil)
}

// GetKeyRotationPolicy returns a key's rotation policy
// (GET /keys/{name}/rotationpolicy).
func (c *Client) GetKeyRotationPolicy(ctx context.Context, hsmURL, name string) (*wire.KeyRotationPolicy, error) {
	return c.rotationPolicy(ctx, http.MethodGet, hsmURL, name, nil)
}

// UpdateKeyRotationPolicy sets a key's rotation policy
// (PUT /keys/{name}/rotationpolicy) and returns it as stored.
func (c *Client) UpdateKeyRotationPolicy(ctx context.Context, hsmURL, name string, p wire.KeyRotationPolicy) (*wire.KeyRotationPolicy, error) {
	if p.LifetimeActions == nil {
		p.LifetimeActions = []wire.LifetimeAction{}
	}
	return c.rotationPolicy(ctx, http.MethodPut, hsmURL, name, p)
}

func (c *Client) rotationPolicy(ctx context.Context, method, hsmURL, name string, in any) (*wire.KeyRotationPolicy, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	var out wire.KeyRotationPolicy
	if _, err := c.DoJSON(ctx, method, keyURL(hsmURL, "keys", name, "rotationpolicy"), in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// KeyOperation is the input of encrypt, decrypt, wrapkey and unwrapkey:
// the algorithm, the value, and for AES the IV, the additional
// authenticated data and the tag (nil: not sent).
type KeyOperation struct {
	Algorithm string
	Value     []byte
	IV        []byte
	AAD       []byte
	Tag       []byte
}

// KeyOperationResult is the answer of a key operation, decoded: the key
// id (with the version used), the result, and for AES the IV, tag and
// AAD the service returned (nil if none).
type KeyOperationResult struct {
	Kid   string
	Value []byte
	IV    []byte
	Tag   []byte
	AAD   []byte
}

// Encrypt encrypts op.Value with a version of a key ("" for the current
// one) (POST /keys/{name}[/{version}]/encrypt). AES-GCM returns the
// service-made IV and the tag.
func (c *Client) Encrypt(ctx context.Context, hsmURL, name, version string, op KeyOperation) (*KeyOperationResult, error) {
	return c.keyOperation(ctx, hsmURL, name, version, "encrypt", op)
}

// Decrypt decrypts op.Value (POST /keys/{name}[/{version}]/decrypt).
func (c *Client) Decrypt(ctx context.Context, hsmURL, name, version string, op KeyOperation) (*KeyOperationResult, error) {
	return c.keyOperation(ctx, hsmURL, name, version, "decrypt", op)
}

// WrapKey wraps the key in op.Value (POST /keys/{name}[/{version}]/wrapkey).
func (c *Client) WrapKey(ctx context.Context, hsmURL, name, version string, op KeyOperation) (*KeyOperationResult, error) {
	return c.keyOperation(ctx, hsmURL, name, version, "wrapkey", op)
}

// UnwrapKey unwraps the key in op.Value (POST /keys/{name}[/{version}]/unwrapkey).
func (c *Client) UnwrapKey(ctx context.Context, hsmURL, name, version string, op KeyOperation) (*KeyOperationResult, error) {
	return c.keyOperation(ctx, hsmURL, name, version, "unwrapkey", op)
}

func (c *Client) keyOperation(ctx context.Context, hsmURL, name, version, path string, op KeyOperation) (*KeyOperationResult, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	if op.Algorithm == "" {
		return nil, errors.New("client: the algorithm is missing")
	}
	in := wire.KeyOperationsParameters{Alg: op.Algorithm, Value: b64u(op.Value)}
	if op.IV != nil {
		in.IV = b64u(op.IV)
	}
	if op.AAD != nil {
		in.AAD = b64u(op.AAD)
	}
	if op.Tag != nil {
		in.Tag = b64u(op.Tag)
	}
	var out wire.KeyOperationResult
	if _, err := c.DoJSON(ctx, http.MethodPost, keyOpURL(hsmURL, name, version, path), in, &out); err != nil {
		return nil, err
	}
	return decodeOperationResult(out)
}

func decodeOperationResult(out wire.KeyOperationResult) (*KeyOperationResult, error) {
	res := &KeyOperationResult{Kid: out.Kid}
	var err error
	if res.Value, err = decodeB64U("value", out.Value); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		in   string
		out  *[]byte
	}{{"iv", out.IV, &res.IV}, {"tag", out.Tag, &res.Tag}, {"aad", out.AAD, &res.AAD}} {
		if f.in == "" {
			continue
		}
		if *f.out, err = decodeB64U(f.name, f.in); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Sign signs a digest with a version of a key ("" for the current one)
// (POST /keys/{name}[/{version}]/sign). The digest's length must match the
// algorithm. It returns the key id the service answered with (with the
// version used) and the signature.
func (c *Client) Sign(ctx context.Context, hsmURL, name, version, algorithm string, digest []byte) (*KeyOperationResult, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	if algorithm == "" {
		return nil, errors.New("client: the algorithm is missing")
	}
	var out wire.KeyOperationResult
	in := wire.KeySignParameters{Alg: algorithm, Value: b64u(digest)}
	if _, err := c.DoJSON(ctx, http.MethodPost, keyOpURL(hsmURL, name, version, "sign"), in, &out); err != nil {
		return nil, err
	}
	return decodeOperationResult(out)
}

// Verify checks a signature over a digest with a version of a key ("" for
// the current one) (POST /keys/{name}[/{version}]/verify).
func (c *Client) Verify(ctx context.Context, hsmURL, name, version, algorithm string, digest, signature []byte) (bool, error) {
	if err := checkKeyName(name); err != nil {
		return false, err
	}
	if algorithm == "" {
		return false, errors.New("client: the algorithm is missing")
	}
	var out wire.KeyVerifyResult
	in := wire.KeyVerifyParameters{Alg: algorithm, Digest: b64u(digest), Value: b64u(signature)}
	if _, err := c.DoJSON(ctx, http.MethodPost, keyOpURL(hsmURL, name, version, "verify"), in, &out); err != nil {
		return false, err
	}
	return out.Value, nil
}

// Random count bytes the service supports in one call.
const (
	MinRandomBytes = 1
	MaxRandomBytes = 128
)

// GetRandomBytes returns count random bytes from the HSM (POST /rng).
func (c *Client) GetRandomBytes(ctx context.Context, hsmURL string, count int) ([]byte, error) {
	var out struct {
		Value string `json:"value"`
	}
	in := struct {
		Count int `json:"count"`
	}{count}
	if _, err := c.DoJSON(ctx, http.MethodPost, keyURL(hsmURL, "rng"), in, &out); err != nil {
		return nil, err
	}
	return decodeB64U("value", out.Value)
}

// Importing private keys from PEM (what az keyvault key import --pem-file
// does on the client's side).

// Errors of [PrivateKeyJWK] about the password.
var (
	// ErrPEMPasswordRequired: the private key is encrypted and no password was given.
	ErrPEMPasswordRequired = errors.New("the private key is encrypted: give its password")
	// ErrPEMIncorrectPassword: the password does not decrypt the private key.
	ErrPEMIncorrectPassword = errors.New("incorrect password for the private key")
)

// oidCurveSecp256k1 names the curve secp256k1 (P-256K), which
// crypto/ecdsa does not implement.
var oidCurveSecp256k1 = asn1.ObjectIdentifier{1, 3, 132, 0, 10}

// PrivateKeyJWK turns a PEM private key into the JWK that a key import
// sends, with its private parts, as az keyvault key import does: kty "RSA"
// with n, e, d, p, q, dp, dq and qi, or kty "EC" with crv (P-256, P-384,
// P-521 or P-256K), x, y and d; integers big-endian without leading zeros
// (EC coordinates and d padded to the curve's size), base64url. It reads
// "PRIVATE KEY" (PKCS#8), "RSA PRIVATE KEY" (PKCS#1), "EC PRIVATE KEY"
// (SEC 1) — the latter two optionally with legacy "Proc-Type: 4,ENCRYPTED"
// encryption — and "ENCRYPTED PRIVATE KEY" (PKCS#8 with PBES2: PBKDF2 with
// HMAC-SHA-1/-256/-384/-512 and AES-CBC), skipping other blocks such as
// certificates (see [pemkey.ParsePrivateKey]). password is used for
// encrypted keys only; a missing or wrong one gives [ErrPEMPasswordRequired]
// or [ErrPEMIncorrectPassword]. Other key types are refused. Errors never
// contain key material.
func PrivateKeyJWK(pemData, password []byte) (wire.JSONWebKey, error) {
	key, err := pemkey.ParsePrivateKey(pemData, password)
	var unsupported *pemkey.UnsupportedKeyError
	switch {
	case errors.Is(err, pemkey.ErrPasswordRequired):
		return wire.JSONWebKey{}, ErrPEMPasswordRequired
	case errors.Is(err, pemkey.ErrIncorrectPassword):
		return wire.JSONWebKey{}, ErrPEMIncorrectPassword
	case errors.Is(err, pemkey.ErrNotPEM):
		return wire.JSONWebKey{}, errors.New("no PEM private key found (-----BEGIN PRIVATE KEY-----)")
	case errors.Is(err, pemkey.ErrNoPrivateKey):
		return wire.JSONWebKey{}, errors.New("no private key in the PEM data (a public key or certificate cannot be imported)")
	case errors.As(err, &unsupported):
		return wire.JSONWebKey{}, fmt.Errorf("unsupported private key (%s): only RSA and EC keys can be imported", unsupported.Type)
	case err != nil:
		return wire.JSONWebKey{}, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return rsaJWK(k)
	case *ecdsa.PrivateKey:
		return ecdsaJWK(k)
	case *pemkey.ECKey:
		defer clear(k.D)
		if !k.Curve.Equal(oidCurveSecp256k1) {
			return wire.JSONWebKey{}, fmt.Errorf("unsupported curve %s: use P-256, P-256K, P-384 or P-521", k.Curve)
		}
		return secp256k1JWK(k.D)
	default:
		return wire.JSONWebKey{}, fmt.Errorf("unsupported private key (%T): only RSA and EC keys can be imported", key)
	}
}

func secp256k1JWK(d []byte) (wire.JSONWebKey, error) {
	for len(d) > 32 && d[0] == 0 {
		d = d[1:]
	}
	if len(d) > 32 {
		return wire.JSONWebKey{}, errors.New("the EC private key is too long for secp256k1")
	}
	n := secp256k1.Params().N
	if x := new(big.Int).SetBytes(d); x.Sign() == 0 || x.Cmp(n) >= 0 {
		return wire.JSONWebKey{}, errors.New("the EC private key is out of range for secp256k1")
	}
	priv := secp256k1.PrivKeyFromBytes(d)
	defer priv.Zero()
	pub := priv.PubKey().SerializeUncompressed() // 0x04 || x || y
	db := priv.Key.Bytes()
	defer clear(db[:])
	return wire.JSONWebKey{Kty: "EC", Crv: "P-256K", X: b64u(pub[1:33]), Y: b64u(pub[33:65]), D: b64u(db[:])}, nil
}

func ecdsaJWK(k *ecdsa.PrivateKey) (wire.JSONWebKey, error) {
	var crv string
	switch k.Curve {
	case elliptic.P256():
		crv = "P-256"
	case elliptic.P384():
		crv = "P-384"
	case elliptic.P521():
		crv = "P-521"
	default:
		return wire.JSONWebKey{}, fmt.Errorf("unsupported curve %s: use P-256, P-256K, P-384 or P-521", k.Curve.Params().Name)
	}
	pub, err := k.PublicKey.Bytes() // 0x04 || x || y
	if err != nil {
		return wire.JSONWebKey{}, fmt.Errorf("the EC key: %v", err)
	}
	d, err := k.Bytes()
	if err != nil {
		return wire.JSONWebKey{}, fmt.Errorf("the EC key: %v", err)
	}
	defer clear(d)
	size := (len(pub) - 1) / 2
	return wire.JSONWebKey{Kty: "EC", Crv: crv, X: b64u(pub[1 : 1+size]), Y: b64u(pub[1+size:]), D: b64u(d)}, nil
}

func rsaJWK(k *rsa.PrivateKey) (wire.JSONWebKey, error) {
	if len(k.Primes) != 2 {
		return wire.JSONWebKey{}, fmt.Errorf("RSA keys with %d primes cannot be imported: only two-prime keys", len(k.Primes))
	}
	if err := k.Validate(); err != nil {
		return wire.JSONWebKey{}, fmt.Errorf("the RSA private key is not valid: %v", err)
	}
	k.Precompute()
	i := func(x *big.Int) string { return b64u(x.Bytes()) }
	return wire.JSONWebKey{
		Kty: "RSA",
		N:   i(k.N), E: i(big.NewInt(int64(k.E))), D: i(k.D),
		P: i(k.Primes[0]), Q: i(k.Primes[1]),
		DP: i(k.Precomputed.Dp), DQ: i(k.Precomputed.Dq), QI: i(k.Precomputed.Qinv),
	}, nil
}
