package proxy

import (
	"net/http"
	"testing"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/tokens"
)

// emailsSeen is what each consumer of the identity is told about the user's email after a login:
// the Messaging JWT, the upstream's X-Forwarded-Email, forward-auth's X-Auth-Request-Email, and
// whether Help Center SSO (which needs a verified email) mints at all.
type emailsSeen struct {
	token, upstream, forwardAuth string
	ssoStatus                    int
}

func seenEmails(t *testing.T, st *stack) emailsSeen {
	t.Helper()
	var e emailsSeen
	res, body := st.do(st.client, "GET", "/zendesk/token", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("token = %d %s", res.StatusCode, body)
	}
	e.token, _ = verifyMessaging(t, jsonBody(t, body)["jwt"].(string), st.clock.Now())["email"].(string)
	if res, _ := st.do(st.client, "GET", "/app", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("proxied request = %d", res.StatusCode)
	}
	e.upstream = st.nextSeen().Header.Get("X-Forwarded-Email")
	res, _ = st.do(st.client, "GET", "/oauth2/auth", map[string]string{"X-Forwarded-Uri": "/app"})
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("forward-auth = %d", res.StatusCode)
	}
	e.forwardAuth = res.Header.Get("X-Auth-Request-Email")
	res, _ = st.do(st.client, "GET", "/zendesk/sso", nil)
	e.ssoStatus = res.StatusCode
	return e
}

// TestEmailAndVerifiedFromOneDocument is the Zendesk account takeover of issue 10 item 3: the ID
// token vouches for alice@example.com, userinfo names another address and says nothing about it.
// That address must not reach any token or header as verified.
func TestEmailAndVerifiedFromOneDocument(t *testing.T) {
	const victim = "ceo@victim.example"
	cases := []struct {
		name     string
		userinfo func(map[string]any)
		claim    string // --email-verified-claim
		extra    map[string]any
		want     string // the email every consumer may see ("" = none)
	}{
		{"userinfo swaps the email, no flag", func(c map[string]any) { c["email"] = victim; delete(c, "email_verified") }, "", nil, ""},
		{"userinfo swaps the email, flag false", func(c map[string]any) { c["email"] = victim; c["email_verified"] = false }, "", nil, ""},
		{"userinfo swaps the email, flag true", func(c map[string]any) { c["email"] = victim; c["email_verified"] = true }, "", nil, victim},
		{"userinfo repeats the email without a flag", func(c map[string]any) { delete(c, "email_verified") }, "", nil, "alice@example.com"},
		{"userinfo drops the email", func(c map[string]any) { delete(c, "email"); c["email_verified"] = true }, "", nil, "alice@example.com"},
		{"userinfo flag as the string true", func(c map[string]any) { c["email_verified"] = "true" }, "", nil, "alice@example.com"},
		{"userinfo flag as the string True", func(c map[string]any) { c["email_verified"] = "True" }, "", nil, ""},
		// Entra ID: no email_verified anywhere; xms_edov in the ID token only.
		{"xms_edov, userinfo repeats the email", func(c map[string]any) { delete(c, "email_verified"); delete(c, "xms_edov") }, "xms_edov",
			map[string]any{"xms_edov": true}, "alice@example.com"},
		{"xms_edov, userinfo swaps the email", func(c map[string]any) { c["email"] = victim; delete(c, "email_verified"); delete(c, "xms_edov") }, "xms_edov",
			map[string]any{"xms_edov": true}, ""},
		{"xms_edov false, email_verified true is not read", func(c map[string]any) {}, "xms_edov", map[string]any{"xms_edov": false}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newStack(t, stackOpts{
				idp: oidctest.Options{Users: []oidctest.User{{Subject: "user-1", Email: "alice@example.com", EmailVerified: true, Name: "Alice", Extra: c.extra}}},
				mutate: func(cfg *Config) {
					cfg.TrustedProxies = mustPrefixes("127.0.0.1/32")
				},
				oidc: func(oc *oidc.Config) { oc.EmailVerifiedClaim = c.claim },
			})
			st.idp.SetUserinfo("user-1", c.userinfo)
			st.login(st.client, "/")
			got := seenEmails(t, st)
			wantSSO := http.StatusOK
			if c.want == "" {
				wantSSO = http.StatusForbidden
			}
			if got.token != c.want || got.upstream != c.want || got.forwardAuth != c.want || got.ssoStatus != wantSSO {
				t.Fatalf("seen = %+v; want email %q everywhere and SSO %d", got, c.want, wantSSO)
			}
		})
	}
}

// TestEmailVerifiedRuleIsOne: oidc and tokens read an email verification flag by the same rule.
func TestEmailVerifiedRuleIsOne(t *testing.T) {
	for _, v := range []any{true, false, "true", "True", "TRUE", "1", "yes", "false", "", 1.0, 0.0, nil, []any{true}, map[string]any{}} {
		if a, b := oidc.Verified(v), tokens.Verified(v); a != b {
			t.Errorf("oidc.Verified(%#v) = %v but tokens.Verified = %v", v, a, b)
		}
	}
	if !oidc.Verified("true") || oidc.Verified("True") || !oidc.Verified(true) {
		t.Error(`the rule is: JSON true or the exact string "true"`)
	}
}
