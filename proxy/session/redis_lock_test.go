package session

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRedisLockExcludes(t *testing.T) {
	a, b, _, _ := replicas(t)
	const perReplica = 25
	var holders, overlaps, acquired atomic.Int32
	var wg sync.WaitGroup
	for _, store := range []*RedisStore{a, b} {
		wg.Go(func() {
			for range perReplica {
				unlock, err := store.Lock(context.Background(), "sess-1", 10*time.Second)
				if err != nil {
					t.Errorf("Lock() error = %v", err)
					return
				}
				acquired.Add(1)
				if holders.Add(1) > 1 {
					overlaps.Add(1)
				}
				time.Sleep(time.Millisecond) // hold it long enough for the other to try
				holders.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Errorf("two replicas held the lock at once %d times", n)
	}
	if n := acquired.Load(); n != 2*perReplica {
		t.Errorf("lock acquired %d times; want %d", n, 2*perReplica)
	}
}

func TestRedisUnlockOnlyOwn(t *testing.T) {
	ctx := context.Background()
	a, _, _, srv := replicas(t)
	rdb := rawRedis(t, srv)
	key := a.keys.lock("sess-2")

	unlock, err := a.Lock(ctx, "sess-2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// As if this lock had expired and another request had taken it.
	if err := rdb.Set(ctx, key, "someone-elses-token", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	unlock()
	if got := rdb.Get(ctx, key).Val(); got != "someone-elses-token" {
		t.Errorf("lock after a stale unlock() = %q; want the new holder's token", got)
	}

	rdb.Del(ctx, key)
	unlock, err = a.Lock(ctx, "sess-2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	unlock() // twice is harmless
	if n := rdb.Exists(ctx, key).Val(); n != 0 {
		t.Errorf("lock still held after unlock()")
	}
}

func TestRedisLockExpires(t *testing.T) {
	ctx := context.Background()
	a, b, _, srv := replicas(t)
	rdb := rawRedis(t, srv)
	const ttl = 300 * time.Millisecond

	if _, err := a.Lock(ctx, "sess-3", ttl); err != nil { // never unlocked: a crashed replica
		t.Fatal(err)
	}
	if got := rdb.PTTL(ctx, a.keys.lock("sess-3")).Val(); got <= 0 || got > ttl {
		t.Errorf("PTTL of the lock = %v; want in (0, %v]", got, ttl)
	}
	// B waits for the abandoned lock to expire instead of failing.
	unlock, err := b.Lock(ctx, "sess-3", ttl)
	if err != nil {
		t.Fatalf("Lock() on B after A's lock expired: error = %v", err)
	}
	unlock()

	// A lock held for longer than the caller will wait.
	if _, err := a.Lock(ctx, "sess-4", time.Minute); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(short, "sess-4", time.Minute); !errors.Is(err, ErrLocked) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock() of a held lock until ctx ends: error = %v; want ErrLocked and DeadlineExceeded", err)
	}
	if _, err := b.Lock(ctx, "sess-4", 20*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("Lock() of a lock held beyond ttl: error = %v; want ErrLocked", err)
	}

	for _, tc := range []struct {
		id  string
		ttl time.Duration
	}{{"", time.Second}, {"sess-5", 0}, {"sess-5", -time.Second}} {
		if _, err := a.Lock(ctx, tc.id, tc.ttl); err == nil {
			t.Errorf("Lock(%q, %v) error = nil", tc.id, tc.ttl)
		}
	}
}
