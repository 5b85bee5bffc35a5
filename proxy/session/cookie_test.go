package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCookieRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name      string
		session   *Session
		wantNames []string
	}{
		{"small", smallSession(t0), []string{"_zdgate"}},
		{"large", largeSession(t0), []string{"_zdgate_0", "_zdgate_1", "_zdgate_2", "_zdgate_3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, _ := newStore(t, nil)
			j := newJar()
			save(t, store, j, tc.session)
			if got := j.names(); !slices.Equal(got, tc.wantNames) {
				t.Fatalf("cookies after Save() = %v; want %v", got, tc.wantNames)
			}
			got, err := store.Load(context.Background(), j.request())
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			assertSameSession(t, got, tc.session)
		})
	}
}

func TestSetCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secure bool
		domain string
		path   string
	}{
		{"defaults", true, "", "/"},
		{"insecure with domain and path", false, "example.com", "/app"},
		{"long domain and path", true, strings.Repeat("sub.", 50) + "example.com", "/" + strings.Repeat("p", 250)},
	} {
		for _, size := range []string{"small", "large"} {
			t.Run(tc.name+"/"+size, func(t *testing.T) {
				store, _ := newStore(t, func(c *CookieConfig) {
					c.Secure, c.Domain, c.Path = tc.secure, tc.domain, tc.path
				})
				s := smallSession(t0)
				if size == "large" {
					s = largeSession(t0)
				}
				w := httptest.NewRecorder()
				if err := store.Save(context.Background(), w, requestWithCookies(), s); err != nil {
					t.Fatalf("Save() error = %v", err)
				}
				lines := w.Header().Values("Set-Cookie")
				if len(lines) == 0 {
					t.Fatal("Save() wrote no Set-Cookie")
				}
				for _, line := range lines {
					if n := len("Set-Cookie: " + line); n >= 4096 {
						t.Errorf("Set-Cookie line is %d bytes; want < 4096", n)
					}
					c, err := http.ParseSetCookie(line)
					if err != nil {
						t.Fatalf("ParseSetCookie() error = %v", err)
					}
					if len(c.Name)+1+len(c.Value) > 3900 {
						t.Errorf("%s: name=value is %d bytes; want <= 3900", c.Name, len(c.Name)+1+len(c.Value))
					}
					if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != tc.secure ||
						c.Path != tc.path || c.Domain != tc.domain {
						t.Errorf("Set-Cookie %q: HttpOnly=%v SameSite=%v Secure=%v Path=%q Domain=%q; want true, Lax, %v, %q, %q",
							c.Name, c.HttpOnly, c.SameSite, c.Secure, c.Path, c.Domain, tc.secure, tc.path, tc.domain)
					}
					if c.MaxAge != 12*3600 {
						t.Errorf("Set-Cookie %q: Max-Age = %d; want %d", c.Name, c.MaxAge, 12*3600)
					}
				}
			})
		}
	}
}

