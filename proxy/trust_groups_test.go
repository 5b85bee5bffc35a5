package proxy

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

// TestGroupsCannotForgeGroups: an IdP group named "staff,admins" (many IdPs let users create or name
// groups) must stay one element of X-Forwarded-Groups and X-Auth-Request-Groups, not become the
// group "admins" for an app that splits on commas. Percent-encoding keeps every name intact.
func TestGroupsCannotForgeGroups(t *testing.T) {
	groups := []string{"staff,admins", "100%", "ops", "%2C"}
	st := newStack(t, stackOpts{
		idp:    oidctest.Options{Users: []oidctest.User{{Subject: "user-1", Email: "a@example.com", EmailVerified: true, Groups: groups}}},
		mutate: func(c *Config) { c.TrustedProxies = mustPrefixes("127.0.0.1/32") },
	})
	st.login(st.client, "/")
	if res, _ := st.do(st.client, "GET", "/app", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("proxied = %d", res.StatusCode)
	}
	upstream := st.nextSeen().Header.Values("X-Forwarded-Groups")
	res, _ := st.do(st.client, "GET", "/oauth2/auth", map[string]string{"X-Forwarded-Uri": "/app"})
	forward := res.Header.Values("X-Auth-Request-Groups")
	for name, got := range map[string][]string{"X-Forwarded-Groups": upstream, "X-Auth-Request-Groups": forward} {
		if len(got) != 1 {
			t.Fatalf("%s = %q; want one header line", name, got)
		}
		parts := strings.Split(got[0], ",")
		var decoded []string
		for _, p := range parts {
			d, err := url.PathUnescape(p)
			if err != nil {
				t.Fatalf("%s element %q does not decode: %v", name, p, err)
			}
			decoded = append(decoded, d)
		}
		if slices.Contains(parts, "admins") || !slices.Equal(decoded, groups) {
			t.Errorf("%s = %q (decoded %q); want %d elements that decode to %q", name, got[0], decoded, len(groups), groups)
		}
	}
}
