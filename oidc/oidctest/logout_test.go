package oidctest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// receiver is a back-channel logout endpoint that records what it gets.
type receiver struct {
	*httptest.Server
	tokens chan string
	status int
}

func newReceiver(t *testing.T, status int) *receiver {
	t.Helper()
	r := &receiver{tokens: make(chan string, 8), status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "want a form POST", http.StatusBadRequest)
			return
		}
		r.tokens <- req.PostFormValue("logout_token")
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.Close)
	return r
}

func TestEndSessionSendsBackchannelThenRedirects(t *testing.T) {
	bc := newReceiver(t, http.StatusOK)
	s := NewT(t, Options{Clients: []Client{
		{ID: "zdgate", Secret: "zdgate-secret", BackchannelLogoutURI: bc.URL + "/oauth2/backchannel_logout"},
		{ID: "other", Secret: "x"},
	}})
	p := newRP(t, s)
	tok, idt := p.login(t)
	other, _ := p.login(t) // a second IdP session of the same user
	sid := claimsOf(t, idt)["sid"].(string)

	q := url.Values{
		"id_token_hint":            {tok.Extra("id_token").(string)},
		"post_logout_redirect_uri": {"http://127.0.0.1:1/bye"},
		"state":                    {"st-3"},
	}
	resp, err := noRedirect().Get(s.URL() + PathEndSession + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://127.0.0.1:1/bye?state=st-3" {
		t.Fatalf("end_session = %d %q; want 302 to http://127.0.0.1:1/bye?state=st-3", resp.StatusCode, resp.Header.Get("Location"))
	}
	var raw string
	select {
	case raw = <-bc.tokens:
	default:
		t.Fatal("no back-channel logout arrived before the redirect")
	}

	lt, err := p.verifier.VerifyLogout(p.ctx, raw)
	if err != nil {
		t.Fatalf("VerifyLogout: %v", err)
	}
	if lt.Subject != "user-1" || lt.SessionID != sid || lt.TokenID == "" || lt.Expiry.Sub(lt.IssuedAt).Minutes() != 2 {
		t.Errorf("logout token = %+v; want sub user-1, sid %s, a jti, exp = iat+2m", lt, sid)
	}
	var c map[string]any
	_ = lt.Claims(&c)
	events, _ := c["events"].(map[string]any)
	if _, ok := events[backchannelEvent]; !ok || c["aud"] != "zdgate" {
		t.Errorf("logout token events/aud = %v/%v", c["events"], c["aud"])
	}
	if _, ok := c["nonce"]; ok {
		t.Errorf("logout token has a nonce")
	}
	if h := header(t, raw); h["typ"] != "logout+jwt" || h["alg"] != "RS256" {
		t.Errorf("logout token header = %v; want typ logout+jwt, RS256", h)
	}
	if s.Count("backchannel") != 1 || s.Count("end_session") != 1 {
		t.Errorf("Count(backchannel, end_session) = %d, %d; want 1, 1", s.Count("backchannel"), s.Count("end_session"))
	}

	// The ended session's tokens are dead; the user's other session lives on.
	_, err = p.refresh(tok)
	wantInvalidGrant(t, "refresh after end_session", err)
	if status, _, _ := userinfoStatus(t, s, tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo after end_session = %d; want 401", status)
	}
	if _, err := p.refresh(other); err != nil {
		t.Errorf("refresh of another session: %v", err)
	}
}

