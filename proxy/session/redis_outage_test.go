package session

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/zdgate/zdgate/internal/redistest"
)

// outageBound is how long an operation may take against a Redis that is down
// or hangs, with the default 1s timeout: a loose bound, not a measurement, so
// that a loaded machine under -race cannot miss it; without the timeout, an
// operation on a hung Redis would wait for the test's own deadline.
const outageBound = 5 * time.Second

// assertUnavailable checks that op fails with ErrUnavailable, and with none of
// the errors that would end the session, within outageBound.
func assertUnavailable(t *testing.T, name string, op func() error) {
	t.Helper()
	start := time.Now()
	err := op()
	elapsed := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("%s with Redis down: error = %v; want ErrUnavailable", name, err)
	}
	for _, end := range []error{ErrNotFound, ErrInvalid, ErrExpired, ErrRevoked} {
		if errors.Is(err, end) {
			t.Errorf("%s with Redis down: error = %v; must not be %v", name, err, end)
		}
	}
	if elapsed > outageBound {
		t.Errorf("%s with Redis down took %v; want under %v", name, elapsed, outageBound)
	}
}

func TestRedisOutageAndRecovery(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	clk := &clock{t: t0}
	store := newRedisStore(t, srv.URL(), clk, nil)
	s := smallSession(t0)
	j := newJar()
	saveTo(t, store, j, s)
	if err := store.Ready(ctx); err != nil {
		t.Fatalf("Ready() error = %v", err)
	}

	srv.Stop()
	fresh := smallSession(t0)
	fresh.ID = NewID()
	assertUnavailable(t, "Ready()", func() error { return store.Ready(ctx) })
	assertUnavailable(t, "Load()", func() error { _, err := store.Load(context.Background(), j.request()); return err })
	assertUnavailable(t, "Save() of a refresh", func() error {
		return store.Save(context.Background(), httptest.NewRecorder(), j.request(), s)
	})
	w := httptest.NewRecorder()
	assertUnavailable(t, "Save() of a login", func() error { return store.Save(context.Background(), w, newJar().request(), fresh) })
	if lines := w.Header().Values("Set-Cookie"); len(lines) != 0 {
		t.Errorf("a failed Save() wrote %q", lines)
	}
	w = httptest.NewRecorder()
	assertUnavailable(t, "Clear()", func() error { return store.Clear(context.Background(), w, j.request()) })
	if lines := w.Header().Values("Set-Cookie"); len(lines) == 0 {
		t.Errorf("Clear() with Redis down left the cookie; want it expired all the same")
	}
	rev := store.Revocations()
	assertUnavailable(t, "RevokeSID()", func() error { return rev.RevokeSID(ctx, s.SID) })
	assertUnavailable(t, "RevokeSubject()", func() error { return rev.RevokeSubject(ctx, s.Subject) })
	assertUnavailable(t, "Revoked()", func() error { _, err := rev.Revoked(ctx, s); return err })
	assertUnavailable(t, "Lock()", func() error { _, err := store.Lock(ctx, s.ID, time.Second); return err })

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for store.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Ready() still failing 10s after Redis came back: %v", store.Ready(ctx))
		}
		time.Sleep(50 * time.Millisecond) // go-redis probes a failed server about once a second
	}
	// Without persistence the session is gone; the store itself works again.
	if got, err := store.Load(context.Background(), j.request()); !errors.Is(err, ErrExpired) {
		t.Errorf("Load() of a session lost with Redis's data = %v, %v; want ErrExpired", got, err)
	}
	again := newJar()
	saveTo(t, store, again, fresh)
	if got, err := store.Load(context.Background(), again.request()); err != nil || got.ID != fresh.ID {
		t.Errorf("Load() after recovery = %v, %v; want the new session", got, err)
	}
}

// TestRedisHungServerFailsFast points the store at a server that accepts
// connections and never answers, the worst case for a request: without the
// timeouts, each call would wait for go-redis's 5s defaults, times retries.
func TestRedisHungServerFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	store := newRedisStore(t, "redis://"+l.Addr().String(), &clock{t: t0}, nil)
	tk, err := store.sealTicket(ticket{id: "hung-session"}, t0.Add(time.Hour)) // sealing needs no Redis
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	assertUnavailable(t, "Ready()", func() error { return store.Ready(ctx) })
	assertUnavailable(t, "Load()", func() error {
		_, err := store.Load(context.Background(), requestWithCookies("_zdgate", tk))
		return err
	})
	assertUnavailable(t, "Save()", func() error {
		return store.Save(context.Background(), httptest.NewRecorder(), newJar().request(), smallSession(t0))
	})
}
