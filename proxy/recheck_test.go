package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/tokens"
)

func TestRevokedThroughEachRoute(t *testing.T) {
	cases := []struct {
		name   string
		opts   stackOpts
		revoke func(st *stack)
		want   string // which IdP endpoint must have been asked
	}{
		{"refresh invalid_grant", stackOpts{}, func(st *stack) { st.idp.DeleteUser("user-1") }, "token.refresh"},
		{"refresh token revoked", stackOpts{}, func(st *stack) {
			s, _ := st.sessionOf(st.client)
			st.idp.RevokeToken(s.RefreshToken)
		}, "token.refresh"},
		{"userinfo 401", stackOpts{scopes: []string{"openid", "email", "profile"}}, func(st *stack) { st.idp.DeleteUser("user-1") }, "userinfo"},
		{"introspection inactive", stackOpts{scopes: []string{"openid", "email", "profile"}, idp: oidctest.Options{Disable: []string{"userinfo"}}},
			func(st *stack) { st.idp.DeleteUser("user-1") }, "introspect"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newStack(t, c.opts)
			st.login(st.client, "/")
			c.revoke(st)
			st.idp.ResetCounts()
			st.clock.Advance(2 * time.Minute)
			res, _ := st.do(st.client, "GET", "/zendesk/token", nil)
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("token after revocation = %d; want 401", res.StatusCode)
			}
			if st.idp.Count(c.want) != 1 {
				t.Fatalf("%s calls = %d; want 1", c.want, st.idp.Count(c.want))
			}
			if _, err := st.sessionOf(st.client); err == nil {
				t.Fatal("session survived the revocation")
			}
			if got := counterValue(t, st.reg, "zdgate_sessions_ended_total", "reason", "revoked"); got != 1 {
				t.Fatalf("sessions_ended{revoked} = %v; want 1", got)
			}
		})
	}
}

func TestIdPOutage(t *testing.T) {
	for _, grace := range []time.Duration{0, 5 * time.Minute} {
		t.Run("grace="+grace.String(), func(t *testing.T) {
			st := newStack(t, stackOpts{mutate: func(c *Config) { c.RecheckGrace = grace }})
			st.login(st.client, "/")
			st.idp.SetDown(true)
			st.clock.Advance(2 * time.Minute)
			res, body := st.do(st.client, "GET", "/zendesk/token", nil)
			want := http.StatusServiceUnavailable
			if grace > 0 {
				want = http.StatusOK
			}
			if res.StatusCode != want {
				t.Fatalf("token while the IdP is down = %d %s; want %d", res.StatusCode, body, want)
			}
			// The session is kept either way: an outage is not a revocation.
			if _, err := st.sessionOf(st.client); err != nil {
				t.Fatalf("session ended by an outage: %v", err)
			}
			// Past the grace, fail closed.
			st.clock.Advance(grace + time.Minute)
			if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("token past the grace = %d; want 503", res.StatusCode)
			}
			st.idp.SetDown(false)
			st.idpClock.Advance(oidc.DefaultFailFast) // the fail-fast period after the failed call
			if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
				t.Fatalf("token after the IdP is back = %d; want 200", res.StatusCode)
			}
		})
	}
}

// TestIdPSlowTimesOut: an IdP that never answers is cut off by the IdP client's timeout (2 s
// here) and the request fails closed. The bound proves the cut without measuring it: the IdP
// would hold the request for an hour, and the test client gives up after 10 s.
func TestIdPSlowTimesOut(t *testing.T) {
	st := newStack(t, stackOpts{}) // the IdP client has a 2 s timeout
	st.login(st.client, "/")
	st.idp.SetDelay(time.Hour)
	st.clock.Advance(2 * time.Minute)
	start := time.Now()
	res, _ := st.do(st.client, "GET", "/zendesk/token", nil)
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("token with a hung IdP = %d; want 503", res.StatusCode)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("waited %v; the IdP client timeout (2 s) should have cut it", d)
	}
	st.idp.SetDelay(0)
}

func TestKeyRotationMidSession(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	st.idp.RotateKeys()
	st.idp.DropOldKeys()
	st.clock.Advance(2 * time.Minute)
	// The refreshed ID token is signed with a key zdgate has never seen: go-oidc refetches the JWKS.
	if res, body := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Fatalf("token after key rotation = %d %s", res.StatusCode, body)
	}
}

func TestGroupRemovedLosesAccess(t *testing.T) {
	st := newStack(t, stackOpts{mutate: func(c *Config) { c.AllowedGroups = []string{"staff"} }})
	st.login(st.client, "/")
	st.idp.UpdateUser("user-1", func(u *oidctest.User) { u.Groups = []string{"contractors"} })
	st.clock.Advance(2 * time.Minute)
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("token after group removal = %d; want 403", res.StatusCode)
	}
	if _, err := st.sessionOf(st.client); err == nil {
		t.Fatal("session kept after the rules stopped admitting the user")
	}
}

