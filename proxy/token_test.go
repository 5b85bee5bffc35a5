package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/tokens"
)

func verifyMessaging(t *testing.T, jwt string, now time.Time) map[string]any {
	t.Helper()
	res := tokens.Verify(jwt, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte(testMessagingSecret), KeyID: testMessagingKey, Now: func() time.Time { return now }})
	if len(res.Problems) > 0 {
		t.Fatalf("messaging token does not verify: %v", res.Problems)
	}
	return res.Claims
}

func TestTokenMessaging(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	res, body := st.do(st.client, "GET", "/zendesk/token", map[string]string{"Sec-Fetch-Site": "same-origin"})
	if res.StatusCode != 200 {
		t.Fatalf("token = %d: %s", res.StatusCode, body)
	}
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("Cache-Control = %q; want no-store", cc)
	}
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("token route sent CORS headers")
	}
	m := jsonBody(t, body)
	claims := verifyMessaging(t, m["jwt"].(string), st.clock.Now())
	if claims["external_id"] != "user-1" || claims["email"] != "alice@example.com" || claims["email_verified"] != true || claims["scope"] != "user" {
		t.Errorf("claims = %v", claims)
	}
	if exp, _ := m["expires_at"].(float64); fmt.Sprint(int64(exp)) != fmt.Sprint(claims["exp"]) {
		t.Errorf("expires_at = %v; want the JWT's exp %v", m["expires_at"], claims["exp"])
	}
	// POST works too.
	if res, _ := st.do(st.client, "POST", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Errorf("POST token = %d", res.StatusCode)
	}
}

func TestTokenUnverifiedEmailLeftOut(t *testing.T) {
	st := newStack(t, stackOpts{idp: oidctest.Options{Users: []oidctest.User{{Subject: "u9", Email: "bob@example.com", EmailVerified: false, Name: "Bob"}}}})
	st.login(st.client, "/")
	_, body := st.do(st.client, "GET", "/zendesk/token", nil)
	claims := verifyMessaging(t, jsonBody(t, body)["jwt"].(string), st.clock.Now())
	if _, ok := claims["email"]; ok {
		t.Errorf("unverified email reached the token: %v", claims)
	}
	if _, ok := claims["email_verified"]; ok {
		t.Errorf("email_verified present without a verified email: %v", claims)
	}
	// Chat needs an email: refused with a clear code.
	res, body := st.do(st.client, "GET", "/zendesk/token?flavor=chat", nil)
	if res.StatusCode != http.StatusForbidden || jsonBody(t, body)["error"] != "email_not_verified" {
		t.Fatalf("chat without verified email = %d %s; want 403 email_not_verified", res.StatusCode, body)
	}
}

