package oidctest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestLoginVerifiesWithDiscoveryAndJWKS(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	tok, idt := p.login(t)

	c := claimsOf(t, idt)
	for name, want := range map[string]any{
		"iss": s.URL(), "aud": "zdgate", "sub": "user-1", "email": "alice@example.com",
		"email_verified": true, "name": "Alice Example", "preferred_username": "alice",
	} {
		if c[name] != want {
			t.Errorf("id_token %s = %v; want %v", name, c[name], want)
		}
	}
	if g, _ := c["groups"].([]any); len(g) != 1 || g[0] != "staff" {
		t.Errorf("id_token groups = %v; want [staff]", c["groups"])
	}
	if c["sid"] == "" || c["sid"] == nil || c["auth_time"] == nil {
		t.Errorf("id_token lacks sid or auth_time: %v", c)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.Expiry.IsZero() {
		t.Errorf("token = type %q refresh %q expiry %v; want Bearer, a refresh token, an expiry", tok.TokenType, tok.RefreshToken, tok.Expiry)
	}

	// The access token is an RS256 JWT for the client, verifiable with the same JWKS.
	at, err := p.verifier.Verify(p.ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("Verify(access_token): %v", err)
	}
	ac := claimsOf(t, at)
	if ac["client_id"] != "zdgate" || ac["sid"] != c["sid"] || !strings.Contains(ac["scope"].(string), "openid") || ac["jti"] == nil {
		t.Errorf("access token claims = %v", ac)
	}

	ui, err := p.provider.UserInfo(p.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("UserInfo: %v", err)
	}
	if ui.Subject != "user-1" || ui.Email != "alice@example.com" || !ui.EmailVerified {
		t.Errorf("UserInfo = %+v", ui)
	}

	in := introspect(t, s, tok.AccessToken)
	for name, want := range map[string]any{
		"active": true, "sub": "user-1", "client_id": "zdgate", "iss": s.URL(), "token_type": "Bearer",
		"username": "alice", "sid": c["sid"], "email": "alice@example.com",
	} {
		if in[name] != want {
			t.Errorf("introspection %s = %v; want %v", name, in[name], want)
		}
	}
	if in["exp"] == nil || in["iat"] == nil || in["aud"] == nil || in["scope"] == nil {
		t.Errorf("introspection lacks exp/iat/aud/scope: %v", in)
	}
}

func TestDiscoveryDocument(t *testing.T) {
	s := NewT(t, Options{})
	resp, err := noRedirect().Get(s.URL() + PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"authorization_endpoint": PathAuthorize, "token_endpoint": PathToken, "userinfo_endpoint": PathUserinfo,
		"jwks_uri": PathJWKS, "introspection_endpoint": PathIntrospection, "revocation_endpoint": PathRevocation,
		"end_session_endpoint": PathEndSession,
	} {
		if doc[name] != s.URL()+path {
			t.Errorf("%s = %v; want %s", name, doc[name], s.URL()+path)
		}
	}
	if doc["issuer"] != s.URL() || doc["backchannel_logout_supported"] != true || doc["backchannel_logout_session_supported"] != true {
		t.Errorf("issuer/backchannel = %v %v %v", doc["issuer"], doc["backchannel_logout_supported"], doc["backchannel_logout_session_supported"])
	}
	list := func(name string) []string {
		var out []string
		for _, v := range doc[name].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	for name, want := range map[string][]string{
		"response_types_supported":              {"code"},
		"id_token_signing_alg_values_supported": {"RS256"},
		"code_challenge_methods_supported":      {"S256"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post"},
		"grant_types_supported":                 {"authorization_code", "refresh_token"},
	} {
		if got := list(name); !slices.Equal(got, want) {
			t.Errorf("%s = %q; want %q", name, got, want)
		}
	}
	for _, name := range []string{"subject_types_supported", "scopes_supported", "claims_supported"} {
		if len(list(name)) == 0 {
			t.Errorf("%s is empty", name)
		}
	}

	jr, err := noRedirect().Get(s.URL() + PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	defer jr.Body.Close()
	var set struct {
		Keys []struct{ Kty, Kid, Use, Alg, N, E string }
	}
	if err := json.NewDecoder(jr.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys; want 1", len(set.Keys))
	}
	k := set.Keys[0]
	if k.Kty != "RSA" || k.Kid == "" || k.Use != "sig" || k.Alg != "RS256" || len(k.N) != 342 { // 256 bytes, base64url
		t.Errorf("JWKS key = %+v; want RSA 2048 sig RS256 with kid", k)
	}
}

func TestPKCEIsRequiredAndChecked(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	v := oauth2.GenerateVerifier()

	code := p.authorize(t, "s", oauth2.S256ChallengeOption(v))
	_, err := p.conf.Exchange(p.ctx, code)
	wantInvalidGrant(t, "Exchange without code_verifier", err)

	code = p.authorize(t, "s", oauth2.S256ChallengeOption(v))
	_, err = p.conf.Exchange(p.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	wantInvalidGrant(t, "Exchange with the wrong code_verifier", err)

	// A failed attempt uses the code up: the right verifier comes too late.
	_, err = p.conf.Exchange(p.ctx, code, oauth2.VerifierOption(v))
	wantInvalidGrant(t, "Exchange after a failed attempt", err)

	code = p.authorize(t, "s", oauth2.S256ChallengeOption(v))
	if _, err := p.conf.Exchange(p.ctx, code, oauth2.VerifierOption(v)); err != nil {
		t.Fatalf("Exchange with the right verifier: %v", err)
	}
}

func TestCodeIsSingleUse(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	v := oauth2.GenerateVerifier()
	code := p.authorize(t, "s", oauth2.S256ChallengeOption(v))
	tok, err := p.conf.Exchange(p.ctx, code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.conf.Exchange(p.ctx, code, oauth2.VerifierOption(v))
	wantInvalidGrant(t, "second Exchange", err)

	// The replay revokes what the first redemption issued.
	if status, _, _ := userinfoStatus(t, s, tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo after code replay = %d; want 401", status)
	}
	_, err = p.refresh(tok)
	wantInvalidGrant(t, "refresh after code replay", err)
}

func TestCodeExpires(t *testing.T) {
	clk := newClock()
	s := NewT(t, Options{Now: clk.Now})
	p := newRP(t, s)
	v := oauth2.GenerateVerifier()
	code := p.authorize(t, "s", oauth2.S256ChallengeOption(v))
	clk.Advance(codeTTL + time.Second)
	_, err := p.conf.Exchange(p.ctx, code, oauth2.VerifierOption(v))
	wantInvalidGrant(t, "Exchange of an expired code", err)
}

func TestRefreshRotates(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	tok, idt := p.login(t)

	tok2, err := p.refresh(tok)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
		t.Fatalf("refresh did not rotate: old %q new %q", tok.RefreshToken, tok2.RefreshToken)
	}
	idt2 := p.verify(t, tok2)
	c := claimsOf(t, idt2)
	if _, ok := c["nonce"]; ok {
		t.Errorf("refreshed id_token has a nonce: %v", c["nonce"])
	}
	if idt2.Subject != idt.Subject || c["sid"] != claimsOf(t, idt)["sid"] {
		t.Errorf("refreshed id_token sub/sid = %q/%v; want %q/%v", idt2.Subject, c["sid"], idt.Subject, claimsOf(t, idt)["sid"])
	}

	_, err = p.refresh(tok)
	wantInvalidGrant(t, "refresh with the rotated-out token", err)

	if _, err := p.refresh(tok2); err != nil {
		t.Fatalf("refresh with the new token: %v", err)
	}
	if got := s.Count("token.refresh"); got != 3 {
		t.Errorf("Count(token.refresh) = %d; want 3", got)
	}
}

func TestRefreshReuseRevokesGrant(t *testing.T) {
	s := NewT(t, Options{RefreshReuseRevokesGrant: true})
	p := newRP(t, s)
	tok, _ := p.login(t)
	tok2, err := p.refresh(tok)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	_, err = p.refresh(tok)
	wantInvalidGrant(t, "replay of the rotated-out token", err)
	_, err = p.refresh(tok2)
	wantInvalidGrant(t, "the successor after a replay (reuse detection revokes the grant)", err)
	if introspect(t, s, tok2.AccessToken)["active"] != false {
		t.Error("the grant's access token is still active after reuse detection")
	}
}

func TestRefreshWithoutRotation(t *testing.T) {
	s := NewT(t, Options{DisableRefreshRotation: true})
	p := newRP(t, s)
	tok, _ := p.login(t)
	for i := range 2 {
		tok2, err := p.refresh(tok)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if tok2.RefreshToken != tok.RefreshToken {
			t.Fatalf("refresh token changed with rotation disabled")
		}
	}
}

func TestNoRefreshTokenWithoutOfflineAccess(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s, gooidc.ScopeOpenID, "email")
	tok, _ := p.login(t)
	if tok.RefreshToken != "" {
		t.Errorf("refresh_token = %q without offline_access; want none", tok.RefreshToken)
	}
}

func TestClientAuthentication(t *testing.T) {
	s := NewT(t, Options{Clients: []Client{{ID: "zdgate", Secret: "zdgate-secret"}, {ID: "spa"}}})
	p := newRP(t, s)
	v := oauth2.GenerateVerifier()

	bad := p.conf
	bad.ClientSecret = "wrong"
	bad.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	_, err := bad.Exchange(p.ctx, p.authorize(t, "s", oauth2.S256ChallengeOption(v)), oauth2.VerifierOption(v))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong secret: err = %v; want invalid_client 401", err)
	}

	post := p.conf
	post.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	if _, err := post.Exchange(p.ctx, p.authorize(t, "s", oauth2.S256ChallengeOption(v)), oauth2.VerifierOption(v)); err != nil {
		t.Fatalf("client_secret_post: %v", err)
	}

	public := oauth2.Config{ClientID: "spa", Endpoint: p.conf.Endpoint, RedirectURL: callback, Scopes: []string{"openid"}}
	public.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	pp := *p
	pp.conf = public
	if _, err := public.Exchange(p.ctx, pp.authorize(t, "s", oauth2.S256ChallengeOption(v)), oauth2.VerifierOption(v)); err != nil {
		t.Fatalf("public client: %v", err)
	}

	status, body := postClient(t, s, PathToken, s.Client(), url.Values{"grant_type": {"password"}})
	if status != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
		t.Errorf("grant_type=password: %d %v; want 400 unsupported_grant_type", status, body)
	}
	status, body = postClient(t, s, PathToken, Client{}, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}})
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("no client auth: %d %v; want 401 invalid_client", status, body)
	}
}

