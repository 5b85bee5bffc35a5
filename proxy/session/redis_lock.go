package session

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLocked means Lock gave up: another request held the session's lock for
// the whole wait, or the caller's context ended first.
var ErrLocked = errors.New("session: locked by another request")

// unlockScript deletes KEYS[1] only if it still holds this locker's token
// ARGV[1]: a lock that expired and was taken by someone else stays theirs.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

const (
	lockMinBackoff = 5 * time.Millisecond
	lockMaxBackoff = 100 * time.Millisecond
)

// Lock takes the session's refresh lock across replicas, so that two of them
// never both spend the same (rotating) refresh token. It waits for a lock held
// elsewhere for up to ttl, by which time that lock has expired, and returns
// ErrLocked if it still cannot have it, or when ctx ends (wrapping ctx's
// error). Redis failures are ErrUnavailable.
//
// The lock expires after ttl even if unlock is never called, so ttl must
// cover the refresh: the IdP call plus Save. unlock releases the lock only if
// it is still this caller's, never one taken after it expired; it is safe to
// call more than once, and its failure is harmless (the lock expires).
//
// The intended use: Lock, Load again (Load always reads Redis, so it sees a
// refresh another replica just saved), refresh only if still stale, Save,
// unlock.
func (s *RedisStore) Lock(ctx context.Context, sessionID string, ttl time.Duration) (unlock func(), err error) {
	switch {
	case sessionID == "" || len(sessionID) > maxIDLen:
		return nil, fmt.Errorf("session: lock: session ID must be 1 to %d bytes", maxIDLen)
	case ttl < time.Millisecond:
		return nil, fmt.Errorf("session: lock: ttl must be at least 1ms, got %v", ttl)
	}
	key := s.keys.lock(sessionID)
	token := NewID()
	// Redis expires the lock in real time, so the wait is measured in real
	// time too, not with the store's clock.
	// A little longer than ttl, so that a lock abandoned just before the first try has surely
	// expired (timers and Redis' expiry are not exact) when the last try is made.
	deadline := time.Now().Add(ttl + max(ttl/10, 50*time.Millisecond))
	backoff := lockMinBackoff
	for last := false; ; {
		ok, err := s.tryLock(ctx, key, token, ttl)
		if err != nil {
			return nil, err
		}
		if ok {
			return s.unlocker(ctx, key, token), nil
		}
		if last {
			return nil, ErrLocked
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			wait, last = 0, true // one more try at the deadline
		}
		// Jitter keeps waiters on several replicas from retrying in step.
		wait = min(wait, backoff/2+rand.N(backoff/2+1))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("%w: %w", ErrLocked, ctx.Err())
		case <-timer.C:
		}
		backoff = min(2*backoff, lockMaxBackoff)
	}
}

func (s *RedisStore) tryLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	opCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ok, err := s.client.SetNX(opCtx, key, token, ttl).Result()
	switch {
	case err == nil:
		return ok, nil
	case ctx.Err() != nil:
		// The caller gave up, whatever Redis was doing.
		return false, fmt.Errorf("%w: %w", ErrLocked, ctx.Err())
	default:
		return false, unavailable("lock", err)
	}
}

func (s *RedisStore) unlocker(ctx context.Context, key, token string) func() {
	// Unlocking must work even after the request that locked has ended.
	ctx = context.WithoutCancel(ctx)
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(ctx, s.timeout)
			defer cancel()
			_ = unlockScript.Run(ctx, s.client, []string{key}, token).Err()
		})
	}
}
