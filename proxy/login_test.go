package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

func TestLoginProxiesWithIdentity(t *testing.T) {
	st := newStack(t, stackOpts{})
	// Unauthenticated page request: redirected to login, nothing proxied.
	res, _ := st.do(st.client, "GET", "/private/page?x=1", map[string]string{"Accept": "text/html"})
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), st.idp.URL()) {
		t.Fatalf("GET /private/page = %d %q; want 302 to the IdP", res.StatusCode, res.Header.Get("Location"))
	}
	st.noUpstream()
	if got := st.finishLogin(st.client, res.Header.Get("Location")); got != "/private/page?x=1" {
		t.Fatalf("after login redirected to %q; want /private/page?x=1", got)
	}
	res, body := st.do(st.client, "GET", "/private/page?x=1", map[string]string{"Accept": "application/json", "Cookie": "app=1"})
	if res.StatusCode != 200 {
		t.Fatalf("authenticated GET = %d: %s", res.StatusCode, body)
	}
	r := st.nextSeen()
	for h, want := range map[string]string{
		"X-Forwarded-User": "user-1", "X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "staff",
		"X-Forwarded-Preferred-Username": "alice",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("upstream %s = %q; want %q", h, got, want)
		}
	}
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, "_zdgate") {
			t.Errorf("upstream received zdgate cookie %q", c.Name)
		}
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Error("upstream got no X-Request-Id")
	}
}

func TestLoginSetsHardenedCookies(t *testing.T) {
	st := newStack(t, stackOpts{mutate: func(c *Config) { c.CookieSecure = true }})
	res, _ := st.do(st.client, "GET", "/oauth2/start?rd=/", nil)
	var login *http.Cookie
	for _, c := range res.Cookies() {
		if strings.HasPrefix(c.Name, "_zdgate_login_") {
			login = c
		}
	}
	if login == nil || !login.HttpOnly || !login.Secure || login.SameSite != http.SameSiteLaxMode || login.Path != "/oauth2/" {
		t.Fatalf("login cookie = %+v; want HttpOnly, Secure, SameSite=Lax, Path=/oauth2/", login)
	}
	if strings.Contains(res.Header.Get("Location"), "code_challenge_method=S256") == false || !strings.Contains(res.Header.Get("Location"), "nonce=") {
		t.Errorf("authorize URL %q lacks PKCE S256 or nonce", res.Header.Get("Location"))
	}
}

