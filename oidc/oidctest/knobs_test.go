package oidctest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestDeleteUserEndsEverything(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	tok, _ := p.login(t)

	s.DeleteUser("user-1")

	_, err := p.refresh(tok)
	wantInvalidGrant(t, "refresh of a deleted user", err)
	status, challenge, _ := userinfoStatus(t, s, tok.AccessToken)
	if status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) {
		t.Errorf("userinfo = %d %q; want 401 with an invalid_token challenge", status, challenge)
	}
	if _, err := p.provider.UserInfo(p.ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Errorf("go-oidc UserInfo of a deleted user succeeded")
	}
	for _, token := range []string{tok.AccessToken, tok.RefreshToken} {
		if in := introspect(t, s, token); in["active"] != false || len(in) != 1 {
			t.Errorf("introspection = %v; want exactly {active:false}", in)
		}
	}

	// Adding the user again does not resurrect the old tokens; a new login works.
	s.AddUser(User{Subject: "user-1", Email: "alice@example.com"})
	if status, _, _ := userinfoStatus(t, s, tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo with an old token after re-adding = %d; want 401", status)
	}
	p.login(t)
}

func TestUpdateUserShowsInRefreshUserinfoIntrospection(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	tok, _ := p.login(t)

	s.UpdateUser("user-1", func(u *User) {
		u.Name = "Alice Renamed"
		u.Email = "alice@new.example"
		u.EmailVerified = false
		u.Groups = []string{"staff", "admins"}
		u.Extra = map[string]any{"role": "lead", "sub": "not-allowed"}
	})

	tok2, err := p.refresh(tok)
	if err != nil {
		t.Fatal(err)
	}
	c := claimsOf(t, p.verify(t, tok2))
	if c["name"] != "Alice Renamed" || c["email"] != "alice@new.example" || c["email_verified"] != false || c["role"] != "lead" || c["sub"] != "user-1" {
		t.Errorf("refreshed id_token = %v", c)
	}
	if g, _ := c["groups"].([]any); len(g) != 2 {
		t.Errorf("refreshed groups = %v; want 2", c["groups"])
	}

	ui, err := p.provider.UserInfo(p.ctx, oauth2.StaticTokenSource(tok2))
	if err != nil {
		t.Fatal(err)
	}
	var uc map[string]any
	_ = ui.Claims(&uc)
	if uc["name"] != "Alice Renamed" || uc["role"] != "lead" || ui.Subject != "user-1" {
		t.Errorf("userinfo = %v", uc)
	}
	if in := introspect(t, s, tok2.AccessToken); in["name"] != "Alice Renamed" || in["email"] != "alice@new.example" {
		t.Errorf("introspection = %v", in)
	}
}

// kidOf reads the kid header of a JWT.
func kidOf(t *testing.T, raw string) string {
	t.Helper()
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	_ = json.Unmarshal(b, &h)
	return h.Kid
}

