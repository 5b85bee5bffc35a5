package nodeidp

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	testClientID     = "zdgate-test"
	testClientSecret = "s3cret-for-tests"
	waitLimit        = 10 * time.Second
)

// relyingParty is a bare go-oidc + x/oauth2 client of the provider, with a back-channel logout
// receiver, standing in for zdgate.
type relyingParty struct {
	idp          *IdP
	srv          *httptest.Server
	provider     *gooidc.Provider
	verifier     *gooidc.IDTokenVerifier
	conf         oauth2.Config
	endpoints    endpoints
	logoutTokens chan string
}

// endpoints are the discovery fields go-oidc does not expose.
type endpoints struct {
	Introspection            string   `json:"introspection_endpoint"`
	Revocation               string   `json:"revocation_endpoint"`
	EndSession               string   `json:"end_session_endpoint"`
	Userinfo                 string   `json:"userinfo_endpoint"`
	CodeChallengeMethods     []string `json:"code_challenge_methods_supported"`
	BackchannelLogout        bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSession bool     `json:"backchannel_logout_session_supported"`
	GrantTypes               []string `json:"grant_types_supported"`
	Scopes                   []string `json:"scopes_supported"`
}

func newRelyingParty(t *testing.T, conform bool) *relyingParty {
	t.Helper()
	logoutTokens := make(chan string, 4)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/backchannel_logout", func(w http.ResponseWriter, r *http.Request) {
		select {
		case logoutTokens <- r.PostFormValue("logout_token"):
		default:
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	idp := Start(t, Options{
		ClientID:              testClientID,
		ClientSecret:          testClientSecret,
		RedirectURI:           srv.URL + "/oauth2/callback",
		PostLogoutRedirectURI: srv.URL + "/signed-out",
		BackchannelLogoutURI:  srv.URL + "/oauth2/backchannel_logout",
		ConformIDTokenClaims:  conform,
	})
	provider, err := gooidc.NewProvider(ctx(t), idp.Issuer())
	if err != nil {
		t.Fatalf("oidc.NewProvider(%s) = %v", idp.Issuer(), err)
	}
	var eps endpoints
	if err := provider.Claims(&eps); err != nil {
		t.Fatalf("discovery claims: %v", err)
	}
	return &relyingParty{
		idp:      idp,
		srv:      srv,
		provider: provider,
		verifier: provider.Verifier(&gooidc.Config{ClientID: testClientID}),
		conf: oauth2.Config{
			ClientID:     testClientID,
			ClientSecret: testClientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  srv.URL + "/oauth2/callback",
			Scopes:       []string{gooidc.ScopeOpenID, "email", "profile", gooidc.ScopeOfflineAccess},
		},
		endpoints:    eps,
		logoutTokens: logoutTokens,
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), waitLimit)
	t.Cleanup(cancel)
	return c
}

func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: waitLimit}
}

// authorize drives Login and returns the callback's query.
func (rp *relyingParty) authorize(t *testing.T, browser *http.Client, authURL, login, password string) url.Values {
	t.Helper()
	resp, err := rp.idp.Login(browser, authURL, login, password)
	if err != nil {
		t.Fatalf("Login(%s) = %v", login, err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("Login(%s) answered %s without Location", login, resp.Status)
	}
	if got, want := loc.Scheme+"://"+loc.Host+loc.Path, rp.conf.RedirectURL; got != want {
		t.Fatalf("Login(%s) redirected to %s; want %s", login, loc, want)
	}
	return loc.Query()
}

type session struct {
	token   *oauth2.Token
	rawID   string
	idToken *gooidc.IDToken
	browser *http.Client
}

// login runs the code flow with PKCE S256 and nonce, exchanges the code, verifies the ID token.
func (rp *relyingParty) login(t *testing.T, login, password string) session {
	t.Helper()
	browser := newBrowser(t)
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	authURL := rp.conf.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	q := rp.authorize(t, browser, authURL, login, password)
	if q.Get("error") != "" || q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("callback query = %v; want code and state %q", q, state)
	}
	if q.Get("iss") != rp.idp.Issuer() {
		t.Errorf("callback iss = %q; want %q", q.Get("iss"), rp.idp.Issuer())
	}
	tok, err := rp.conf.Exchange(ctx(t), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange() = %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx(t), raw)
	if err != nil {
		t.Fatalf("Verify(id_token) = %v", err)
	}
	if idt.Nonce != nonce || idt.Subject != login {
		t.Fatalf("id_token nonce, sub = %q, %q; want %q, %q", idt.Nonce, idt.Subject, nonce, login)
	}
	return session{token: tok, rawID: raw, idToken: idt, browser: browser}
}