func TestCallbackStateChecks(t *testing.T) {
	st := newStack(t, stackOpts{})
	// Start a login, get the IdP's redirect back (code + state), then tamper.
	res, _ := st.do(st.client, "GET", "/oauth2/start?rd=/", nil)
	res, _ = st.do(st.client, "GET", res.Header.Get("Location"), nil)
	cb, _ := url.Parse(res.Header.Get("Location"))
	q := cb.Query()

	cases := []struct {
		name  string
		query url.Values
		jar   *http.Client
	}{
		{"missing state", url.Values{"code": {q.Get("code")}}, st.client},
		{"mismatched state", url.Values{"code": {q.Get("code")}, "state": {"forged-state"}}, st.client},
		{"no login cookie (other browser)", q, newClient()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, _ := st.do(c.jar, "GET", "/oauth2/callback?"+c.query.Encode(), nil)
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("callback = %d; want 400", res.StatusCode)
			}
			if s, err := st.sessionOf(c.jar); err == nil {
				t.Fatalf("a session was issued: %v", s)
			}
		})
	}
	// The genuine callback works once; replaying it (even with the cookie re-sent) does not.
	jarCookies := st.client.Jar.Cookies(mustURL(st.front.URL + "/oauth2/callback"))
	res, _ = st.do(st.client, "GET", cb.String(), nil)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("genuine callback = %d; want 302", res.StatusCode)
	}
	replay := newClient()
	replay.Jar.SetCookies(mustURL(st.front.URL+"/oauth2/callback"), jarCookies)
	res, _ = st.do(replay, "GET", cb.String(), nil)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed callback = %d; want 400", res.StatusCode)
	}
	if _, err := st.sessionOf(replay); err == nil {
		t.Fatal("replayed state produced a session")
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestSeveralTabsLogInAtOnce(t *testing.T) {
	st := newStack(t, stackOpts{})
	a, _ := st.do(st.client, "GET", "/oauth2/start?rd=/a", nil)
	b, _ := st.do(st.client, "GET", "/oauth2/start?rd=/b", nil)
	// Finish the second tab first, then the first.
	if got := st.finishLogin(st.client, b.Header.Get("Location")); got != "/b" {
		t.Fatalf("tab b landed on %q", got)
	}
	if got := st.finishLogin(st.client, a.Header.Get("Location")); got != "/a" {
		t.Fatalf("tab a landed on %q", got)
	}
}

func TestIDTokenAndUserinfoChecks(t *testing.T) {
	cases := []struct {
		name string
		rig  func(*oidctest.Server)
	}{
		{"nonce mismatch", func(s *oidctest.Server) { s.NextIDToken(func(c map[string]any) { c["nonce"] = "not-the-nonce" }) }},
		{"wrong issuer", func(s *oidctest.Server) { s.NextIDToken(func(c map[string]any) { c["iss"] = "https://evil.example" }) }},
		{"wrong audience", func(s *oidctest.Server) { s.NextIDToken(func(c map[string]any) { c["aud"] = "someone-else" }) }},
		{"expired", func(s *oidctest.Server) {
			s.NextIDToken(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
		}},
		{"alg none", func(s *oidctest.Server) {
			s.NextIDTokenRaw(func(c map[string]any) string { return s.Forge(oidctest.ForgeNone, c) })
		}},
		{"HS256 keyed with the public key", func(s *oidctest.Server) {
			s.NextIDTokenRaw(func(c map[string]any) string { return s.Forge(oidctest.ForgeHS256PublicKey, c) })
		}},
		{"unknown kid", func(s *oidctest.Server) {
			s.NextIDTokenRaw(func(c map[string]any) string { return s.Forge(oidctest.ForgeUnknownKey, c) })
		}},
		{"userinfo sub differs", func(s *oidctest.Server) { s.SetUserinfoSubject("user-1", "user-2") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newStack(t, stackOpts{})
			c.rig(st.idp)
			res, _ := st.do(st.client, "GET", "/oauth2/start?rd=/", nil)
			res, _ = st.do(st.client, "GET", res.Header.Get("Location"), nil)
			res, _ = st.do(st.client, "GET", res.Header.Get("Location"), nil)
			if res.StatusCode != http.StatusForbidden {
				t.Fatalf("callback = %d; want 403", res.StatusCode)
			}
			if _, err := st.sessionOf(st.client); err == nil {
				t.Fatal("a session was issued for a token that must not verify")
			}
		})
	}
	// Control: the untouched flow works, so the failures above are the checks, not the rig.
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	if _, err := st.sessionOf(st.client); err != nil {
		t.Fatalf("control login: %v", err)
	}
}

func TestNewSessionOnEveryLogin(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	first, err := st.sessionOf(st.client)
	if err != nil {
		t.Fatal(err)
	}
	st.login(st.client, "/")
	second, err := st.sessionOf(st.client)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == second.ID {
		t.Fatalf("login reused session id %q (fixation)", first.ID)
	}
}

func TestAccessRules(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		user   oidctest.User
		want   int
	}{
		{"domain allowed", func(c *Config) { c.AllowedEmailDomains = []string{"example.com"} }, oidctest.User{}, http.StatusFound},
		{"domain refused", func(c *Config) { c.AllowedEmailDomains = []string{"corp.example"} }, oidctest.User{}, http.StatusForbidden},
		{"suffix is not a domain", func(c *Config) { c.AllowedEmailDomains = []string{"ample.com"} }, oidctest.User{}, http.StatusForbidden},
		{"unverified email refused", func(c *Config) { c.AllowedEmailDomains = []string{"example.com"} },
			oidctest.User{Subject: "u2", Email: "bob@example.com", EmailVerified: false, Name: "Bob"}, http.StatusForbidden},
		{"two @ refused", func(c *Config) { c.AllowedEmailDomains = []string{"example.com"} },
			oidctest.User{Subject: "u3", Email: "eve@evil.example@example.com", EmailVerified: true, Name: "Eve"}, http.StatusForbidden},
		{"group allowed", func(c *Config) { c.AllowedGroups = []string{"admins", "staff"} }, oidctest.User{}, http.StatusFound},
		{"group refused", func(c *Config) { c.AllowedGroups = []string{"admins"} }, oidctest.User{}, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := stackOpts{mutate: c.mutate}
			if c.user.Subject != "" {
				o.idp.Users = []oidctest.User{c.user}
			}
			st := newStack(t, o)
			res, _ := st.do(st.client, "GET", "/oauth2/start?rd=/", nil)
			res, _ = st.do(st.client, "GET", res.Header.Get("Location"), nil)
			res, _ = st.do(st.client, "GET", res.Header.Get("Location"), nil)
			if res.StatusCode != c.want {
				t.Fatalf("callback = %d; want %d", res.StatusCode, c.want)
			}
		})
	}
}

