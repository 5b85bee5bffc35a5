// Package expiring is the one shape of zdgate's in-memory bookkeeping: a map bounded twice, by a
// size (beyond it the least recently used entry goes) and by a time per entry (after it the entry
// is gone). The time is judged by a clock the caller passes in, so tests move time instead of
// sleeping. It wraps the LRU of github.com/hashicorp/golang-lru/v2/simplelru with a mutex.
//
// That library's own expirable cache does not fit: it reads the wall clock, has one lifetime for
// every entry, and starts a goroutine per cache that never ends.
package expiring

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// WhenFull is what Add does with a new key when the cache is full.
type WhenFull int

const (
	// Evict drops the least recently used entry: right for anything whose loss costs only a
	// repeat of work (a cache) or a slightly weaker bound (rate limiters).
	Evict WhenFull = iota
	// Refuse drops the expired entries, and if the cache is still full, refuses the new key: right
	// for a replay guard, where forgetting a live entry would let its replay through.
	Refuse
)

// Cache is safe for concurrent use. The zero value is not usable; call New.
type Cache[K comparable, V any] struct {
	whenFull WhenFull
	size     int

	mu  sync.Mutex
	lru *simplelru.LRU[K, entry[V]]
}

type entry[V any] struct {
	v     V
	until time.Time // zero: no expiry
}

func (e entry[V]) live(now time.Time) bool { return e.until.IsZero() || now.Before(e.until) }

// New returns an empty cache of at most size entries. size must be positive.
func New[K comparable, V any](size int, whenFull WhenFull) *Cache[K, V] {
	l, err := simplelru.NewLRU[K, entry[V]](size, nil)
	if err != nil {
		panic("expiring: size must be positive")
	}
	return &Cache[K, V]{whenFull: whenFull, size: size, lru: l}
}

// Get returns k's value if it has not expired at now, and marks it used. An expired entry is
// removed.
func (c *Cache[K, V]) Get(k K, now time.Time) (V, bool) { return c.lookup(k, now, true) }

// Peek is Get without marking the entry used, so that entries leave in the order they were
// added, however often they are read. An expired entry is removed.
func (c *Cache[K, V]) Peek(k K, now time.Time) (V, bool) { return c.lookup(k, now, false) }

// lookup finds k; touch marks it the most recently used.
func (c *Cache[K, V]) lookup(k K, now time.Time, touch bool) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var e entry[V]
	var ok bool
	if touch {
		e, ok = c.lru.Get(k)
	} else {
		e, ok = c.lru.Peek(k)
	}
	if ok && e.live(now) {
		return e.v, true
	}
	if ok {
		c.lru.Remove(k)
	}
	var zero V
	return zero, false
}

// Add sets k to v until until (zero: no expiry), replacing an entry of k and marking it the most
// recently used. It reports false only when a Refuse cache is full of live entries.
func (c *Cache[K, V]) Add(k K, v V, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addLocked(k, v, until, now)
}

// AddNew adds k only if it holds no live entry: it reports false for a key seen before (a replay)
// and, for a Refuse cache, when full.
func (c *Cache[K, V]) AddNew(k K, v V, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.lru.Peek(k); ok && e.live(now) {
		return false
	}
	return c.addLocked(k, v, until, now)
}

func (c *Cache[K, V]) addLocked(k K, v V, until, now time.Time) bool {
	if c.whenFull == Refuse && c.lru.Len() >= c.size && !c.lru.Contains(k) {
		c.pruneLocked(now)
		if c.lru.Len() >= c.size {
			return false
		}
	}
	c.lru.Add(k, entry[V]{v: v, until: until})
	return true
}

// pruneLocked removes every expired entry. It walks the whole cache, so it runs only when a
// Refuse cache is full.
func (c *Cache[K, V]) pruneLocked(now time.Time) {
	for _, k := range c.lru.Keys() {
		if e, ok := c.lru.Peek(k); ok && !e.live(now) {
			c.lru.Remove(k)
		}
	}
}

// Remove deletes k.
func (c *Cache[K, V]) Remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(k)
}

// Len is the number of entries held, expired ones included until they are looked up, evicted or
// pruned.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Purge removes every entry.
func (c *Cache[K, V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Purge()
}
