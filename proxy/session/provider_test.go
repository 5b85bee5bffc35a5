package session

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestEncodeProvider: the provider survives a round trip; a session without one is encoded
// exactly as before providers existed (so every cookie written before still opens, and single-IdP
// sessions do not grow), and a broken provider section is refused.
func TestEncodeProvider(t *testing.T) {
	s := typicalSession(t0)
	plain, err := marshalSession(s)
	if err != nil {
		t.Fatal(err)
	}
	s.Provider = "employees"
	tagged, err := marshalSession(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := unmarshalSession(tagged)
	if err != nil || got.Provider != "employees" {
		t.Fatalf("unmarshalSession() = %v (provider %q); want provider employees", err, got.Provider)
	}
	assertSameSession(t, got, s)
	// The tagged encoding is the old one with the section inserted before the claims.
	section := append([]byte{providerTag, byte(len("employees"))}, "employees"...)
	at := bytes.IndexByte(plain, '{') // the claims
	if want := append(append(append([]byte{}, plain[:at]...), section...), plain[at:]...); !bytes.Equal(tagged, want) {
		t.Fatalf("tagged encoding is not the untagged one plus the provider section")
	}
	old, err := unmarshalSession(plain)
	if err != nil || old.Provider != "" {
		t.Fatalf("a session encoded without a provider = %v, provider %q; want the default provider \"\"", err, old.Provider)
	}
	for name, b := range map[string][]byte{
		"zero length":  append(append([]byte{}, plain[:at]...), providerTag, 0),
		"overlong":     append(append([]byte{}, plain[:at]...), providerTag, 200, 'x'),
		"no length":    append(append([]byte{}, plain[:at]...), providerTag),
		"claims break": append(append(append([]byte{}, plain[:at]...), section...), "[1]"...),
	} {
		if _, err := unmarshalSession(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("unmarshalSession(%s) = %v; want ErrInvalid", name, err)
		}
	}
	// Every prefix of a tagged session fails or decodes without panicking.
	for n := range len(tagged) {
		if s, err := unmarshalSession(tagged[:n]); err == nil && s.Claims != nil && n < len(tagged) {
			t.Fatalf("unmarshalSession(first %d bytes) = claims %v; want an error", n, s.Claims)
		}
	}
}

// TestRevocationsScopedByProvider: two IdPs can both have a user "user-42" with a session
// "idp-session-7". A back-channel logout from one ends only its own sessions, in the memory list
// and through a cookie store; the default provider "" keeps its old names.
func TestRevocationsScopedByProvider(t *testing.T) {
	ctx := context.Background()
	rev := NewMemoryRevocations(12*time.Hour, 100, nil)
	store, clk := newStore(t, func(c *CookieConfig) { c.Revoked = rev })
	rev.now = clk.Now
	a, b, single := smallSession(t0), smallSession(t0), smallSession(t0)
	a.ID, b.ID, single.ID = NewID(), NewID(), NewID()
	a.Provider, b.Provider = "staff", "customers"
	ja, jb, js := newJar(), newJar(), newJar()
	save(t, store, ja, a)
	save(t, store, jb, b)
	save(t, store, js, single)
	clk.Advance(time.Minute)

	if err := ForProvider(rev, "customers").RevokeSID(ctx, b.SID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(context.Background(), jb.request()); !errors.Is(err, ErrRevoked) {
		t.Errorf("customers' session after its IdP's logout = %v; want ErrRevoked", err)
	}
	for name, j := range map[string]*jar{"staff": ja, "single-IdP": js} {
		if _, err := store.Load(context.Background(), j.request()); err != nil {
			t.Errorf("%s session with the same sid after the customers' logout: %v; want it alive", name, err)
		}
	}
	if err := ForProvider(rev, "staff").RevokeSubject(ctx, a.Subject); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(context.Background(), ja.request()); !errors.Is(err, ErrRevoked) {
		t.Errorf("staff session after RevokeSubject at staff = %v; want ErrRevoked", err)
	}
	if _, err := store.Load(context.Background(), js.request()); err != nil {
		t.Errorf("single-IdP session after the staff logout of the same sub: %v", err)
	}
	// The default provider is the list itself: its names are what they always were.
	if err := ForProvider(rev, "").RevokeSID(ctx, single.SID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(context.Background(), js.request()); !errors.Is(err, ErrRevoked) {
		t.Errorf("single-IdP session after ForProvider(\"\").RevokeSID = %v; want ErrRevoked", err)
	}
	if ForProvider(rev, "x").RevokeSID(ctx, "") == nil || ForProvider(rev, "x").RevokeSubject(ctx, "") == nil {
		t.Error("an empty sid or subject was accepted")
	}
}

// TestRedisRevocationsScopedByProvider: the same with the Redis store, whose indexes end the
// sessions at once: only the logged-out provider's session becomes a tombstone.
func TestRedisRevocationsScopedByProvider(t *testing.T) {
	ctx := context.Background()
	r1, r2, clk, srv := replicas(t)
	rdb := rawRedis(t, srv)
	a, b := smallSession(t0), smallSession(t0)
	a.ID, b.ID = NewID(), NewID()
	a.Provider, b.Provider = "staff", "customers"
	ja, jb := newJar(), newJar()
	saveTo(t, r1, ja, a)
	saveTo(t, r1, jb, b)
	clk.Advance(time.Minute)
	if err := ForProvider(r2.Revocations(), "customers").RevokeSubject(ctx, b.Subject); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.Load(context.Background(), jb.request()); !errors.Is(err, ErrRevoked) {
		t.Errorf("customers' session on the other replica = %v; want ErrRevoked", err)
	}
	if v := rdb.Get(ctx, r1.keys.session(b.ID)).Val(); v != redisTombstone {
		t.Errorf("customers' stored session = %q; want the tombstone", v)
	}
	if got, err := r1.Load(context.Background(), ja.request()); err != nil || got.Provider != "staff" {
		t.Errorf("staff session with the same subject = %v, %v; want it alive", got, err)
	}
	if err := ForProvider(r2.Revocations(), "staff").RevokeSID(ctx, a.SID); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.Load(context.Background(), ja.request()); !errors.Is(err, ErrRevoked) {
		t.Errorf("staff session after its sid's logout = %v; want ErrRevoked", err)
	}
}
