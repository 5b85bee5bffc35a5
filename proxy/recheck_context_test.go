package proxy

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zdgate/zdgate/internal/redistest"
	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/proxy/session"
)

// watcher is middleware that reports when the request marked "X-Test-Leader" has been given up by
// its client (its context ends), and how many requests are inside zdgate.
type watcher struct {
	inside     atomic.Int32
	leaderGone chan struct{}
}

func newWatcher() *watcher { return &watcher{leaderGone: make(chan struct{})} }

func (wt *watcher) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wt.inside.Add(1)
		defer wt.inside.Add(-1)
		if r.Header.Get("X-Test-Leader") != "" {
			go func() { <-r.Context().Done(); close(wt.leaderGone) }()
		}
		next.ServeHTTP(w, r)
	})
}

// waitInside waits (bounded) until n requests are inside zdgate.
func (wt *watcher) waitInside(t *testing.T, n int32) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); wt.inside.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests inside zdgate; want %d", wt.inside.Load(), n)
		}
	}
}

// TestRecheckOutlivesTheBrowserThatStartedIt: in Redis mode, the browser whose request started a
// shared re-check navigates away while the refresh is at the IdP. The re-check must finish on its
// own: the rotated refresh token is saved, the requests waiting on the same re-check get their
// tokens (not 503), and the next request does not present the old refresh token again, which an
// IdP with reuse detection answers by revoking the whole grant (the user would be logged out).
func TestRecheckOutlivesTheBrowserThatStartedIt(t *testing.T) {
	rs := redistest.Start(t)
	wt := newWatcher()
	st := newStack(t, stackOpts{redisURL: rs.URL(), idp: oidctest.Options{RefreshReuseRevokesGrant: true}, wrap: wt.wrap})
	st.login(st.client, "/")
	before, err := st.sessionOf(st.client)
	if err != nil {
		t.Fatal(err)
	}
	st.idp.ResetCounts()
	st.clock.Advance(2 * time.Minute) // the session is due for a re-check
	arrived, release := st.idp.HoldRefreshes()
	defer release()

	// The leader: a browser that leaves mid-refresh.
	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	req, _ := http.NewRequestWithContext(ctx, "GET", st.front.URL+"/zendesk/token", nil)
	req.Header.Set("X-Test-Leader", "1")
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		if res, err := st.client.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	<-arrived // the leader's refresh is at the IdP, holding the session's lock

	// Other tabs of the same browser ask for a token meanwhile and wait on the same re-check.
	const waiters = 3
	var wg sync.WaitGroup
	codes := make(chan string, waiters)
	for range waiters {
		wg.Go(func() {
			res, body := st.do(st.client, "GET", "/zendesk/token", nil)
			codes <- res.Status + " " + body
		})
	}
	wt.waitInside(t, 1+waiters)
	leave()
	<-wt.leaderGone // zdgate has seen the leader's client go
	release()
	wg.Wait()
	close(codes)
	for c := range codes {
		if c[:3] != "200" {
			t.Errorf("a request waiting on the re-check got %s; want its token", c)
		}
	}
	<-leaderDone
	if n := counterValue(t, st.reg, "zdgate_http_requests_total", "code", "499"); n != 1 {
		t.Errorf("zdgate_http_requests_total{code=499} = %v; want the leader that left counted once", n)
	}

	after, err := st.sessionOf(st.client)
	if err != nil {
		t.Fatalf("session after the re-check: %v", err)
	}
	if after.RefreshToken == before.RefreshToken {
		t.Error("the store still holds the rotated-away refresh token; want the new one saved")
	}
	if res, body := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Errorf("next request = %d %s; want a token (the session lives on)", res.StatusCode, body)
	}
	st.clock.Advance(2 * time.Minute) // and the next re-check spends the new refresh token
	if res, body := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Errorf("request at the next re-check = %d %s; want a token", res.StatusCode, body)
	}
	if asked, honoured := st.idp.Count("token.refresh"), len(st.idp.Refreshes()); asked != 2 || honoured != 2 {
		t.Errorf("IdP refresh requests = %d, honoured = %d; want 2 and 2 (no refresh token presented twice)", asked, honoured)
	}
	if n := counterValue(t, st.reg, "zdgate_sessions_ended_total", "reason", "revoked"); n != 0 {
		t.Errorf("sessions_ended{revoked} = %v; want 0", n)
	}
}

