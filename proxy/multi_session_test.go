package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/proxy/session"
)

// TestMultiSessionOfANeverCallsB: everything a staff session does (login, re-checks, userinfo,
// forward-auth, sign-out with revocation and RP-initiated logout) goes to IdP A; IdP B sees no
// request at all.
func TestMultiSessionOfANeverCallsB(t *testing.T) {
	ms := newMultiStack(t, multiOpts{})
	ms.b.ResetCounts()
	c := ms.newClient()
	ms.loginVia(c, "staff", "/")
	for i := 0; i < 3; i++ {
		ms.clock.Advance(2 * time.Minute) // past --recheck-interval: each request re-checks
		if code, _ := ms.token(c, "", "messaging"); code != 200 {
			t.Fatalf("token %d = %d", i, code)
		}
		for _, path := range []string{"/oauth2/userinfo", "/oauth2/auth", "/page"} {
			if res, _ := ms.do(c, "GET", path, nil); res.StatusCode >= 300 {
				t.Fatalf("%s = %d", path, res.StatusCode)
			}
		}
	}
	res, body := ms.do(c, "POST", "/oauth2/sign_out", map[string]string{"Sec-Fetch-Site": "same-origin"})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, ms.a.URL()+"/end_session") {
		t.Fatalf("sign-out = %d; want the signed-out page continuing to A's end_session:\n%s", res.StatusCode, body)
	}
	if ms.a.Count("token.refresh") < 3 || ms.a.Count("revoke") != 1 {
		t.Fatalf("IdP A: %d refreshes, %d revocations; want ≥3 and 1", ms.a.Count("token.refresh"), ms.a.Count("revoke"))
	}
	if n := idpCalls(ms.b); n != 0 {
		t.Fatalf("IdP B got %d calls for a session of A; want none", n)
	}
}

// TestMultiRevokedAtAEndsOnlyA: the user u-1 is deleted at A; the next re-check ends A's session,
// while B's session of a user also called u-1 lives on.
func TestMultiRevokedAtAEndsOnlyA(t *testing.T) {
	ms := newMultiStack(t, multiOpts{})
	staff, customer := ms.newClient(), ms.newClient()
	ms.loginVia(staff, "staff", "/")
	ms.loginVia(customer, "customers", "/")
	ms.a.DeleteUser("u-1")
	ms.clock.Advance(2 * time.Minute)
	if code, body := ms.token(staff, "", "messaging"); code != http.StatusUnauthorized || body["error"] != "session_revoked" {
		t.Fatalf("staff token after the user was deleted at A = %d %v; want 401 session_revoked", code, body)
	}
	if code, claims := ms.token(customer, "", "messaging"); code != 200 || claims["external_id"] != "cust-u-1" {
		t.Fatalf("customers token = %d %v; want B's session unaffected", code, claims)
	}
	if got := testutil.ToFloat64(ms.proxy.m.byProvider.sessionsEnded.WithLabelValues("revoked", "staff")); got != 1 {
		t.Errorf(`sessions_ended{reason="revoked",provider="staff"} = %v; want 1`, got)
	}
	if got := testutil.ToFloat64(ms.proxy.m.byProvider.sessionsEnded.WithLabelValues("revoked", "customers")); got != 0 {
		t.Errorf(`sessions_ended{reason="revoked",provider="customers"} = %v; want 0`, got)
	}
}

