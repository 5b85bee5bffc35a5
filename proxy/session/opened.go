package session

import (
	"sync"
	"time"
)

// openedCache remembers sessions already opened, by their exact sealed cookie value, so a browser
// sending the same cookie on every request is decoded, decrypted and unmarshalled once, not per
// request. It is only a shortcut for work that would give the same answer: a hit still gets the
// lifetime and revocation checks, a changed cookie is a miss, and any change of the cookie secrets
// empties it (a retired secret must stop opening cookies at once). Cached sessions are shared and
// must not be modified by callers.
type openedCache struct {
	mu     sync.Mutex
	max    int
	secret []byte // the current secret when the entries were opened (compared by identity)
	m      map[string]opened
}

// opened is a session and the expiry sealed with it.
type opened struct {
	s     *Session
	until time.Time
}

const maxOpened = 4096

func newOpenedCache(max int) *openedCache {
	return &openedCache{max: max, m: make(map[string]opened)}
}

// sameSecrets reports whether the keyring still holds the secrets the cache was filled with: the
// Secrets func hands out the same slices until a secret changes, so identity is enough.
func sameSecrets(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] && len(a) == len(b)
}

func (o *openedCache) get(key string, current []byte) (opened, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !sameSecrets(o.secret, current) {
		clear(o.m)
		o.secret = current
		return opened{}, false
	}
	e, ok := o.m[key]
	return e, ok
}

func (o *openedCache) put(key string, current []byte, e opened) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !sameSecrets(o.secret, current) {
		clear(o.m)
		o.secret = current
	}
	if len(o.m) >= o.max {
		for k := range o.m { // drop an arbitrary eighth; it is only a shortcut
			delete(o.m, k)
			if len(o.m) < o.max*7/8 {
				break
			}
		}
	}
	o.m[key] = e
}