func TestSessionTTLIsAbsolute(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	for i := 0; i < 12; i++ { // refresh every hour for 12 hours
		st.clock.Advance(time.Hour - time.Second)
		res, _ := st.do(st.client, "GET", "/zendesk/token", nil)
		if i < 11 && res.StatusCode != 200 {
			t.Fatalf("hour %d: token = %d", i, res.StatusCode)
		}
	}
	st.clock.Advance(time.Minute)
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token after --session-ttl despite refreshes = %d; want 401", res.StatusCode)
	}
}

func TestRefreshTokenNeverInClear(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	s, _ := st.sessionOf(st.client)
	for _, c := range st.client.Jar.Cookies(mustURL(st.front.URL)) {
		if strings.Contains(c.Value, s.RefreshToken) || strings.Contains(c.Value, s.AccessToken) {
			t.Fatal("a token is readable in a cookie")
		}
	}
	_, body := st.do(st.client, "GET", "/oauth2/userinfo", nil)
	if strings.Contains(body, s.RefreshToken) || strings.Contains(body, s.AccessToken) {
		t.Fatal("userinfo exposes IdP tokens")
	}
}

func TestBearerTokens(t *testing.T) {
	st := newStack(t, stackOpts{idp: oidctest.Options{AccessTokenAudiences: []string{"mobile-api"}}, mutate: func(c *Config) {}})
	good := st.idp.AccessToken("user-1", nil)
	bearer := func(tok string) (*http.Response, string) {
		return st.do(newClient(), "GET", "/zendesk/token", map[string]string{"Authorization": "Bearer " + tok})
	}
	res, body := bearer(good)
	if res.StatusCode != 200 {
		t.Fatalf("valid bearer = %d %s", res.StatusCode, body)
	}
	if len(res.Cookies()) != 0 {
		t.Fatalf("a bearer call set cookies: %v", res.Cookies())
	}
	claims := verifyMessaging(t, jsonBody(t, body)["jwt"].(string), st.clock.Now())
	if claims["external_id"] != "user-1" {
		t.Fatalf("claims = %v", claims)
	}
	base := st.idp.IDTokenClaims("user-1", st.idp.Client().ID, "")
	delete(base, "nonce")
	bad := map[string]string{
		"expired":          st.idp.AccessToken("user-1", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }),
		"wrong audience":   st.idp.AccessToken("user-1", func(c map[string]any) { c["aud"] = "someone-else" }),
		"alg none":         st.idp.Forge(oidctest.ForgeNone, base),
		"HS256 public key": st.idp.Forge(oidctest.ForgeHS256PublicKey, base),
		"unknown kid":      st.idp.Forge(oidctest.ForgeUnknownKey, base),
		"garbage":          "not-a-token",
		"forged signature": good[:len(good)-4] + "AAAA",
	}
	for name, tok := range bad {
		if res, body := bearer(tok); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s bearer = %d %s; want 401", name, res.StatusCode, body)
		}
	}
	// Cache: a second call with the same token does not ask the IdP again.
	st.idp.ResetCounts()
	bearer(good)
	if n := st.idp.Count("userinfo"); n != 0 {
		t.Fatalf("cached bearer asked userinfo %d times", n)
	}
	// A user deleted at the IdP: the cache lives at most --recheck-interval.
	st.idp.DeleteUser("user-1")
	st.clock.Advance(61 * time.Second)
	if res, _ := bearer(good); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bearer of a deleted user after the interval = %d; want 401", res.StatusCode)
	}
}

func TestBearerOpaqueTokenIntrospected(t *testing.T) {
	st := newStack(t, stackOpts{idp: oidctest.Options{OpaqueAccessTokens: true}})
	tok := st.idp.AccessToken("user-1", nil)
	res, body := st.do(newClient(), "GET", "/zendesk/token", map[string]string{"Authorization": "Bearer " + tok})
	if res.StatusCode != 200 {
		t.Fatalf("opaque bearer = %d %s", res.StatusCode, body)
	}
	if st.idp.Count("introspect") != 1 {
		t.Fatalf("introspections = %d; want 1", st.idp.Count("introspect"))
	}
	st.idp.RevokeToken(tok)
	st.clock.Advance(61 * time.Second)
	if res, _ := st.do(newClient(), "GET", "/zendesk/token", map[string]string{"Authorization": "Bearer " + tok}); res.StatusCode != 401 {
		t.Fatalf("revoked opaque bearer = %d; want 401", res.StatusCode)
	}
}

