package oidc_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/oidc/oidctest"
)

// authorize runs the IdP's /authorize (which logs in at once) for l and returns the code.
func authorize(t *testing.T, c *oidc.Client, l oidc.Login, extra string) string {
	t.Helper()
	u, err := c.AuthCodeURL(l)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Get(u + extra)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || res.StatusCode != http.StatusFound {
		t.Fatalf("authorize = %d %q; want a redirect with a code", res.StatusCode, res.Header.Get("Location"))
	}
	if got := loc.Query().Get("state"); got != l.State {
		t.Fatalf("state = %q; want %q", got, l.State)
	}
	return loc.Query().Get("code")
}

// login runs a whole code flow and returns the identity and tokens.
func login(t *testing.T, c *oidc.Client) (oidc.Identity, oidc.Tokens) {
	t.Helper()
	l := oidc.NewLogin()
	id, tok, err := c.Exchange(context.Background(), authorize(t, c, l, ""), l)
	if err != nil {
		t.Fatalf("Exchange() = %v", err)
	}
	return id, tok
}

func wantKind(t *testing.T, what string, err error, want oidc.Kind) {
	t.Helper()
	var e *oidc.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: err = %v; want an *oidc.Error of kind %v", what, err, want)
	}
	if e.Kind != want {
		t.Fatalf("%s: kind = %v (%v); want %v", what, e.Kind, err, want)
	}
}

