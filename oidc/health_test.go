package oidc_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/oidc/oidctest"
)

// TestLoginWithItsOwnCallback: a login that names its own redirect URL (a site under several
// hosts) sends it to the IdP's authorize endpoint and redeems the code with it; the IdP refuses a
// code redeemed with another callback, so both must carry the same one.
func TestLoginWithItsOwnCallback(t *testing.T) {
	const other = "http://127.0.0.1:1/other/oauth2/callback"
	idp := oidctest.NewT(t, oidctest.Options{Clients: []oidctest.Client{{
		ID: "zdgate", Secret: "zdgate-secret", RedirectURIs: []string{"http://127.0.0.1/cb", other},
	}}})
	c := newClient(t, idp, nil, nil)
	l := oidc.NewLogin()
	l.RedirectURL = other
	authURL, err := c.AuthCodeURL(l)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustQuery(t, authURL).Get("redirect_uri"); got != other {
		t.Fatalf("authorize redirect_uri = %q; want %q", got, other)
	}
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	cb, err := url.Parse(res.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(cb.String(), other+"?") {
		t.Fatalf("the IdP sent the browser to %q; want %s", res.Header.Get("Location"), other)
	}
	id, _, err := c.Exchange(context.Background(), cb.Query().Get("code"), l)
	if err != nil || id.Subject != "user-1" {
		t.Fatalf("Exchange() = %v, %v; want user-1 (the code redeemed with the login's callback)", id.Subject, err)
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestPeekIssuerChoosesOnly: PeekIssuer reads iss and aud from any JWT, forged or not, so a
// caller can pick the client that then verifies it; IssuedFor matches iss and the audiences.
func TestPeekIssuerChoosesOnly(t *testing.T) {
	idp := oidctest.NewT(t, oidctest.Options{})
	c := newClient(t, idp, nil, func(cfg *oidc.Config) { cfg.Audiences = []string{"mobile-api"} })
	forged := idp.Forge(oidctest.ForgeUnknownKey, map[string]any{"iss": "https://other.example", "aud": []string{"a", "mobile-api"}, "sub": "x"})
	iss, aud, ok := oidc.PeekIssuer(forged)
	if !ok || iss != "https://other.example" || len(aud) != 2 || aud[1] != "mobile-api" {
		t.Fatalf("PeekIssuer(forged) = %q, %q, %v", iss, aud, ok)
	}
	if c.IssuedFor(iss, aud) {
		t.Error("IssuedFor(another issuer) = true")
	}
	if !c.IssuedFor(idp.URL(), aud) || !c.IssuedFor(idp.URL(), []string{"zdgate"}) || c.IssuedFor(idp.URL(), []string{"someone-else"}) {
		t.Error("IssuedFor does not follow the client id and Config.Audiences")
	}
	for _, bad := range []string{"", "opaque-token", "a.b", "a.!!!.c", "a." + "e30" + ".c" /* {} */} {
		if _, _, ok := oidc.PeekIssuer(bad); ok {
			t.Errorf("PeekIssuer(%q) ok", bad)
		}
	}
	// PeekIssuer is not verification: the forged token still fails at the client.
	if _, _, err := c.VerifyBearer(context.Background(), idp.Forge(oidctest.ForgeUnknownKey, map[string]any{
		"iss": idp.URL(), "aud": "zdgate", "sub": "user-1", "exp": time.Now().Add(time.Minute).Unix()})); err == nil {
		t.Error("VerifyBearer accepted a token signed by a stranger's key")
	}
}

// TestCapabilitiesAndUp: what discovery announced, and the health the /metrics gauge shows: up
// once discovered, down from the first call that finds the IdP unavailable until one works again.
func TestCapabilitiesAndUp(t *testing.T) {
	idp := oidctest.NewT(t, oidctest.Options{Disable: []string{"revocation"}})
	cl := idp.Client()
	c, err := oidc.New(oidc.Config{Issuer: idp.URL(), ClientID: cl.ID, ClientSecret: func() string { return cl.Secret },
		RedirectURL: "http://127.0.0.1/cb", HTTPClient: &http.Client{Timeout: 2 * time.Second}, FailFast: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Capabilities(); ok || c.Up() {
		t.Fatal("capabilities or up before discovery")
	}
	if err := c.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	caps, ok := c.Capabilities()
	want := oidc.Capabilities{RefreshTokens: true, Userinfo: true, Introspection: true, EndSession: true, BackchannelLogout: true}
	if !ok || caps != want {
		t.Fatalf("Capabilities() = %+v, %v; want %+v", caps, ok, want)
	}
	if !c.Up() {
		t.Fatal("Up() = false after discovery")
	}
	tok := idp.AccessToken("user-1", nil)
	idp.SetDown(true)
	if _, _, err := c.Recheck(context.Background(), oidc.Tokens{AccessToken: tok}, "user-1"); oidc.KindOf(err) != oidc.Unavailable {
		t.Fatalf("Recheck() with the IdP down = %v; want Unavailable", err)
	}
	if c.Up() {
		t.Fatal("Up() = true after the IdP failed")
	}
	idp.SetDown(false)
	if _, _, err := c.Recheck(context.Background(), oidc.Tokens{AccessToken: tok}, "user-1"); err != nil {
		t.Fatalf("Recheck() after recovery = %v", err)
	}
	if !c.Up() {
		t.Fatal("Up() = false after a call worked again")
	}
}
