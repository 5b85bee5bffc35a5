package proxy

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/zdgate/zdgate/internal/expiring"
	"github.com/zdgate/zdgate/oidc/oidctest"
)

func (st *stack) postEvent(hdr map[string]string, body string) *http.Response {
	st.t.Helper()
	req, err := http.NewRequest("POST", st.front.URL+"/zendesk/events", strings.NewReader(body))
	if err != nil {
		st.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := newClient().Do(req) // no cookie: reports need none
	if err != nil {
		st.t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func TestWidgetEventsCounted(t *testing.T) {
	var logs bytes.Buffer
	st := newStack(t, stackOpts{mutate: func(c *Config) { c.Logger = newTestLogger(&logs) }})
	same := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": st.front.URL}
	cases := []struct {
		body                  string
		flavor, event, reason string
	}{
		{`{"flavor":"messaging","event":"login_failed","reason":"conflict","type":"LoginFailedError"}`, "messaging", "login_failed", "conflict"},
		{`{"flavor":"chat","event":"token_failed","reason":"email_not_verified"}`, "chat", "token_failed", "email_not_verified"},
		{`{"flavor":"messaging","event":"widget_missing","reason":"timeout"}`, "messaging", "widget_missing", "timeout"},
		// Anything off the lists is "other": a browser cannot add label values.
		{`{"flavor":"messaging","event":"login_failed","reason":"user alice@example.com was refused"}`, "messaging", "login_failed", "other"},
		{`{"flavor":"evil","event":"pwn","reason":"conflict"}`, "other", "other", "other"},
	}
	for _, c := range cases {
		if res := st.postEvent(same, c.body); res.StatusCode != http.StatusNoContent {
			t.Fatalf("POST %s = %d; want 204", c.body, res.StatusCode)
		}
		if got := eventCount(t, st, c.flavor, c.event, c.reason); got < 1 {
			t.Errorf("zdgate_widget_events_total{%s,%s,%s} = %v; want counted", c.flavor, c.event, c.reason, got)
		}
	}
	if n := strings.Count(logs.String(), `"msg":"widget event"`); n != len(cases) {
		t.Errorf("%d WARN lines for %d events:\n%s", n, len(cases), logs.String())
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || strings.Contains(logs.String(), "alice@example.com") {
		t.Errorf("log lines %s; want WARN and no reported free text with personal data", logs.String())
	}
}

func TestWidgetEventsRefused(t *testing.T) {
	st := newStack(t, stackOpts{})
	good := `{"flavor":"messaging","event":"login_failed","reason":"conflict"}`
	cases := []struct {
		name string
		hdr  map[string]string
		body string
		want int
	}{
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, good, 403},
		{"foreign origin", map[string]string{"Origin": "https://evil.example"}, good, 403},
		{"a form post", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "event=login_failed", 415},
		{"text/plain (a no-cors beacon)", map[string]string{"Content-Type": "text/plain"}, good, 415},
		{"not JSON", nil, "{nope", 400},
		{"too large", nil, `{"flavor":"messaging","reason":"` + strings.Repeat("x", 4<<10) + `"}`, 413},
	}
	for _, c := range cases {
		if res := st.postEvent(c.hdr, c.body); res.StatusCode != c.want {
			t.Errorf("%s: POST = %d; want %d", c.name, res.StatusCode, c.want)
		}
	}
	if got := eventCount(t, st, "messaging", "login_failed", "conflict"); got != 0 {
		t.Errorf("refused reports were counted: %v", got)
	}
	if res, _ := st.do(st.client, "GET", "/zendesk/events", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /zendesk/events = %d; want 405", res.StatusCode)
	}
}

func TestWidgetEventsRateLimitedPerClient(t *testing.T) {
	st := newStack(t, stackOpts{mutate: func(c *Config) { c.TrustedProxies = mustPrefixes("127.0.0.1/32") }})
	body := `{"flavor":"messaging","event":"widget_missing","reason":"timeout"}`
	from := func(ip string) int { return st.postEvent(map[string]string{"X-Forwarded-For": ip}, body).StatusCode }
	for i := range eventBurst {
		if code := from("198.51.100.7"); code != http.StatusNoContent {
			t.Fatalf("report %d = %d; want 204 within the burst", i, code)
		}
	}
	if code := from("198.51.100.7"); code != http.StatusTooManyRequests {
		t.Fatalf("report past the burst = %d; want 429", code)
	}
	if code := from("198.51.100.8"); code != http.StatusNoContent {
		t.Fatalf("another client = %d; want 204 (limits are per client IP)", code)
	}
	st.clock.Advance(eventEvery)
	if code := from("198.51.100.7"); code != http.StatusNoContent {
		t.Fatalf("after %v = %d; want one more allowed", eventEvery, code)
	}
	if got := eventCount(t, st, "messaging", "widget_missing", "timeout"); got != eventBurst+2 {
		t.Errorf("counted %v; want %d (refused reports are not counted)", got, eventBurst+2)
	}
}

func TestEventLimiterBounded(t *testing.T) {
	l := newClientLimits(rate.Every(eventEvery), eventBurst, maxLimiters, expiring.Refuse)
	now := time.Unix(1e9, 0)
	for i := range maxLimiters {
		l.allow(string(rune(i)), now)
	}
	if l.allow("new", now) {
		t.Fatal("a full table of busy clients admitted a new one")
	}
	// Once the clients are quiet (their buckets full again) they make room.
	if !l.allow("new", now.Add(eventEvery*eventBurst)) || l.c.Len() > maxLimiters {
		t.Fatalf("table of %d after the clients went quiet; want room for a new client", l.c.Len())
	}
}

// TestTokenAnswersOpaqueUser: the token route's user is the same for the same person across
// sessions, differs between people, and is neither the email nor the external_id.
func TestTokenAnswersOpaqueUser(t *testing.T) {
	users := []oidctest.User{
		{Subject: "user-1", Email: "alice@example.com", EmailVerified: true, Name: "Alice", PreferredUsername: "alice", Password: "a"},
		{Subject: "user-2", Email: "bob@example.com", EmailVerified: true, Name: "Bob", PreferredUsername: "bob", Password: "b"},
	}
	st := newStack(t, stackOpts{idp: oidctest.Options{Users: users}})
	userOf := func(c *http.Client) string {
		t.Helper()
		res, body := st.do(c, "GET", "/zendesk/token", nil)
		if res.StatusCode != 200 {
			t.Fatalf("token = %d %s", res.StatusCode, body)
		}
		u, _ := jsonBody(t, body)["user"].(string)
		if len(u) < 20 || strings.Contains(body[strings.Index(body, `"user"`):], "user-1") || strings.Contains(u, "alice") {
			t.Fatalf("user = %q; want an opaque value", u)
		}
		return u
	}
	loginAs := func(c *http.Client, hint string) {
		res, _ := st.do(c, "GET", "/oauth2/start?rd=/", nil)
		st.finishLogin(c, res.Header.Get("Location")+"&login_hint="+hint)
	}
	loginAs(st.client, "user-1")
	a1 := userOf(st.client)
	second := newClient()
	loginAs(second, "user-1")
	if a2 := userOf(second); a2 != a1 {
		t.Errorf("the same user in another session = %q; want %q", a2, a1)
	}
	third := newClient()
	loginAs(third, "user-2")
	if b := userOf(third); b == a1 {
		t.Errorf("another user got the same value %q", b)
	}
}

func newTestLogger(w *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func eventCount(t *testing.T, st *stack, flavor, event, reason string) float64 {
	t.Helper()
	mfs, err := st.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "zdgate_widget_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["flavor"] == flavor && l["event"] == event && l["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
