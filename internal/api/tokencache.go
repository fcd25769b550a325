package api

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"tresor/internal/identity"
)

// tokenCache remembers tokens whose signature and claims were validated, so
// that a client sending the same bearer token again costs a hash and a map
// lookup instead of a signature verification. An entry lives until the
// token expires; the cache is bounded. A principal deleted meanwhile is
// still refused: that check runs on every request.
type tokenCache struct {
	mu      sync.Mutex
	entries map[tokenCacheKey]identity.Caller
}

type tokenCacheKey struct {
	plane plane
	sum   [sha256.Size]byte
}

const maxCachedTokens = 4096

// validate returns the caller of tok, whose SHA-256 is sum.
func (c *tokenCache) validate(ctx context.Context, v Validator, p plane, tok string, sum [sha256.Size]byte, now time.Time) (identity.Caller, error) {
	key := tokenCacheKey{plane: p, sum: sum}
	c.mu.Lock()
	caller, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(caller.ExpiresAt) {
		return caller, nil
	}
	caller, err := v.Validate(ctx, tok)
	if err != nil {
		return caller, err
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[tokenCacheKey]identity.Caller{}
	}
	if len(c.entries) >= maxCachedTokens {
		for k, e := range c.entries { // drop expired ones, or one at random
			if !now.Before(e.ExpiresAt) || len(c.entries) >= maxCachedTokens {
				delete(c.entries, k)
			}
			if len(c.entries) < maxCachedTokens/2 {
				break
			}
		}
	}
	c.entries[key] = caller
	c.mu.Unlock()
	return caller, nil
}
