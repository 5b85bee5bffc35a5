package session

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zdgate/zdgate/internal/redistest"
)

// newRedisStore is a store on url with the test clock, as one replica.
func newRedisStore(t testing.TB, url string, clk *clock, mod func(*RedisConfig)) *RedisStore {
	t.Helper()
	cfg := RedisConfig{
		URL: url,
		Cookie: CookieConfig{
			Secure:  true,
			TTL:     12 * time.Hour,
			Secrets: fixedSecrets(keyNew),
			Now:     clk.Now,
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewRedisStore(cfg)
	if err != nil {
		t.Fatalf("NewRedisStore() error = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawRedis is a plain client for looking at what the store wrote.
func rawRedis(t testing.TB, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// saveTo runs Save against a request from j and applies the answer to j.
func saveTo(t testing.TB, store Store, j *jar, s *Session) http.Header {
	t.Helper()
	w := httptest.NewRecorder()
	if err := store.Save(context.Background(), w, j.request(), s); err != nil {
		t.Fatalf("Save() error = %v", err)
	}
	j.apply(t, w.Header())
	return w.Header()
}

// secretsOf lists what must never be readable outside the session: its
// tokens and claim values.
func secretsOf(s *Session) []string {
	out := []string{s.AccessToken, s.RefreshToken, s.IDToken, s.Subject, s.SID}
	for _, v := range s.Claims {
		if str, ok := v.(string); ok && len(str) >= 6 {
			out = append(out, str)
		}
	}
	return out
}

func TestRedisRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	clk := &clock{t: t0}
	store := newRedisStore(t, srv.URL(), clk, nil)
	for _, tc := range []struct {
		name    string
		session *Session
	}{
		{"small", smallSession(t0)},
		{"typical", typicalSession(t0)},
		{"large", largeSession(t0)}, // 10 KB: too much for one cookie, nothing for Redis
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.session.ID = NewID()
			j := newJar()
			saveTo(t, store, j, tc.session)
			if got := j.names(); !slices.Equal(got, []string{"_zdgate"}) {
				t.Fatalf("cookies after Save() = %v; want [_zdgate]", got)
			}
			got, err := store.Load(context.Background(), j.request())
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			assertSameSession(t, got, tc.session)
		})
	}
	if _, err := store.Load(context.Background(), requestWithCookies("app", "x")); err != ErrNotFound {
		t.Errorf("Load() without a session cookie: error = %v; want ErrNotFound", err)
	}
}

func TestRedisCookieHoldsOnlyTicket(t *testing.T) {
	srv := redistest.Start(t)
	store := newRedisStore(t, srv.URL(), &clock{t: t0}, nil)
	s := typicalSession(t0)
	header := saveTo(t, store, newJar(), s)

	lines := header.Values("Set-Cookie")
	if len(lines) != 1 {
		t.Fatalf("Save() wrote %d Set-Cookie lines; want 1: %q", len(lines), lines)
	}
	c, err := http.ParseSetCookie(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	// Version, nonce, expiry, key, the two marker hashes, ID and tag in base64:
	// about 210 bytes, where the sealed session itself is well over 2 KB.
	if len(c.Value) > 240 {
		t.Errorf("ticket is %d bytes; want at most 240 (only ID, key and marker hashes)", len(c.Value))
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.MaxAge != int((12*time.Hour).Seconds()) {
		t.Errorf("Set-Cookie = %q; want HttpOnly, Secure, SameSite=Lax, Max-Age of the session TTL", lines[0])
	}
	raw, _ := base64.RawURLEncoding.DecodeString(c.Value)
	for _, secret := range append(secretsOf(s), s.ID) {
		if strings.Contains(lines[0], secret) || bytes.Contains(raw, []byte(secret)) {
			t.Errorf("Set-Cookie carries %q", secret)
		}
	}
	tk, err := store.openTicket(c.Value)
	if err != nil || tk.id != s.ID {
		t.Errorf("ticket opens to ID %q, %v; want %q", tk.id, err, s.ID)
	}
}

func TestRedisTamperedTicket(t *testing.T) {
	srv := redistest.Start(t)
	clk := &clock{t: t0}
	store := newRedisStore(t, srv.URL(), clk, nil)
	j := newJar()
	s := smallSession(t0)
	saveTo(t, store, j, s)
	value := j.get("_zdgate")

	for i := range len(value) {
		if _, err := store.Load(context.Background(), requestWithCookies("_zdgate", flip(value, i))); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Load() with ticket byte %d of %d changed: error = %v; want ErrInvalid", i, len(value), err)
		}
	}

	otherSecret := newRedisStore(t, srv.URL(), clk, func(c *RedisConfig) { c.Cookie.Secrets = fixedSecrets(keyOld) })
	otherName := newRedisStore(t, srv.URL(), clk, func(c *RedisConfig) { c.Cookie.Name = "other" })
	cookieStore, _ := newStore(t, nil)
	cookieJar := newJar()
	save(t, cookieStore, cookieJar, smallSession(t0))
	large := newJar()
	save(t, cookieStore, large, largeSession(t0))
	// A ticket's bytes sealed as a cookie under the same name: the ticket's
	// additional data keeps the two kinds of sealed values apart.
	tk, err := store.openTicket(value)
	if err != nil {
		t.Fatal(err)
	}
	asCookie, err := store.cookies.sealer.Seal("_zdgate", tk.marshal(), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		store *RedisStore
		r     *http.Request
	}{
		{"retired secret", otherSecret, requestWithCookies("_zdgate", value)},
		{"other cookie name", otherName, requestWithCookies("other", value)},
		{"cookie-store session", store, cookieJar.request()},
		{"chunked cookie-store session", store, large.request()},
		{"sealed as a cookie, not a ticket", store, requestWithCookies("_zdgate", asCookie)},
		{"truncated", store, requestWithCookies("_zdgate", value[:len(value)/2])},
		{"too long", store, requestWithCookies("_zdgate", strings.Repeat("A", 4000))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := tc.store.Load(context.Background(), tc.r); !errors.Is(err, ErrInvalid) {
				t.Errorf("Load() = %v, %v; want ErrInvalid", got, err)
			}
		})
	}
	if _, err := store.Load(context.Background(), j.request()); err != nil {
		t.Errorf("Load() of the genuine ticket: error = %v", err)
	}
}

func TestRedisValueBoundToSessionID(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := rawRedis(t, srv)
	store := newRedisStore(t, srv.URL(), &clock{t: t0}, nil)
	alice, bob := smallSession(t0), smallSession(t0)
	alice.ID, bob.ID = NewID(), NewID()
	alice.AccessToken = "alice-access-token"
	aliceJar, bobJar := newJar(), newJar()
	saveTo(t, store, aliceJar, alice)
	saveTo(t, store, bobJar, bob)

	// Alice's stored value moved under Bob's ID (DUMP/RESTORE keeps the TTL).
	dump, err := rdb.Dump(ctx, store.keys.session(alice.ID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.RestoreReplace(ctx, store.keys.session(bob.ID), 0, dump).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := store.Load(context.Background(), bobJar.request()); !errors.Is(err, ErrInvalid) {
		t.Errorf("Load() of Bob with Alice's value = %v, %v; want ErrInvalid", got, err)
	}

	// Even under a ticket with Alice's key, her value does not open as
	// another session ID: the ID is bound in as additional data.
	tk, err := store.openTicket(aliceJar.get("_zdgate"))
	if err != nil {
		t.Fatal(err)
	}
	value, err := rdb.Get(ctx, store.keys.session(alice.ID)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	const forgedID = "forged-session-id"
	if err := rdb.Set(ctx, store.keys.session(forgedID), value, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	forged, err := store.sealTicket(ticket{id: forgedID, key: tk.key}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := store.Load(context.Background(), requestWithCookies("_zdgate", forged)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Load() of Alice's value under another ID with her key = %v, %v; want ErrInvalid", got, err)
	}
	if got, err := store.Load(context.Background(), aliceJar.request()); err != nil || got.AccessToken != alice.AccessToken {
		t.Errorf("Load() of Alice = %v, %v; want her session", got, err)
	}
}

func TestRedisDumpRevealsNothing(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := rawRedis(t, srv)
	store := newRedisStore(t, srv.URL(), &clock{t: t0}, nil)
	s := typicalSession(t0)
	j := newJar()
	saveTo(t, store, j, s)
	// Every kind of key: session, indexes, markers, a tombstone, a lock.
	other := typicalSession(t0)
	other.ID, other.Subject, other.SID = NewID(), "bob@example.com", "bob-idp-session"
	saveTo(t, store, newJar(), other)
	if err := store.Revocations().RevokeSID(ctx, other.SID); err != nil {
		t.Fatal(err)
	}
	if err := store.Revocations().RevokeSubject(ctx, other.Subject); err != nil {
		t.Fatal(err)
	}
	unlock, err := store.Lock(ctx, s.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	var dump bytes.Buffer
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		dump.WriteString(k + "\n")
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			dump.WriteString(rdb.Get(ctx, k).Val() + "\n")
		case "set":
			dump.WriteString(strings.Join(rdb.SMembers(ctx, k).Val(), "\n") + "\n")
		default:
			t.Errorf("key %q has type %q; want string or set", k, typ)
		}
	}
	if len(keys) < 8 {
		t.Fatalf("KEYS * = %q; want sessions, indexes, markers and a lock", keys)
	}
	tk, err := store.openTicket(j.get("_zdgate"))
	if err != nil {
		t.Fatal(err)
	}
	forbidden := append(secretsOf(s), secretsOf(other)...)
	forbidden = append(forbidden, string(tk.key[:]), hex.EncodeToString(tk.key[:]),
		base64.StdEncoding.EncodeToString(tk.key[:]), base64.RawURLEncoding.EncodeToString(tk.key[:]),
		string(keyNew), j.get("_zdgate"))
	for _, secret := range forbidden {
		if bytes.Contains(dump.Bytes(), []byte(secret)) {
			t.Errorf("Redis holds %q in the clear", secret)
		}
	}
}

func TestRedisTTLNeverExtended(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := rawRedis(t, srv)
	clk := &clock{t: t0}
	store := newRedisStore(t, srv.URL(), clk, nil)
	s := typicalSession(t0)
	j := newJar()
	saveTo(t, store, j, s)
	key := store.keys.session(s.ID)

	assertPTTL := func(key string, want time.Duration) {
		t.Helper()
		got := rdb.PTTL(ctx, key).Val()
		if got > want || got < want-time.Minute {
			t.Errorf("PTTL %s = %v; want about %v", key, got, want)
		}
	}
	assertPTTL(key, 12*time.Hour)
	assertPTTL(store.keys.sidIndex(s.SID), 12*time.Hour)
	assertPTTL(store.keys.subIndex(s.Subject), 12*time.Hour)

	// A refresh an hour later keeps the ticket and the absolute end.
	clk.Advance(time.Hour)
	s.AccessToken, s.ConfirmedAt = "refreshed-access-token", clk.Now()
	w := httptest.NewRecorder()
	if err := store.Save(context.Background(), w, j.request(), s); err != nil {
		t.Fatalf("Save() after refresh error = %v", err)
	}
	if lines := w.Header().Values("Set-Cookie"); len(lines) != 0 {
		t.Errorf("Save() of the same session wrote %q; want the cookie left as it is", lines)
	}
	assertPTTL(key, 11*time.Hour)
	if got, err := store.Load(context.Background(), j.request()); err != nil || got.AccessToken != s.AccessToken {
		t.Errorf("Load() after refresh = %v, %v; want the refreshed session", got, err)
	}

	// The store's clock ends it even where Redis's TTL would not yet.
	clk.Advance(11 * time.Hour)
	if got, err := store.Load(context.Background(), j.request()); !errors.Is(err, ErrExpired) {
		t.Errorf("Load() at the end of the lifetime = %v, %v; want ErrExpired", got, err)
	}
	if err := store.Save(context.Background(), httptest.NewRecorder(), j.request(), s); !errors.Is(err, ErrExpired) {
		t.Errorf("Save() at the end of the lifetime: error = %v; want ErrExpired", err)
	}
}

func TestRedisClear(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := rawRedis(t, srv)
	store := newRedisStore(t, srv.URL(), &clock{t: t0}, nil)
	s := smallSession(t0)
	j := newJar()
	saveTo(t, store, j, s)
	stale := j.request() // a request that was in flight during the sign-out

	w := httptest.NewRecorder()
	if err := store.Clear(context.Background(), w, j.request()); err != nil {
		t.Fatalf("Clear() error = %v", err)
	}
	if n := rdb.Exists(ctx, store.keys.session(s.ID)).Val(); n != 0 {
		t.Errorf("session key exists after Clear()")
	}
	j.apply(t, w.Header())
	if got := j.names(); len(got) != 0 {
		t.Errorf("cookies after Clear() = %v; want none", got)
	}
	if got, err := store.Load(context.Background(), stale); !errors.Is(err, ErrExpired) {
		t.Errorf("Load() with the cleared ticket = %v, %v; want ErrExpired", got, err)
	}
	// A refresh that finishes after the sign-out must not bring it back.
	if err := store.Save(context.Background(), httptest.NewRecorder(), stale, s); !errors.Is(err, ErrExpired) {
		t.Errorf("Save() of a cleared session: error = %v; want ErrExpired", err)
	}
	if n := rdb.Exists(ctx, store.keys.session(s.ID)).Val(); n != 0 {
		t.Errorf("Save() after Clear() stored the session again")
	}
}

func TestRedisLoginReplacesSession(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := rawRedis(t, srv)
	store := newRedisStore(t, srv.URL(), &clock{t: t0}, nil)
	before := smallSession(t0)
	j := newJar()
	saveTo(t, store, j, before)
	oldTicket := j.get("_zdgate")

	after := smallSession(t0)
	after.ID = NewID()
	saveTo(t, store, j, after)
	if j.get("_zdgate") == oldTicket {
		t.Errorf("a new session kept the old ticket")
	}
	if n := rdb.Exists(ctx, store.keys.session(before.ID)).Val(); n != 0 {
		t.Errorf("the replaced session is still in Redis")
	}
	if got, err := store.Load(context.Background(), j.request()); err != nil || got.ID != after.ID {
		t.Errorf("Load() after a new login = %v, %v; want the new session", got, err)
	}
}

func TestNewRedisStoreValidation(t *testing.T) {
	_, err := NewRedisStore(RedisConfig{
		URL:       "http://u:hunter2@example.com",
		Timeout:   -time.Second,
		KeyPrefix: "zd gate:",
		Cookie:    CookieConfig{Revoked: NewMemoryRevocations(time.Hour, 0, nil)},
	})
	if err == nil {
		t.Fatal("NewRedisStore() error = nil")
	}
	for _, want := range []string{"scheme", "timeout", "key prefix", "Revoked", "TTL", "secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NewRedisStore() error = %q; want it to mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("NewRedisStore() error = %q shows the password", err)
	}

	s, err := NewRedisStore(RedisConfig{
		URL:    "redis://127.0.0.1:1",
		Cookie: CookieConfig{TTL: time.Hour, Secrets: fixedSecrets(keyNew)},
	})
	if err != nil {
		t.Fatalf("NewRedisStore() with defaults error = %v", err)
	}
	defer s.Close()
	if s.timeout != DefaultRedisTimeout || s.keys.prefix != DefaultRedisKeyPrefix {
		t.Errorf("defaults = %v, %q; want %v, %q", s.timeout, s.keys.prefix, DefaultRedisTimeout, DefaultRedisKeyPrefix)
	}
	if !s.IsOwnCookie("_zdgate") || !s.IsOwnCookie("_zdgate_state") || s.IsOwnCookie("app") {
		t.Errorf("IsOwnCookie() does not follow the cookie name")
	}
}

// FuzzRedisTicket feeds arbitrary cookie values to the ticket opener, which
// needs no Redis: it must never panic, and only genuine tickets may open.
func FuzzRedisTicket(f *testing.F) {
	store := newRedisStore(f, "redis://127.0.0.1:1", &clock{t: t0}, nil)
	genuine := map[string]bool{}
	for i, id := range []string{"genuine-0", strings.Repeat("g", maxIDLen)} {
		tk := ticket{id: id}
		tk.key[0] = byte(i)
		value, err := store.sealTicket(tk, t0.Add(time.Hour))
		if err != nil {
			f.Fatal(err)
		}
		genuine[id] = true
		f.Add(value)
		f.Add(value[:len(value)-1])
		f.Add(flip(value, 20))
	}
	f.Add("")
	f.Add("AQ")
	f.Add(strings.Repeat("A", maxTicketLen+1))
	f.Fuzz(func(t *testing.T, value string) {
		tk, err := store.openTicket(value)
		if err == nil && !genuine[tk.id] {
			t.Fatalf("openTicket(%q) = %q; never sealed", value, tk.id)
		}
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired) {
			t.Fatalf("openTicket(%q) error = %v; want ErrInvalid or ErrExpired", value, err)
		}
	})
}

// BenchmarkRedisLoad is what a request pays to read its session from a local
// Redis: the ticket, a GET, the revocation markers, decryption. Compare with
// BenchmarkLoad (the cookie store) in the same run.
func BenchmarkRedisLoad(b *testing.B) {
	srv := redistest.Start(b)
	store := newRedisStore(b, srv.URL(), &clock{t: t0}, nil)
	j := newJar()
	saveTo(b, store, j, typicalSession(t0))
	r := j.request()
	r.Header.Set("Cookie", "app_pref=dark; _ga=GA1.2.3.4; "+r.Header.Get("Cookie"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := store.Load(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedisSave is a refresh: the same ticket, the session rewritten.
func BenchmarkRedisSave(b *testing.B) {
	srv := redistest.Start(b)
	store := newRedisStore(b, srv.URL(), &clock{t: t0}, nil)
	s := typicalSession(t0)
	j := newJar()
	saveTo(b, store, j, s)
	r := j.request()
	b.ReportAllocs()
	for b.Loop() {
		if err := store.Save(context.Background(), httptest.NewRecorder(), r, s); err != nil {
			b.Fatal(err)
		}
	}
}