// TestMultiBackchannelFromBLeavesA: B's back-channel logout of its user u-1 (by sid, then by
// subject) ends B's sessions only; A's session of its own u-1 is untouched. A token signed by B
// that claims A's issuer is refused: it is verified by A, whose keys did not sign it.
func TestMultiBackchannelFromBLeavesA(t *testing.T) {
	ms := newMultiStack(t, multiOpts{})
	staff, customer, customer2 := ms.newClient(), ms.newClient(), ms.newClient()
	ms.loginVia(staff, "staff", "/")
	ms.loginVia(customer, "customers", "/")
	ms.loginVia(customer2, "customers", "/")
	sa, _ := ms.sessionAt(staff, ms.front)
	sb, _ := ms.sessionAt(customer, ms.front)

	// B signs a token that names A as issuer and A's session: refused, A's session lives.
	forged := ms.b.Forge(oidctest.ForgeRS256, map[string]any{
		"iss": ms.a.URL(), "aud": "zdgate-staff", "sub": "u-1", "sid": sa.SID, "iat": time.Now().Unix(), "jti": "forged-1",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	})
	if code := ms.postLogoutToken(forged); code != http.StatusBadRequest {
		t.Fatalf("B-signed logout token with A's issuer = %d; want 400", code)
	}
	// The same sid at B (B's token for A's sid value) ends nothing of A's.
	if code := ms.postLogoutToken(ms.b.LogoutToken("u-1", sa.SID, nil)); code != http.StatusOK {
		t.Fatalf("B's logout token = %d", code)
	}
	if code, _ := ms.token(staff, "", "messaging"); code != 200 {
		t.Fatalf("A's session after B logged out a sid equal to A's = %d; want 200", code)
	}
	if code := ms.postLogoutToken(ms.b.LogoutToken("u-1", sb.SID, nil)); code != http.StatusOK {
		t.Fatalf("B's logout token for its session = %d", code)
	}
	if code, _ := ms.token(customer, "", "messaging"); code != http.StatusUnauthorized {
		t.Fatalf("B's session after B's back-channel logout = %d; want 401", code)
	}
	if code, _ := ms.token(customer2, "", "messaging"); code != 200 {
		t.Fatalf("B's other session (another sid) = %d; want 200", code)
	}
	// A subject-wide logout at B: B's u-1 sessions end, A's u-1 does not.
	if code := ms.postLogoutToken(ms.b.LogoutToken("u-1", "", nil)); code != http.StatusOK {
		t.Fatalf("B's subject logout = %d", code)
	}
	if code, _ := ms.token(customer2, "", "messaging"); code != http.StatusUnauthorized {
		t.Fatalf("B's session after the subject logout = %d; want 401", code)
	}
	if code, claims := ms.token(staff, "", "messaging"); code != 200 || claims["external_id"] != "emp-u-1" {
		t.Fatalf("A's session after B's subject logout of u-1 = %d %v; want it alive", code, claims)
	}
	// A token from an issuer no provider has is refused without asking any IdP.
	stranger := oidctest.NewT(t, oidctest.Options{})
	ms.a.ResetCounts()
	ms.b.ResetCounts()
	if code := ms.postLogoutToken(stranger.LogoutToken("u-1", "", nil)); code != http.StatusBadRequest {
		t.Fatalf("logout token of an unknown issuer = %d; want 400", code)
	}
	if n := idpCalls(ms.a) + idpCalls(ms.b); n != 0 {
		t.Fatalf("an unknown issuer's logout token made %d IdP calls", n)
	}
}