func TestOpenRedirects(t *testing.T) {
	st := newStack(t, stackOpts{mutate: func(c *Config) { c.AllowedRedirectDomains = []string{".example.com", "app.partner.example"} }})
	cases := map[string]string{
		"/ok/path?q=1":                   "/ok/path?q=1",
		"//evil.example":                 "/",
		"/\\evil.example":                "/",
		"/\t/evil.example":               "/",
		"/\n/evil.example":               "/",
		"https:evil.example":             "/",
		"javascript:alert(1)":            "/",
		"https://site@evil.example":      "/",
		"https://evil.example/":          "/",
		"https://evilexample.com/":       "/",
		"https://example.com.evil.com/":  "/",
		"http://app.example.com/":        "/", // plain http to a site served over http only if ours is http: ours is http here, so allowed below
		"https://app.example.com/x":      "https://app.example.com/x",
		"https://EXAMPLE.com./x":         "https://EXAMPLE.com./x",
		"https://app.partner.example/":   "https://app.partner.example/",
		"https://x.app.partner.example/": "/",
		"":                               "/",
		"relative/path":                  "/",
		// Hosts a URL library may map onto another host (full-width solidus U+FF0F, IDNA mapping
		// to "/"): only ASCII letters, digits, '-', '.' and '_' pass.
		"https://evil.example\uff0f.example.com/":    "/",
		"https://evil.example%EF%BC%8F.example.com/": "/",
		"https://evil.example\u2044.example.com/":    "/",
	}
	for rd, want := range cases {
		got := st.proxy.safeRedirect(rd)
		if rd == "http://app.example.com/" {
			want = "http://app.example.com/" // the test site itself is http
		}
		if got != want {
			t.Errorf("safeRedirect(%q) = %q; want %q", rd, got, want)
		}
	}
	// End to end: a hostile rd never becomes the post-login redirect.
	if got := st.login(st.client, "//evil.example/x"); got != "/" {
		t.Fatalf("post-login redirect = %q; want /", got)
	}
}

func TestSignOutUsesEndSession(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	res, body := st.do(st.client, "GET", "/oauth2/sign_out?rd=/bye", nil)
	loc, _ := signedOutNext(t, res, body)
	if !strings.HasPrefix(loc, st.idp.URL()) || !strings.Contains(loc, "id_token_hint=") {
		t.Fatalf("sign_out page continues to %q; want the IdP end_session with id_token_hint", loc)
	}
	if u := mustURL(loc); u.Query().Get("post_logout_redirect_uri") != st.front.URL+"/bye" {
		t.Errorf("post_logout_redirect_uri = %q", u.Query().Get("post_logout_redirect_uri"))
	}
	if _, err := st.sessionOf(st.client); err == nil {
		t.Fatal("session still valid after sign out")
	}
	res, _ = st.do(st.client, "GET", "/zendesk/token", nil)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token after sign out = %d; want 401", res.StatusCode)
	}
	// Without end_session at the IdP, sign-out goes straight to rd.
	st2 := newStack(t, stackOpts{idp: oidctest.Options{Disable: []string{"end_session"}}})
	st2.login(st2.client, "/")
	res, body = st2.do(st2.client, "POST", "/oauth2/sign_out?rd=/bye", nil)
	if next, _ := signedOutNext(t, res, body); next != "/bye" {
		t.Fatalf("sign_out without end_session -> %q; want /bye", next)
	}
}