func TestExchange(t *testing.T) {
	idp := oidctest.NewT(t, oidctest.Options{})
	c := newClient(t, idp, nil, nil)
	id, tok := login(t, c)
	if id.Subject != "user-1" || id.Email != "alice@example.com" || !id.EmailVerified || id.Name != "Alice Example" || len(id.Groups) != 1 || id.Groups[0] != "staff" {
		t.Errorf("Exchange() identity = %+v; want alice, verified, in staff", id)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.IDToken == "" || tok.Expiry.IsZero() {
		t.Errorf("Exchange() tokens incomplete: access %t refresh %t id %t expiry %v", tok.AccessToken != "", tok.RefreshToken != "", tok.IDToken != "", tok.Expiry)
	}
	if n := idp.Count("userinfo"); n != 1 {
		t.Errorf("userinfo calls = %d; want the login confirmed there once", n)
	}

	for _, tc := range []struct {
		name  string
		run   func(t *testing.T) error
		setup func()
		want  oidc.Kind
	}{
		{name: "another login's nonce", want: oidc.Invalid, run: func(t *testing.T) error {
			l := oidc.NewLogin()
			code := authorize(t, c, l, "")
			l.Nonce = oidc.NewLogin().Nonce
			_, _, err := c.Exchange(context.Background(), code, l)
			return err
		}},
		{name: "another login's PKCE verifier", want: oidc.Invalid, run: func(t *testing.T) error {
			l := oidc.NewLogin()
			code := authorize(t, c, l, "")
			l.Verifier = oidc.NewLogin().Verifier
			_, _, err := c.Exchange(context.Background(), code, l)
			return err
		}},
		{name: "a code used twice is a bad code, not a revoked user", want: oidc.Invalid, run: func(t *testing.T) error {
			l := oidc.NewLogin()
			code := authorize(t, c, l, "")
			if _, _, err := c.Exchange(context.Background(), code, l); err != nil {
				t.Fatal(err)
			}
			_, _, err := c.Exchange(context.Background(), code, l)
			return err
		}},
		{name: "an ID token for another audience", want: oidc.Invalid,
			setup: func() { idp.NextIDToken(func(m map[string]any) { m["aud"] = "someone-else" }) },
			run: func(t *testing.T) error {
				l := oidc.NewLogin()
				_, _, err := c.Exchange(context.Background(), authorize(t, c, l, ""), l)
				return err
			}},
		{name: "an ID token signed with alg none", want: oidc.Invalid,
			setup: func() {
				idp.NextIDTokenRaw(func(m map[string]any) string { return idp.Forge(oidctest.ForgeNone, m) })
			},
			run: func(t *testing.T) error {
				l := oidc.NewLogin()
				_, _, err := c.Exchange(context.Background(), authorize(t, c, l, ""), l)
				return err
			}},
		{name: "userinfo answers for another sub", want: oidc.Invalid,
			setup: func() { idp.SetUserinfoSubject("user-1", "user-2") },
			run: func(t *testing.T) error {
				defer idp.SetUserinfoSubject("user-1", "")
				l := oidc.NewLogin()
				_, _, err := c.Exchange(context.Background(), authorize(t, c, l, ""), l)
				return err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			wantKind(t, tc.name, tc.run(t), tc.want)
		})
	}
}

func TestExchangeIdPDown(t *testing.T) {
	idp := oidctest.NewT(t, oidctest.Options{})
	c := newClient(t, idp, nil, func(cfg *oidc.Config) { cfg.FailFast = -1 })
	l := oidc.NewLogin()
	code := authorize(t, c, l, "")
	idp.SetDown(true)
	_, _, err := c.Exchange(context.Background(), code, l)
	wantKind(t, "Exchange() with the IdP down", err, oidc.Unavailable)
}

func TestRecheck(t *testing.T) {
	ctx := context.Background()
	t.Run("refresh rotates the token and brings the IdP's current claims", func(t *testing.T) {
		idp := oidctest.NewT(t, oidctest.Options{})
		c := newClient(t, idp, nil, nil)
		_, tok := login(t, c)
		wantRecheckKind(t, c, tok, "refresh")
		idp.UpdateUser("user-1", func(u *oidctest.User) { u.Name = "Alice Renamed"; u.Groups = []string{"staff", "leads"} })
		id, nt, err := c.Recheck(ctx, tok, "user-1")
		if err != nil {
			t.Fatal(err)
		}
		if id.Name != "Alice Renamed" || len(id.Groups) != 2 {
			t.Errorf("Recheck() identity = %+v; want the renamed user in two groups", id)
		}
		if nt.RefreshToken == "" || nt.RefreshToken == tok.RefreshToken || nt.AccessToken == tok.AccessToken {
			t.Error("Recheck() did not return the rotated tokens")
		}
		if _, _, err := c.Recheck(ctx, tok, "user-1"); err == nil {
			t.Error("the rotated-away refresh token still works")
		} else {
			wantKind(t, "Recheck() with the old refresh token", err, oidc.Revoked)
		}
	})
	t.Run("refresh of a deleted user", func(t *testing.T) {
		idp := oidctest.NewT(t, oidctest.Options{})
		c := newClient(t, idp, nil, nil)
		_, tok := login(t, c)
		idp.DeleteUser("user-1")
		_, _, err := c.Recheck(ctx, tok, "user-1")
		wantKind(t, "Recheck() after DeleteUser", err, oidc.Revoked)
	})
	t.Run("refresh whose ID token names another sub", func(t *testing.T) {
		idp := oidctest.NewT(t, oidctest.Options{})
		c := newClient(t, idp, nil, nil)
		_, tok := login(t, c)
		idp.NextIDToken(func(m map[string]any) { m["sub"] = "user-2" })
		_, _, err := c.Recheck(ctx, tok, "user-1")
		wantKind(t, "Recheck() with a changed sub", err, oidc.Revoked)
	})
	t.Run("userinfo without a refresh token", func(t *testing.T) {
		idp := oidctest.NewT(t, oidctest.Options{})
		c := newClient(t, idp, nil, func(cfg *oidc.Config) { cfg.Scopes = []string{"openid", "email", "profile"} })
		_, tok := login(t, c)
		if tok.RefreshToken != "" {
			t.Fatal("got a refresh token without offline_access")
		}
		idp.ResetCounts()
		wantRecheckKind(t, c, tok, "userinfo")
		if id, _, err := c.Recheck(ctx, tok, "user-1"); err != nil || id.Subject != "user-1" {
			t.Fatalf("Recheck() = %+v, %v", id, err)
		}
		if idp.Count("userinfo") != 1 || idp.Count("token.refresh") != 0 {
			t.Errorf("userinfo %d, refresh %d; want the userinfo path", idp.Count("userinfo"), idp.Count("token.refresh"))
		}
		idp.DeleteUser("user-1")
		_, _, err := c.Recheck(ctx, tok, "user-1")
		wantKind(t, "userinfo Recheck() after DeleteUser", err, oidc.Revoked)
	})
	t.Run("introspection without userinfo", func(t *testing.T) {
		idp := oidctest.NewT(t, oidctest.Options{Disable: []string{"userinfo"}})
		c := newClient(t, idp, nil, func(cfg *oidc.Config) { cfg.Scopes = []string{"openid", "email", "profile"} })
		_, tok := login(t, c)
		idp.ResetCounts()
		wantRecheckKind(t, c, tok, "introspect")
		if id, _, err := c.Recheck(ctx, tok, "user-1"); err != nil || id.Subject != "user-1" {
			t.Fatalf("Recheck() = %+v, %v", id, err)
		}
		if n := idp.Count("introspect"); n != 1 {
			t.Errorf("introspect calls = %d; want 1", n)
		}
		idp.DeleteUser("user-1")
		_, _, err := c.Recheck(ctx, tok, "user-1")
		wantKind(t, "introspection Recheck() after DeleteUser", err, oidc.Revoked)
	})
	t.Run("nothing to check with", func(t *testing.T) {
		idp := oidctest.NewT(t, oidctest.Options{Disable: []string{"userinfo", "introspection"}})
		c := newClient(t, idp, nil, func(cfg *oidc.Config) { cfg.Scopes = []string{"openid", "email", "profile"} })
		_, tok := login(t, c)
		wantRecheckKind(t, c, tok, "none")
		_, _, err := c.Recheck(ctx, tok, "user-1")
		wantKind(t, "Recheck() with neither refresh token, userinfo nor introspection", err, oidc.Invalid)
	})
	t.Run("IdP down", func(t *testing.T) {
		idp := oidctest.NewT(t, oidctest.Options{})
		c := newClient(t, idp, nil, func(cfg *oidc.Config) { cfg.FailFast = -1 })
		_, tok := login(t, c)
		idp.SetDown(true)
		_, _, err := c.Recheck(ctx, tok, "user-1")
		wantKind(t, "Recheck() with the IdP down", err, oidc.Unavailable)
		idp.SetDown(false)
		if _, _, err := c.Recheck(ctx, tok, "user-1"); err != nil {
			t.Errorf("Recheck() once the IdP is back = %v; want the unspent refresh token honoured", err)
		}
	})
	t.Run("a caller that gives up", func(t *testing.T) {
		idp := oidctest.NewT(t, oidctest.Options{})
		c := newClient(t, idp, nil, func(cfg *oidc.Config) { cfg.FailFast = -1 })
		_, tok := login(t, c)
		arrived, release := idp.HoldRefreshes()
		defer release()
		cctx, cancel := context.WithCancel(ctx)
		go func() { <-arrived; cancel() }()
		_, _, err := c.Recheck(cctx, tok, "user-1")
		wantKind(t, "Recheck() whose context ended", err, oidc.Unavailable)
	})
}

// wantRecheckKind: the name Recheck's way has in metrics and traces is the way it takes.
func wantRecheckKind(t *testing.T, c *oidc.Client, tok oidc.Tokens, want string) {
	t.Helper()
	if got := c.RecheckKind(tok); got != want {
		t.Errorf("RecheckKind() = %q; want %q", got, want)
	}
}

func TestVerifyBearer(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	idp := oidctest.NewT(t, oidctest.Options{Now: clk.Now, AccessTokenAudiences: []string{"mobile-api"}})
	c := newClient(t, idp, clk.Now, func(cfg *oidc.Config) { cfg.Audiences = []string{"mobile-api"} })

	id, tok, err := c.VerifyBearer(ctx, idp.AccessToken("user-1", nil))
	if err != nil || id.Subject != "user-1" || !id.EmailVerified || tok.Expiry.IsZero() {
		t.Fatalf("VerifyBearer(JWT) = %+v, %+v, %v; want alice with the token's expiry", id, tok.Expiry, err)
	}
	for _, tc := range []struct {
		name     string
		token    func() string
		kind     oidc.Kind
		audience bool
	}{
		{"another audience", func() string {
			return idp.AccessToken("user-1", func(m map[string]any) { m["aud"] = "other-app" })
		}, oidc.Invalid, true},
		{"expired", func() string {
			return idp.AccessToken("user-1", func(m map[string]any) { m["exp"] = clk.Now().Add(-time.Minute).Unix() })
		}, oidc.Invalid, false},
		{"HS256 with the public key as secret", func() string {
			return idp.Forge(oidctest.ForgeHS256PublicKey, map[string]any{"iss": idp.URL(), "sub": "user-1", "aud": "zdgate", "exp": clk.Now().Add(time.Minute).Unix()})
		}, oidc.Invalid, false},
		{"another issuer", func() string {
			return idp.AccessToken("user-1", func(m map[string]any) { m["iss"] = "https://evil.example" })
		}, oidc.Invalid, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := c.VerifyBearer(ctx, tc.token())
			wantKind(t, tc.name, err, tc.kind)
			if got := errors.Is(err, oidc.ErrAudience); got != tc.audience {
				t.Errorf("errors.Is(err, ErrAudience) = %v; want %v", got, tc.audience)
			}
		})
	}
	t.Run("deleted user, unexpired JWT", func(t *testing.T) {
		tok := idp.AccessToken("user-1", nil)
		idp.AddUser(oidctest.User{Subject: "user-9", Email: "x@example.com"})
		tok9 := idp.AccessToken("user-9", nil)
		idp.DeleteUser("user-9")
		if _, _, err := c.VerifyBearer(ctx, tok); err != nil {
			t.Fatalf("another user's token: %v", err)
		}
		_, _, err := c.VerifyBearer(ctx, tok9)
		wantKind(t, "VerifyBearer() of a deleted user", err, oidc.Revoked)
	})
}

