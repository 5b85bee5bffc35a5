package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestOpenedCacheIsOnlyAShortcut: a cookie opened once is not decrypted again, but every answer is
// what a full open would give: a retired secret, the lifetime and a revocation all still apply.
func TestOpenedCacheIsOnlyAShortcut(t *testing.T) {
	var mu sync.Mutex
	secrets := [][]byte{keyNew}
	revs := NewMemoryRevocations(12*time.Hour, 100, nil)
	store, clk := newStore(t, func(c *CookieConfig) {
		c.Secrets = func() [][]byte { mu.Lock(); defer mu.Unlock(); return secrets }
		c.Revoked = revs
	})
	revs.now = clk.Now
	j := newJar()
	save(t, store, j, smallSession(t0))
	first, err := store.Load(context.Background(), j.request())
	if err != nil {
		t.Fatal(err)
	}
	second, err := store.Load(context.Background(), j.request())
	if err != nil || second != first {
		t.Fatalf("second Load() = %p, %v; want the opened session %p again", second, err, first)
	}
	if n := testing.AllocsPerRun(100, func() { store.Load(context.Background(), j.request()) }); n > 20 {
		t.Errorf("a cached Load allocates %v times; want well under the ~55 of a full open (including the request itself)", n)
	}

	// Revocation is checked on every Load, cached or not.
	revs.RevokeSID(context.Background(), "idp-session-7")
	if _, err := store.Load(context.Background(), j.request()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Load() after revocation = %v; want ErrRevoked", err)
	}

	j2 := newJar()
	other := smallSession(t0)
	other.ID, other.SID = "sess-other", "idp-session-8"
	save(t, store, j2, other)
	if _, err := store.Load(context.Background(), j2.request()); err != nil {
		t.Fatal(err)
	}
	// The lifetime is checked on every Load.
	clk.Advance(12*time.Hour + time.Second)
	if _, err := store.Load(context.Background(), j2.request()); !errors.Is(err, ErrExpired) {
		t.Fatalf("cached Load() past the TTL = %v; want ErrExpired", err)
	}
	clk.t = t0

	// Retiring the secret makes the cached cookie unopenable at once.
	mu.Lock()
	secrets = [][]byte{keyOld}
	mu.Unlock()
	if _, err := store.Load(context.Background(), j2.request()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("cached Load() after the secret was retired = %v; want ErrInvalid", err)
	}
}