func TestBackchannelLogout(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	s, _ := st.sessionOf(st.client)
	post := st.postLogoutToken
	bad := map[string]string{
		"no events": st.idp.LogoutToken("user-1", s.SID, func(c map[string]any) { delete(c, "events") }),
		"has nonce": st.idp.LogoutToken("user-1", s.SID, func(c map[string]any) { c["nonce"] = "n" }),
		"wrong aud": st.idp.LogoutToken("user-1", s.SID, func(c map[string]any) { c["aud"] = "other" }),
		"wrong iss": st.idp.LogoutToken("user-1", s.SID, func(c map[string]any) { c["iss"] = "https://evil.example" }),
		"old iat":   st.idp.LogoutToken("user-1", s.SID, func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }),
		"alg none":  st.idp.Forge(oidctest.ForgeNone, map[string]any{"iss": st.idp.URL(), "aud": st.idp.Client().ID, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(), "jti": "x", "sid": s.SID, "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}),
		"empty":     "",
	}
	for name, tok := range bad {
		if code := post(tok); code != http.StatusBadRequest {
			t.Errorf("%s logout token = %d; want 400", name, code)
		}
	}
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Fatalf("bad logout tokens ended the session: %d", res.StatusCode)
	}
	good := st.idp.LogoutToken("user-1", s.SID, nil)
	if code := post(good); code != http.StatusOK {
		t.Fatalf("valid logout token = %d; want 200", code)
	}
	if code := post(good); code != http.StatusBadRequest {
		t.Fatalf("replayed logout token = %d; want 400", code)
	}
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token after back-channel logout = %d; want 401", res.StatusCode)
	}
	// The IdP's own end_session sends the logout token itself; a new login works afterwards.
	st.login(st.client, "/")
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Fatalf("token after a new login = %d", res.StatusCode)
	}
}

func TestBackchannelLogoutFromIdPEndSession(t *testing.T) {
	st := newStack(t, stackOpts{backchannel: true})
	other := newClient() // a second browser of the same user, different IdP session
	st.login(st.client, "/")
	st.login(other, "/")
	res, body := st.do(st.client, "GET", "/oauth2/sign_out?rd=/", nil)
	// Follow to the IdP: it POSTs the logout token to zdgate before redirecting back.
	next, _ := signedOutNext(t, res, body)
	res, _ = st.do(st.client, "GET", next, nil)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("end_session = %d", res.StatusCode)
	}
	if st.idp.Count("backchannel") == 0 {
		t.Fatal("the IdP sent no back-channel logout")
	}
	if res, _ := st.do(other, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Fatalf("the other browser's session (another sid) = %d; want 200", res.StatusCode)
	}
}

func TestSSOFlow(t *testing.T) {
	st := newStack(t, stackOpts{})
	res, _ := st.do(st.client, "GET", "/zendesk/sso?return_to="+url.QueryEscape("https://acme.zendesk.com/hc/en-us/articles/1"), nil)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("anonymous sso = %d; want a login redirect", res.StatusCode)
	}
	rd := st.finishLogin(st.client, res.Header.Get("Location"))
	res, body := st.do(st.client, "GET", rd, nil)
	// return_to travels as a query parameter of /access/jwt, as in Zendesk's own examples
	// (zendesk_jwt_sso_examples: ".../access/jwt?jwt=...&return_to=..."); the JWT is the POST body.
	if res.StatusCode != 200 || !strings.Contains(body, `action="https://acme.zendesk.com/access/jwt?return_to=https%3A%2F%2Facme.zendesk.com%2Fhc%2Fen-us%2Farticles%2F1"`) {
		t.Fatalf("sso after login = %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, `name="return_to"`) {
		t.Errorf("return_to is also a form field: %s", body)
	}
	if !strings.Contains(res.Header.Get("Cache-Control"), "no-store") || !strings.Contains(res.Header.Get("Content-Security-Policy"), "nonce-") {
		t.Errorf("sso headers: %v", res.Header)
	}
	jwt := formValue(t, body, "jwt")
	r := tokens.Verify(jwt, tokens.VerifyOptions{Flavor: tokens.SSO, Secret: []byte(testSSOSecret), Now: st.clock.Now})
	if len(r.Problems) > 0 {
		t.Fatalf("SSO JWT does not verify: %v", r.Problems)
	}
	if r.Claims["email"] != "alice@example.com" || r.Claims["external_id"] != "user-1" || r.Claims["jti"] == nil {
		t.Fatalf("SSO claims = %v", r.Claims)
	}
	for _, evil := range []string{"https://evil.example", "//evil.example", "https://acme.zendesk.com.evil.example/", "http://acme.zendesk.com/", "javascript:alert(1)", "https://user@acme.zendesk.com@evil.example/"} {
		_, body := st.do(st.client, "GET", "/zendesk/sso?return_to="+url.QueryEscape(evil), nil)
		if strings.Contains(body, "return_to") || !strings.Contains(body, `action="https://acme.zendesk.com/access/jwt"`) {
			t.Errorf("return_to %q was kept: %s", evil, body)
		}
	}
	// Remote logout ends the session and never logs back in by itself.
	st.idp.ResetCounts()
	res, body = st.do(st.client, "GET", "/zendesk/sso/logout?kind=info&email=alice@example.com&return_to="+url.QueryEscape("https://acme.zendesk.com/hc")+"&brand_id=1", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "signed out") {
		t.Fatalf("sso logout = %d %s", res.StatusCode, body)
	}
	if st.idp.Count("authorize") != 0 {
		t.Fatal("remote logout started a login")
	}
	res, _ = st.do(st.client, "GET", "/zendesk/sso", nil)
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), st.idp.URL()) {
		t.Fatalf("sso after remote logout = %d %q; want to ask the IdP again", res.StatusCode, res.Header.Get("Location"))
	}
}