// flip replaces the byte at i with another base64url character.
func flip(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestLoadRejectsTampering(t *testing.T) {
	store, _ := newStore(t, nil)

	small := newJar()
	save(t, store, small, smallSession(t0))
	value := small.get("_zdgate")
	for i := range len(value) {
		if _, err := store.Load(context.Background(), requestWithCookies("_zdgate", flip(value, i))); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Load() with byte %d of %d changed: error = %v; want ErrInvalid", i, len(value), err)
		}
	}

	large := newJar()
	save(t, store, large, largeSession(t0))
	chunks := []string{large.get("_zdgate_0"), large.get("_zdgate_1"), large.get("_zdgate_2"), large.get("_zdgate_3")}
	chunked := func(values ...string) *http.Request {
		var pairs []string
		for i, v := range values {
			if v != "-" {
				pairs = append(pairs, store.chunkNames[i], v)
			}
		}
		return requestWithCookies(pairs...)
	}
	for c := range chunks {
		for i := 0; i < len(chunks[c]); i += 61 {
			tampered := slices.Clone(chunks)
			tampered[c] = flip(chunks[c], i)
			if _, err := store.Load(context.Background(), chunked(tampered...)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Load() with chunk %d byte %d changed: error = %v; want ErrInvalid", c, i, err)
			}
		}
	}

	// A second spelling of the same bytes (unused low bits of the last
	// character set) is refused too: only exactly what we wrote opens.
	for pad := 0; ; pad++ {
		s := smallSession(t0)
		s.Subject += strings.Repeat("x", pad)
		j := newJar()
		save(t, store, j, s)
		v := j.get("_zdgate")
		if len(v)%4 == 0 {
			continue // no unused bits
		}
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		last := strings.IndexByte(alphabet, v[len(v)-1])
		alt := v[:len(v)-1] + string(alphabet[last|1])
		if _, err := store.Load(context.Background(), requestWithCookies("_zdgate", alt)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Load() of a non-canonical encoding: error = %v; want ErrInvalid", err)
		}
		break
	}

	other, _ := newStore(t, func(c *CookieConfig) { c.Name = "_other" })
	for _, tc := range []struct {
		name string
		req  *http.Request
	}{
		{"truncated by one", requestWithCookies("_zdgate", value[:len(value)-1])},
		{"truncated by a quantum", requestWithCookies("_zdgate", value[:len(value)-4])},
		{"truncated to a prefix", requestWithCookies("_zdgate", value[:20])},
		{"extended", requestWithCookies("_zdgate", value+"AAAA")},
		{"not base64", requestWithCookies("_zdgate", "!!!!"+value[4:])},
		{"padded", requestWithCookies("_zdgate", value+"==")},
		{"moved to another name", (func() *http.Request {
			r := requestWithCookies("_other", value)
			return r
		})()},
		{"last chunk truncated", chunked(chunks[0], chunks[1], chunks[2], chunks[3][:len(chunks[3])-1])},
		{"chunks reordered", chunked(chunks[1], chunks[0], chunks[2], chunks[3])},
		{"last chunks reordered", chunked(chunks[0], chunks[1], chunks[3], chunks[2])},
		{"first chunk missing", chunked("-", chunks[1], chunks[2], chunks[3])},
		{"middle chunk missing", chunked(chunks[0], chunks[1], "-", chunks[3])},
		{"last chunk missing", chunked(chunks[0], chunks[1], chunks[2])},
		{"chunk after a gap", chunked(chunks[0], chunks[1], chunks[2], chunks[3], "-", chunks[0])},
		{"chunks as a single cookie", requestWithCookies("_zdgate", chunks[0]+chunks[1]+chunks[2]+chunks[3][:len(chunks[3])-1])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := store
			if strings.HasPrefix(tc.name, "moved") {
				s = other
			}
			got, err := s.Load(context.Background(), tc.req)
			if !errors.Is(err, ErrInvalid) || got != nil {
				t.Errorf("Load() = %v, %v; want nil, ErrInvalid", got, err)
			}
		})
	}

	// The whole chunk list moved to another name fails too.
	if _, err := other.Load(context.Background(), requestWithCookies("_other_0", chunks[0], "_other_1", chunks[1],
		"_other_2", chunks[2], "_other_3", chunks[3])); !errors.Is(err, ErrInvalid) {
		t.Errorf("Load() of chunks under another name: error = %v; want ErrInvalid", err)
	}
	// The unmodified chunks still open, so the failures above are the tampering.
	if _, err := store.Load(context.Background(), chunked(chunks...)); err != nil {
		t.Errorf("Load() of untouched chunks: error = %v", err)
	}
}

func TestLoadNotFound(t *testing.T) {
	store, _ := newStore(t, nil)
	for _, r := range []*http.Request{
		requestWithCookies(),
		requestWithCookies("app", "x", "_zdgatex", "y"),
		requestWithCookies("_zdgate", ""),
		requestWithCookies("_zdgate_state", "abc", "_zdgate_9", "abc", "_zdgate_00", "abc"),
	} {
		if _, err := store.Load(context.Background(), r); !errors.Is(err, ErrNotFound) {
			t.Errorf("Load(Cookie: %q) error = %v; want ErrNotFound", r.Header.Get("Cookie"), err)
		}
	}
}

func TestLoadTriesEachSessionCookie(t *testing.T) {
	store, clk := newStore(t, nil)
	old := newJar()
	save(t, store, old, smallSession(t0))
	clk.Advance(12 * time.Hour)
	fresh := newJar()
	want := smallSession(clk.Now())
	want.ID = "fresh"
	save(t, store, fresh, want)

	// A browser that still holds an expired host-only cookie next to the new
	// domain cookie sends both; the user must not be stuck in a login loop.
	for _, first := range []string{"garbage", old.get("_zdgate")} {
		got, err := store.Load(context.Background(), requestWithCookies("_zdgate", first, "_zdgate", fresh.get("_zdgate")))
		if err != nil || got.ID != "fresh" {
			t.Errorf("Load() = %v, %v; want the fresh session", got, err)
		}
	}
	if _, err := store.Load(context.Background(), requestWithCookies("_zdgate", old.get("_zdgate"), "_zdgate", "garbage")); !errors.Is(err, ErrExpired) {
		t.Errorf("Load() of expired then garbage: error = %v; want ErrExpired (the first one's)", err)
	}
}

func TestRetiredSecret(t *testing.T) {
	oldStore, _ := newStore(t, func(c *CookieConfig) { c.Secrets = fixedSecrets(keyOld) })
	j := newJar()
	save(t, oldStore, j, smallSession(t0))

	newOnly, _ := newStore(t, func(c *CookieConfig) { c.Secrets = fixedSecrets(keyNew) })
	if _, err := newOnly.Load(context.Background(), j.request()); !errors.Is(err, ErrInvalid) {
		t.Errorf("Load() of a cookie sealed with a retired secret: error = %v; want ErrInvalid", err)
	}
}