func TestVerifyBearerOpaque(t *testing.T) {
	ctx := context.Background()
	t.Run("introspected", func(t *testing.T) {
		idp := oidctest.NewT(t, oidctest.Options{OpaqueAccessTokens: true})
		c := newClient(t, idp, nil, nil)
		if id, _, err := c.VerifyBearer(ctx, idp.AccessToken("user-1", nil)); err != nil || id.Subject != "user-1" {
			t.Fatalf("VerifyBearer(opaque) = %+v, %v", id, err)
		}
		_, _, err := c.VerifyBearer(ctx, idp.AccessToken("user-1", func(m map[string]any) { m["client_id"] = "other-app"; m["aud"] = "other-app" }))
		if !errors.Is(err, oidc.ErrAudience) {
			t.Errorf("opaque token of another client: err = %v; want ErrAudience", err)
		}
	})
	t.Run("no introspection", func(t *testing.T) {
		idp := oidctest.NewT(t, oidctest.Options{OpaqueAccessTokens: true, Disable: []string{"introspection"}})
		strict := newClient(t, idp, nil, nil)
		if _, _, err := strict.VerifyBearer(ctx, idp.AccessToken("user-1", nil)); !errors.Is(err, oidc.ErrAudience) {
			t.Errorf("opaque token, no introspection: err = %v; want ErrAudience", err)
		}
		if strict.BearerAudienceChecked() {
			t.Error("BearerAudienceChecked() = true without introspection")
		}
		lax := newClient(t, idp, nil, func(cfg *oidc.Config) { cfg.InsecureBearerUserinfo = true })
		if id, _, err := lax.VerifyBearer(ctx, idp.AccessToken("user-1", nil)); err != nil || id.Subject != "user-1" {
			t.Errorf("InsecureBearerUserinfo: VerifyBearer = %+v, %v; want userinfo's word taken", id, err)
		}
	})
}

