package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zdgate/zdgate/internal/redistest"
	"github.com/zdgate/zdgate/oidc/oidctest"
)

// cookieHeader is the Cookie header c would send to st.
func cookieHeader(st *stack, c *http.Client) string {
	var parts []string
	for _, ck := range c.Jar.Cookies(mustURL(st.front.URL)) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; ")
}

// introspectAt asks the IdP directly whether token is still active.
func introspectAt(t *testing.T, idp *oidctest.Server, token string) bool {
	t.Helper()
	req, _ := http.NewRequest("POST", idp.URL()+oidctest.PathIntrospection, strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(idp.Client().ID, idp.Client().Secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ Active bool }
	json.NewDecoder(res.Body).Decode(&out)
	return out.Active
}

// TestSignOutEndsTheSessionOnTheServer is issue 10 item 4 with the cookie store: a copy of the
// cookie taken before sign-out is refused at once on the replica that signed out, the refresh token
// is revoked at the IdP (RFC 7009), and another replica refuses the copy at its next re-check.
func TestSignOutEndsTheSessionOnTheServer(t *testing.T) {
	idp := oidctest.NewT(t, oidctest.Options{})
	clk := &clock{t: time.Now()}
	a := newStack(t, stackOpts{sharedIdP: idp, clock: clk})
	b := newStack(t, stackOpts{sharedIdP: idp, clock: clk})
	a.login(a.client, "/")
	stolen := map[string]string{"Cookie": cookieHeader(a, a.client)}
	sess, _ := a.sessionOf(a.client)
	if res, _ := a.do(newClient(), "GET", "/zendesk/token", stolen); res.StatusCode != http.StatusOK {
		t.Fatalf("the copied cookie before sign-out = %d; want 200", res.StatusCode)
	}

	idp.ResetCounts()
	res, body := a.do(a.client, "GET", "/oauth2/sign_out?rd=/bye", map[string]string{"Sec-Fetch-Site": "same-origin"})
	if next, _ := signedOutNext(t, res, body); !strings.HasPrefix(next, idp.URL()+oidctest.PathEndSession) {
		t.Fatalf("sign-out continues to %q; want the IdP's end_session", next)
	}
	if n := idp.Count("revoke"); n != 1 {
		t.Fatalf("revocation calls at the IdP = %d; want 1", n)
	}
	if introspectAt(t, idp, sess.RefreshToken) || introspectAt(t, idp, sess.AccessToken) {
		t.Fatal("the session's refresh or access token is still active at the IdP after sign-out")
	}

	// This replica: refused at once, without waiting for a re-check and without asking the IdP.
	idp.ResetCounts()
	res, body = a.do(newClient(), "GET", "/zendesk/token", stolen)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the copied cookie on the same replica after sign-out = %d %s; want 401 at once", res.StatusCode, body)
	}
	if n := idp.Count("token.refresh") + idp.Count("userinfo"); n != 0 {
		t.Fatalf("refusing the copy asked the IdP %d times; want 0", n)
	}
	// Another cookie-store replica knows nothing yet; its next re-check asks the IdP, which says no.
	clk.Advance(2 * time.Minute)
	if res, body := b.do(newClient(), "GET", "/zendesk/token", stolen); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the copied cookie on another replica at its next re-check = %d %s; want 401", res.StatusCode, body)
	}
	if got := counterValue(t, a.reg, "zdgate_sessions_ended_total", "reason", "sign_out"); got != 1 {
		t.Errorf("sessions_ended{sign_out} = %v; want 1", got)
	}
}