func TestRotation(t *testing.T) {
	oldStore, _ := newStore(t, func(c *CookieConfig) { c.Secrets = fixedSecrets(keyOld) })
	j := newJar()
	want := largeSession(t0)
	save(t, oldStore, j, want)

	rotated, _ := newStore(t, func(c *CookieConfig) { c.Secrets = fixedSecrets(keyNew, keyOld) })
	got, err := rotated.Load(context.Background(), j.request())
	if err != nil {
		t.Fatalf("Load() during rotation: error = %v", err)
	}
	assertSameSession(t, got, want)

	save(t, rotated, j, got)
	newOnly, _ := newStore(t, func(c *CookieConfig) { c.Secrets = fixedSecrets(keyNew) })
	if _, err := newOnly.Load(context.Background(), j.request()); err != nil {
		t.Errorf("Load() with only the new secret after re-Save: error = %v; want the session re-sealed with it", err)
	}
}

func TestSecretsReadOnEveryUse(t *testing.T) {
	current := [][]byte{keyOld}
	store, _ := newStore(t, func(c *CookieConfig) { c.Secrets = func() [][]byte { return current } })
	j := newJar()
	save(t, store, j, smallSession(t0))

	current = [][]byte{keyNew} // the secret file was rotated without keeping the old one
	if _, err := store.Load(context.Background(), j.request()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Load() after the secret changed: error = %v; want ErrInvalid", err)
	}
	current = [][]byte{keyNew, keyOld}
	if _, err := store.Load(context.Background(), j.request()); err != nil {
		t.Fatalf("Load() with the old secret back as second: error = %v", err)
	}
	current = [][]byte{[]byte("short")}
	if err := store.Save(context.Background(), httptest.NewRecorder(), j.request(), smallSession(t0)); err == nil ||
		strings.Contains(err.Error(), "short") {
		t.Errorf("Save() with a malformed secret: error = %v; want a size error without the secret", err)
	}
}

