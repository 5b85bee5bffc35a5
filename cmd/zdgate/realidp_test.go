package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zdgate/zdgate/internal/nodeidp"
	"github.com/zdgate/zdgate/proxy/session"
	"github.com/zdgate/zdgate/tokens"
)

// realIdPStack is zdgate wired exactly as `zdgate serve` wires it, in front of an echo app, against
// panva's oidc-provider (a real, certified OpenID provider, not our code).
type realIdPStack struct {
	idp    *nodeidp.IdP
	url    string
	cfg    *Config
	cookie session.Store
}

const realMessagingSecret = "real-idp-messaging-secret"

func startRealIdPStack(t *testing.T) *realIdPStack {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	idp := nodeidp.Start(t, nodeidp.Options{
		ClientID: "zdgate", ClientSecret: "real-idp-client-secret",
		RedirectURI: public + "/oauth2/callback", PostLogoutRedirectURI: public + "/",
		BackchannelLogoutURI: public + "/oauth2/backchannel_logout",
	})
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "app sees "+r.Header.Get("X-Forwarded-User"))
	}), ReadHeaderTimeout: time.Second}
	appLn := listenLoopback(t)
	go app.Serve(appLn)
	t.Cleanup(func() { app.Close() })

	return serveRealIdPStack(t, ln, public, idp,
		"--upstream=http://"+appLn.Addr().String(),
		"--oidc-issuer="+idp.Issuer(), "--oidc-client-id=zdgate", "--oidc-client-secret=real-idp-client-secret",
		"--log-level=debug")
}

// serveRealIdPStack runs zdgate's serve wiring on ln at public with args plus what every real-IdP
// stack shares: the cookie secret, plain-HTTP cookies, a re-check on every request ("past the
// interval" without sleeping) and the messaging key.
func serveRealIdPStack(t *testing.T, ln net.Listener, public string, idp *nodeidp.IdP, args ...string) *realIdPStack {
	t.Helper()
	cfg := &Config{}
	if _, err := cfg.options().parse(append([]string{
		"--public-url=" + public,
		"--cookie-secret=0123456789abcdef0123456789abcdef", "--cookie-secure=false",
		"--recheck-interval=1ns",
		"--zendesk-messaging-key-id=app_real", "--zendesk-messaging-secret=" + realMessagingSecret,
		"--metrics-listen=127.0.0.1:0",
	}, args...), envOf(nil)); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := wire(cfg, slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.ln = ln
	runApp(t, a, public)
	store, _ := session.NewCookieStore(session.CookieConfig{Name: "_zdgate", TTL: 12 * time.Hour,
		Secrets: func() [][]byte { return [][]byte{[]byte("0123456789abcdef0123456789abcdef")} }})
	return &realIdPStack{idp: idp, url: public, cfg: cfg, cookie: store}
}

func noFollow() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// loginReal logs a browser-like client in through oidc-provider's login form.
func (s *realIdPStack) login(t *testing.T, c *http.Client, user, password string) {
	t.Helper()
	res, err := c.Get(s.url + "/oauth2/start?rd=/")
	if err != nil || res.StatusCode != http.StatusFound {
		t.Fatalf("start: %v %v", res, err)
	}
	res.Body.Close()
	cb, err := s.idp.Login(c, res.Header.Get("Location"), user, password)
	if err != nil {
		t.Fatalf("IdP login: %v", err)
	}
	cb.Body.Close()
	res, err = c.Get(cb.Header.Get("Location"))
	if err != nil || res.StatusCode != http.StatusFound {
		t.Fatalf("callback: %v %v", res, err)
	}
	res.Body.Close()
}

func (s *realIdPStack) token(t *testing.T, c *http.Client) (int, map[string]any) {
	t.Helper()
	res, err := c.Get(s.url + "/zendesk/token")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return res.StatusCode, nil
	}
	var body struct{ JWT string }
	json.NewDecoder(res.Body).Decode(&body)
	r := tokens.Verify(body.JWT, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte(realMessagingSecret), KeyID: "app_real"})
	if len(r.Problems) > 0 {
		t.Fatalf("token from the real IdP flow does not verify: %v", r.Problems)
	}
	return 200, r.Claims
}