// TestRecheckGivesUpOnALockHeldByADeadReplica: a replica that died while it re-checked a session
// leaves the session's refresh lock in Redis until the lock's TTL. Requests for that session on
// another replica answer 503 after the lock wait, rather than hang until the lock expires, and
// keep the session; once the lock is gone, the next request refreshes it.
func TestRecheckGivesUpOnALockHeldByADeadReplica(t *testing.T) {
	rs := redistest.Start(t)
	st := newStack(t, stackOpts{redisURL: rs.URL()})
	st.proxy.budget.wait = 100 * time.Millisecond
	st.login(st.client, "/")
	s, err := st.sessionOf(st.client)
	if err != nil {
		t.Fatal(err)
	}
	st.idp.ResetCounts()
	st.clock.Advance(2 * time.Minute)
	dead, err := st.store.(locker).Lock(context.Background(), s.ID, time.Hour) // never unlocked by its holder
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	res, body := st.do(st.client, "GET", "/zendesk/token", nil)
	took := time.Since(start)
	if res.StatusCode != http.StatusServiceUnavailable || jsonBody(t, body)["error"] != "session_store_unavailable" {
		t.Fatalf("token while a dead replica holds the lock = %d %s; want 503 session_store_unavailable", res.StatusCode, body)
	}
	if ttl := st.proxy.budget.lockTTL(); took >= ttl {
		t.Errorf("answered after %v; want well before a lock TTL (%v)", took, ttl)
	}
	if n := st.idp.Count("token.refresh"); n != 0 {
		t.Errorf("refresh grants while locked = %d; want 0", n)
	}

	dead() // the lock expires
	if res, body := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Fatalf("token once the lock is gone = %d %s; want the session kept", res.StatusCode, body)
	}
	if n := st.idp.Count("token.refresh"); n != 1 {
		t.Errorf("refresh grants = %d; want 1", n)
	}
}

func TestRecheckBudget(t *testing.T) {
	rs := redistest.Start(t)
	redis, err := session.NewRedisStore(session.RedisConfig{URL: rs.URL(), Cookie: session.CookieConfig{Name: "_zdgate", TTL: time.Hour, Secrets: func() [][]byte { return [][]byte{testCookieSecret} }}})
	if err != nil {
		t.Fatal(err)
	}
	defer redis.Close()
	cookies, err := session.NewCookieStore(session.CookieConfig{Name: "_zdgate", TTL: time.Hour, Secrets: func() [][]byte { return [][]byte{testCookieSecret} }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                    string
		b                       recheckBudget
		hold, ttl, total, waits time.Duration
	}{
		// The defaults: a 10 s IdP client, Redis' 1 s per round trip.
		{"redis", newRecheckBudget(10*time.Second, redis), 12 * time.Second, 13 * time.Second, 14 * time.Second, lockWait},
		{"redis, no IdP timeout set", newRecheckBudget(0, redis), 12 * time.Second, 13 * time.Second, 14 * time.Second, lockWait},
		{"cookies: no lock", newRecheckBudget(3*time.Second, cookies), 3 * time.Second, 3 * time.Second, 3 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.hold(); got != tc.hold {
				t.Errorf("hold() = %v; want %v", got, tc.hold)
			}
			if got := tc.b.lockTTL(); got != tc.ttl {
				t.Errorf("lockTTL() = %v; want %v", got, tc.ttl)
			}
			if got := tc.b.total(); got != tc.total {
				t.Errorf("total() = %v; want %v", got, tc.total)
			}
			if tc.b.wait != tc.waits {
				t.Errorf("wait = %v; want %v", tc.b.wait, tc.waits)
			}
			if tc.b.lockTTL() < tc.b.hold() {
				t.Errorf("lockTTL() %v < hold() %v: the lock would expire under a live re-check", tc.b.lockTTL(), tc.b.hold())
			}
		})
	}
}
