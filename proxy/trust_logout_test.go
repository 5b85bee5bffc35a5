package proxy

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

// hydraLogoutToken is a logout token shaped exactly as Ory Hydra v2.3.0 sends it (see
// shared/notes/idp-hydra.md): typ "JWT", aud a list, iss, iat, jti, sid and the event, and no exp
// and no sub. mutate may change the claims.
func hydraLogoutToken(st *stack, sid string, mutate func(map[string]any)) string {
	c := map[string]any{
		"iss":    st.idp.URL(),
		"aud":    []any{st.idp.Client().ID},
		"iat":    time.Now().Unix(),
		"jti":    "hydra-" + sid + "-" + time.Now().Format("150405.000000000"),
		"sid":    sid,
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	if mutate != nil {
		mutate(c)
	}
	return st.idp.Forge(oidctest.ForgeRS256, c)
}

// postLogoutToken POSTs tok to the back-channel logout route, as an IdP does, and returns the status.
func (st *stack) postLogoutToken(tok string) int {
	st.t.Helper()
	res, err := http.PostForm(st.front.URL+"/oauth2/backchannel_logout", url.Values{"logout_token": {tok}})
	if err != nil {
		st.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestBackchannelLogoutHydraShaped is issue 10 item 6: Hydra's logout token (no exp) ends the
// session; an exp, when present, must be valid; every refusal is logged at WARN with its reason.
func TestBackchannelLogoutHydraShaped(t *testing.T) {
	logs := &logSink{}
	st := newStack(t, stackOpts{mutate: func(c *Config) { c.Logger = logs.logger() }})
	st.login(st.client, "/")
	s, err := st.sessionOf(st.client)
	if err != nil || s.SID == "" {
		t.Fatalf("session %v, %v; want one with a sid", s, err)
	}
	post := st.postLogoutToken
	refused := []struct {
		name, reason string
		mutate       func(map[string]any)
	}{
		{"no exp, iat an hour old", "iat is", func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }},
		{"no exp, iat in the future", "iat is", func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }},
		{"no exp, no iat", "has no iat", func(c map[string]any) { delete(c, "iat") }},
		{"exp passed", "expired", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }},
		{"exp not a number", "exp:", func(c map[string]any) { c["exp"] = "tomorrow" }},
		{"event not an object", "event", func(c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": true}
		}},
		{"aud of another client", "aud", func(c map[string]any) { c["aud"] = []any{"other"} }},
	}
	for _, r := range refused {
		if code := post(hydraLogoutToken(st, s.SID, r.mutate)); code != http.StatusBadRequest {
			t.Errorf("%s: %d; want 400", r.name, code)
		}
		if got := logs.find("WARN", "request refused", "route=/oauth2/backchannel_logout", "logout token", r.reason); len(got) == 0 {
			all := logs.find("backchannel_logout: ")
			t.Errorf("%s: no WARN record naming %q; last: %q", r.name, r.reason, all[len(all)-1])
		}
	}
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("refused logout tokens ended the session: %d", res.StatusCode)
	}
	// An exp in the future is fine, and so is none at all: Hydra's token ends the session.
	if code := post(hydraLogoutToken(st, "another-sid", func(c map[string]any) { c["exp"] = time.Now().Add(time.Minute).Unix() })); code != http.StatusOK {
		t.Fatalf("logout token with a valid exp = %d; want 200", code)
	}
	tok := hydraLogoutToken(st, s.SID, nil)
	if code := post(tok); code != http.StatusOK {
		t.Fatalf("Hydra-shaped logout token = %d; want 200", code)
	}
	if code := post(tok); code != http.StatusBadRequest {
		t.Fatalf("replayed Hydra-shaped logout token = %d; want 400", code)
	}
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token after Hydra's back-channel logout = %d; want 401", res.StatusCode)
	}
}