func (s *realIdPStack) session(t *testing.T, c *http.Client) *session.Session {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url, nil)
	for _, ck := range c.Jar.Cookies(mustParse(s.url)) {
		req.AddCookie(ck)
	}
	sess, err := s.cookie.Load(context.Background(), req)
	if err != nil {
		return nil
	}
	return sess
}

func TestRealIdPDeletedAccountLosesTokens(t *testing.T) {
	s := startRealIdPStack(t)
	c := noFollow()
	s.login(t, c, nodeidp.Alice, nodeidp.AlicePassword)
	code, claims := s.token(t, c)
	if code != 200 || claims["external_id"] != nodeidp.Alice || claims["email"] != "alice@example.com" {
		t.Fatalf("token = %d %v", code, claims)
	}
	// Refresh-token rotation round trip: each request re-checks, each refresh rotates the token.
	before := s.session(t, c).RefreshToken
	for i := 0; i < 3; i++ {
		if code, _ := s.token(t, c); code != 200 {
			t.Fatalf("token %d during rotation = %d", i, code)
		}
	}
	if after := s.session(t, c).RefreshToken; after == before || after == "" {
		t.Fatal("the rotated refresh token was not stored back in the session")
	}
	counts, _ := s.idp.Counts()
	if counts["refresh_token"] < 3 || counts["refresh_token_error"] != 0 {
		t.Fatalf("IdP counts = %v; want ≥3 clean refreshes", counts)
	}
	// A claims change at the IdP shows in the next token.
	if err := s.idp.SetClaims(nodeidp.Alice, map[string]any{"name": "Alice Renamed"}); err != nil {
		t.Fatal(err)
	}
	if _, claims := s.token(t, c); claims["name"] != "Alice Renamed" {
		t.Fatalf("name after claims change = %v", claims["name"])
	}
	// The administrator deletes the account: the next token request is refused and the session ends.
	if err := s.idp.DeleteAccount(nodeidp.Alice); err != nil {
		t.Fatal(err)
	}
	if code, _ := s.token(t, c); code != http.StatusUnauthorized {
		t.Fatalf("token after account deletion = %d; want 401", code)
	}
	if s.session(t, c) != nil {
		t.Fatal("the session survived the account deletion")
	}
}

func TestRealIdPRevokedRefreshToken(t *testing.T) {
	s := startRealIdPStack(t)
	c := noFollow()
	s.login(t, c, nodeidp.Alice, nodeidp.AlicePassword)
	sess := s.session(t, c)
	// Revoke at the IdP's RFC 7009 endpoint, as a security tool would.
	revoke(t, s.idp, sess)
	if code, _ := s.token(t, c); code != http.StatusUnauthorized {
		t.Fatalf("token after refresh-token revocation = %d; want 401", code)
	}
}

