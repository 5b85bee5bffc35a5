package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zdgate/zdgate/internal/nodeidp"
	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/proxy/session"
	"github.com/zdgate/zdgate/tokens"
)

// TestRealIdPAndTestIdPSideBySide: zdgate wired exactly as `zdgate serve --config` wires a
// providers: list, with panva's oidc-provider (a certified OpenID provider) as "real" and oidctest
// as "test", both having a user "alice". A login through each and a bearer token from each mint
// tokens for two different Zendesk users (real-alice, test-alice); revoking the refresh token at
// the real IdP ends only its session, and neither IdP hears of the other's users.
func TestRealIdPAndTestIdPSideBySide(t *testing.T) {
	ln := listenLoopback(t)
	public := "http://" + ln.Addr().String()
	real := nodeidp.Start(t, nodeidp.Options{
		ClientID: "zdgate", ClientSecret: "real-idp-client-secret",
		RedirectURI: public + "/oauth2/callback", PostLogoutRedirectURI: public + "/",
	})
	test := oidctest.NewT(t, oidctest.Options{
		Users:   []oidctest.User{{Subject: nodeidp.Alice, Email: "alice@test.example", EmailVerified: true, Name: "Alice Test"}},
		Clients: []oidctest.Client{{ID: "zdgate-test", Secret: "test-client-secret"}},
	})
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Provider")+":"+r.Header.Get("X-Forwarded-User"))
	}), ReadHeaderTimeout: time.Second}
	appLn := listenLoopback(t)
	go app.Serve(appLn)
	t.Cleanup(func() { app.Close() })

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "real-client-secret")
	os.WriteFile(secretFile, []byte("real-idp-client-secret\n"), 0o600)
	file := filepath.Join(dir, "zdgate.yaml")
	os.WriteFile(file, []byte(`
providers:
  - id: real
    display-name: The real IdP
    oidc-issuer: `+real.Issuer()+`
    oidc-client-id: zdgate
    oidc-client-secret-file: `+secretFile+`
    external-id-prefix: real-
    opaque-bearer-tokens: true
  - id: test
    display-name: The test IdP
    oidc-issuer: `+test.URL()+`
    oidc-client-id: zdgate-test
    oidc-client-secret: test-client-secret
    external-id-prefix: test-
`), 0o600)
	s := serveRealIdPStack(t, ln, public, real,
		"--config", file, "--upstream=http://"+appLn.Addr().String(), "--bearer-rate-limit=0")

	// A login through each.
	viaReal, viaTest := noFollow(), noFollow()
	res, err := viaReal.Get(public + "/oauth2/start?provider=real&rd=/")
	if err != nil || res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), real.Issuer()) {
		t.Fatalf("start at real: %v %v", res, err)
	}
	res.Body.Close()
	cb, err := real.Login(viaReal, res.Header.Get("Location"), nodeidp.Alice, nodeidp.AlicePassword)
	if err != nil {
		t.Fatalf("real IdP login: %v", err)
	}
	cb.Body.Close()
	if res, err = viaReal.Get(cb.Header.Get("Location")); err != nil || res.StatusCode != http.StatusFound {
		t.Fatalf("callback from real: %v %v", res, err)
	}
	res.Body.Close()
	follow(t, viaTest, public+"/oauth2/start?provider=test&rd=/")

	for name, want := range map[*http.Client]string{viaReal: "real-" + nodeidp.Alice, viaTest: "test-" + nodeidp.Alice} {
		code, claims := s.token(t, name)
		if code != 200 || claims["external_id"] != want {
			t.Fatalf("token = %d %v; want external_id %s", code, claims, want)
		}
		page := get(t, name, public+"/")
		if wantPage := strings.SplitN(want, "-", 2)[0] + ":" + nodeidp.Alice; page != wantPage {
			t.Fatalf("the app saw %q; want %q", page, wantPage)
		}
	}

	// A bearer token from each: the real IdP's opaque access token (introspected there), the test
	// IdP's JWT (by its iss).
	realSession := s.session(t, viaReal)
	if realSession == nil || realSession.Provider != "real" {
		t.Fatalf("real session = %v", realSession)
	}
	for tok, want := range map[string]string{realSession.AccessToken: "real-" + nodeidp.Alice, test.AccessToken(nodeidp.Alice, nil): "test-" + nodeidp.Alice} {
		req, _ := http.NewRequest("GET", public+"/zendesk/token", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ JWT string }
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		r := tokens.Verify(body.JWT, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte(realMessagingSecret), KeyID: "app_real"})
		if res.StatusCode != 200 || len(r.Problems) > 0 || r.Claims["external_id"] != want {
			t.Fatalf("bearer token = %d %v %v; want %s", res.StatusCode, r.Problems, r.Claims, want)
		}
	}

	// A revocation at the real IdP: its session ends, the test IdP's session does not.
	counts, _ := real.Counts()
	realRefreshes := counts["refresh_token"]
	testCalls := test.Count("token.refresh")
	revoke(t, real, realSession)
	if code, _ := s.token(t, viaReal); code != http.StatusUnauthorized {
		t.Fatalf("real session after revocation at the real IdP = %d; want 401", code)
	}
	if code, claims := s.token(t, viaTest); code != 200 || claims["external_id"] != "test-"+nodeidp.Alice {
		t.Fatalf("test session after the real IdP's revocation = %d %v; want it alive", code, claims)
	}
	// The test session's re-checks went to the test IdP only, and the real session's to the real one.
	if counts, _ = real.Counts(); counts["refresh_token"] > realRefreshes+1 {
		t.Errorf("the real IdP saw %d refreshes after the revocation; only the revoked session's one was its", counts["refresh_token"]-realRefreshes)
	}
	if test.Count("token.refresh") <= testCalls {
		t.Error("the test session was not re-checked at the test IdP")
	}
}

// follow GETs u and follows redirects by hand (the client does not), returning the last response.
func follow(t *testing.T, c *http.Client, u string) {
	t.Helper()
	for i := 0; i < 10; i++ {
		res, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusFound {
			return
		}
		next, _ := url.Parse(res.Header.Get("Location"))
		u = res.Request.URL.ResolveReference(next).String()
	}
	t.Fatalf("too many redirects from %s", u)
}

func get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// revoke revokes the session's refresh token at the real IdP's RFC 7009 endpoint, as an
// administrator or a security tool would.
func revoke(t *testing.T, real *nodeidp.IdP, s *session.Session) {
	t.Helper()
	var meta struct {
		Revocation string `json:"revocation_endpoint"`
	}
	res, err := http.Get(real.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(res.Body).Decode(&meta)
	res.Body.Close()
	req, _ := http.NewRequest("POST", meta.Revocation, strings.NewReader(url.Values{"token": {s.RefreshToken}, "token_type_hint": {"refresh_token"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("zdgate", "real-idp-client-secret")
	res, err = http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("revocation: %v %v", res, err)
	}
	res.Body.Close()
}