func jwksKids(t *testing.T, s *Server) []string {
	t.Helper()
	resp, err := noRedirect().Get(s.URL() + PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct{ Keys []struct{ Kid string } }
	_ = json.NewDecoder(resp.Body).Decode(&set)
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

func TestRotateKeys(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	tok1, _ := p.login(t)
	raw1 := tok1.Extra("id_token").(string)

	s.RotateKeys()
	tok2, _ := p.login(t) // go-oidc sees an unknown kid and refetches the JWKS
	raw2 := tok2.Extra("id_token").(string)
	if kidOf(t, raw1) == kidOf(t, raw2) {
		t.Fatalf("kid did not change after RotateKeys")
	}
	if got := s.Count("jwks"); got != 2 {
		t.Errorf("Count(jwks) = %d; want 2 (one refetch on the new kid)", got)
	}
	if kids := jwksKids(t, s); !slices.Equal(kids, []string{kidOf(t, raw2), kidOf(t, raw1)}) {
		t.Errorf("JWKS kids = %q; want new then previous", kids)
	}
	fresh := newRP(t, s)
	if _, err := fresh.verifier.Verify(fresh.ctx, raw1); err != nil {
		t.Errorf("token of the previous key during rollover: %v", err)
	}

	s.DropOldKeys()
	fresh = newRP(t, s)
	if _, err := fresh.verifier.Verify(fresh.ctx, raw1); err == nil {
		t.Errorf("token of a dropped key verified")
	}
	if _, err := fresh.verifier.Verify(fresh.ctx, raw2); err != nil {
		t.Errorf("token of the current key: %v", err)
	}

	s.RotateKeys()
	s.RotateKeys()
	if kids := jwksKids(t, s); len(kids) != 2 {
		t.Errorf("JWKS after two rotations has %d keys; want 2", len(kids))
	}
}

func TestSetDown(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	v := oauth2.GenerateVerifier()
	code := p.authorize(t, "s", oauth2.S256ChallengeOption(v))

	s.SetDown(true)
	if _, err := gooidc.NewProvider(p.ctx, s.URL()); err == nil {
		t.Errorf("NewProvider succeeded while down")
	}
	_, err := p.conf.Exchange(p.ctx, code, oauth2.VerifierOption(v))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("Exchange while down: %v; want a 503 RetrieveError", err)
	}
	for _, path := range []string{PathDiscovery, PathJWKS, PathAuthorize, PathUserinfo} {
		resp, err := noRedirect().Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s while down = %d; want 503", path, resp.StatusCode)
		}
	}

	s.SetDown(false)
	if _, err := p.conf.Exchange(p.ctx, code, oauth2.VerifierOption(v)); err != nil {
		t.Fatalf("Exchange after SetDown(false): %v", err)
	}
}

func TestSetDelay(t *testing.T) {
	s := NewT(t, Options{})
	s.SetDelay(10 * time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := gooidc.NewProvider(ctx, s.URL())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NewProvider with a 100ms budget = %v; want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout took %v", d)
	}

	// A POST endpoint gives up its wait too when the client does.
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	conf := oauth2.Config{ClientID: "zdgate", ClientSecret: "zdgate-secret", Endpoint: oauth2.Endpoint{TokenURL: s.URL() + PathToken}}
	if _, err := conf.Exchange(ctx, "code"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Exchange with a 100ms budget = %v; want DeadlineExceeded", err)
	}

	s.SetDelay(50 * time.Millisecond)
	start = time.Now()
	if _, err := gooidc.NewProvider(t.Context(), s.URL()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("discovery took %v; want at least the 50ms delay", d)
	}
	s.SetDelay(0)
}

