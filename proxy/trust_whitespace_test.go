package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

// TestIdentityValuesSurviveTransit: HTTP trims white space at both ends of a header value (Go's
// writer does, and every parser does), and Go's server turns CR and LF in a response header into
// spaces. So a user named "admin " or "admin\n" at the IdP, a different account from "admin",
// would arrive at the app (or at nginx, through forward-auth) as "admin". No identity value may
// change on the way: each one arrives exactly as the IdP said, or the request is refused.
func TestIdentityValuesSurviveTransit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		user    oidctest.User
		refused bool // 403 claims_rejected, upstream and forward-auth; else proxied, groups encoded
	}{
		{"username with a trailing space", oidctest.User{Subject: "user-1", PreferredUsername: "admin "}, true},
		{"username with a leading tab", oidctest.User{Subject: "user-1", PreferredUsername: "\tadmin"}, true},
		{"username with a newline", oidctest.User{Subject: "user-1", PreferredUsername: "admin\n"}, true},
		{"username with CRLF and a header", oidctest.User{Subject: "user-1", PreferredUsername: "eve\r\nX-Forwarded-User: admin"}, true},
		{"subject with a trailing space", oidctest.User{Subject: "admin "}, true},
		{"group with a trailing space", oidctest.User{Subject: "user-1", Groups: []string{"admins "}}, false},
		{"group with a leading space", oidctest.User{Subject: "user-1", Groups: []string{"staff", " admins"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStack(t, stackOpts{
				idp:    oidctest.Options{Users: []oidctest.User{tc.user}},
				mutate: func(c *Config) { c.TrustedProxies = mustPrefixes("127.0.0.1/32") },
			})
			st.login(st.client, "/")
			check := func(where string, h http.Header, prefix string) {
				t.Helper()
				for name, want := range map[string]string{"User": tc.user.Subject, "Preferred-Username": tc.user.PreferredUsername} {
					for _, got := range h.Values(prefix + name) {
						if got != want {
							t.Errorf("%s %s%s = %q; the IdP said %q", where, prefix, name, got, want)
						}
					}
				}
				for _, line := range h.Values(prefix + "Groups") {
					for _, g := range strings.Split(line, ",") {
						if strings.TrimSpace(g) == "admins" {
							t.Errorf("%s %sGroups = %q: holds the group admins, which the user is not in", where, prefix, line)
						}
					}
				}
			}
			res, body := st.do(st.client, "GET", "/app", nil)
			switch {
			case tc.refused && (res.StatusCode != http.StatusForbidden || !strings.Contains(body, "claims_rejected")):
				t.Errorf("upstream: %d %s; want 403 claims_rejected", res.StatusCode, body)
			case !tc.refused && res.StatusCode != http.StatusOK:
				t.Errorf("upstream: %d %s; want 200", res.StatusCode, body)
			case res.StatusCode == http.StatusOK:
				check("upstream", st.nextSeen().Header, "X-Forwarded-")
			}
			res, body = st.do(st.client, "GET", "/oauth2/auth", map[string]string{"X-Forwarded-Uri": "/app"})
			switch {
			case tc.refused && res.StatusCode != http.StatusForbidden:
				t.Errorf("forward-auth: %d %s; want 403", res.StatusCode, body)
			case !tc.refused && res.StatusCode != http.StatusAccepted:
				t.Errorf("forward-auth: %d %s; want 202", res.StatusCode, body)
			case res.StatusCode == http.StatusAccepted:
				check("forward-auth", res.Header, "X-Auth-Request-")
			}
		})
	}
}