func TestRealIdPLogoutSendsBackchannel(t *testing.T) {
	s := startRealIdPStack(t)
	c := noFollow()
	s.login(t, c, nodeidp.Alice, nodeidp.AlicePassword)
	// A copy of the session cookie elsewhere (another tab, or a stolen copy) must die with the IdP logout.
	copyJar, _ := cookiejar.New(nil)
	copyJar.SetCookies(mustParse(s.url), c.Jar.Cookies(mustParse(s.url)))
	other := &http.Client{Jar: copyJar, Timeout: 10 * time.Second}
	if code, _ := s.token(t, other); code != 200 {
		t.Fatalf("copied session token = %d", code)
	}
	res, err := c.Get(s.url + "/oauth2/sign_out?rd=/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	end := signedOutNext(string(page)) // the signed-out page continues there after the widget logout
	if !strings.HasPrefix(end, s.idp.Issuer()) {
		t.Fatalf("sign_out went to %q; want the IdP's end_session", end)
	}
	if err := s.idp.Logout(c, end); err != nil {
		t.Fatalf("IdP logout: %v", err)
	}
	counts, _ := s.idp.Counts()
	if counts["backchannel_logout"] != 1 || counts["backchannel_logout_error"] != 0 {
		t.Fatalf("IdP counts = %v; want one delivered back-channel logout", counts)
	}
	if code, _ := s.token(t, other); code != http.StatusUnauthorized {
		t.Fatalf("the copied session after back-channel logout = %d; want 401", code)
	}
}

// tlogWriter sends zdgate's log to t.Log, shown only when the test fails.
type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestRealIdPSignOutRevokesRefreshToken: sign-out revokes the session's refresh token at
// oidc-provider's RFC 7009 endpoint, so the IdP itself refuses it afterwards (introspection and a
// refresh grant), and a copy of the cookie taken before is refused.
func TestRealIdPSignOutRevokesRefreshToken(t *testing.T) {
	s := startRealIdPStack(t)
	c := noFollow()
	s.login(t, c, nodeidp.Alice, nodeidp.AlicePassword)
	sess := s.session(t, c)
	if sess == nil || sess.RefreshToken == "" {
		t.Fatal("no session with a refresh token after login")
	}
	copyJar, _ := cookiejar.New(nil)
	copyJar.SetCookies(mustParse(s.url), c.Jar.Cookies(mustParse(s.url)))
	stolen := &http.Client{Jar: copyJar, Timeout: 10 * time.Second}
	var meta struct {
		Introspection string `json:"introspection_endpoint"`
		Token         string `json:"token_endpoint"`
	}
	res, err := http.Get(s.idp.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(res.Body).Decode(&meta)
	res.Body.Close()
	post := func(endpoint string, form url.Values) (int, map[string]any) {
		req, _ := http.NewRequest("POST", endpoint, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("zdgate", "real-idp-client-secret")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	// The refresh token is live before sign-out (and rotates on each re-check, so read it again).
	if code, _ := s.token(t, c); code != 200 {
		t.Fatalf("token before sign-out = %d", code)
	}
	sess = s.session(t, c)
	if _, out := post(meta.Introspection, url.Values{"token": {sess.RefreshToken}}); out["active"] != true {
		t.Fatalf("introspection of the refresh token before sign-out = %v; want active", out)
	}

	req, _ := http.NewRequest("GET", s.url+"/oauth2/sign_out?rd=/", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if next := signedOutNext(string(page)); res.StatusCode != http.StatusOK || !strings.HasPrefix(next, s.idp.Issuer()) {
		t.Fatalf("sign-out = %d continuing to %q; want the signed-out page continuing to the IdP's end_session", res.StatusCode, next)
	}
	counts, _ := s.idp.Counts()
	if counts["revocation"] != 1 || counts["revocation_error"] != 0 {
		t.Fatalf("IdP counts = %v; want one successful revocation", counts)
	}
	if _, out := post(meta.Introspection, url.Values{"token": {sess.RefreshToken}}); out["active"] != false {
		t.Fatalf("introspection of the refresh token after sign-out = %v; want active:false", out)
	}
	if code, out := post(meta.Token, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {sess.RefreshToken}}); code != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("refresh grant with the signed-out refresh token = %d %v; want 400 invalid_grant", code, out)
	}
	if code, _ := s.token(t, stolen); code != http.StatusUnauthorized {
		t.Fatalf("a copy of the cookie after sign-out = %d; want 401", code)
	}
}

// TestRealIdPStaleCookieKeepsTheGrant: oidc-provider revokes the whole grant when a rotated-away
// refresh token is presented again. A cookie one refresh old, replayed on the replica that did the
// refresh, must not do that to the real user (issue 10 item 8).
func TestRealIdPStaleCookieKeepsTheGrant(t *testing.T) {
	s := startRealIdPStack(t) // --recheck-interval=1ns: every request refreshes
	c := noFollow()
	s.login(t, c, nodeidp.Alice, nodeidp.AlicePassword)
	oldJar, _ := cookiejar.New(nil)
	oldJar.SetCookies(mustParse(s.url), c.Jar.Cookies(mustParse(s.url)))
	stale := &http.Client{Jar: oldJar, Timeout: 10 * time.Second}
	if code, _ := s.token(t, c); code != 200 { // rotates: the browser holds the new cookie
		t.Fatalf("token = %d", code)
	}
	if code, _ := s.token(t, stale); code != 200 {
		t.Fatalf("the stale cookie = %d; want 200 from the session's latest state", code)
	}
	if code, _ := s.token(t, c); code != 200 {
		t.Fatalf("the real browser after the stale replay = %d; want 200 (the grant must survive)", code)
	}
	counts, _ := s.idp.Counts()
	if counts["refresh_token_error"] != 0 {
		t.Fatalf("IdP counts = %v; want no failed refresh (no reuse detected)", counts)
	}
}