func TestEndSessionChecksItsInput(t *testing.T) {
	s := NewT(t, Options{Clients: []Client{
		{ID: "zdgate", Secret: "zdgate-secret"},
		{ID: "fixed", Secret: "x", PostLogoutRedirectURIs: []string{"https://app.example/bye"}},
	}})
	hint := s.Forge(ForgeRS256, s.IDTokenClaims("user-1", "zdgate", ""))
	fixedHint := s.Forge(ForgeRS256, s.IDTokenClaims("user-1", "fixed", ""))
	tests := []struct {
		name   string
		q      url.Values
		status int
	}{
		{"nothing: signed-out page", url.Values{}, http.StatusOK},
		{"hint only", url.Values{"id_token_hint": {hint}}, http.StatusOK},
		{"loopback target", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://127.0.0.1:9/x"}}, http.StatusFound},
		{"client_id instead of hint", url.Values{"client_id": {"zdgate"}, "post_logout_redirect_uri": {"http://127.0.0.1:9/x"}}, http.StatusFound},
		{"registered target", url.Values{"id_token_hint": {fixedHint}, "post_logout_redirect_uri": {"https://app.example/bye"}}, http.StatusFound},
		{"foreign target", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}}, http.StatusBadRequest},
		{"unregistered target", url.Values{"id_token_hint": {fixedHint}, "post_logout_redirect_uri": {"http://127.0.0.1:9/x"}}, http.StatusBadRequest},
		{"target without client", url.Values{"post_logout_redirect_uri": {"http://127.0.0.1:9/x"}}, http.StatusBadRequest},
		{"client_id not the hint's", url.Values{"id_token_hint": {hint}, "client_id": {"fixed"}}, http.StatusBadRequest},
		{"hint by a stranger's key", url.Values{"id_token_hint": {s.Forge(ForgeUnknownKey, s.IDTokenClaims("user-1", "zdgate", ""))}}, http.StatusBadRequest},
		{"unsigned hint", url.Values{"id_token_hint": {s.Forge(ForgeNone, s.IDTokenClaims("user-1", "zdgate", ""))}}, http.StatusBadRequest},
		{"logout token as hint", url.Values{"id_token_hint": {s.LogoutToken("user-1", "", nil)}}, http.StatusBadRequest},
		{"access token as hint", url.Values{"id_token_hint": {s.AccessToken("user-1", nil)}}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := noRedirect().Get(s.URL() + PathEndSession + "?" + tt.q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d (%s); want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == http.StatusOK && !strings.Contains(string(body), "signed out") {
				t.Errorf("page lacks 'signed out': %s", body)
			}
		})
	}
}

func TestBackchannelLogoutKnob(t *testing.T) {
	ok := newReceiver(t, http.StatusOK)
	failing := newReceiver(t, http.StatusInternalServerError)
	s := NewT(t, Options{Clients: []Client{
		{ID: "zdgate", Secret: "zdgate-secret", BackchannelLogoutURI: ok.URL},
		{ID: "broken", Secret: "x", BackchannelLogoutURI: failing.URL},
	}})
	p := newRP(t, s)
	tok, idt := p.login(t)
	sid := claimsOf(t, idt)["sid"].(string)

	if err := s.BackchannelLogout("user-1", sid); err == nil || !strings.Contains(err.Error(), `"broken"`) {
		t.Errorf("BackchannelLogout = %v; want the broken receiver's failure", err)
	}
	lt, err := p.verifier.VerifyLogout(p.ctx, <-ok.tokens)
	if err != nil || lt.SessionID != sid || lt.Subject != "user-1" {
		t.Errorf("logout token = %+v, %v", lt, err)
	}
	if raw := <-failing.tokens; raw == "" {
		t.Errorf("the broken client got no token")
	}
	_, err = p.refresh(tok)
	wantInvalidGrant(t, "refresh after BackchannelLogout", err)
}

func TestLogoutTokenKnob(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	if _, err := p.verifier.VerifyLogout(p.ctx, s.LogoutToken("user-1", "sid-1", nil)); err != nil {
		t.Fatalf("VerifyLogout(valid) = %v", err)
	}
	for name, mutate := range map[string]func(map[string]any){
		"nonce":     func(c map[string]any) { c["nonce"] = "n" },
		"no events": func(c map[string]any) { delete(c, "events") },
		"aud":       func(c map[string]any) { c["aud"] = "other" },
		"no jti":    func(c map[string]any) { delete(c, "jti") },
	} {
		if _, err := p.verifier.VerifyLogout(p.ctx, s.LogoutToken("user-1", "sid-1", mutate)); err == nil {
			t.Errorf("logout token with %s verified", name)
		}
	}
}
