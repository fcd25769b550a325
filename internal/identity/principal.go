package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"time"
)

// Principal is a service principal of the region's identity service. It is
// stored by the server (see [PrincipalDirectory]); this package only reads it.
type Principal struct {
	ObjectID    string    // uuid; the token's oid and sub claims, used in role assignments
	ClientID    string    // uuid; the client_id of the token request and the appid/azp claims
	DisplayName string    // free text
	SecretHash  []byte    // from [HashSecret]; never the secret itself
	RegionAdmin bool      // region administrators may manage principals and any instance
	Created     time.Time // creation time
}

// PrincipalDirectory looks principals up for [Issuer.Token]. Implementations
// must be safe for concurrent use. PrincipalByClientID returns an error
// wrapping [ErrPrincipalNotFound] if no principal has that client id; any other
// error is treated as an internal failure and returned to the caller of Token
// as is. The returned Principal is not modified by this package.
type PrincipalDirectory interface {
	PrincipalByClientID(ctx context.Context, clientID string) (Principal, error)
}

// SecretPrefix starts every client secret made by [NewSecret], so that secret
// scanners and people can recognise one.
const SecretPrefix = "tsr~"

const (
	secretRandomBytes = 30 // 240 bits; 40 base64url characters
	saltSize          = 16
	secretHashSize    = saltSize + sha256.Size
)

// NewSecret returns a new client secret: [SecretPrefix] followed by 40
// base64url characters (240 random bits). It is shown to the user once; only
// its [HashSecret] is stored.
func NewSecret() (string, error) {
	b := make([]byte, secretRandomBytes)
	if _, err := rand.Read(b); err != nil { // never fails since Go 1.24; kept for the contract
		return "", err
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashSecret returns salt(16) || SHA-256(salt || secret) with a fresh random
// salt.
//
// A fast hash is deliberate: client secrets come from [NewSecret] and carry
// 240 bits of entropy, so they cannot be guessed offline whatever the hash
// costs, and a slow KDF (bcrypt, scrypt, Argon2) would only make the token
// endpoint an easy target for CPU exhaustion. The salt keeps equal secrets
// from having equal hashes.
func HashSecret(secret string) []byte {
	out := make([]byte, saltSize, secretHashSize)
	_, _ = rand.Read(out) // crypto/rand.Read never returns an error
	return appendDigest(out, out[:saltSize], secret)
}

// CheckSecret reports whether secret matches hash (as made by [HashSecret]).
// The comparison takes constant time; a malformed hash never matches.
func CheckSecret(hash []byte, secret string) bool {
	if len(hash) != secretHashSize {
		return false
	}
	want := appendDigest(make([]byte, 0, sha256.Size), hash[:saltSize], secret)
	return subtle.ConstantTimeCompare(want, hash[saltSize:]) == 1
}

func appendDigest(dst, salt []byte, secret string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(secret))
	return h.Sum(dst)
}

// dummySecretHash is checked against when a client id is unknown, so that
// unknown clients and wrong secrets take the same time.
var dummySecretHash = HashSecret("tsr~unknown-client")