// TestSignOutCSRF: a cross-site request to /oauth2/sign_out (a link or auto-submitted form on
// another site) ends nothing, here or at the IdP, and gets a same-origin confirmation form, whose
// submission signs out.
func TestSignOutCSRF(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	cookie := cookieHeader(st, st.client)
	st.idp.ResetCounts()
	for _, c := range []struct {
		name, method string
		hdr          map[string]string
	}{
		{"cross-site link", "GET", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}},
		{"sibling subdomain", "GET", map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"cross-site form", "POST", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"foreign Origin, no Sec-Fetch-Site", "POST", map[string]string{"Origin": "https://evil.example"}},
	} {
		c.hdr["Cookie"] = cookie
		res, body := st.do(newClient(), c.method, "/oauth2/sign_out?rd=/bye", c.hdr)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `<form method="post" action="/oauth2/sign_out?rd=%2fbye">`) {
			t.Fatalf("%s: %d %q; want 200 and the confirmation form", c.name, res.StatusCode, body)
		}
		for _, ck := range res.Cookies() {
			t.Errorf("%s: the confirmation touched cookie %s", c.name, ck.Name)
		}
		if res.Header.Get("Location") != "" || !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: Location %q, CSP %q", c.name, res.Header.Get("Location"), res.Header.Get("Content-Security-Policy"))
		}
	}
	if n := st.idp.Count("revoke") + st.idp.Count("end_session"); n != 0 {
		t.Fatalf("cross-site sign-out requests reached the IdP %d times; want 0", n)
	}
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("token after cross-site sign-out attempts = %d; want 200 (still signed in)", res.StatusCode)
	}
	// The user confirms: the form posts same-origin.
	res, body := st.do(st.client, "POST", "/oauth2/sign_out?rd=%2fbye", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": st.front.URL})
	if next, _ := signedOutNext(t, res, body); next == "" {
		t.Fatalf("confirmed sign-out continues nowhere")
	}
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token after the confirmed sign-out = %d; want 401", res.StatusCode)
	}
}

// TestSignOutNeverReportsSuccessWhenTheStoreFails: with the Redis store, a sign-out whose delete
// fails (here Redis refuses DEL to zdgate's user, a real Redis error; and Redis down) answers 503,
// redirects nowhere and leaves the browser's cookie for a retry; /zendesk/sso/logout too.
func TestSignOutNeverReportsSuccessWhenTheStoreFails(t *testing.T) {
	rs := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: -1})
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "zdgate", "on", ">zdgate-pw", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	logs := &logSink{}
	st := newStack(t, stackOpts{redisURL: "redis://zdgate:zdgate-pw@" + rs.Addr() + "/0", mutate: func(c *Config) { c.Logger = logs.logger() }})
	st.login(st.client, "/")
	if err := admin.Do(ctx, "ACL", "SETUSER", "zdgate", "-del").Err(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/oauth2/sign_out?rd=/bye", "/zendesk/sso/logout"} {
		res, body := st.do(st.client, "GET", path, map[string]string{"Sec-Fetch-Site": "same-origin"})
		if res.StatusCode != http.StatusServiceUnavailable || jsonBody(t, body)["error"] != "session_store_unavailable" {
			t.Fatalf("%s with DEL refused = %d %s; want 503 session_store_unavailable", path, res.StatusCode, body)
		}
		if res.Header.Get("Location") != "" || len(res.Cookies()) != 0 {
			t.Fatalf("%s with DEL refused: Location %q, cookies %v; want neither", path, res.Header.Get("Location"), res.Cookies())
		}
	}
	// Redis refuses DEL, but the session was already buried: it cannot be used, and the failed
	// delete of the dead session is logged.
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token after a half-done sign-out = %d; want 401", res.StatusCode)
	}
	if len(logs.find("WARN", "could not delete an ended session", "NOPERM")) == 0 {
		t.Error("the failed delete of an ended session was not logged")
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "zdgate", "+del").Err(); err != nil {
		t.Fatal(err)
	}
	st.login(st.client, "/")
	rs.Stop()
	res, body := st.do(st.client, "GET", "/oauth2/sign_out?rd=/bye", map[string]string{"Sec-Fetch-Site": "same-origin"})
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Location") != "" || len(res.Cookies()) != 0 {
		t.Fatalf("sign-out with Redis down = %d %s (Location %q, cookies %v); want 503, nothing else", res.StatusCode, body, res.Header.Get("Location"), res.Cookies())
	}
}
