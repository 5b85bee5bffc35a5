package proxy

import (
	"net/http"
	"regexp"
	"testing"
)

// TestPathOverrideHeadersNeverReachTheApp: frameworks that route on a header instead of the
// request line (Symfony and Zend's X-Original-URL and X-Rewrite-URL, IIS URL Rewrite's
// X-Original-URL, apps reading X-Forwarded-Uri or X-Original-URI behind nginx) would serve /admin
// for a request zdgate judged as the public /public/x. The app gets none of them from a client.
func TestPathOverrideHeadersNeverReachTheApp(t *testing.T) {
	st := newStack(t, stackOpts{mutate: func(c *Config) { c.SkipAuth = []*regexp.Regexp{regexp.MustCompile(`^/public/`)} }})
	override := []string{"X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Forwarded-Uri", "X_Original_URL", "X-Forwarded-Path", "X-Forwarded-Prefix", "X-Envoy-Original-Path"}
	hdr := map[string]string{}
	for _, h := range override {
		hdr[h] = "/admin"
	}
	res, body := st.do(newClient(), "GET", "/public/x", hdr)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("public path = %d %s", res.StatusCode, body)
	}
	seen := st.nextSeen().Header
	for name := range seen {
		for _, h := range override {
			if foldHeader(name) == foldHeader(h) {
				t.Errorf("the app got %s: %q from an untrusted client", name, seen[name])
			}
		}
	}
	trusted := newStack(t, stackOpts{mutate: func(c *Config) {
		c.SkipAuth = []*regexp.Regexp{regexp.MustCompile(`^/public/`)}
		c.TrustedProxies = mustPrefixes("127.0.0.1/32")
	}})
	trusted.do(newClient(), "GET", "/public/x", hdr)
	seen = trusted.nextSeen().Header
	if got := seen.Get("X-Forwarded-Prefix"); got != "/admin" {
		t.Errorf("X-Forwarded-Prefix from a trusted proxy = %q; want it kept", got)
	}
	if got := seen.Get("X-Original-URL"); got != "" {
		t.Errorf("X-Original-URL from a trusted proxy = %q; want it deleted", got)
	}
}
