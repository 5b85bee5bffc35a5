//go:build unix

package proxy

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// pathParamAttacks are request targets that a servlet container (Tomcat) serves as /admin, while a
// rule that reads the path as text sees something under /public/ or ending in .css.
var pathParamAttacks = []string{
	"/public/..;/admin",
	"/public/..;x=y/admin",
	"/public/%2e%2e;/admin",
	"/public/%2E%2E%3B/admin",
	"/public/..%3b/admin",
	"/public/.;/../admin",
	"/public/%2e;/../admin",
	"/admin;x.css",
	"/admin;/x.css",
	"/admin%3bx.css",
}

// TestPathParametersAgainstTomcat is issue 10 item 2 against a real servlet container: with
// --skip-auth-path ^/public/ and \.css$, no path-parameter trick reaches Tomcat's /admin
// anonymously, through the proxy or through forward-auth (X-Forwarded-Uri, X-Original-URI,
// X-Original-URL, and Envoy's /oauth2/auth/<path>).
func TestPathParametersAgainstTomcat(t *testing.T) {
	tomcat := startTomcat(t)
	// Control: Tomcat really serves /admin for these paths, so a proxy that forwards them as public
	// has a hole.
	if code, body := rawGet(t, tomcat, "/public/..;/admin", nil); code != 200 || !strings.HasPrefix(body, "admin ") {
		t.Fatalf("control: Tomcat /public/..;/admin = %d %q; want its /admin servlet (else this test proves nothing)", code, body)
	}
	if code, body := rawGet(t, tomcat, "/admin;x.css", nil); code != 200 || !strings.HasPrefix(body, "admin ") {
		t.Fatalf("control: Tomcat /admin;x.css = %d %q; want its /admin servlet", code, body)
	}

	st := newStack(t, stackOpts{upstreamURL: tomcat, mutate: func(c *Config) {
		c.SkipAuth = []*regexp.Regexp{regexp.MustCompile(`^/public/`), regexp.MustCompile(`\.css$`)}
		c.TrustedProxies = mustPrefixes("127.0.0.1/32")
	}})
	// Public paths stay public.
	if code, body := rawGet(t, st.front.URL, "/public/page", nil); code != 200 || !strings.HasPrefix(body, "public user= ") {
		t.Fatalf("/public/page = %d %q; want Tomcat's public servlet, anonymously", code, body)
	}

	for _, target := range pathParamAttacks {
		t.Run("proxy "+target, func(t *testing.T) {
			code, body := rawGet(t, st.front.URL, target, map[string]string{"Accept": "text/html"})
			if strings.HasPrefix(body, "admin ") {
				t.Fatalf("GET %s reached Tomcat's /admin anonymously: %d %q", target, code, body)
			}
			if code != http.StatusBadRequest && code != http.StatusFound {
				t.Fatalf("GET %s = %d; want 400 (dot-segment with parameters) or 302 to login (protected)", target, code)
			}
		})
		for _, h := range []string{"X-Forwarded-Uri", "X-Original-URI", "X-Original-URL"} {
			t.Run("forward-auth "+h+" "+target, func(t *testing.T) {
				v := target
				if h == "X-Original-URL" {
					v = "https://app.example.com" + target
				}
				code, _ := rawGet(t, st.front.URL, "/oauth2/auth", map[string]string{h: v})
				if code == http.StatusAccepted {
					t.Fatalf("forward-auth %s: %s = 202; want a refusal", h, v)
				}
			})
		}
		t.Run("forward-auth envoy "+target, func(t *testing.T) {
			if code, _ := rawGet(t, st.front.URL, "/oauth2/auth"+target, nil); code == http.StatusAccepted {
				t.Fatalf("forward-auth /oauth2/auth%s = 202; want a refusal", target)
			}
		})
	}

	// A logged-in user still reaches a servlet app that uses ";jsessionid=" path parameters.
	st.login(st.client, "/")
	res, body := st.do(st.client, "GET", "/admin;jsessionid=ABC", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(body, "admin user=user-1 ") {
		t.Fatalf("logged-in /admin;jsessionid=ABC = %d %q; want Tomcat's admin servlet for user-1", res.StatusCode, body)
	}
}
