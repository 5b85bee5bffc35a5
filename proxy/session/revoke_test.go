package session

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestMemoryRevocations(t *testing.T) {
	ctx := context.Background()
	const ttl = 12 * time.Hour
	revoked := func(t *testing.T, m *MemoryRevocations, s *Session) bool {
		t.Helper()
		got, err := m.Revoked(ctx, s)
		if err != nil {
			t.Fatalf("Revoked() error = %v", err)
		}
		return got
	}

	t.Run("sid", func(t *testing.T) {
		clk := &clock{t: t0}
		m := NewMemoryRevocations(ttl, 10, clk.Now)
		s := &Session{ID: "a", Subject: "u", SID: "sid-1", CreatedAt: t0}
		other := &Session{ID: "b", Subject: "u", SID: "sid-2", CreatedAt: t0}
		noSID := &Session{ID: "c", Subject: "u", CreatedAt: t0}
		if revoked(t, m, s) {
			t.Fatal("Revoked() = true before any revocation")
		}
		clk.Advance(time.Minute)
		if err := m.RevokeSID(ctx, "sid-1"); err != nil {
			t.Fatal(err)
		}
		if !revoked(t, m, s) {
			t.Error("Revoked() = false for the revoked sid")
		}
		if revoked(t, m, other) || revoked(t, m, noSID) {
			t.Error("Revoked() = true for another sid, or for no sid")
		}
		if err := m.RevokeSID(ctx, ""); err == nil {
			t.Error("RevokeSID(\"\") = nil; want an error")
		}
	})

	t.Run("session id", func(t *testing.T) {
		clk := &clock{t: t0}
		m := NewMemoryRevocations(ttl, 10, clk.Now)
		s := &Session{ID: "a", Subject: "u", SID: "sid-1", CreatedAt: t0}
		sameUser := &Session{ID: "b", Subject: "u", SID: "sid-1", CreatedAt: t0}
		if err := m.RevokeSession(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if !revoked(t, m, s) {
			t.Error("Revoked() = false for the signed-out session")
		}
		if revoked(t, m, sameUser) {
			t.Error("Revoked() = true for another session of the same user and sid")
		}
		clk.Advance(ttl)
		if revoked(t, m, s) {
			t.Error("Revoked() = true after the session TTL; the entry should have lapsed")
		}
		if err := m.RevokeSession(ctx, ""); err == nil {
			t.Error("RevokeSession(\"\") = nil; want an error")
		}
	})

	t.Run("subject before time", func(t *testing.T) {
		clk := &clock{t: t0}
		m := NewMemoryRevocations(ttl, 10, clk.Now)
		before := &Session{ID: "a", Subject: "u", CreatedAt: t0}
		clk.Advance(time.Hour)
		same := &Session{ID: "b", Subject: "u", CreatedAt: clk.Now()}
		if err := m.RevokeSubject(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		after := &Session{ID: "c", Subject: "u", CreatedAt: clk.Now()}
		otherUser := &Session{ID: "d", Subject: "v", CreatedAt: t0}
		if !revoked(t, m, before) || !revoked(t, m, same) {
			t.Error("Revoked() = false for a session created before RevokeSubject")
		}
		if revoked(t, m, after) {
			t.Error("Revoked() = true for a login after RevokeSubject")
		}
		if revoked(t, m, otherUser) {
			t.Error("Revoked() = true for another subject")
		}
		if err := m.RevokeSubject(ctx, ""); err == nil {
			t.Error("RevokeSubject(\"\") = nil; want an error")
		}
	})

	t.Run("expiry after TTL", func(t *testing.T) {
		clk := &clock{t: t0}
		m := NewMemoryRevocations(ttl, 10, clk.Now)
		s := &Session{ID: "a", Subject: "u", SID: "sid-1", CreatedAt: t0}
		_ = m.RevokeSID(ctx, "sid-1")
		_ = m.RevokeSubject(ctx, "u")
		clk.Advance(ttl - time.Nanosecond)
		if !revoked(t, m, s) {
			t.Fatal("Revoked() = false just before the entry's TTL")
		}
		clk.Advance(time.Nanosecond)
		if revoked(t, m, s) {
			t.Error("Revoked() = true after the entry's TTL")
		}
		_ = m.RevokeSID(ctx, "sid-2")
		if n := m.Len(); n != 1 {
			t.Errorf("Len() = %d; want 1: the lookups that found entries expired dropped them", n)
		}
	})

	t.Run("bounded, oldest evicted", func(t *testing.T) {
		clk := &clock{t: t0}
		m := NewMemoryRevocations(ttl, 3, clk.Now)
		sessions := make([]*Session, 5)
		for i := range sessions {
			sessions[i] = &Session{ID: fmt.Sprint(i), Subject: "u", SID: fmt.Sprint("sid-", i), CreatedAt: t0}
			clk.Advance(time.Second)
			_ = m.RevokeSID(ctx, sessions[i].SID)
			if n := m.Len(); n > 3 {
				t.Fatalf("Len() = %d; want at most 3", n)
			}
		}
		for i, s := range sessions {
			if got, want := revoked(t, m, s), i >= 2; got != want {
				t.Errorf("Revoked(session %d) = %v; want %v", i, got, want)
			}
		}
		// Revoking again refreshes an entry, so it is no longer the oldest.
		_ = m.RevokeSID(ctx, "sid-2")
		_ = m.RevokeSID(ctx, "sid-5")
		if !revoked(t, m, sessions[2]) || revoked(t, m, sessions[3]) {
			t.Error("a refreshed entry was evicted before an older one")
		}
	})

	t.Run("defaults", func(t *testing.T) {
		m := NewMemoryRevocations(0, 0, nil)
		if m.max != DefaultMaxRevocations {
			t.Errorf("max = %d; want %d", m.max, DefaultMaxRevocations)
		}
		_ = m.RevokeSubject(ctx, "u")
		if !revoked(t, m, &Session{Subject: "u", CreatedAt: time.Now().Add(-time.Hour)}) {
			t.Error("Revoked() = false with no TTL")
		}
	})
}

type failingRevocations struct{ *MemoryRevocations }

func (failingRevocations) Revoked(context.Context, *Session) (bool, error) {
	return false, errors.New("backend down")
}

func TestLoadChecksRevocations(t *testing.T) {
	ctx := context.Background()
	rev := NewMemoryRevocations(12*time.Hour, 100, nil)
	store, clk := newStore(t, func(c *CookieConfig) { c.Revoked = rev })
	rev.now = clk.Now

	j := newJar()
	save(t, store, j, smallSession(t0))
	if _, err := store.Load(context.Background(), j.request()); err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	clk.Advance(time.Minute)
	_ = rev.RevokeSID(ctx, "idp-session-7")
	if s, err := store.Load(context.Background(), j.request()); !errors.Is(err, ErrRevoked) || s != nil {
		t.Errorf("Load() after RevokeSID = %v, %v; want nil, ErrRevoked", s, err)
	}

	// A new login of the same user after a subject-wide logout works.
	_ = rev.RevokeSubject(ctx, "user-42")
	clk.Advance(time.Second)
	fresh := smallSession(clk.Now())
	fresh.SID = "idp-session-8"
	save(t, store, j, fresh)
	if _, err := store.Load(context.Background(), j.request()); err != nil {
		t.Errorf("Load() of a login after RevokeSubject: error = %v", err)
	}

	failing, _ := newStore(t, func(c *CookieConfig) { c.Revoked = failingRevocations{rev} })
	if s, err := failing.Load(context.Background(), j.request()); err == nil || s != nil ||
		errors.Is(err, ErrRevoked) || errors.Is(err, ErrInvalid) {
		t.Errorf("Load() with the revocation backend down = %v, %v; want nil and the backend's error", s, err)
	}
}
