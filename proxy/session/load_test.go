package session

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzLoad feeds arbitrary Cookie headers to Load: it must never panic, and
// the only sessions it may return are the genuine ones in the seed corpus.
func FuzzLoad(f *testing.F) {
	store, _ := newStore(f, nil)
	genuine := map[string]bool{}
	// Fixed IDs: the fuzzing workers are separate processes that rebuild this
	// corpus, and must agree on which sessions are genuine.
	for i, s := range []*Session{smallSession(t0), largeSession(t0)} {
		s.ID = fmt.Sprint("genuine-", i)
		genuine[s.ID] = true
		j := newJar()
		save(f, store, j, s)
		header := j.request().Header.Get("Cookie")
		f.Add(header)
		f.Add(strings.ReplaceAll(header, "_zdgate_1", "_zdgate_4"))
		f.Add(strings.ReplaceAll(header, "; ", ";_zdgate="))
		f.Add(header[:len(header)/2])
	}
	f.Add("")
	f.Add("_zdgate=")
	f.Add(`_zdgate="AQ"`)
	f.Add("_zdgate=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("_zdgate_0=AQ; _zdgate_1=AA; _zdgate_2=")
	f.Add("_zdgate_0=" + strings.Repeat("A", maxEncoded) + "; _zdgate_1=AA")

	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", header)
		s, err := store.Load(context.Background(), r)
		if (s == nil) == (err == nil) {
			t.Fatalf("Load() = %v, %v; want exactly one of them", s, err)
		}
		if s != nil && !genuine[s.ID] {
			t.Fatalf("Load() returned a session that was never sealed: %v", s)
		}
	})
}

// typicalSession is what a common IdP leaves in a session: JWT access and ID
// tokens, an opaque refresh token, and a handful of claims (1.7 KB as JSON).
func typicalSession(now time.Time) *Session {
	jwt := func(n int) string { return strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", n/21+1)[:n] }
	return &Session{
		ID:      NewID(),
		Subject: "00u1a2b3c4d5e6f7g8h9",
		SID:     "102Xy9_ABCDEFabcdef",
		Claims: map[string]any{
			"sub":                "00u1a2b3c4d5e6f7g8h9",
			"email":              "ada.lovelace@example.com",
			"email_verified":     true,
			"name":               "Ada Lovelace",
			"preferred_username": "ada",
			"locale":             "en-GB",
			"groups":             []any{"Everyone", "Support", "Engineering"},
		},
		AccessToken:  jwt(650),
		RefreshToken: "rt-" + strings.Repeat("x", 40),
		IDToken:      jwt(750),
		TokenExpiry:  now.Add(time.Hour),
		CreatedAt:    now,
		ConfirmedAt:  now,
	}
}

// BenchmarkLoad is the steady state: the browser sends the same cookie again (an opened-cache hit).
// BenchmarkLoadFirstOpen is the first request with a new cookie: decode, decrypt, unmarshal.
func BenchmarkLoad(b *testing.B) { benchmarkLoad(b, false) }

func BenchmarkLoadFirstOpen(b *testing.B) { benchmarkLoad(b, true) }

func benchmarkLoad(b *testing.B, cold bool) {
	store, _ := newStore(b, nil)
	j := newJar()
	save(b, store, j, typicalSession(t0))
	r := j.request()
	r.Header.Set("Cookie", "app_pref=dark; _ga=GA1.2.3.4; "+r.Header.Get("Cookie"))
	b.SetBytes(int64(len(r.Header.Get("Cookie"))))
	b.ReportAllocs()
	for b.Loop() {
		if cold {
			store.opened.c.Purge()
		}
		if _, err := store.Load(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadRotation(b *testing.B) {
	old, _ := newStore(b, func(c *CookieConfig) { c.Secrets = fixedSecrets(keyOld) })
	store, _ := newStore(b, func(c *CookieConfig) { c.Secrets = fixedSecrets(keyNew, keyOld) })
	j := newJar()
	save(b, old, j, typicalSession(t0))
	r := j.request()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := store.Load(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadNoSession(b *testing.B) {
	store, _ := newStore(b, nil)
	r := requestWithCookies("app_pref", "dark", "_ga", "GA1.2.3.4")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := store.Load(context.Background(), r); err != ErrNotFound {
			b.Fatal(err)
		}
	}
}

func BenchmarkSave(b *testing.B) {
	store, _ := newStore(b, nil)
	s := typicalSession(t0)
	r := requestWithCookies("app_pref", "dark")
	b.ReportAllocs()
	for b.Loop() {
		if err := store.Save(context.Background(), httptest.NewRecorder(), r, s); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentUse runs Load, Save, revocations and secret changes at once,
// for the race detector.
func TestConcurrentUse(t *testing.T) {
	var secrets atomic.Pointer[[][]byte]
	secrets.Store(&[][]byte{keyNew, keyOld})
	rev := NewMemoryRevocations(time.Hour, 50, nil)
	store, _ := newStore(t, func(c *CookieConfig) {
		c.Secrets = func() [][]byte { return *secrets.Load() }
		c.Revoked = rev
	})
	j := newJar()
	save(t, store, j, smallSession(t0))
	r := j.request()

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if _, err := store.Load(context.Background(), r); err != nil {
					t.Errorf("Load() error = %v", err)
					return
				}
				_ = store.Save(context.Background(), httptest.NewRecorder(), r, smallSession(t0))
				_ = rev.RevokeSID(context.Background(), fmt.Sprint("other-", g, "-", i))
				if i%50 == 0 {
					secrets.Store(&[][]byte{keyNew, keyOld, testKey(fmt.Sprint(g, i))})
				}
			}
		})
	}
	wg.Wait()
}
