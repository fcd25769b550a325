package keys

import (
	"context"
	"crypto/rand"
	"slices"

	"tresor/internal/crypto/keyops"
	"tresor/internal/fault"
	"tresor/internal/instances"
)

// Op names a key operation as key_ops spells it.
type Op string

// The key operations.
const (
	OpEncrypt   Op = "encrypt"
	OpDecrypt   Op = "decrypt"
	OpSign      Op = "sign"
	OpVerify    Op = "verify"
	OpWrapKey   Op = "wrapKey"
	OpUnwrapKey Op = "unwrapKey"
)

// usable returns the version's key if it may perform op now.
func (s *Service) usable(ctx context.Context, in instances.Instance, name, version string, op Op) (*keyops.Key, string, error) {
	name = storageName(name)
	_, vr, sealed, err := s.readVersion(ctx, in, name, version)
	if err != nil {
		return nil, "", err
	}
	if !vr.Enabled {
		return nil, "", &fault.Error{Kind: fault.Forbidden, Code: "Forbidden", Inner: "KeyDisabled",
			Message: "Operation " + string(op) + " is not allowed on a disabled key"}
	}
	now := s.now().Unix()
	if vr.NotBefore != 0 && now < vr.NotBefore {
		return nil, "", &fault.Error{Kind: fault.Forbidden, Code: "Forbidden", Inner: "KeyNotYetValid",
			Message: "Operation " + string(op) + " is not allowed: the key is not valid before its nbf time"}
	}
	if vr.Expires != 0 && now >= vr.Expires {
		return nil, "", &fault.Error{Kind: fault.Forbidden, Code: "Forbidden", Inner: "KeyExpired",
			Message: "Operation " + string(op) + " is not allowed: the key expired"}
	}
	if !slices.Contains(vr.KeyOps, string(op)) {
		return nil, "", &fault.Error{Kind: fault.Forbidden, Code: "Forbidden", Inner: "KeyOperationNotAllowed",
			Message: "Operation " + string(op) + " is not permitted on this key: its key_ops are " + joinOps(vr.KeyOps)}
	}
	k, err := s.material(in, name, vr, sealed)
	if err != nil {
		return nil, "", err
	}
	return k, vr.Version, nil
}

func joinOps(ops []string) string {
	if len(ops) == 0 {
		return "(none)"
	}
	out := ops[0]
	for _, o := range ops[1:] {
		out += ", " + o
	}
	return out
}

// Result of an operation: the version used and the output.
type Result struct {
	Version string
	Value   []byte
	IV      []byte
	Tag     []byte
	AAD     []byte
}

// Sign signs a digest.
func (s *Service) Sign(ctx context.Context, in instances.Instance, name, version, alg string, digest []byte) (Result, error) {
	k, ver, err := s.usable(ctx, in, name, version, OpSign)
	if err != nil {
		return Result{}, err
	}
	sig, err := k.Sign(alg, digest, rand.Reader)
	if err != nil {
		return Result{}, opError(err)
	}
	return Result{Version: ver, Value: sig}, nil
}

// Verify checks a signature over a digest.
func (s *Service) Verify(ctx context.Context, in instances.Instance, name, version, alg string, digest, sig []byte) (bool, error) {
	k, _, err := s.usable(ctx, in, name, version, OpVerify)
	if err != nil {
		return false, err
	}
	ok, err := k.Verify(alg, digest, sig)
	if err != nil {
		return false, opError(err)
	}
	return ok, nil
}

// Encrypt encrypts with the key (AES-GCM returns the service-made IV and the tag).
func (s *Service) Encrypt(ctx context.Context, in instances.Instance, name, version, alg string, p keyops.EncryptParams) (Result, error) {
	k, ver, err := s.usable(ctx, in, name, version, OpEncrypt)
	if err != nil {
		return Result{}, err
	}
	r, err := k.Encrypt(alg, p, rand.Reader)
	if err != nil {
		return Result{}, opError(err)
	}
	return Result{Version: ver, Value: r.Ciphertext, IV: r.IV, Tag: r.Tag, AAD: p.AAD}, nil
}

// Decrypt decrypts with the key.
func (s *Service) Decrypt(ctx context.Context, in instances.Instance, name, version, alg string, p keyops.DecryptParams) (Result, error) {
	k, ver, err := s.usable(ctx, in, name, version, OpDecrypt)
	if err != nil {
		return Result{}, err
	}
	pt, err := k.Decrypt(alg, p)
	if err != nil {
		return Result{}, opError(err)
	}
	return Result{Version: ver, Value: pt}, nil
}

// WrapKey wraps a key.
func (s *Service) WrapKey(ctx context.Context, in instances.Instance, name, version, alg string, pt []byte) (Result, error) {
	k, ver, err := s.usable(ctx, in, name, version, OpWrapKey)
	if err != nil {
		return Result{}, err
	}
	ct, err := k.WrapKey(alg, pt, rand.Reader)
	if err != nil {
		return Result{}, opError(err)
	}
	return Result{Version: ver, Value: ct}, nil
}

// UnwrapKey unwraps a key.
func (s *Service) UnwrapKey(ctx context.Context, in instances.Instance, name, version, alg string, ct []byte) (Result, error) {
	k, ver, err := s.usable(ctx, in, name, version, OpUnwrapKey)
	if err != nil {
		return Result{}, err
	}
	pt, err := k.UnwrapKey(alg, ct)
	if err != nil {
		return Result{}, opError(err)
	}
	return Result{Version: ver, Value: pt}, nil
}