// refresh runs the refresh-token grant with rt.
func (rp *relyingParty) refresh(t *testing.T, rt string) (*oauth2.Token, error) {
	t.Helper()
	return rp.conf.TokenSource(ctx(t), &oauth2.Token{RefreshToken: rt}).Token()
}

func wantInvalidGrant(t *testing.T, what string, err error) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("%s = %v; want *oauth2.RetrieveError invalid_grant", what, err)
	}
}

// userinfoStatus calls userinfo with the access token and returns the status (and claims on 200).
func (rp *relyingParty) userinfoStatus(t *testing.T, accessToken string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, rp.provider.UserInfoEndpoint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	defer resp.Body.Close()
	var claims map[string]any
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&claims); err != nil {
			t.Fatalf("userinfo body: %v", err)
		}
	}
	return resp.StatusCode, claims
}

// userinfo is go-oidc's UserInfo call, which must succeed.
func (rp *relyingParty) userinfo(t *testing.T, tok *oauth2.Token) map[string]any {
	t.Helper()
	ui, err := rp.provider.UserInfo(ctx(t), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("UserInfo() = %v", err)
	}
	var claims map[string]any
	if err := ui.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// clientPost POSTs form to an endpoint with client_secret_basic and decodes a JSON answer.
func (rp *relyingParty) clientPost(t *testing.T, endpoint string, form url.Values, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(testClientID), url.QueryEscape(testClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("POST %s: body: %v", endpoint, err)
		}
	}
	return resp.StatusCode
}

type introspection struct {
	Active   bool   `json:"active"`
	Subject  string `json:"sub"`
	ClientID string `json:"client_id"`
}

func (rp *relyingParty) introspect(t *testing.T, token, hint string) introspection {
	t.Helper()
	var got introspection
	if code := rp.clientPost(t, rp.endpoints.Introspection, url.Values{"token": {token}, "token_type_hint": {hint}}, &got); code != http.StatusOK {
		t.Fatalf("introspection answered %d; want 200", code)
	}
	return got
}

func (rp *relyingParty) counts(t *testing.T) map[string]int {
	t.Helper()
	c, err := rp.idp.Counts()
	if err != nil {
		t.Fatalf("Counts() = %v", err)
	}
	return c
}

func wantCounts(t *testing.T, got map[string]int, want map[string]int) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Counts()[%q] = %d; want %d (all: %v)", k, got[k], v, got)
		}
	}
}

func TestDiscovery(t *testing.T) {
	rp := newRelyingParty(t, false)
	e := rp.endpoints
	for name, v := range map[string]string{
		"introspection_endpoint": e.Introspection,
		"revocation_endpoint":    e.Revocation,
		"end_session_endpoint":   e.EndSession,
		"userinfo_endpoint":      e.Userinfo,
	} {
		if !strings.HasPrefix(v, rp.idp.Issuer()+"/") {
			t.Errorf("%s = %q; want a URL below %s", name, v, rp.idp.Issuer())
		}
	}
	if !slices.Equal(e.CodeChallengeMethods, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v; want [S256]", e.CodeChallengeMethods)
	}
	if !e.BackchannelLogout || !e.BackchannelLogoutSession {
		t.Errorf("backchannel_logout_supported, _session_supported = %t, %t; want true, true", e.BackchannelLogout, e.BackchannelLogoutSession)
	}
	for _, s := range []string{"openid", "email", "profile", "groups", "offline_access"} {
		if !slices.Contains(e.Scopes, s) {
			t.Errorf("scopes_supported = %v; want %q in it", e.Scopes, s)
		}
	}
	if !slices.Contains(e.GrantTypes, "refresh_token") {
		t.Errorf("grant_types_supported = %v; want refresh_token in it", e.GrantTypes)
	}
}

