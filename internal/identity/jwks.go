package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	// minRefreshInterval bounds how often a trusted issuer's keys are
	// fetched, so that tokens with made-up key ids cannot make the server
	// hammer the issuer.
	minRefreshInterval = time.Minute
	// maxKeyAge is how long fetched keys are used before they are fetched
	// again (keeping the old ones if that fails), so that a key the issuer
	// withdrew stops being accepted.
	maxKeyAge = 24 * time.Hour
	// fetchTimeout bounds one fetch of discovery document and JWKS.
	fetchTimeout = 10 * time.Second
	// maxDocumentSize bounds a fetched or read JWKS or discovery document.
	maxDocumentSize = 1 << 20
	// minRSABits is the smallest RSA key accepted for verification.
	minRSABits = 2048
)

// verifyKey is a parsed public key and the signature algorithms it may verify.
type verifyKey struct {
	key  any // *ecdsa.PublicKey or *rsa.PublicKey
	algs []jose.SignatureAlgorithm
	// lowS refuses ECDSA signatures with S > N/2: set for the region's
	// own keys, whose issuer emits only low S (see lows.go).
	lowS bool
}

func (k verifyKey) allows(alg jose.SignatureAlgorithm) bool {
	for _, a := range k.algs {
		if a == alg {
			return true
		}
	}
	return false
}

// keySet is an immutable snapshot of an issuer's keys by kid.
type keySet struct {
	keys    map[string]verifyKey
	fetched time.Time
}

// parseJWKS parses a JWK Set (RFC 7517 §5), keeping the keys that can verify
// ES256/384/512, RS256/384/512 or PS256/384/512 signatures and have a kid. Keys
// of other types, for encryption, without kid or too weak are skipped, as
// are duplicate kids; a set without any usable key is an error.
func parseJWKS(data []byte) (map[string]verifyKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("identity: JWKS: %w", err)
	}
	keys := make(map[string]verifyKey, len(set.Keys))
	for _, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			continue
		}
		if jwk.KeyID == "" || (jwk.Use != "" && jwk.Use != "sig") {
			continue
		}
		if _, dup := keys[jwk.KeyID]; dup {
			continue
		}
		pub := jwk.Public()
		if !pub.Valid() {
			continue
		}
		if k, ok := newVerifyKey(pub.Key, jose.SignatureAlgorithm(jwk.Algorithm)); ok {
			keys[jwk.KeyID] = k
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("identity: JWKS: no usable signing keys")
	}
	return keys, nil
}

// newVerifyKey returns the algorithms key may verify: those of its type (the
// curve decides for EC keys), narrowed to alg when the JWK names one.
func newVerifyKey(key any, alg jose.SignatureAlgorithm) (verifyKey, bool) {
	var algs []jose.SignatureAlgorithm
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			algs = []jose.SignatureAlgorithm{jose.ES256}
		case elliptic.P384():
			algs = []jose.SignatureAlgorithm{jose.ES384}
		case elliptic.P521():
			algs = []jose.SignatureAlgorithm{jose.ES512}
		}
	case *rsa.PublicKey:
		if k.Size()*8 >= minRSABits {
			algs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}
		}
	}
	vk := verifyKey{key: key, algs: algs}
	if alg != "" {
		if !vk.allows(alg) {
			return verifyKey{}, false
		}
		vk.algs = []jose.SignatureAlgorithm{alg}
	}
	return vk, len(vk.algs) > 0
}

// keySource fetches an issuer's current JWK Set document.
type keySource interface {
	fetchJWKS(ctx context.Context) ([]byte, error)
	// name is the file or URL, for errors.
	name() string
}

// fileSource reads a JWK Set from a local file (air-gapped sites).
type fileSource struct{ path string }

func (s fileSource) name() string { return s.path }

func (s fileSource) fetchJWKS(context.Context) ([]byte, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f)
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDocumentSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDocumentSize {
		return nil, fmt.Errorf("identity: document larger than %d bytes", maxDocumentSize)
	}
	return b, nil
}

// keyCache holds an issuer's keys. Lookups are lock-free; a refresh (on an
// unknown kid, or when the keys are older than maxKeyAge) runs at most once
// per minRefreshInterval, one at a time. A cache without source is static.
type keyCache struct {
	source keySource // nil: static keys
	now    func() time.Time
	set    atomic.Pointer[keySet]

	log *slog.Logger // nil: no logging

	sem         chan struct{} // held while refreshing; guards lastAttempt and failing
	lastAttempt time.Time
	failing     bool // the last attempt failed
}

func newStaticKeyCache(keys map[string]verifyKey) *keyCache {
	c := &keyCache{sem: make(chan struct{}, 1)}
	c.set.Store(&keySet{keys: keys})
	return c
}

func newKeyCache(src keySource, now func() time.Time) *keyCache {
	return &keyCache{source: src, now: now, sem: make(chan struct{}, 1)}
}

var errRefreshLimited = errors.New("identity: keys were fetched less than a minute ago")

// lookup returns the key with id kid, refreshing the set if needed. Its
// errors are Validate errors.
func (c *keyCache) lookup(ctx context.Context, kid string) (verifyKey, error) {
	set := c.set.Load()
	if set != nil {
		k, ok := set.keys[kid]
		if ok && (c.source == nil || c.now().Sub(set.fetched) < maxKeyAge) {
			return k, nil
		}
	}
	if c.source == nil {
		return verifyKey{}, invalid(reasonUnknownKey, nil)
	}
	err := c.refresh(ctx, set, true)
	if cur := c.set.Load(); cur != nil {
		if k, ok := cur.keys[kid]; ok {
			return k, nil // refreshed, or stale and the refresh failed: keep using it
		}
	}
	switch {
	case err == nil || (errors.Is(err, errRefreshLimited) && set != nil):
		return verifyKey{}, invalid(reasonUnknownKey, nil)
	default:
		return verifyKey{}, &tokenError{reason: reasonKeysUnavailable, kind: ErrKeysUnavailable, cause: err}
	}
}

// refresh fetches the keys unless another caller replaced seen meanwhile or
// the last attempt was less than minRefreshInterval ago. With detach, the
// fetch outlives ctx (a token's request, whose client may hang up while
// others wait for the same keys).
func (c *keyCache) refresh(ctx context.Context, seen *keySet, detach bool) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	if c.set.Load() != seen {
		return nil
	}
	now := c.now()
	if !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < minRefreshInterval {
		return errRefreshLimited
	}
	prevAttempt := c.lastAttempt
	c.lastAttempt = now
	if detach {
		ctx = context.WithoutCancel(ctx)
	}
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	keys, err := c.fetch(fctx)
	if err != nil && ctx.Err() != nil {
		c.lastAttempt = prevAttempt // ended by the caller (a shutdown), not by the issuer
		return err
	}
	if err != nil {
		c.failing = true
		if c.log != nil {
			c.log.Warn("trusted issuer: cannot fetch signing keys; tokens naming a key not yet cached are refused, retrying in a minute at the earliest", "error", err)
		}
		return err
	}
	if c.failing && c.log != nil {
		c.log.Info("trusted issuer: signing keys fetched again", "keys", len(keys))
	}
	c.failing = false
	c.set.Store(&keySet{keys: keys, fetched: now})
	return nil
}

func (c *keyCache) fetch(ctx context.Context) (map[string]verifyKey, error) {
	data, err := c.source.fetchJWKS(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("%w (from %s)", err, c.source.name())
	}
	return keys, nil
}
