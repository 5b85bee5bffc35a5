package proxy

import (
	"net/http"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

// TestStaleCookieCannotBurnTheGrant is issue 10 item 8: with an IdP that rotates refresh tokens
// with reuse detection (Hydra's and oidc-provider's default), a cookie one refresh old, replayed
// after the interval (a dropped Set-Cookie, an aborted fetch, an old copy), must not present its
// used refresh token: that would revoke the whole grant and log the real user out. On the replica
// that did the refresh, it re-checks from the session's latest state instead.
func TestStaleCookieCannotBurnTheGrant(t *testing.T) {
	st := newStack(t, stackOpts{idp: oidctest.Options{RefreshReuseRevokesGrant: true}})
	st.login(st.client, "/")
	stale := map[string]string{"Cookie": cookieHeader(st, st.client)} // J0
	st.clock.Advance(2 * time.Minute)
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("first re-check = %d", res.StatusCode) // the browser now holds J1
	}
	st.clock.Advance(2 * time.Minute) // past the interval again: J0's state is two refreshes behind
	st.idp.ResetCounts()
	if res, body := st.do(newClient(), "GET", "/zendesk/token", stale); res.StatusCode != http.StatusOK {
		t.Fatalf("the stale cookie = %d %s; want 200 from the session's latest state", res.StatusCode, body)
	}
	if n := st.idp.Count("token.refresh"); n != 1 {
		t.Fatalf("refresh calls for the stale cookie = %d; want 1 (with the latest refresh token)", n)
	}
	st.clock.Advance(2 * time.Minute)
	if res, body := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("the real user after the stale replay = %d %s; want 200 (the grant survives)", res.StatusCode, body)
	}
	if got := counterValue(t, st.reg, "zdgate_sessions_ended_total", "reason", "revoked"); got != 0 {
		t.Fatalf("sessions_ended{revoked} = %v; want 0", got)
	}
}

// TestRevokedSessionCountedOnce is issue 13 item 8: replays of one dead cookie neither call the IdP
// again nor count the session as ended again.
func TestRevokedSessionCountedOnce(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	dead := map[string]string{"Cookie": cookieHeader(st, st.client)}
	st.idp.DeleteUser("user-1")
	st.clock.Advance(2 * time.Minute)
	for i := range 5 {
		res, body := st.do(newClient(), "GET", "/zendesk/token", dead)
		if res.StatusCode != http.StatusUnauthorized || jsonBody(t, body)["error"] != "session_revoked" {
			t.Fatalf("replay %d of the dead cookie = %d %s; want 401 session_revoked", i, res.StatusCode, body)
		}
		st.clock.Advance(2 * time.Minute) // each replay is past the interval
	}
	if n := st.idp.Count("token.refresh"); n != 1 {
		t.Fatalf("refresh calls for 5 replays of one dead cookie = %d; want 1", n)
	}
	if got := counterValue(t, st.reg, "zdgate_sessions_ended_total", "reason", "revoked"); got != 1 {
		t.Fatalf("sessions_ended{revoked} = %v after 5 replays; want 1", got)
	}
}
