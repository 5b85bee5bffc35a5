package proxy

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/tokens"
)

// bearerToken asks /zendesk/token with an Authorization: Bearer header.
func (ms *multiStack) bearer(tok string) (int, map[string]any) {
	ms.t.Helper()
	res, body := ms.do(newClient(), "GET", "/zendesk/token", map[string]string{"Authorization": "Bearer " + tok})
	m := jsonBody(ms.t, body)
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, m
	}
	r := tokens.Verify(m["jwt"].(string), tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte(testMessagingSecret), KeyID: testMessagingKey})
	if len(r.Problems) > 0 {
		ms.t.Fatalf("bearer-minted token does not verify: %v", r.Problems)
	}
	return res.StatusCode, r.Claims
}

// TestMultiBearer: a JWT access token picks its provider by iss, among the providers that accept
// bearer tokens, and is verified there only: A's token is accepted as A's user; a token signed
// with A's key but naming B's issuer goes to B, which refuses it, and A is never asked. An opaque
// token goes to the one provider configured for them.
func TestMultiBearer(t *testing.T) {
	ms := newMultiStack(t, multiOpts{b: oidctest.Options{OpaqueAccessTokens: true}})
	if code, claims := ms.bearer(ms.a.AccessToken("u-1", nil)); code != 200 || claims["external_id"] != "emp-u-1" {
		t.Fatalf("A's bearer token = %d %v; want 200 as emp-u-1", code, claims)
	}
	ms.a.ResetCounts()
	forged := ms.a.Forge(oidctest.ForgeRS256, map[string]any{
		"iss": ms.b.URL(), "aud": "zdgate-customers", "sub": "u-1", "exp": time.Now().Add(time.Minute).Unix(),
	})
	if code, body := ms.bearer(forged); code != http.StatusUnauthorized || body["error"] != "invalid_token" {
		t.Fatalf("token signed by A naming B's issuer = %d %v; want 401 invalid_token", code, body)
	}
	if n := idpCalls(ms.a); n != 0 {
		t.Fatalf("the token naming B was tried at A (%d calls)", n)
	}
	// An opaque token: the customers provider takes them (introspection at B).
	if code, claims := ms.bearer(ms.b.AccessToken("u-1", nil)); code != 200 || claims["external_id"] != "cust-u-1" {
		t.Fatalf("B's opaque bearer token = %d %v; want 200 as cust-u-1", code, claims)
	}
	// A JWT of an issuer no provider has: refused without any IdP call.
	stranger := oidctest.NewT(t, oidctest.Options{})
	ms.a.ResetCounts()
	ms.b.ResetCounts()
	if code, _ := ms.bearer(stranger.AccessToken("user-1", nil)); code != http.StatusUnauthorized {
		t.Fatalf("a stranger IdP's token = %d; want 401", code)
	}
	if n := idpCalls(ms.a) + idpCalls(ms.b); n != 0 {
		t.Fatalf("a stranger's token made %d IdP calls", n)
	}
}

// TestMultiBearerOnlyWhereAccepted: a provider that does not take bearer tokens never sees one,
// and without a provider for opaque tokens they are refused, not tried anywhere.
func TestMultiBearerOnlyWhereAccepted(t *testing.T) {
	ms := newMultiStack(t, multiOpts{b: oidctest.Options{OpaqueAccessTokens: true}, mutate: func(c *Config) {
		c.Providers[0].BearerJWT = false
		c.Providers[1].BearerOpaque = false
	}})
	ms.a.ResetCounts()
	ms.b.ResetCounts()
	if code, _ := ms.bearer(ms.a.AccessToken("u-1", nil)); code != http.StatusUnauthorized {
		t.Fatalf("A's JWT with A not taking bearer tokens = %d; want 401", code)
	}
	if code, _ := ms.bearer(ms.b.AccessToken("u-1", nil)); code != http.StatusUnauthorized {
		t.Fatalf("an opaque token with no provider for them = %d; want 401", code)
	}
	if n := idpCalls(ms.a) + idpCalls(ms.b); n != 0 {
		t.Fatalf("refused bearer tokens made %d IdP calls", n)
	}
}

// TestMultiFlavors: the customers provider may not get Chat tokens; staff may.
func TestMultiFlavors(t *testing.T) {
	ms := newMultiStack(t, multiOpts{})
	staff, customer := ms.newClient(), ms.newClient()
	ms.loginVia(staff, "staff", "/")
	ms.loginVia(customer, "customers", "/")
	if code, claims := ms.token(staff, "", "chat"); code != 200 || claims["external_id"] != "emp-u-1" {
		t.Fatalf("staff chat token = %d %v", code, claims)
	}
	if code, body := ms.token(customer, "", "chat"); code != http.StatusForbidden || body["error"] != "flavor_not_allowed" {
		t.Fatalf("customers chat token = %d %v; want 403 flavor_not_allowed", code, body)
	}
}