func TestUserinfoSubjectOverride(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	tok, _ := p.login(t)
	s.SetUserinfoSubject("user-1", "user-2")
	ui, err := p.provider.UserInfo(p.ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != "user-2" {
		t.Fatalf("UserInfo = %v, %v; want sub user-2", ui, err)
	}
	s.SetUserinfoSubject("user-1", "")
	if ui, _ := p.provider.UserInfo(p.ctx, oauth2.StaticTokenSource(tok)); ui == nil || ui.Subject != "user-1" {
		t.Fatalf("UserInfo after reset = %v; want sub user-1", ui)
	}
}

func TestUserinfoMutate(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	tok, idt := p.login(t)
	s.SetUserinfo("user-1", func(c map[string]any) {
		c["email"] = "mallory@example.net"
		delete(c, "email_verified")
	})
	var ui map[string]any
	info, err := p.provider.UserInfo(p.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	info.Claims(&ui)
	if ui["email"] != "mallory@example.net" || ui["email_verified"] != nil {
		t.Fatalf("userinfo = %v; want the mutated email without email_verified", ui)
	}
	// The ID token still says what the user is.
	var c map[string]any
	if err := idt.Claims(&c); err != nil || c["email"] != "alice@example.com" || c["email_verified"] != true {
		t.Fatalf("ID token claims = %v; want them untouched", c)
	}
	s.SetUserinfo("user-1", nil)
	info, _ = p.provider.UserInfo(p.ctx, oauth2.StaticTokenSource(tok))
	if info == nil || info.Email != "alice@example.com" || !info.EmailVerified {
		t.Fatalf("userinfo after reset = %+v; want alice's verified email", info)
	}
}

func TestCounts(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	tok, _ := p.login(t)
	_, _ = p.provider.UserInfo(p.ctx, oauth2.StaticTokenSource(tok))
	introspect(t, s, tok.AccessToken)
	for name, want := range map[string]int{
		"discovery": 1, "jwks": 1, "authorize": 1, "token.code": 1, "token.refresh": 0, "userinfo": 1,
		"introspect": 1, "revoke": 0, "end_session": 0, "backchannel": 0, "no-such-thing": 0,
	} {
		if got := s.Count(name); got != want {
			t.Errorf("Count(%q) = %d; want %d", name, got, want)
		}
	}
	s.ResetCounts()
	if got := s.Count("token.code"); got != 0 {
		t.Errorf("Count after ResetCounts = %d; want 0", got)
	}
}

func TestRefreshesLogsHonouredGrantsOnly(t *testing.T) {
	clk := newClock()
	s := NewT(t, Options{Now: clk.Now})
	p := newRP(t, s)
	tok, idt := p.login(t)
	sid, _ := claimsOf(t, idt)["sid"].(string)
	if got := s.Refreshes(); len(got) != 0 {
		t.Fatalf("Refreshes() after a login = %v; want none", got)
	}
	clk.Advance(time.Minute)
	tok2, err := p.refresh(tok)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.refresh(tok) // the rotated token: refused, not logged
	wantInvalidGrant(t, "replayed refresh token", err)
	got := s.Refreshes()
	if len(got) != 1 || got[0].Subject != "user-1" || got[0].SID != sid || !got[0].At.Equal(clk.Now()) {
		t.Errorf("Refreshes() = %+v; want one for user-1 in session %q at %v", got, sid, clk.Now())
	}
	if n := s.Count("token.refresh"); n != 2 {
		t.Errorf("Count(token.refresh) = %d; want 2 (one honoured, one refused)", n)
	}
	s.ResetCounts()
	if _, err := p.refresh(tok2); err != nil {
		t.Fatal(err)
	}
	if got := s.Refreshes(); len(got) != 1 {
		t.Errorf("Refreshes() after ResetCounts and one refresh = %+v; want one", got)
	}
}

func TestDisable(t *testing.T) {
	s := NewT(t, Options{Disable: []string{"userinfo", "introspection", "end_session", "revocation"}})
	p := newRP(t, s)
	var doc map[string]any
	if err := p.provider.Claims(&doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"userinfo_endpoint", "introspection_endpoint", "end_session_endpoint", "revocation_endpoint"} {
		if _, ok := doc[name]; ok {
			t.Errorf("discovery has %s though disabled", name)
		}
	}
	tok, _ := p.login(t)
	if _, err := p.provider.UserInfo(p.ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Errorf("UserInfo succeeded though disabled")
	}
	for _, path := range []string{PathUserinfo, PathIntrospection, PathRevocation, PathEndSession} {
		status, _ := postClient(t, s, path, s.Client(), url.Values{"token": {tok.AccessToken}})
		if status != http.StatusNotFound {
			t.Errorf("POST %s = %d; want 404", path, status)
		}
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	for name, opts := range map[string]Options{
		"public address":   {Addr: "0.0.0.0:0"},
		"unknown disable":  {Disable: []string{"token"}},
		"duplicate client": {Clients: []Client{{ID: "a"}, {ID: "a"}}},
		"empty subject":    {Users: []User{{Email: "x@example.com"}}},
		"relative URI":     {Clients: []Client{{ID: "a", RedirectURIs: []string{"/cb"}}}},
		"negative TTL":     {IDTokenTTL: -time.Second},
	} {
		if s, err := Start(opts); err == nil {
			s.Close()
			t.Errorf("Start(%s) succeeded; want an error", name)
		}
	}
}

func TestAccessTokensExpireByNow(t *testing.T) {
	clk := newClock()
	s := NewT(t, Options{Now: clk.Now, AccessTokenTTL: time.Minute})
	p := newRP(t, s)
	tok, _ := p.login(t)
	if status, _, _ := userinfoStatus(t, s, tok.AccessToken); status != http.StatusOK {
		t.Fatalf("userinfo = %d; want 200", status)
	}
	clk.Advance(time.Minute)
	if status, _, _ := userinfoStatus(t, s, tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo of an expired token = %d; want 401", status)
	}
	if in := introspect(t, s, tok.AccessToken); in["active"] != false {
		t.Errorf("introspection of an expired token = %v; want inactive", in)
	}
	tok2, err := p.refresh(tok)
	if err != nil {
		t.Fatal(err)
	}
	p.verify(t, tok2) // the verifier runs on the same clock
	if status, _, _ := userinfoStatus(t, s, tok2.AccessToken); status != http.StatusOK {
		t.Errorf("userinfo of the refreshed token = %d; want 200", status)
	}
}

func TestRevocation(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	tok, _ := p.login(t)

	if status, _ := postClient(t, s, PathRevocation, Client{}, url.Values{"token": {tok.AccessToken}}); status != http.StatusUnauthorized {
		t.Errorf("revocation without client auth = %d; want 401", status)
	}
	if status, _ := postClient(t, s, PathRevocation, s.Client(), url.Values{"token": {"unknown"}}); status != http.StatusOK {
		t.Errorf("revocation of an unknown token = %d; want 200", status)
	}
	if status, _ := postClient(t, s, PathRevocation, s.Client(), url.Values{"token": {tok.AccessToken}}); status != http.StatusOK {
		t.Errorf("revocation = %d; want 200", status)
	}
	if status, _, _ := userinfoStatus(t, s, tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo of a revoked access token = %d; want 401", status)
	}
	tok2, err := p.refresh(tok) // revoking the access token leaves the refresh token
	if err != nil {
		t.Fatal(err)
	}

	postClient(t, s, PathRevocation, s.Client(), url.Values{"token": {tok2.RefreshToken}, "token_type_hint": {"refresh_token"}})
	_, err = p.refresh(tok2)
	wantInvalidGrant(t, "refresh of a revoked refresh token", err)
	if in := introspect(t, s, tok2.AccessToken); in["active"] != false {
		t.Errorf("access token of a revoked grant = %v; want inactive", in)
	}

	tok3, _ := p.login(t)
	s.RevokeToken(tok3.AccessToken)
	if status, _, _ := userinfoStatus(t, s, tok3.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo after RevokeToken = %d; want 401", status)
	}
}

func TestOpaqueAccessTokens(t *testing.T) {
	s := NewT(t, Options{OpaqueAccessTokens: true})
	p := newRP(t, s)
	tok, _ := p.login(t)
	if strings.Contains(tok.AccessToken, ".") {
		t.Fatalf("access token %q looks like a JWT", tok.AccessToken)
	}
	if status, _, _ := userinfoStatus(t, s, tok.AccessToken); status != http.StatusOK {
		t.Errorf("userinfo = %d; want 200", status)
	}
	if in := introspect(t, s, tok.AccessToken); in["active"] != true || in["sub"] != "user-1" {
		t.Errorf("introspection = %v", in)
	}
	expired := s.AccessToken("user-1", func(c map[string]any) { c["exp"] = s.now().Add(-time.Minute) })
	if in := introspect(t, s, expired); in["active"] != false {
		t.Errorf("introspection of an opaque token minted expired = %v; want inactive", in)
	}
}

func TestAccessTokenKnob(t *testing.T) {
	s := NewT(t, Options{AccessTokenAudiences: []string{"zendesk-mobile"}})
	p := newRP(t, s)
	mobile := p.provider.Verifier(&gooidc.Config{ClientID: "zendesk-mobile"})

	tok := s.AccessToken("user-1", nil)
	if _, err := mobile.Verify(p.ctx, tok); err != nil {
		t.Errorf("access token for the extra audience: %v", err)
	}
	if in := introspect(t, s, tok); in["active"] != true || !slices.Contains(in["aud"].([]any), any("zendesk-mobile")) {
		t.Errorf("introspection = %v", in)
	}
	if status, _, body := userinfoStatus(t, s, tok); status != http.StatusOK || body["sub"] != "user-1" {
		t.Errorf("userinfo = %d %v", status, body)
	}

	expired := s.AccessToken("user-1", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })
	var te *gooidc.TokenExpiredError
	if _, err := p.verifier.Verify(p.ctx, expired); !errors.As(err, &te) {
		t.Errorf("Verify(expired) = %v; want TokenExpiredError", err)
	}
	if in := introspect(t, s, expired); in["active"] != false {
		t.Errorf("introspection of an expired token = %v", in)
	}
	if status, _, _ := userinfoStatus(t, s, expired); status != http.StatusUnauthorized {
		t.Errorf("userinfo of an expired token = %d; want 401", status)
	}

	other := s.AccessToken("user-1", func(c map[string]any) { c["aud"] = []string{"someone-else"} })
	if _, err := p.verifier.Verify(p.ctx, other); err == nil {
		t.Errorf("Verify of a token for another audience succeeded")
	}
}

func TestLogValueRedacts(t *testing.T) {
	var b strings.Builder
	log := slog.New(slog.NewTextHandler(&b, nil))
	log.Info("config", "client", Client{ID: "zdgate", Secret: "s3cret-value"}, "user", User{Subject: "u", Password: "pa55word"})
	if out := b.String(); strings.Contains(out, "s3cret-value") || strings.Contains(out, "pa55word") || !strings.Contains(out, "zdgate") {
		t.Errorf("log = %s; want the client id and no secrets", out)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	tok, _ := p.login(t)

	// Racing refreshes of one rotating refresh token: exactly one wins, as zdgate's singleflight
	// assumes.
	const n = 8
	var wg sync.WaitGroup
	var wins atomic.Int32
	for range n {
		wg.Go(func() {
			if _, err := p.refresh(tok); err == nil {
				wins.Add(1)
			}
		})
	}
	// Meanwhile, everything else at once.
	for i := range n {
		wg.Go(func() {
			at := s.AccessToken("user-1", nil)
			req, _ := http.NewRequestWithContext(p.ctx, http.MethodGet, s.URL()+PathUserinfo, nil)
			req.Header.Set("Authorization", "Bearer "+at)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			if resp, err := http.DefaultClient.Get(s.URL() + PathJWKS); err == nil {
				resp.Body.Close()
			}
			s.UpdateUser("user-1", func(u *User) { u.Name = fmt.Sprint("Alice ", i) })
			s.AddUser(User{Subject: fmt.Sprint("extra-", i)})
			s.DeleteUser(fmt.Sprint("extra-", i))
			_ = s.Count("userinfo")
		})
	}
	wg.Go(s.RotateKeys)
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d of %d concurrent refreshes of one token succeeded; want 1", wins.Load(), n)
	}
	if got := s.Count("userinfo"); got != n {
		t.Errorf("Count(userinfo) = %d; want %d", got, n)
	}
}

func TestHoldRefreshesWaitsUntilReleased(t *testing.T) {
	s := NewT(t, Options{RefreshReuseRevokesGrant: true})
	p := newRP(t, s)
	tok, _ := p.login(t)

	arrived, release := s.HoldRefreshes()
	defer release()
	// A client that gives up while held spends nothing: the same refresh token works afterwards,
	// although rotation with reuse detection would revoke the grant for a second use.
	ctx, cancel := context.WithCancel(p.ctx)
	gaveUp := make(chan error, 1)
	go func() {
		old := *tok
		old.Expiry, old.AccessToken = time.Unix(1, 0), ""
		_, err := p.conf.TokenSource(ctx, &old).Token()
		gaveUp <- err
	}()
	<-arrived
	if n := len(s.Refreshes()); n != 0 {
		t.Fatalf("Refreshes() while held = %d; want none honoured yet", n)
	}
	cancel()
	if err := <-gaveUp; err == nil {
		t.Fatal("refresh whose client gave up while held succeeded")
	}

	answered := make(chan error, 1)
	go func() {
		_, err := p.refresh(tok)
		answered <- err
	}()
	<-arrived
	select {
	case err := <-answered:
		t.Fatalf("held refresh answered before release: %v", err)
	default:
	}
	release()
	if err := <-answered; err != nil {
		t.Fatalf("refresh after release = %v; want the unspent token honoured", err)
	}
	if n := len(s.Refreshes()); n != 1 {
		t.Errorf("Refreshes() = %d; want 1", n)
	}
}