func TestVerifyLogout(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	idp := oidctest.NewT(t, oidctest.Options{Now: clk.Now})
	c := newClient(t, idp, clk.Now, nil)

	tok := idp.LogoutToken("user-1", "sid-1", nil)
	lo, err := c.VerifyLogout(ctx, tok)
	if err != nil || lo.Subject != "user-1" || lo.SID != "sid-1" {
		t.Fatalf("VerifyLogout() = %+v, %v", lo, err)
	}
	_, err = c.VerifyLogout(ctx, tok)
	wantKind(t, "a replayed logout token", err, oidc.Invalid)

	for name, m := range map[string]func(map[string]any){
		"a nonce (an ID token)": func(m map[string]any) { m["nonce"] = "n" },
		"no events":             func(m map[string]any) { delete(m, "events") },
		"another audience":      func(m map[string]any) { m["aud"] = "other" },
		"another issuer":        func(m map[string]any) { m["iss"] = "https://evil.example" },
		"no jti":                func(m map[string]any) { delete(m, "jti") },
		"iat in the future":     func(m map[string]any) { m["iat"] = clk.Now().Add(10 * time.Minute).Unix() },
	} {
		_, err := c.VerifyLogout(ctx, idp.LogoutToken("user-1", "sid-1", m))
		wantKind(t, name, err, oidc.Invalid)
	}
	_, err = c.VerifyLogout(ctx, idp.Forge(oidctest.ForgeUnknownKey, map[string]any{"iss": idp.URL(), "aud": "zdgate", "sub": "user-1", "jti": "j",
		"iat": clk.Now().Unix(), "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}))
	wantKind(t, "a logout token signed with an unknown key", err, oidc.Invalid)
}

// TestLogoutReplayGuardOutlivesTheToken: a logout token is refused as a replay for as long as it
// would otherwise pass (without exp: until its iat leaves the skew), and the guard forgets it only
// after that.
func TestLogoutReplayGuardOutlivesTheToken(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	idp := oidctest.NewT(t, oidctest.Options{Now: clk.Now})
	c := newClient(t, idp, clk.Now, nil)
	// iat as far ahead as the skew allows: the token passes the iat check for twice the skew.
	tok := idp.LogoutToken("", "sid-1", func(m map[string]any) {
		delete(m, "exp")
		m["iat"] = clk.Now().Add(5 * time.Minute).Unix()
	})
	if _, err := c.VerifyLogout(ctx, tok); err != nil {
		t.Fatal(err)
	}
	base := clk.Now()
	for _, at := range []time.Duration{time.Minute, 6 * time.Minute, 10 * time.Minute} {
		clk.Advance(base.Add(at).Sub(clk.Now()))
		if _, err := c.VerifyLogout(ctx, tok); err == nil {
			t.Fatalf("replay %v later accepted; want it refused while its iat is within the skew", at)
		}
	}
}

func TestFailFast(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	idp := oidctest.NewT(t, oidctest.Options{})
	c := newClient(t, idp, clk.Now, nil)
	_, tok := login(t, c)
	tok.RefreshToken = "" // userinfo re-checks: they spend nothing
	idp.SetDown(true)
	idp.ResetCounts()
	_, _, err := c.Recheck(ctx, tok, "user-1")
	wantKind(t, "first call with the IdP down", err, oidc.Unavailable)
	for range 5 {
		_, _, err := c.Recheck(ctx, tok, "user-1")
		wantKind(t, "call within the fail-fast period", err, oidc.Unavailable)
		if !errors.Is(err, oidc.ErrFailingFast) {
			t.Fatalf("err = %v; want ErrFailingFast", err)
		}
	}
	if n := idp.Count("userinfo"); n != 1 {
		t.Fatalf("userinfo calls = %d; want 1: the rest failed fast", n)
	}
	// The period passes: one probe goes through; it fails, so the breaker opens again.
	clk.Advance(oidc.DefaultFailFast)
	c.Recheck(ctx, tok, "user-1")
	c.Recheck(ctx, tok, "user-1")
	if n := idp.Count("userinfo"); n != 2 {
		t.Fatalf("userinfo calls after the period = %d; want 2 (one probe)", n)
	}
	// The IdP is back: the next probe succeeds and closes the breaker.
	idp.SetDown(false)
	clk.Advance(oidc.DefaultFailFast)
	for i := range 3 {
		if _, _, err := c.Recheck(ctx, tok, "user-1"); err != nil {
			t.Fatalf("call %d after recovery = %v", i, err)
		}
	}
}

func TestTimeout(t *testing.T) {
	idp := oidctest.NewT(t, oidctest.Options{})
	for _, tc := range []struct {
		client *http.Client
		want   time.Duration
	}{
		{nil, oidc.DefaultTimeout},
		{&http.Client{}, oidc.DefaultTimeout},
		{&http.Client{Timeout: 3 * time.Second}, 3 * time.Second},
	} {
		c, err := oidc.New(oidc.Config{Issuer: idp.URL(), ClientID: "zdgate", RedirectURL: "http://127.0.0.1/cb", HTTPClient: tc.client})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Timeout(); got != tc.want {
			t.Errorf("Timeout() with %+v = %v; want %v", tc.client, got, tc.want)
		}
	}
}