func formValue(t *testing.T, body, name string) string {
	t.Helper()
	i := strings.Index(body, `name="`+name+`" value="`)
	if i < 0 {
		t.Fatalf("no %s field in %s", name, body)
	}
	rest := body[i+len(`name="`+name+`" value="`):]
	return strings.ReplaceAll(rest[:strings.IndexByte(rest, '"')], "&amp;", "&")
}

func TestSDKEndpoint(t *testing.T) {
	st := newStack(t, stackOpts{})
	post := func(ct, body string) (*http.Response, string) {
		res, err := http.Post(st.front.URL+"/zendesk/sdk", ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b := new(strings.Builder)
		_, _ = strings.NewReader("").WriteTo(b)
		buf := make([]byte, 64<<10)
		n, _ := res.Body.Read(buf)
		return res, string(buf[:n])
	}
	good := st.idp.AccessToken("user-1", nil)
	res, body := post("application/x-www-form-urlencoded", url.Values{"user_token": {good}}.Encode())
	if res.StatusCode != 200 {
		t.Fatalf("sdk = %d %s", res.StatusCode, body)
	}
	jwt := jsonBody(t, body)["jwt"].(string)
	if r := tokens.Verify(jwt, tokens.VerifyOptions{Flavor: tokens.SDK, Secret: []byte(testSDKSecret), Now: st.clock.Now}); len(r.Problems) > 0 {
		t.Fatalf("SDK JWT: %v", r.Problems)
	}
	if res, body := post("application/json", `{"user_token":"`+good+`"}`); res.StatusCode != 400 || !strings.Contains(body, "form_encoding_expected") {
		t.Errorf("JSON body = %d %s; want 400 form_encoding_expected", res.StatusCode, body)
	}
	expired := st.idp.AccessToken("user-1", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })
	forged := st.idp.Forge(oidctest.ForgeUnknownKey, st.idp.IDTokenClaims("user-1", st.idp.Client().ID, ""))
	revoked := st.idp.AccessToken("user-1", nil)
	st.idp.RevokeToken(revoked)
	for name, tok := range map[string]string{"expired": expired, "forged": forged, "revoked": revoked, "empty": ""} {
		if res, body := post("application/x-www-form-urlencoded", url.Values{"user_token": {tok}}.Encode()); res.StatusCode != 401 || jsonBody(t, body)["error"] == nil {
			t.Errorf("%s user_token = %d %s; want 401 JSON", name, res.StatusCode, body)
		}
	}
}

func TestSSOLogoutAtTheIdP(t *testing.T) {
	st := newStack(t, stackOpts{mutate: func(c *Config) { c.SSOLogoutIdP = true }})
	st.login(st.client, "/")
	res, body := st.do(st.client, "GET", "/zendesk/sso/logout?return_to="+url.QueryEscape("https://acme.zendesk.com/hc"), nil)
	loc, link := signedOutNext(t, res, body)
	if link || !strings.HasPrefix(loc, st.idp.URL()) {
		t.Fatalf("remote logout continues to %q (link %v); want the IdP's end_session", loc, link)
	}
	back := mustURL(loc).Query().Get("post_logout_redirect_uri")
	if !strings.HasPrefix(back, st.front.URL+"/zendesk/sso/logout?done=1") {
		t.Fatalf("post_logout_redirect_uri = %q", back)
	}
	// Back from the IdP: a page, no further redirect, no login.
	st.idp.ResetCounts()
	res, body = st.do(st.client, "GET", back, nil)
	if res.StatusCode != 200 || !strings.Contains(body, "signed out") || st.idp.Count("authorize") != 0 {
		t.Fatalf("return from the IdP = %d, authorize calls %d", res.StatusCode, st.idp.Count("authorize"))
	}
}
