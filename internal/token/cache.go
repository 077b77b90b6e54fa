package token

import (
	"strings"
	"sync"
	"time"
)

// DefaultCacheSize is the default number of tokens a CachedVerifier remembers.
// A node serves a few phones and dashboards; 1024 tokens of under 1 KiB each
// bound the cache to about a megabyte.
const DefaultCacheSize = 1024

// CachedVerifier remembers tokens that verified, so that a client sending the
// same token on every request (an MJPEG viewer, a dashboard polling events)
// costs a map lookup instead of a signature check.
//
// An entry is used only while the token is unexpired, and only while the key
// that verified it is still published unchanged and its jti is not revoked:
// each entry records the key set and revocation list it was checked against,
// and when either has been replaced since, the entry is rechecked against the
// new ones before it is used again. Only valid tokens are cached, so garbage
// cannot push good entries out.
type CachedVerifier struct {
	v   *Verifier
	max int

	mu      sync.RWMutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	verified Verified
	// until is exp plus leeway; the zero time for a non-expiring token.
	until time.Time
	// from is the latest of nbf and iat minus leeway: before it the token
	// was not valid, which matters only if the clock is set back.
	from    time.Time
	key     *verifyKey
	keys    *KeySet
	revoked *Revocations
}

// NewCachedVerifier wraps v with a cache of at most size tokens; size <= 0
// means DefaultCacheSize.
func NewCachedVerifier(v *Verifier, size int) *CachedVerifier {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &CachedVerifier{v: v, max: size, entries: make(map[string]*cacheEntry, size)}
}

// Verifier returns the wrapped verifier, to swap keys and revocations.
func (c *CachedVerifier) Verifier() *Verifier { return c.v }

// Verify is Verifier.Verify with the cache in front. A hit does not allocate.
func (c *CachedVerifier) Verify(token string) (Verified, error) {
	now := c.v.clock.Now()
	keys, revoked := c.v.keys.Load(), c.v.revoked.Load()

	c.mu.RLock()
	e := c.entries[token]
	c.mu.RUnlock()
	if e != nil {
		if (!e.until.IsZero() && !now.Before(e.until)) || now.Before(e.from) {
			c.remove(token, e)
		} else if e.keys == keys && e.revoked == revoked {
			return e.verified, nil
		} else if fresh := e.recheck(keys, revoked); fresh != nil {
			c.mu.Lock()
			if c.entries[token] == e {
				c.entries[token] = fresh
			}
			c.mu.Unlock()
			return fresh.verified, nil
		} else {
			// The key is gone or changed, or the token was revoked: drop
			// the entry and let a full verification give the exact reason.
			c.remove(token, e)
		}
	}

	out, detail, err := c.v.verify(token, now, keys, revoked)
	if err != nil {
		return Verified{}, err
	}
	entry := &cacheEntry{verified: out, key: detail.key, keys: keys, revoked: revoked}
	if !detail.validFrom.IsZero() {
		entry.from = detail.validFrom.Add(-c.v.leeway)
	}
	if !out.Expiry.IsZero() {
		entry.until = out.Expiry.Add(c.v.leeway)
	}
	c.insert(strings.Clone(token), entry, now)
	return out, nil
}

// recheck returns a copy of e valid for the new key set and revocation list,
// or nil when the token no longer passes. It needs no signature check: if the
// same key material is still published under the same kid and issuer, the
// signature is as good as when it was checked.
func (e *cacheEntry) recheck(keys *KeySet, revoked *Revocations) *cacheEntry {
	if keys == nil {
		return nil
	}
	k := keys.keys[e.verified.KeyID]
	if k == nil || !k.sameKey(e.key) {
		return nil
	}
	if e.verified.ID != "" && revoked.Contains(e.verified.ID) {
		return nil
	}
	fresh := *e
	fresh.key, fresh.keys, fresh.revoked = k, keys, revoked
	return &fresh
}

func (c *CachedVerifier) remove(token string, e *cacheEntry) {
	c.mu.Lock()
	if c.entries[token] == e {
		delete(c.entries, token)
	}
	c.mu.Unlock()
}

func (c *CachedVerifier) insert(token string, e *cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, old := range c.entries {
			if !old.until.IsZero() && !now.Before(old.until) {
				delete(c.entries, k)
			}
		}
	}
	// Still full of live entries: drop an eighth of them, in map order
	// (effectively random). Entries are only ever valid tokens, so this
	// costs at worst a re-verification for their holders.
	if len(c.entries) >= c.max {
		drop := c.max/8 + 1
		for k := range c.entries {
			if drop == 0 {
				break
			}
			delete(c.entries, k)
			drop--
		}
	}
	c.entries[token] = e
}

// Len returns the number of cached tokens.
func (c *CachedVerifier) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
