package proxy

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestSharedCachesNeverKeepAProtectedPage: a CDN or caching ingress in front of zdgate that stores
// a protected page (the app said "public, max-age", or nothing but Last-Modified, which allows
// heuristic caching) serves it to the next visitor without asking zdgate: no login at all. Every
// answer to an authenticated request is therefore private (browsers may still cache it); public
// paths keep the app's own Cache-Control.
func TestSharedCachesNeverKeepAProtectedPage(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/public/logo", "/app/public":
			w.Header().Set("Cache-Control", "public, max-age=600, s-maxage=3600")
		case "/app/heuristic":
			w.Header().Set("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
		case "/app/nostore":
			w.Header().Set("Cache-Control", "no-store")
		case "/app/field":
			w.Header().Set("Cache-Control", `private="Set-Cookie", max-age=60`)
		}
		w.Write([]byte("page"))
	})
	st := newStack(t, stackOpts{
		upstream: app,
		mutate:   func(c *Config) { c.SkipAuth = []*regexp.Regexp{regexp.MustCompile(`^/public/`)} },
	})
	st.login(st.client, "/")
	for _, path := range []string{"/app/public", "/app/heuristic", "/app/nostore", "/app/field"} {
		res, _ := st.do(st.client, "GET", path, nil)
		cc := strings.ToLower(strings.Join(res.Header.Values("Cache-Control"), ","))
		if res.StatusCode != http.StatusOK || !(strings.Contains(cc, "no-store") || hasDirective(cc, "private")) ||
			hasDirective(cc, "public") || strings.Contains(cc, "s-maxage") {
			t.Errorf("GET %s (logged in) = %d, Cache-Control %q; want private or no-store, never public or s-maxage", path, res.StatusCode, cc)
		}
	}
	res, _ := st.do(newClient(), "GET", "/public/logo", nil)
	if got := res.Header.Get("Cache-Control"); got != "public, max-age=600, s-maxage=3600" {
		t.Errorf("public path Cache-Control = %q; want the app's own", got)
	}
}

// hasDirective reports whether a Cache-Control value holds the bare directive d (not d="fields").
func hasDirective(cc, d string) bool {
	for _, part := range strings.Split(cc, ",") {
		if strings.TrimSpace(part) == d {
			return true
		}
	}
	return false
}

func TestKeepPrivate(t *testing.T) {
	for in, want := range map[string]string{
		"":                                   "private",
		"public, max-age=600, s-maxage=3600": "max-age=600, private",
		`private="Set-Cookie, X-Foo", max-age=60`: "max-age=60, private",
		`no-cache="a,b", Public`:                  `no-cache="a,b", private`,
		"no-store":                                "no-store",
		"max-age=0, No-Store":                     "max-age=0, No-Store",
	} {
		h := http.Header{}
		if in != "" {
			h.Set("Cache-Control", in)
		}
		keepPrivate(h)
		if got := strings.Join(h.Values("Cache-Control"), ", "); got != want {
			t.Errorf("keepPrivate(%q) = %q; want %q", in, got, want)
		}
	}
}
