package session

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zdgate/zdgate/internal/redistest"
)

// keysOn counts the keys with prefix on one node.
func keysOn(t *testing.T, addr, prefix string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	keys, err := c.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatalf("KEYS on %s: %v", addr, err)
	}
	return len(keys)
}

// TestRedisClusterEveryOperation runs every store operation against a real 3-primary cluster
// with the default key prefix, whose keys hash to different slots: a multi-key command, a MULTI or
// a script that touched keys of two slots would fail with CROSSSLOT. It also shows that sessions
// spread over every primary, and that a hash-tag prefix keeps them on one.
func TestRedisClusterEveryOperation(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartCluster(t, redistest.ClusterOptions{ReplicasPerPrimary: -1})
	clk := &clock{t: t0}
	store := newRedisStore(t, cl.URL(), clk, nil)

	var jars []*jar
	for i := range 60 {
		s := smallSession(t0)
		s.ID, s.Subject, s.SID = NewID(), fmt.Sprintf("user-%d", i), fmt.Sprintf("idp-%d", i)
		j := newJar()
		saveTo(t, store, j, s)
		jars = append(jars, j)
	}
	for _, m := range cl.Masters() {
		if n := keysOn(t, m.Addr(), DefaultRedisKeyPrefix+"s:"); n == 0 {
			t.Errorf("primary %s holds no session of 60; want them spread over every primary", m.Addr())
		} else {
			t.Logf("primary %s holds %d of 60 sessions", m.Addr(), n)
		}
	}

	j := jars[0]
	s, err := store.Load(context.Background(), j.request())
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	s.ConfirmedAt = clk.Now()
	if err := store.Save(context.Background(), httptest.NewRecorder(), j.request(), s); err != nil {
		t.Fatalf("Save() of a refresh = %v", err)
	}
	unlock, err := store.Lock(ctx, s.ID, time.Second)
	if err != nil {
		t.Fatalf("Lock() = %v", err)
	}
	if _, err := store.Lock(ctx, s.ID, 50*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("second Lock() = %v; want ErrLocked", err)
	}
	unlock()
	if unlock2, err := store.Lock(ctx, s.ID, time.Second); err != nil {
		t.Errorf("Lock() after unlock = %v", err)
	} else {
		unlock2()
	}
	rev := store.Revocations()
	if err := rev.RevokeSID(ctx, s.SID); err != nil {
		t.Fatalf("RevokeSID() = %v", err)
	}
	if _, err := store.Load(context.Background(), j.request()); !errors.Is(err, ErrRevoked) {
		t.Errorf("Load() after RevokeSID() = %v; want ErrRevoked", err)
	}
	other, err := store.Load(context.Background(), jars[1].request())
	if err != nil {
		t.Fatal(err)
	}
	if err := rev.RevokeSubject(ctx, other.Subject); err != nil {
		t.Fatalf("RevokeSubject() = %v", err)
	}
	if revoked, err := rev.Revoked(ctx, other); err != nil || !revoked {
		t.Errorf("Revoked() after RevokeSubject() = %v, %v; want true", revoked, err)
	}
	if _, err := store.Load(context.Background(), jars[1].request()); !errors.Is(err, ErrRevoked) {
		t.Errorf("Load() after RevokeSubject() = %v; want ErrRevoked", err)
	}
	// Clear with two tickets in the request: two keys, two slots.
	if err := store.Clear(context.Background(), httptest.NewRecorder(), requestWithCookies("_zdgate", jars[2].get("_zdgate"), "_zdgate", jars[3].get("_zdgate"))); err != nil {
		t.Fatalf("Clear() = %v", err)
	}
	for _, k := range []*jar{jars[2], jars[3]} {
		if _, err := store.Load(context.Background(), k.request()); !errors.Is(err, ErrExpired) {
			t.Errorf("Load() after Clear() = %v; want ErrExpired", err)
		}
	}
	// A login replacing the sessions of two earlier tickets deletes both.
	fresh := smallSession(t0)
	fresh.ID = NewID()
	w := httptest.NewRecorder()
	if err := store.Save(context.Background(), w, requestWithCookies("_zdgate", jars[4].get("_zdgate"), "_zdgate", jars[5].get("_zdgate")), fresh); err != nil {
		t.Fatalf("Save() of a login over two tickets = %v", err)
	}
	if err := store.Ready(ctx); err != nil {
		t.Errorf("Ready() = %v", err)
	}

	tagged := newRedisStore(t, cl.URL(), clk, func(c *RedisConfig) { c.KeyPrefix = "{zdgate}:" })
	for range 20 {
		s := smallSession(t0)
		s.ID = NewID()
		saveTo(t, tagged, newJar(), s)
	}
	holding := 0
	for _, m := range cl.Masters() {
		if keysOn(t, m.Addr(), "{zdgate}:") > 0 {
			holding++
		}
	}
	if holding != 1 {
		t.Errorf("sessions under the prefix {zdgate}: are on %d primaries; want 1 (the hash tag)", holding)
	}
}

// clusterRecoveryBound is how long after a primary is killed every session must load again: the
// replica takes over after the 1s node timeout plus an election, and the store must then find it.
// Loose on purpose (go-redis on its own waits for its 60s periodic reload, redis/go-redis#3979).
const clusterRecoveryBound = 15 * time.Second

// TestRedisClusterPrimaryFailover kills a primary with SIGKILL and checks that while its replica
// takes over, the store only says ErrUnavailable (the proxy's 503: never a logout), and that
// every session loads again soon after, with locking and saving working.
func TestRedisClusterPrimaryFailover(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartCluster(t, redistest.ClusterOptions{})
	clk := &clock{t: t0}
	store := newRedisStore(t, cl.URL(), clk, nil)
	var jars []*jar
	for range 30 {
		s := smallSession(t0)
		s.ID = NewID()
		j := newJar()
		saveTo(t, store, j, s)
		jars = append(jars, j)
	}
	cl.Sync()
	victim := cl.Masters()[0]
	onVictim := keysOn(t, victim.Addr(), DefaultRedisKeyPrefix+"s:")
	if onVictim == 0 {
		t.Fatalf("no session on the primary to kill")
	}

	killed := time.Now()
	victim.Stop()
	var unavailable int
	var lastFailure time.Duration
	for {
		failed := 0
		for _, j := range jars {
			_, err := store.Load(context.Background(), j.request())
			switch {
			case err == nil:
			case errors.Is(err, ErrUnavailable):
				failed++
			default:
				t.Fatalf("Load() %v after the kill = %v; want only ErrUnavailable during the failover", time.Since(killed), err)
			}
		}
		if failed == 0 {
			break
		}
		unavailable += failed
		lastFailure = time.Since(killed)
		if lastFailure > clusterRecoveryBound {
			t.Fatalf("%d of %d sessions still unavailable %v after the primary was killed", failed, len(jars), lastFailure)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("primary with %d of %d sessions killed: loads failed (ErrUnavailable) for %v, %d failed loads, no session lost",
		onVictim, len(jars), lastFailure.Round(time.Millisecond), unavailable)
	s, err := store.Load(context.Background(), jars[0].request())
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := store.Lock(ctx, s.ID, time.Second)
	if err != nil {
		t.Fatalf("Lock() after failover = %v", err)
	}
	s.ConfirmedAt = clk.Now()
	if err := store.Save(context.Background(), httptest.NewRecorder(), jars[0].request(), s); err != nil {
		t.Errorf("Save() after failover = %v", err)
	}
	unlock()
}