// ssoJWT opens /zendesk/sso for c and returns the JWT of its auto-submitting form.
func (ms *multiStack) ssoJWT(c *http.Client, query string) (int, string, *http.Response) {
	ms.t.Helper()
	res, body := ms.do(c, "GET", "/zendesk/sso"+query, map[string]string{"Accept": "text/html"})
	m := regexp.MustCompile(`name="jwt" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		return res.StatusCode, "", res
	}
	return res.StatusCode, m[1], res
}

// TestMultiSSOStaffAndEndUsers: a staff user's Help Center token is signed with the staff SSO
// secret and carries the mapped role; a customer's with the end-user secret, without a role even
// though B's IdP sends zendesk_role "admin". Neither verifies with the other's secret. The
// remote login URL of one Zendesk configuration (?provider=ID) logs the visitor in there.
func TestMultiSSOStaffAndEndUsers(t *testing.T) {
	ms := newMultiStack(t, multiOpts{})
	staff, customer := ms.newClient(), ms.newClient()
	ms.loginVia(staff, "staff", "/")
	ms.loginVia(customer, "customers", "/")
	verify := func(jwt, secret string) *tokens.Result {
		return tokens.Verify(jwt, tokens.VerifyOptions{Flavor: tokens.SSO, Secret: []byte(secret)})
	}
	code, jwt, _ := ms.ssoJWT(staff, "")
	if code != 200 || jwt == "" {
		t.Fatalf("staff /zendesk/sso = %d", code)
	}
	if r := verify(jwt, testStaffSSOSecret); len(r.Problems) > 0 || r.Claims["role"] != "agent" || r.Claims["external_id"] != "emp-u-1" {
		t.Fatalf("staff SSO token with the staff secret: %v %v; want role agent, emp-u-1", r.Problems, r.Claims)
	}
	if r := verify(jwt, testSSOSecret); len(r.Problems) == 0 {
		t.Fatal("the staff SSO token verifies with the end-user secret")
	}
	// A provider's host is this site: a return_to there survives.
	_, body := ms.do(staff, "GET", "/zendesk/sso?return_to="+url.QueryEscape("https://"+staffHost+"/desk"), map[string]string{"Accept": "text/html"})
	if !strings.Contains(body, `action="https://acme.zendesk.com/access/jwt?return_to=https%3A%2F%2F`+staffHost+`%2Fdesk"`) {
		t.Fatalf("return_to on the staff host was dropped:\n%s", body)
	}
	code, jwt, _ = ms.ssoJWT(customer, "")
	if code != 200 || jwt == "" {
		t.Fatalf("customers /zendesk/sso = %d", code)
	}
	r := verify(jwt, testSSOSecret)
	if len(r.Problems) > 0 || r.Claims["external_id"] != "cust-u-1" {
		t.Fatalf("customers SSO token with the end-user secret: %v %v", r.Problems, r.Claims)
	}
	if _, has := r.Claims["role"]; has {
		t.Fatalf("the customers SSO token carries a role: %v", r.Claims)
	}
	if r := verify(jwt, testStaffSSOSecret); len(r.Problems) == 0 {
		t.Fatal("the end-user SSO token verifies with the staff secret")
	}
	// Zendesk sends a team member to the staff configuration's remote login URL: a visitor not
	// logged in there (anonymous, or a customer) logs in at A, and comes back to /zendesk/sso.
	for name, c := range map[string]*http.Client{"anonymous": ms.newClient(), "customer": customer} {
		res, _ := ms.do(c, "GET", "/zendesk/sso?provider=staff&return_to="+url.QueryEscape("https://acme.zendesk.com/agent"), map[string]string{"Accept": "text/html"})
		if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), ms.a.URL()+"/") {
			t.Fatalf("%s: /zendesk/sso?provider=staff = %d to %q; want IdP A", name, res.StatusCode, res.Header.Get("Location"))
		}
		back := ms.finishLogin(c, res.Header.Get("Location"))
		u, _ := url.Parse(back)
		if u.Path != "/zendesk/sso" || u.Query().Get("provider") != "staff" || u.Query().Get("return_to") != "https://acme.zendesk.com/agent" {
			t.Fatalf("%s: after the login the browser goes to %q; want /zendesk/sso with provider and return_to", name, back)
		}
		code, jwt, _ := ms.ssoJWT(c, "?"+u.RawQuery)
		if r := verify(jwt, testStaffSSOSecret); code != 200 || len(r.Problems) > 0 || r.Claims["external_id"] != "emp-u-1" {
			t.Fatalf("%s: SSO after the staff login = %d %v %v", name, code, r.Problems, r.Claims)
		}
	}
}