func TestTokenRefusesCrossSite(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	cases := []struct {
		hdr  map[string]string
		want int
	}{
		{map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": st.front.URL}, 403},
		{map[string]string{"Origin": "https://evil.example"}, 403},
		{map[string]string{"Origin": "null"}, 403},
		{map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{map[string]string{"Sec-Fetch-Site": "none"}, 200},
		{map[string]string{"Origin": st.front.URL}, 200},
		{map[string]string{}, 200}, // native apps send neither
	}
	for _, c := range cases {
		res, body := st.do(st.client, "GET", "/zendesk/token", c.hdr)
		if res.StatusCode != c.want {
			t.Errorf("token with %v = %d %s; want %d", c.hdr, res.StatusCode, body, c.want)
		}
	}
}

func TestTokenAnonymousAndUnknownFlavor(t *testing.T) {
	st := newStack(t, stackOpts{mutate: func(c *Config) { delete(c.Signers, tokens.Chat) }})
	res, body := st.do(st.client, "GET", "/zendesk/token", map[string]string{"Accept": "text/html"})
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("Content-Type"), "json") && res.StatusCode != 401 {
		t.Fatalf("anonymous token = %d %s; want 401", res.StatusCode, body)
	}
	st.login(st.client, "/")
	if res, _ := st.do(st.client, "GET", "/zendesk/token?flavor=bogus", nil); res.StatusCode != 400 {
		t.Errorf("flavor=bogus = %d; want 400", res.StatusCode)
	}
	if res, _ := st.do(st.client, "GET", "/zendesk/token?flavor=chat", nil); res.StatusCode != 404 {
		t.Errorf("flavor without a secret = %d; want 404", res.StatusCode)
	}
	if res, _ := st.do(st.client, "PUT", "/zendesk/token", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT token = %d; want 405", res.StatusCode)
	}
}

func TestTokenRechecksStaleSession(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	st.idp.ResetCounts()
	// Fresh: no IdP call.
	for i := 0; i < 3; i++ {
		st.do(st.client, "GET", "/zendesk/token", nil)
	}
	if n := st.idp.Count("token.refresh") + st.idp.Count("userinfo"); n != 0 {
		t.Fatalf("fresh session made %d IdP calls; want 0", n)
	}
	// Claims change at the IdP, the session ages past --recheck-interval: the next token shows it.
	st.idp.UpdateUser("user-1", func(u *oidctest.User) { u.Name = "Alice Renamed"; u.Email = "alice@new.example" })
	st.clock.Advance(61 * time.Second)
	_, body := st.do(st.client, "GET", "/zendesk/token", nil)
	claims := verifyMessaging(t, jsonBody(t, body)["jwt"].(string), st.clock.Now())
	if claims["name"] != "Alice Renamed" || claims["email"] != "alice@new.example" {
		t.Fatalf("after re-check claims = %v; want the IdP's new name and email", claims)
	}
	if st.idp.Count("token.refresh") != 1 {
		t.Fatalf("refreshes = %d; want 1", st.idp.Count("token.refresh"))
	}
	// The rotated refresh token was written back: another re-check works.
	st.clock.Advance(61 * time.Second)
	if res, body := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Fatalf("second re-check = %d %s", res.StatusCode, body)
	}
}

func TestTokenRevokedUserEndsSession(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	st.idp.DeleteUser("user-1")
	// Still fresh: the IdP is not asked (by design, within --recheck-interval).
	st.clock.Advance(61 * time.Second)
	res, body := st.do(st.client, "GET", "/zendesk/token", nil)
	if res.StatusCode != 401 {
		t.Fatalf("token for a deleted user = %d %s; want 401", res.StatusCode, body)
	}
	if _, err := st.sessionOf(st.client); err == nil {
		t.Fatal("session cookie still valid after revocation")
	}
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 401 {
		t.Fatalf("next token = %d; want 401", res.StatusCode)
	}
}

func TestTokenUserinfoRecheckWithoutRefreshToken(t *testing.T) {
	// Log in without offline_access: no refresh token, so the re-check uses userinfo.
	st := newStack(t, stackOpts{scopes: []string{"openid", "email", "profile"}})
	st.login(st.client, "/")
	if s, _ := st.sessionOf(st.client); s.RefreshToken != "" {
		t.Fatal("expected no refresh token")
	}
	st.idp.ResetCounts()
	st.clock.Advance(2 * time.Minute)
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Fatalf("token = %d", res.StatusCode)
	}
	if st.idp.Count("userinfo") != 1 {
		t.Fatalf("userinfo calls = %d; want 1", st.idp.Count("userinfo"))
	}
	st.idp.DeleteUser("user-1")
	st.clock.Advance(2 * time.Minute)
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 401 {
		t.Fatalf("token after userinfo 401 = %d; want 401", res.StatusCode)
	}
}

func TestSingleflightRecheck(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	st.idp.ResetCounts()
	st.idp.SetDelay(50 * time.Millisecond) // keep the first refresh in flight while others arrive
	st.clock.Advance(2 * time.Minute)
	var wg sync.WaitGroup
	codes := make(chan int, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _ := st.do(st.client, "GET", "/zendesk/token", nil)
			codes <- res.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("a concurrent token request got %d", c)
		}
	}
	if n := st.idp.Count("token.refresh"); n != 1 {
		t.Fatalf("refresh grants = %d; want exactly 1 for 100 concurrent requests", n)
	}
}
