package proxy

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/oidc/oidctest"
)

// bearerOf asks /zendesk/token with tok as a bearer token from a client without cookies.
func (st *stack) bearerOf(tok string) (int, string) {
	res, body := st.do(newClient(), "GET", "/zendesk/token", map[string]string{"Authorization": "Bearer " + tok})
	code, _ := jsonBody(st.t, body)["error"].(string)
	if res.StatusCode == http.StatusOK {
		code = ""
	}
	return res.StatusCode, code
}

// sdkOf asks /zendesk/sdk with tok as the Support SDK's user_token.
func (st *stack) sdkOf(tok string) (int, string) {
	req, _ := http.NewRequest("POST", st.front.URL+"/zendesk/sdk", strings.NewReader(url.Values{"user_token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := newClient().Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	code, _ := jsonBody(st.t, string(b))["error"].(string)
	return res.StatusCode, code
}

// TestBearerForAnotherClientRefused is issue 10 item 5: an opaque access token that the IdP issued
// to an unrelated client (a newsletter app the user once signed in to) is a real, active token of
// the user; it must not become the user's Zendesk identity, on the token route or the SDK route.
func TestBearerForAnotherClientRefused(t *testing.T) {
	idp := oidctest.Options{OpaqueAccessTokens: true, Clients: []oidctest.Client{
		{ID: "zdgate", Secret: "zdgate-secret"}, {ID: "newsletter", Secret: "newsletter-secret"}, {ID: "mobile"},
	}}
	st := newStack(t, stackOpts{idp: idp, oidc: func(c *oidc.Config) { c.Audiences = []string{"mobile"} }})
	issuedTo := func(client string) string {
		return st.idp.AccessToken("user-1", func(c map[string]any) { c["client_id"] = client; c["aud"] = []any{} })
	}
	for _, route := range []struct {
		name string
		ask  func(string) (int, string)
	}{{"token", st.bearerOf}, {"sdk", st.sdkOf}} {
		if code, err := route.ask(issuedTo("newsletter")); code != http.StatusUnauthorized || err != "invalid_audience" {
			t.Errorf("%s: newsletter's token = %d %q; want 401 invalid_audience", route.name, code, err)
		}
		if code, err := route.ask(issuedTo("zdgate")); code != http.StatusOK {
			t.Errorf("%s: zdgate's own token = %d %q; want 200", route.name, code, err)
		}
		if code, err := route.ask(issuedTo("mobile")); code != http.StatusOK {
			t.Errorf("%s: token of a client in --oidc-audiences = %d %q; want 200", route.name, code, err)
		}
		aud := st.idp.AccessToken("user-1", func(c map[string]any) { c["client_id"] = "newsletter"; c["aud"] = []any{"mobile"} })
		if code, err := route.ask(aud); code != http.StatusOK {
			t.Errorf("%s: token whose aud is in --oidc-audiences = %d %q; want 200", route.name, code, err)
		}
	}
	// A JWT access token for another audience says why, too (issue 13 item 8).
	jwtStack := newStack(t, stackOpts{})
	if code, err := jwtStack.bearerOf(jwtStack.idp.AccessToken("user-1", func(c map[string]any) { c["aud"] = "newsletter" })); code != http.StatusUnauthorized || err != "invalid_audience" {
		t.Errorf("JWT for another audience = %d %q; want 401 invalid_audience", code, err)
	}
}

// TestOpaqueBearerWithoutIntrospection: against an IdP without introspection (Ory Hydra), nothing
// says to whom an opaque token was issued: refused, unless --insecure-bearer-userinfo.
func TestOpaqueBearerWithoutIntrospection(t *testing.T) {
	for _, insecure := range []bool{false, true} {
		t.Run("insecure="+strconv.FormatBool(insecure), func(t *testing.T) {
			st := newStack(t, stackOpts{
				idp:  oidctest.Options{OpaqueAccessTokens: true, Disable: []string{"introspection"}},
				oidc: func(c *oidc.Config) { c.InsecureBearerUserinfo = insecure },
			})
			if st.proxy.cfg.OIDC.BearerAudienceChecked() {
				t.Fatal("BearerAudienceChecked() = true without an introspection endpoint")
			}
			tok := st.idp.AccessToken("user-1", func(c map[string]any) { c["client_id"] = "newsletter" })
			code, err := st.bearerOf(tok)
			if !insecure && (code != http.StatusUnauthorized || err != "invalid_audience") {
				t.Fatalf("opaque token without introspection = %d %q; want 401 invalid_audience", code, err)
			}
			if insecure && code != http.StatusOK {
				t.Fatalf("opaque token with --insecure-bearer-userinfo = %d %q; want 200 (userinfo only)", code, err)
			}
			if !insecure && st.idp.Count("userinfo") != 0 {
				t.Fatalf("a refused opaque token still asked userinfo %d times", st.idp.Count("userinfo"))
			}
		})
	}
}

// TestBadBearerTokensDoNotEachCallTheIdP counts calls at the IdP while bad bearer tokens arrive:
// the same refused token is remembered, unknown-kid JWTs do not each fetch the JWKS, and
// distinct junk from one address is cut off by --bearer-rate-limit with 429.
func TestBadBearerTokensDoNotEachCallTheIdP(t *testing.T) {
	st := newStack(t, stackOpts{
		idp:    oidctest.Options{OpaqueAccessTokens: true},
		mutate: func(c *Config) { c.BearerRateLimit = 5 }, // burst 10
	})
	idpCalls := func() int { return st.idp.Count("introspect") + st.idp.Count("userinfo") + st.idp.Count("jwks") }
	st.idp.ResetCounts()

	// One revoked token, again and again: one introspection.
	dead := st.idp.AccessToken("user-1", nil)
	st.idp.RevokeToken(dead)
	for range 20 {
		if code, _ := st.bearerOf(dead); code != http.StatusUnauthorized {
			t.Fatalf("revoked token = %d; want 401", code)
		}
	}
	if n := idpCalls(); n != 1 {
		t.Fatalf("20 requests with one revoked token made %d IdP calls; want 1", n)
	}
	if code, _ := st.sdkOf(dead); code != http.StatusUnauthorized || idpCalls() != 1 {
		t.Fatalf("the SDK route with the same token = %d after %d IdP calls; want 401 from memory", code, idpCalls())
	}

	// Distinct junk from one address: the burst reaches the IdP, the rest is 429 without a call.
	limited := 0
	for i := range 40 {
		code, err := st.bearerOf("junk-" + strconv.Itoa(i))
		if code == http.StatusTooManyRequests && err == "rate_limited" {
			limited++
		} else if code != http.StatusUnauthorized {
			t.Fatalf("junk token %d = %d %q", i, code, err)
		}
	}
	if calls := idpCalls(); limited < 30 || calls > 10 {
		t.Fatalf("40 junk tokens: %d limited, %d IdP calls; want the burst of 9 more through and the rest 429", limited, calls)
	}
	// Unknown-kid JWTs: refused without a JWKS fetch while the bucket is empty, and without more
	// than one once it refills.
	st.clock.Advance(2 * time.Second)
	before := st.idp.Count("jwks")
	base := st.idp.IDTokenClaims("user-1", "zdgate", "")
	for i := range 8 {
		base["jti"] = strconv.Itoa(i)
		st.bearerOf(st.idp.Forge(oidctest.ForgeUnknownKey, base))
	}
	if n := st.idp.Count("jwks") - before; n > 1 {
		t.Fatalf("8 unknown-kid JWTs fetched the JWKS %d times; want at most 1", n)
	}
	// The limit recovers by itself, and a good token is served.
	st.clock.Advance(10 * time.Second)
	if code, err := st.bearerOf(st.idp.AccessToken("user-1", nil)); code != http.StatusOK {
		t.Fatalf("good token after the limit refilled = %d %q; want 200", code, err)
	}
}