func TestAbsoluteTTL(t *testing.T) {
	store, clk := newStore(t, nil)
	j := newJar()
	s := smallSession(t0)
	save(t, store, j, s)

	// A refresh an hour before the end keeps the end.
	clk.Advance(11 * time.Hour)
	s.ConfirmedAt = clk.Now()
	s.TokenExpiry = clk.Now().Add(time.Hour)
	h := save(t, store, j, s)
	c, err := http.ParseSetCookie(h.Get("Set-Cookie"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxAge != 3600 {
		t.Errorf("Max-Age after a refresh = %d; want 3600 (what is left of the absolute TTL)", c.MaxAge)
	}
	clk.Advance(time.Hour - 500*time.Millisecond)
	h = save(t, store, j, s)
	if c, _ := http.ParseSetCookie(h.Get("Set-Cookie")); c.MaxAge != 1 {
		t.Errorf("Max-Age half a second before the end = %d; want 1 (0 would outlive it as a browser-session cookie)", c.MaxAge)
	}
	clk.Advance(500*time.Millisecond - time.Millisecond)
	if _, err := store.Load(context.Background(), j.request()); err != nil {
		t.Fatalf("Load() 1ms before the end: error = %v", err)
	}
	clk.Advance(time.Millisecond)
	if _, err := store.Load(context.Background(), j.request()); !errors.Is(err, ErrExpired) {
		t.Errorf("Load() at CreatedAt+TTL after a refresh: error = %v; want ErrExpired", err)
	}
	w := httptest.NewRecorder()
	if err := store.Save(context.Background(), w, j.request(), s); !errors.Is(err, ErrExpired) || len(w.Header()) != 0 {
		t.Errorf("Save() of an expired session: error = %v, header %v; want ErrExpired and nothing written", err, w.Header())
	}
}

// TestTTLChange shows both expiry checks at work: the one sealed into the
// value when it was written, and the one against the TTL configured now.
func TestTTLChange(t *testing.T) {
	for _, tc := range []struct {
		name          string
		saveTTL, load time.Duration
	}{
		{"longer TTL later", time.Hour, 24 * time.Hour},
		{"shorter TTL later", 24 * time.Hour, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saver, _ := newStore(t, func(c *CookieConfig) { c.TTL = tc.saveTTL })
			loader, clk := newStore(t, func(c *CookieConfig) { c.TTL = tc.load })
			j := newJar()
			save(t, saver, j, smallSession(t0))
			clk.Advance(2 * time.Hour)
			if _, err := loader.Load(context.Background(), j.request()); !errors.Is(err, ErrExpired) {
				t.Errorf("Load() 2h after login: error = %v; want ErrExpired", err)
			}
		})
	}
}

func TestSaveClearsStaleCookies(t *testing.T) {
	for _, domain := range []string{"", "example.com"} {
		t.Run("domain="+domain, func(t *testing.T) {
			store, _ := newStore(t, func(c *CookieConfig) { c.Domain = domain })
			j := newJar()
			j.apply(t, http.Header{"Set-Cookie": {"app=1", "_zdgate_state=s; Domain=" + domain}})

			save(t, store, j, largeSession(t0))
			if got, want := j.names(), []string{"_zdgate_0", "_zdgate_1", "_zdgate_2", "_zdgate_3", "_zdgate_state", "app"}; !slices.Equal(got, want) {
				t.Fatalf("cookies after a large Save() = %v; want %v", got, want)
			}
			small := smallSession(t0)
			small.ID = "small"
			save(t, store, j, small)
			if got, want := j.names(), []string{"_zdgate", "_zdgate_state", "app"}; !slices.Equal(got, want) {
				t.Fatalf("cookies after shrinking = %v; want %v", got, want)
			}
			if s, err := store.Load(context.Background(), j.request()); err != nil || s.ID != "small" {
				t.Fatalf("Load() after shrinking = %v, %v", s, err)
			}
			save(t, store, j, largeSession(t0))
			if got, want := j.names(), []string{"_zdgate_0", "_zdgate_1", "_zdgate_2", "_zdgate_3", "_zdgate_state", "app"}; !slices.Equal(got, want) {
				t.Fatalf("cookies after growing = %v; want %v", got, want)
			}
		})
	}
}

func TestSaveReplacesHostOnlyCookie(t *testing.T) {
	hostOnly, _ := newStore(t, nil)
	j := newJar()
	save(t, hostOnly, j, smallSession(t0))

	withDomain, _ := newStore(t, func(c *CookieConfig) { c.Domain = "example.com" })
	s := smallSession(t0)
	s.ID = "new"
	save(t, withDomain, j, s)
	if len(j.values) != 1 || j.values["_zdgate|example.com"] == nil {
		t.Errorf("cookies after Save() with a domain: %v; want only the domain cookie", j.values)
	}
}

func TestClear(t *testing.T) {
	for _, domain := range []string{"", "example.com"} {
		t.Run("domain="+domain, func(t *testing.T) {
			store, _ := newStore(t, func(c *CookieConfig) { c.Domain = domain })
			j := newJar()
			j.apply(t, http.Header{"Set-Cookie": {"app=1", "_zdgate_state=s", "_zdgatex=2"}})
			save(t, store, j, largeSession(t0))
			if domain != "" { // a host-only session from before the domain was set
				j.apply(t, http.Header{"Set-Cookie": {"_zdgate=old"}})
			}
			w := httptest.NewRecorder()
			if err := store.Clear(context.Background(), w, j.request()); err != nil {
				t.Fatalf("Clear() error = %v", err)
			}
			j.apply(t, w.Header())
			if got, want := j.names(), []string{"_zdgatex", "app"}; !slices.Equal(got, want) {
				t.Errorf("cookies after Clear() = %v; want %v", got, want)
			}
			for _, line := range w.Header().Values("Set-Cookie") {
				c, _ := http.ParseSetCookie(line)
				if c.MaxAge >= 0 || !c.HttpOnly || c.Path != "/" || !store.IsOwnCookie(c.Name) {
					t.Errorf("Clear() wrote %q; want an expired cookie of ours", line)
				}
			}

			// With no cookie on the request, the base cookie is still expired.
			w = httptest.NewRecorder()
			_ = store.Clear(context.Background(), w, requestWithCookies())
			if lines := w.Header().Values("Set-Cookie"); len(lines) == 0 || !strings.HasPrefix(lines[0], "_zdgate=;") {
				t.Errorf("Clear() of a bare request wrote %q; want the base cookie expired", lines)
			}
		})
	}
}

func TestSaveTooLarge(t *testing.T) {
	store, _ := newStore(t, nil)
	s := largeSession(t0)
	s.Claims["huge"] = strings.Repeat(NewID(), 2000)
	w := httptest.NewRecorder()
	if err := store.Save(context.Background(), w, requestWithCookies(), s); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Save() of a 44 KB session: error = %v; want ErrTooLarge", err)
	}
	if len(w.Header()) != 0 {
		t.Errorf("Save() wrote %v for a session it refused", w.Header())
	}
}

func TestSaveRejectsIncomplete(t *testing.T) {
	store, _ := newStore(t, nil)
	for _, s := range []*Session{nil, {CreatedAt: t0}, {ID: "x"}} {
		if err := store.Save(context.Background(), httptest.NewRecorder(), requestWithCookies(), s); err == nil {
			t.Errorf("Save(%v) = nil; want an error", s)
		}
	}
}
