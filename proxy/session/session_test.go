package session

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// testKey is a fixed 32-byte secret derived from label.
func testKey(label string) []byte {
	sum := sha256.Sum256([]byte(label))
	return sum[:]
}

var (
	keyNew = testKey("new")
	keyOld = testKey("old")
)

func fixedSecrets(keys ...[]byte) Secrets { return func() [][]byte { return keys } }

// clock is a settable test clock; tests never sleep.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func newStore(t testing.TB, mod func(*CookieConfig)) (*CookieStore, *clock) {
	t.Helper()
	clk := &clock{t: t0}
	cfg := CookieConfig{
		Secure:  true,
		TTL:     12 * time.Hour,
		Secrets: fixedSecrets(keyNew),
		Now:     clk.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewCookieStore(cfg)
	if err != nil {
		t.Fatalf("NewCookieStore() error = %v", err)
	}
	return s, clk
}

func smallSession(now time.Time) *Session {
	return &Session{
		ID:      "sess-0123456789abcdef",
		Subject: "user-42",
		SID:     "idp-session-7",
		Claims: map[string]any{
			"email":          "ada@example.com",
			"email_verified": true,
			"name":           "Ada Lovelace",
			"groups":         []any{"staff", "support"},
			"level":          float64(3),
		},
		AccessToken:  "access-token-secret",
		RefreshToken: "refresh-token-secret",
		IDToken:      "id-token-secret",
		TokenExpiry:  now.Add(time.Hour),
		CreatedAt:    now,
		ConfirmedAt:  now,
	}
}

// largeSession has about 10 KB of incompressible claims, so it needs several
// chunks.
func largeSession(now time.Time) *Session {
	s := smallSession(now)
	for i := range 40 {
		sum := sha256.Sum256(fmt.Appendf(nil, "claim %d", i))
		s.Claims[fmt.Sprintf("x-claim-%02d", i)] = strings.Repeat(hex.EncodeToString(sum[:]), 4)
	}
	return s
}

// jar is a minimal browser cookie jar: it applies Set-Cookie lines and sends
// back what is left, keyed by name and domain.
type jar struct {
	order  []string
	values map[string]*http.Cookie
}

func newJar() *jar { return &jar{values: make(map[string]*http.Cookie)} }

func (j *jar) apply(t testing.TB, h http.Header) {
	t.Helper()
	for _, line := range h.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("ParseSetCookie(%q) error = %v", line, err)
		}
		key := c.Name + "|" + c.Domain
		if c.MaxAge < 0 {
			delete(j.values, key)
			j.order = slices.DeleteFunc(j.order, func(k string) bool { return k == key })
			continue
		}
		if _, ok := j.values[key]; !ok {
			j.order = append(j.order, key)
		}
		j.values[key] = c
	}
}

func (j *jar) names() []string {
	var names []string
	for _, k := range j.order {
		names = append(names, j.values[k].Name)
	}
	slices.Sort(names)
	return names
}

func (j *jar) request() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/", nil)
	for _, k := range j.order {
		c := j.values[k]
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

func (j *jar) get(name string) string {
	for _, c := range j.values {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// save runs Save against a request from j and applies the answer to j.
func save(t testing.TB, store *CookieStore, j *jar, s *Session) http.Header {
	t.Helper()
	w := httptest.NewRecorder()
	if err := store.Save(context.Background(), w, j.request(), s); err != nil {
		t.Fatalf("Save() error = %v", err)
	}
	j.apply(t, w.Header())
	return w.Header()
}

func requestWithCookies(pairs ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/", nil)
	for i := 0; i+1 < len(pairs); i += 2 {
		r.AddCookie(&http.Cookie{Name: pairs[i], Value: pairs[i+1]})
	}
	return r
}

func assertSameSession(t *testing.T, got, want *Session) {
	t.Helper()
	if got.ID != want.ID || got.Subject != want.Subject || got.SID != want.SID ||
		got.AccessToken != want.AccessToken || got.RefreshToken != want.RefreshToken ||
		got.IDToken != want.IDToken {
		t.Errorf("Load() = %+v; want %+v", *got, *want) // raw fields: test data only
	}
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{
		{"TokenExpiry", got.TokenExpiry, want.TokenExpiry},
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"ConfirmedAt", got.ConfirmedAt, want.ConfirmedAt},
	} {
		if !tc.got.Equal(tc.want) {
			t.Errorf("Load().%s = %v; want %v", tc.name, tc.got, tc.want)
		}
	}
	if !reflect.DeepEqual(got.Claims, want.Claims) {
		t.Errorf("Load().Claims = %v; want %v", got.Claims, want.Claims)
	}
}

func TestNewID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := NewID()
		b, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(b) != 16 {
			t.Fatalf("NewID() = %q: decodes to %d bytes, err %v; want 16 bytes", id, len(b), err)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestSessionExpiresAt(t *testing.T) {
	s := &Session{CreatedAt: t0, ConfirmedAt: t0.Add(11 * time.Hour)}
	if got, want := s.ExpiresAt(12*time.Hour), t0.Add(12*time.Hour); !got.Equal(want) {
		t.Errorf("ExpiresAt() = %v; want %v", got, want)
	}
}

func TestSessionRedaction(t *testing.T) {
	s := smallSession(t0)
	s.ID = "ABCDEFGHijklmnopqrstuv"
	secrets := []string{"access-token-secret", "refresh-token-secret", "id-token-secret",
		"ada@example.com", "Ada Lovelace", "ijklmnop"}

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("login", "session", s)
	outputs := map[string]string{
		"slog": buf.String(),
		"%v":   fmt.Sprintf("%v", s),
		"%+v":  fmt.Sprintf("%+v", s),
		"%#v":  fmt.Sprintf("%#v", s),
		"%s":   fmt.Sprintf("%s", s),
	}
	for how, out := range outputs {
		for _, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("%s output %q contains %q", how, out, secret)
			}
		}
		if !strings.Contains(out, "user-42") || !strings.Contains(out, "ABCDEFGH") {
			t.Errorf("%s output %q lacks subject or ID prefix", how, out)
		}
	}
	var nilSession *Session
	if got := nilSession.String(); got != "session(none)" {
		t.Errorf("(*Session)(nil).String() = %q", got)
	}
	if got := nilSession.LogValue().String(); got != "none" {
		t.Errorf("(*Session)(nil).LogValue() = %q", got)
	}
}