func TestAuthorizeRejectsBadRequests(t *testing.T) {
	s := NewT(t, Options{Clients: []Client{
		{ID: "zdgate", Secret: "zdgate-secret"},
		{ID: "fixed", Secret: "x", RedirectURIs: []string{"http://127.0.0.1:1/cb"}},
	}})
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	valid := url.Values{
		"client_id": {"zdgate"}, "redirect_uri": {callback}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"st"}, "nonce": {"n"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	tests := []struct {
		name   string
		change func(q url.Values)
		status int
	}{
		{"valid", func(url.Values) {}, http.StatusFound},
		{"unknown client", func(q url.Values) { q.Set("client_id", "nobody") }, http.StatusBadRequest},
		{"no redirect_uri", func(q url.Values) { q.Del("redirect_uri") }, http.StatusBadRequest},
		{"foreign redirect_uri", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, http.StatusBadRequest},
		{"redirect_uri with fragment", func(q url.Values) { q.Set("redirect_uri", callback+"#x") }, http.StatusBadRequest},
		{"unregistered redirect_uri", func(q url.Values) { q.Set("client_id", "fixed"); q.Set("redirect_uri", "http://127.0.0.1:2/cb") }, http.StatusBadRequest},
		{"registered redirect_uri", func(q url.Values) { q.Set("client_id", "fixed"); q.Set("redirect_uri", "http://127.0.0.1:1/cb") }, http.StatusFound},
		{"response_type token", func(q url.Values) { q.Set("response_type", "token") }, http.StatusBadRequest},
		{"no openid scope", func(q url.Values) { q.Set("scope", "email") }, http.StatusBadRequest},
		{"no code_challenge", func(q url.Values) { q.Del("code_challenge") }, http.StatusBadRequest},
		{"no code_challenge_method", func(q url.Values) { q.Del("code_challenge_method") }, http.StatusBadRequest},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, http.StatusBadRequest},
		{"short challenge", func(q url.Values) { q.Set("code_challenge", "abc") }, http.StatusBadRequest},
		{"unknown login_hint", func(q url.Values) { q.Set("login_hint", "mallory") }, http.StatusBadRequest},
		{"login_hint by email", func(q url.Values) { q.Set("login_hint", "alice@example.com") }, http.StatusFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range valid {
				q[k] = slices.Clone(v)
			}
			tt.change(q)
			resp, err := noRedirect().Get(s.URL() + PathAuthorize + "?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d (%s); want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == http.StatusBadRequest {
				if loc := resp.Header.Get("Location"); loc != "" {
					t.Errorf("error redirected to %q", loc)
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type = %q; want text/plain", ct)
				}
			}
		})
	}
}