// TestMultiOutageOfA: IdP A goes down. Its sessions fail closed (503), B's users keep working,
// /readyz stays ready (every provider was discovered) and zdgate_idp_up says which one fails.
func TestMultiOutageOfA(t *testing.T) {
	ms := newMultiStack(t, multiOpts{})
	staff, customer := ms.newClient(), ms.newClient()
	ms.loginVia(staff, "staff", "/")
	ms.loginVia(customer, "customers", "/")
	ms.a.SetDown(true)
	ms.clock.Advance(2 * time.Minute)
	if code, body := ms.token(staff, "", "messaging"); code != http.StatusServiceUnavailable || body["error"] != "idp_unavailable" {
		t.Fatalf("staff token with A down = %d %v; want 503 idp_unavailable", code, body)
	}
	for i := 0; i < 3; i++ {
		if code, claims := ms.token(customer, "", "messaging"); code != 200 || claims["external_id"] != "cust-u-1" {
			t.Fatalf("customers token %d with A down = %d %v; want 200", i, code, claims)
		}
		ms.clock.Advance(2 * time.Minute)
	}
	if res, body := ms.do(ms.newClient(), "GET", "/readyz", nil); res.StatusCode != 200 {
		t.Fatalf("/readyz with A down = %d %s; want 200 (one provider's outage is not the replica's)", res.StatusCode, body)
	}
	want := `
# HELP zdgate_idp_up 1 while the identity provider is discovered, its latest call did not fail as unavailable and it accepts zdgate's client; else 0. Per provider when several are configured.
# TYPE zdgate_idp_up gauge
zdgate_idp_up{provider="customers"} 1
zdgate_idp_up{provider="staff"} 0
`
	if err := testutil.GatherAndCompare(ms.reg, strings.NewReader(want), "zdgate_idp_up"); err != nil {
		t.Fatal(err)
	}
	ms.a.SetDown(false)
	ms.clock.Advance(2 * time.Minute)
	ms.idpClock.Advance(oidc.DefaultFailFast + time.Second) // past A's fail-fast period: a probe goes through
	if code, _ := ms.token(staff, "", "messaging"); code != 200 {
		t.Fatalf("staff token after A recovered = %d", code)
	}
	if err := testutil.GatherAndCompare(ms.reg, strings.NewReader(strings.Replace(want, `provider="staff"} 0`, `provider="staff"} 1`, 1)), "zdgate_idp_up"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(ms.proxy.m.byProvider.idpChecks.WithLabelValues("refresh", "unavailable", "staff")); got < 1 {
		t.Errorf(`idp_checks{kind="refresh",result="unavailable",provider="staff"} = %v; want ≥1`, got)
	}
}

// TestMultiWhatTheAppSees: the upstream and forward-auth learn the provider; an incoming
// X-Forwarded-Provider, in any spelling, never reaches the app; metrics carry the provider.
func TestMultiWhatTheAppSees(t *testing.T) {
	ms := newMultiStack(t, multiOpts{})
	c := ms.newClient()
	ms.loginVia(c, "staff", "/")
	ms.do(c, "GET", "/page", map[string]string{"X-Forwarded-Provider": "customers", "X_Forwarded_Provider": "customers"})
	seen := ms.nextSeen()
	if got := seen.Header.Values("X-Forwarded-Provider"); len(got) != 1 || got[0] != "staff" {
		t.Fatalf("upstream X-Forwarded-Provider = %q; want exactly [staff]", got)
	}
	if _, ok := seen.Header["X_forwarded_provider"]; ok {
		t.Fatal("the underscore spelling reached the upstream")
	}
	res, _ := ms.do(c, "GET", "/oauth2/auth", nil)
	if res.StatusCode != http.StatusAccepted || res.Header.Get("X-Auth-Request-Provider") != "staff" {
		t.Fatalf("forward-auth = %d, provider %q", res.StatusCode, res.Header.Get("X-Auth-Request-Provider"))
	}
	_, body := ms.do(c, "GET", "/oauth2/userinfo", nil)
	if jsonBody(t, body)["provider"] != "staff" {
		t.Fatalf("userinfo = %s; want provider staff", body)
	}
	ms.token(c, "", "messaging")
	want := `
# HELP zdgate_tokens_minted_total Zendesk JWTs minted, by flavor.
# TYPE zdgate_tokens_minted_total counter
zdgate_tokens_minted_total{flavor="messaging",provider="staff"} 1
`
	if err := testutil.GatherAndCompare(ms.reg, strings.NewReader(want), "zdgate_tokens_minted_total"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(ms.proxy.m.byProvider.idpChecks.WithLabelValues("login", "ok", "staff")); got != 1 {
		t.Errorf(`idp_checks{kind="login",result="ok",provider="staff"} = %v; want 1`, got)
	}
}

// TestSingleIdPStripsProviderHeader: with one IdP nothing new reaches the app, and a spoofed
// X-Forwarded-Provider is stripped like every identity header.
func TestSingleIdPStripsProviderHeader(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	st.do(st.client, "GET", "/page", map[string]string{"X-Forwarded-Provider": "admins"})
	if got := st.nextSeen().Header.Values("X-Forwarded-Provider"); len(got) != 0 {
		t.Fatalf("upstream X-Forwarded-Provider = %q; want none with a single IdP", got)
	}
	// An unauthenticated request too.
	st.do(newClient(), "GET", "/page", map[string]string{"X-Forwarded-Provider": "admins", "Accept": "application/json"})
	st.noUpstream() // refused (401) before the upstream
}

// TestMultiSessionOfNoProvider: a session whose provider is not configured (here: a cookie from
// before providers: was set, with no provider) is no session: the visitor logs in again, and the
// dead cookie is dropped.
func TestMultiSessionOfNoProvider(t *testing.T) {
	ms := newMultiStack(t, multiOpts{})
	for _, provider := range []string{"", "removed"} {
		c := ms.newClient()
		s := &session.Session{ID: session.NewID(), Subject: "u-1", Claims: map[string]any{"sub": "u-1"},
			CreatedAt: ms.clock.Now(), ConfirmedAt: ms.clock.Now(), Provider: provider}
		rec := httptest.NewRecorder()
		if err := ms.store.Save(context.Background(), rec, httptest.NewRequest("GET", "/", nil), s); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", ms.front+"/zendesk/token", nil)
		for _, ck := range rec.Result().Cookies() {
			req.AddCookie(ck)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || body["error"] != "unauthenticated" {
			t.Fatalf("provider %q: token = %d %v; want 401 unauthenticated", provider, res.StatusCode, body)
		}
		if !strings.Contains(strings.Join(res.Header.Values("Set-Cookie"), "\n"), "Max-Age=0") {
			t.Errorf("provider %q: the dead cookie was not dropped", provider)
		}
	}
}