func TestLoginRefreshRotation(t *testing.T) {
	rp := newRelyingParty(t, false)

	t.Run("PKCE required", func(t *testing.T) {
		q := rp.authorize(t, newBrowser(t), rp.conf.AuthCodeURL("st"), Alice, AlicePassword)
		if q.Get("error") != "invalid_request" || q.Get("code") != "" {
			t.Errorf("callback without PKCE = %v; want error=invalid_request and no code", q)
		}
	})
	for _, tc := range []struct{ name, login, password string }{
		{"wrong password", Alice, "nope"},
		{"unknown account", "mallory", "mallory-password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			authURL := rp.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
			if resp, err := rp.idp.Login(newBrowser(t), authURL, tc.login, tc.password); err == nil {
				resp.Body.Close()
				t.Fatalf("Login(%s, %s) = %s, nil; want an error", tc.login, tc.password, resp.Header.Get("Location"))
			}
		})
	}

	s := rp.login(t, Alice, AlicePassword)
	var idc struct {
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		Name          string   `json:"name"`
		Groups        []string `json:"groups"`
		SID           string   `json:"sid"`
	}
	if err := s.idToken.Claims(&idc); err != nil {
		t.Fatal(err)
	}
	if idc.Email != "alice@example.com" || !idc.EmailVerified || idc.Name != "Alice Example" || idc.SID == "" {
		t.Errorf("id_token claims = %+v; want Alice's email (verified), name and a sid", idc)
	}
	// groups was not among the requested scopes, so the provider must not release it.
	if idc.Groups != nil {
		t.Errorf("id_token groups = %v without the groups scope; want none", idc.Groups)
	}

	ui := rp.userinfo(t, s.token)
	if ui["sub"] != Alice || ui["email"] != "alice@example.com" || ui["email_verified"] != true ||
		ui["name"] != "Alice Example" || ui["preferred_username"] != "alice" {
		t.Errorf("userinfo = %v; want Alice's claims", ui)
	}

	rt1 := s.token.RefreshToken
	if rt1 == "" {
		t.Fatalf("no refresh token for scopes %v", rp.conf.Scopes)
	}
	tok2, err := rp.refresh(t, rt1)
	if err != nil {
		t.Fatalf("refresh = %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == rt1 {
		t.Fatalf("refresh returned refresh token %q; want a new one (rotation)", tok2.RefreshToken)
	}
	raw2, _ := tok2.Extra("id_token").(string)
	if idt2, err := rp.verifier.Verify(ctx(t), raw2); err != nil || idt2.Subject != Alice {
		t.Fatalf("refreshed id_token: Verify() = %v, %v; want sub %q", idt2, err, Alice)
	}
	if got := rp.userinfo(t, tok2); got["sub"] != Alice {
		t.Errorf("userinfo with the refreshed access token = %v", got)
	}
	wantCounts(t, rp.counts(t), map[string]int{"authorization_code": 1, "refresh_token": 1, "userinfo": 2, "login": 1, "login_failed": 2})

	_, err = rp.refresh(t, rt1)
	wantInvalidGrant(t, "refresh with the rotated-out token", err)
	// Reuse detection: presenting a used refresh token revokes the whole grant, so its successor
	// is dead too — a client that refreshes twice in parallel loses the session.
	_, err = rp.refresh(t, tok2.RefreshToken)
	wantInvalidGrant(t, "refresh with the successor after reuse", err)
	if code, _ := rp.userinfoStatus(t, tok2.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("userinfo after reuse = %d; want 401", code)
	}
	wantCounts(t, rp.counts(t), map[string]int{"refresh_token": 1, "refresh_token_error": 2})
}

