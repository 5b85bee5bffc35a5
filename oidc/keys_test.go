package oidc_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/oidc/oidctest"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newClient(t *testing.T, idp *oidctest.Server, now func() time.Time, mutate func(*oidc.Config)) *oidc.Client {
	t.Helper()
	cl := idp.Client()
	cfg := oidc.Config{
		Issuer: idp.URL(), ClientID: cl.ID, ClientSecret: func() string { return cl.Secret },
		RedirectURL: "http://127.0.0.1/cb", HTTPClient: &http.Client{Timeout: 5 * time.Second}, Now: now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := oidc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUnknownKeyIDsDoNotEachFetchTheJWKS: JWTs naming key ids the IdP never published (or a
// published kid with a forged signature) make zdgate refetch the JWKS at most once per interval,
// however many arrive; a real key rotation is still picked up.
func TestUnknownKeyIDsDoNotEachFetchTheJWKS(t *testing.T) {
	clk := &clock{t: time.Now()}
	idp := oidctest.NewT(t, oidctest.Options{Now: clk.Now})
	c := newClient(t, idp, clk.Now, nil)
	idp.ResetCounts()
	claims := func(i int) map[string]any {
		return map[string]any{"iss": idp.URL(), "sub": "user-1", "aud": "zdgate", "exp": clk.Now().Add(time.Minute).Unix(), "jti": strconv.Itoa(i)}
	}
	for i := range 50 {
		_, _, err := c.VerifyBearer(context.Background(), idp.Forge(oidctest.ForgeUnknownKey, claims(i)))
		if err == nil || oidc.KindOf(err) != oidc.Invalid {
			t.Fatalf("forged token %d: err = %v; want Invalid", i, err)
		}
	}
	if n := idp.Count("jwks"); n != 1 {
		t.Fatalf("50 unknown-kid tokens fetched the JWKS %d times; want 1", n)
	}
	// The window passes: one more refetch, no more.
	clk.Advance(11 * time.Second)
	for i := range 20 {
		c.VerifyBearer(context.Background(), idp.Forge(oidctest.ForgeUnknownKey, claims(100+i)))
	}
	if n := idp.Count("jwks"); n != 2 {
		t.Fatalf("JWKS fetches after the window = %d; want 2", n)
	}
	// A real rotation after the window verifies (one refetch), and its kid is then known.
	clk.Advance(11 * time.Second)
	idp.RotateKeys()
	idp.DropOldKeys()
	tok := idp.AccessToken("user-1", nil)
	if _, _, err := c.VerifyBearer(context.Background(), tok); err != nil {
		t.Fatalf("token signed with the rotated key: %v", err)
	}
	if _, _, err := c.VerifyBearer(context.Background(), idp.AccessToken("user-1", nil)); err != nil {
		t.Fatalf("second token with the rotated key: %v", err)
	}
	if n := idp.Count("jwks"); n != 3 {
		t.Fatalf("JWKS fetches after a rotation = %d; want 3", n)
	}
}

// TestLogoutTokenWithoutExp: Back-Channel Logout 1.0 as Ory Hydra implements it (no exp) is
// accepted when iat is within the skew; an exp, if present, is checked.
func TestLogoutTokenWithoutExp(t *testing.T) {
	clk := &clock{t: time.Now()}
	idp := oidctest.NewT(t, oidctest.Options{Now: clk.Now})
	c := newClient(t, idp, clk.Now, nil)
	tok := func(mutate func(map[string]any)) string {
		return idp.LogoutToken("", "sid-1", func(m map[string]any) {
			delete(m, "exp")
			if mutate != nil {
				mutate(m)
			}
		})
	}
	if lo, err := c.VerifyLogout(context.Background(), tok(nil)); err != nil || lo.SID != "sid-1" {
		t.Fatalf("VerifyLogout(no exp) = %+v, %v; want sid-1", lo, err)
	}
	for name, m := range map[string]func(map[string]any){
		"iat past the skew":   func(m map[string]any) { m["iat"] = clk.Now().Add(-6 * time.Minute).Unix() },
		"exp passed":          func(m map[string]any) { m["exp"] = clk.Now().Add(-time.Second).Unix() },
		"exp null":            func(m map[string]any) { m["exp"] = nil },
		"iat a string":        func(m map[string]any) { m["iat"] = "now" },
		"events not a map":    func(m map[string]any) { m["events"] = []any{"http://schemas.openid.net/event/backchannel-logout"} },
		"neither sub nor sid": func(m map[string]any) { delete(m, "sid") },
	} {
		if _, err := c.VerifyLogout(context.Background(), tok(m)); err == nil || oidc.KindOf(err) != oidc.Invalid {
			t.Errorf("%s: err = %v; want Invalid", name, err)
		}
	}
}
