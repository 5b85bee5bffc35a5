package session

import (
	"time"

	"github.com/zdgate/zdgate/internal/expiring"
)

// openedCache remembers sessions already opened, by their exact sealed cookie value, so a browser
// sending the same cookie on every request is decoded, decrypted and unmarshalled once, not per
// request. It is only a shortcut for work that would give the same answer: a hit still gets the
// lifetime and revocation checks, a changed cookie is a miss, an entry goes when its sealed expiry
// passes, and a change of the cookie secrets empties it (a retired secret must stop opening
// cookies at once). Cached sessions are shared and must not be modified by callers.
type openedCache struct {
	c *expiring.Cache[string, *opened] // until the expiry sealed with the session
}

// opened is a session and the current secret when it was opened (compared by identity).
type opened struct {
	s      *Session
	secret []byte
}

const maxOpened = 4096

func newOpenedCache(max int) *openedCache {
	return &openedCache{c: expiring.New[string, *opened](max, expiring.Evict)}
}

// sameSecrets reports whether the keyring still holds the secrets the cache was filled with: the
// Secrets func hands out the same slices until a secret changes, so identity is enough.
func sameSecrets(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] && len(a) == len(b)
}

func (o *openedCache) get(key string, current []byte, now time.Time) (*Session, bool) {
	e, ok := o.c.Get(key, now)
	if !ok {
		return nil, false
	}
	if !sameSecrets(e.secret, current) {
		o.c.Purge() // the secrets changed: nothing opened before counts
		return nil, false
	}
	return e.s, true
}

func (o *openedCache) put(key string, current []byte, s *Session, until, now time.Time) {
	o.c.Add(key, &opened{s: s, secret: current}, until, now)
}
