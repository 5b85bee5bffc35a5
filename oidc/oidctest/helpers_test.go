package oidctest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// callback is a redirect_uri that is never contacted: the tests stop at the 302.
const callback = "http://127.0.0.1:1/callback"

// rp is a relying party as zdgate builds one: go-oidc for discovery and verification, x/oauth2 for
// the code and refresh grants.
type rp struct {
	s        *Server
	ctx      context.Context
	provider *gooidc.Provider
	verifier *gooidc.IDTokenVerifier
	conf     oauth2.Config
}

func newRP(t *testing.T, s *Server, scopes ...string) *rp {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	p, err := gooidc.NewProvider(ctx, s.URL())
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	if len(scopes) == 0 {
		scopes = []string{gooidc.ScopeOpenID, "email", "profile", gooidc.ScopeOfflineAccess}
	}
	c := s.Client()
	return &rp{
		s: s, ctx: ctx, provider: p,
		verifier: p.Verifier(&gooidc.Config{ClientID: c.ID, Now: s.now}),
		conf: oauth2.Config{
			ClientID: c.ID, ClientSecret: c.Secret, Endpoint: p.Endpoint(),
			RedirectURL: callback, Scopes: scopes,
		},
	}
}

// noRedirect is an HTTP client that stops at the first answer, as a test of a redirect needs.
func noRedirect() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// authorize runs /authorize (auto-login) and returns the code from the redirect.
func (p *rp) authorize(t *testing.T, state string, opts ...oauth2.AuthCodeOption) string {
	t.Helper()
	resp, err := noRedirect().Get(p.conf.AuthCodeURL(state, opts...))
	if err != nil {
		t.Fatalf("GET authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize status = %d; want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("Location: %v", err)
	}
	if got := loc.Query().Get("state"); got != state {
		t.Fatalf("state = %q; want %q", got, state)
	}
	if loc.Query().Get("code") == "" {
		t.Fatalf("no code in %s", loc)
	}
	return loc.Query().Get("code")
}

// login does the whole code flow with PKCE and a nonce and verifies the ID token.
func (p *rp) login(t *testing.T, opts ...oauth2.AuthCodeOption) (*oauth2.Token, *gooidc.IDToken) {
	t.Helper()
	verifier, nonce := oauth2.GenerateVerifier(), "nonce-"+randomHex(4)
	opts = append(opts, oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce))
	code := p.authorize(t, "state-1", opts...)
	tok, err := p.conf.Exchange(p.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	idt := p.verify(t, tok)
	if idt.Nonce != nonce {
		t.Fatalf("nonce = %q; want %q", idt.Nonce, nonce)
	}
	return tok, idt
}

func (p *rp) verify(t *testing.T, tok *oauth2.Token) *gooidc.IDToken {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.verifier.Verify(p.ctx, raw)
	if err != nil {
		t.Fatalf("Verify(id_token): %v", err)
	}
	return idt
}

// refresh forces a refresh-token grant.
func (p *rp) refresh(tok *oauth2.Token) (*oauth2.Token, error) {
	old := *tok
	old.Expiry = time.Unix(1, 0)
	old.AccessToken = ""
	return p.conf.TokenSource(p.ctx, &old).Token()
}

func claimsOf(t *testing.T, idt *gooidc.IDToken) map[string]any {
	t.Helper()
	var c map[string]any
	if err := idt.Claims(&c); err != nil {
		t.Fatalf("Claims: %v", err)
	}
	return c
}

func wantInvalidGrant(t *testing.T, what string, err error) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("%s: err = %v; want *oauth2.RetrieveError", what, err)
	}
	if re.ErrorCode != "invalid_grant" || re.Response.StatusCode != http.StatusBadRequest {
		t.Fatalf("%s: error = %q status %d; want invalid_grant 400", what, re.ErrorCode, re.Response.StatusCode)
	}
}

// userinfoStatus calls userinfo by hand and returns the status, the WWW-Authenticate header and the
// claims.
func userinfoStatus(t *testing.T, s *Server, accessToken string) (int, string, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+PathUserinfo, nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := noRedirect().Do(req)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body
}

// postClient POSTs a form to path with client_secret_basic (c may be zero for none) and decodes the
// JSON answer.
func postClient(t *testing.T, s *Server, path string, c Client, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.ID != "" {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	resp, err := noRedirect().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func introspect(t *testing.T, s *Server, token string) map[string]any {
	t.Helper()
	status, body := postClient(t, s, PathIntrospection, s.Client(), url.Values{"token": {token}})
	if status != http.StatusOK {
		t.Fatalf("introspect status = %d; want 200", status)
	}
	return body
}

// clock is a settable Options.Now, so expiry is tested without sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