func TestDeleteAccount(t *testing.T) {
	rp := newRelyingParty(t, false)
	s := rp.login(t, Alice, AlicePassword)
	if got := rp.introspect(t, s.token.AccessToken, "access_token"); !got.Active || got.Subject != Alice || got.ClientID != testClientID {
		t.Fatalf("introspection before delete = %+v; want active for %s", got, Alice)
	}
	if got := rp.introspect(t, s.token.RefreshToken, "refresh_token"); !got.Active {
		t.Fatalf("refresh token introspection before delete = %+v; want active", got)
	}

	if err := rp.idp.DeleteAccount(Alice); err != nil {
		t.Fatalf("DeleteAccount() = %v", err)
	}

	_, err := rp.refresh(t, s.token.RefreshToken)
	wantInvalidGrant(t, "refresh after delete", err)
	if code, _ := rp.userinfoStatus(t, s.token.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("userinfo after delete = %d; want 401", code)
	}
	if got := rp.introspect(t, s.token.AccessToken, "access_token"); got.Active {
		t.Errorf("access token introspection after delete = %+v; want active:false", got)
	}
	if got := rp.introspect(t, s.token.RefreshToken, "refresh_token"); got.Active {
		t.Errorf("refresh token introspection after delete = %+v; want active:false", got)
	}
	// The provider session is gone too: the same browser is asked to log in, and refused.
	authURL := rp.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	if resp, err := rp.idp.Login(s.browser, authURL, Alice, AlicePassword); err == nil {
		resp.Body.Close()
		t.Errorf("Login(alice) after delete = %s; want refused", resp.Header.Get("Location"))
	}
	if err := rp.idp.DeleteAccount(Alice); err == nil {
		t.Errorf("DeleteAccount(alice) twice = nil; want an error")
	}
	// Bob is untouched.
	rp.login(t, Bob, BobPassword)
	wantCounts(t, rp.counts(t), map[string]int{"refresh_token_error": 1, "userinfo_error": 1, "introspection": 4, "login": 2, "login_failed": 1})
}

func TestSetClaimsAndAddAccount(t *testing.T) {
	rp := newRelyingParty(t, false)
	rp.conf.Scopes = append(rp.conf.Scopes, "groups")
	s := rp.login(t, Bob, BobPassword)
	if got := rp.userinfo(t, s.token); got["name"] != "Bob Example" || got["email_verified"] != false {
		t.Fatalf("userinfo = %v; want Bob, email not verified", got)
	}

	if err := rp.idp.SetClaims(Bob, map[string]any{
		"name": "Robert Example", "email": "robert@example.com", "email_verified": true,
		"groups": []string{"staff", "admins"}, "preferred_username": nil,
	}); err != nil {
		t.Fatalf("SetClaims() = %v", err)
	}
	got := rp.userinfo(t, s.token)
	if got["name"] != "Robert Example" || got["email"] != "robert@example.com" || got["email_verified"] != true {
		t.Errorf("userinfo after SetClaims = %v; want the new name and email", got)
	}
	if g, _ := got["groups"].([]any); len(g) != 2 || g[1] != "admins" {
		t.Errorf("userinfo groups after SetClaims = %v; want [staff admins]", got["groups"])
	}
	if _, ok := got["preferred_username"]; ok {
		t.Errorf("userinfo preferred_username after removing it = %v; want absent", got["preferred_username"])
	}
	tok2, err := rp.refresh(t, s.token.RefreshToken)
	if err != nil {
		t.Fatalf("refresh = %v", err)
	}
	raw, _ := tok2.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx(t), raw)
	if err != nil {
		t.Fatal(err)
	}
	var idc struct{ Name string }
	if err := idt.Claims(&idc); err != nil || idc.Name != "Robert Example" {
		t.Errorf("refreshed id_token name = %q, %v; want Robert Example", idc.Name, err)
	}

	if err := rp.idp.SetClaims("nobody", map[string]any{"name": "x"}); err == nil {
		t.Errorf("SetClaims(nobody) = nil; want an error")
	}
	if err := rp.idp.AddAccount("carol", "carol-password", map[string]any{"email": "carol@example.com", "email_verified": true, "name": "Carol"}); err != nil {
		t.Fatalf("AddAccount() = %v", err)
	}
	if err := rp.idp.AddAccount("carol", "other", nil); err == nil {
		t.Errorf("AddAccount(carol) twice = nil; want an error")
	}
	c := rp.login(t, "carol", "carol-password")
	if got := rp.userinfo(t, c.token); got["email"] != "carol@example.com" || got["name"] != "Carol" {
		t.Errorf("userinfo of carol = %v", got)
	}
}

func TestConformIDTokenClaims(t *testing.T) {
	rp := newRelyingParty(t, true)
	s := rp.login(t, Alice, AlicePassword)
	var idc map[string]any
	if err := s.idToken.Claims(&idc); err != nil {
		t.Fatal(err)
	}
	if _, ok := idc["email"]; ok {
		t.Errorf("id_token = %v; want no email with ConformIDTokenClaims", idc)
	}
	if got := rp.userinfo(t, s.token); got["email"] != "alice@example.com" {
		t.Errorf("userinfo = %v; want Alice's email", got)
	}
}

func TestRevocation(t *testing.T) {
	rp := newRelyingParty(t, false)
	s := rp.login(t, Alice, AlicePassword)
	form := url.Values{"token": {s.token.RefreshToken}, "token_type_hint": {"refresh_token"}}
	if code := rp.clientPost(t, rp.endpoints.Revocation, form, nil); code != http.StatusOK {
		t.Fatalf("revocation answered %d; want 200", code)
	}
	_, err := rp.refresh(t, s.token.RefreshToken)
	wantInvalidGrant(t, "refresh after revocation", err)
	wantCounts(t, rp.counts(t), map[string]int{"revocation": 1, "refresh_token": 0, "refresh_token_error": 1})
}

func TestBackchannelLogout(t *testing.T) {
	rp := newRelyingParty(t, false)
	s := rp.login(t, Alice, AlicePassword)
	var idc struct {
		SID string `json:"sid"`
	}
	if err := s.idToken.Claims(&idc); err != nil || idc.SID == "" {
		t.Fatalf("id_token sid = %q, %v; want one", idc.SID, err)
	}

	end, err := url.Parse(rp.endpoints.EndSession)
	if err != nil {
		t.Fatal(err)
	}
	end.RawQuery = url.Values{
		"id_token_hint":            {s.rawID},
		"post_logout_redirect_uri": {rp.srv.URL + "/signed-out"},
		"state":                    {"bye"},
	}.Encode()
	if err := rp.idp.Logout(s.browser, end.String()); err != nil {
		t.Fatalf("Logout() = %v", err)
	}

	var raw string
	select {
	case raw = <-rp.logoutTokens:
	case <-time.After(waitLimit):
		t.Fatalf("no logout_token within %v (counts %v)", waitLimit, rp.counts(t))
	}
	lt, err := rp.verifier.VerifyLogout(ctx(t), raw)
	if err != nil {
		t.Fatalf("VerifyLogout() = %v", err)
	}
	if lt.Subject != Alice || lt.SessionID != idc.SID || lt.TokenID == "" {
		t.Errorf("logout token sub, sid, jti = %q, %q, %q; want %q, %q, set", lt.Subject, lt.SessionID, lt.TokenID, Alice, idc.SID)
	}
	wantCounts(t, rp.counts(t), map[string]int{"end_session": 1, "backchannel_logout": 1, "backchannel_logout_error": 0})

	// Logout revokes the grant (offline_access was not granted, see server.mjs) ...
	_, err = rp.refresh(t, s.token.RefreshToken)
	wantInvalidGrant(t, "refresh after logout", err)
	// ... and ends the provider session: the same browser must sign in again.
	rp.authorize(t, s.browser, rp.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), Alice, AlicePassword)
	wantCounts(t, rp.counts(t), map[string]int{"login": 2})
}
