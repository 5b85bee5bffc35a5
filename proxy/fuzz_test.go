package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c#d", "//evil", "/\\evil", "/\t/evil", "https:evil", "javascript:alert(1)",
		"https://site@evil.example", "https://app.example.com/x", "https://evilexample.com", "/%2F%2Fevil", "/.//evil", "\x00/"} {
		f.Add(s)
	}
	p := &Proxy{cfg: Config{PublicURL: mustURL("https://help.example.com"), AllowedRedirectDomains: []string{".example.com"}}}
	f.Fuzz(func(t *testing.T, rd string) {
		got := p.safeRedirect(rd)
		if got == "/" {
			return
		}
		if strings.HasPrefix(got, "/") {
			if len(got) > 1 && (got[1] == '/' || got[1] == '\\') {
				t.Fatalf("safeRedirect(%q) = %q: protocol-relative", rd, got)
			}
			u, err := url.Parse(got)
			if err != nil || u.Host != "" || u.Scheme != "" {
				t.Fatalf("safeRedirect(%q) = %q: leaves the site", rd, got)
			}
		} else {
			u, err := url.Parse(got)
			if err != nil || u.Scheme != "https" || u.User != nil {
				t.Fatalf("safeRedirect(%q) = %q", rd, got)
			}
			if !plainHost(u.Host) {
				t.Fatalf("safeRedirect(%q) = %q: host %q is not plain ASCII", rd, got, u.Host)
			}
			h := canonicalHost(u.Hostname())
			if h != "help.example.com" && h != "example.com" && !strings.HasSuffix(h, ".example.com") {
				t.Fatalf("safeRedirect(%q) = %q: foreign host %q", rd, got, h)
			}
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; c <= 0x20 || c == 0x7f || c == '\\' {
				t.Fatalf("safeRedirect(%q) = %q: contains %q", rd, got, c)
			}
		}
	})
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/a/%2e%2e/b", "//a//b/", "/a%2fb", "/%00", "/a/./b/.", "\\a\\..\\b", "/a/b/..", "/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n, err := normalizePath(p)
		if err != nil {
			return
		}
		if !strings.HasPrefix(n, "/") || strings.Contains(n, "//") || strings.Contains(n, "\\") {
			t.Fatalf("normalizePath(%q) = %q", p, n)
		}
		for _, seg := range strings.Split(n, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("normalizePath(%q) = %q keeps a dot-segment", p, n)
			}
		}
		// Idempotent once re-escaped, as the upstream would receive it.
		again, err := normalizePath((&url.URL{Path: n}).EscapedPath())
		if err != nil || again != n {
			t.Fatalf("normalizePath not stable: %q -> %q -> %q (%v)", p, n, again, err)
		}
	})
}

func FuzzStripIdentity(f *testing.F) {
	for _, s := range []string{"X-Forwarded-User", "x_forwarded_email", "REMOTE_USER", "X-Auth-Request-Groups", "Remote-Anything", "X_Forwarded_Foo", "Accept"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		h := http.Header{}
		h[name] = []string{"spoofed"}
		stripIdentity(h)
		for k := range h {
			fk := foldHeader(k)
			for _, id := range identityHeaders {
				if fk == id {
					t.Fatalf("%q survived as %q", name, k)
				}
			}
			for _, p := range identityPrefixes {
				if strings.HasPrefix(fk, p) {
					t.Fatalf("%q survived as %q", name, k)
				}
			}
		}
	})
}

// TestFoldedMatchesFoldHeader: the allocation-free comparisons agree with foldHeader, including for
// names whose Unicode lower case is ASCII (the Kelvin sign folds to "k").
func TestFoldedMatchesFoldHeader(t *testing.T) {
	names := []string{"X-Forwarded-User", "x_forwarded_email", "REMOTE_USER", "Remote-Anything", "Accept",
		"X-Forwarded-Access-To\u212aen", "X-Auth-Request-\u212aey", "X-Forwarded", "", "x-forwarded-user-extra", "Forwarded"}
	for _, name := range names {
		f := foldHeader(name)
		for _, id := range append(identityHeaders, identityPrefixes...) {
			if got, want := foldedEqual(name, id), f == id; got != want {
				t.Errorf("foldedEqual(%q, %q) = %v; want %v", name, id, got, want)
			}
			if got, want := foldedHasPrefix(name, id), strings.HasPrefix(f, id); got != want {
				t.Errorf("foldedHasPrefix(%q, %q) = %v; want %v", name, id, got, want)
			}
		}
	}
}

// FuzzJoinGroups: whatever the group names, the header splits back into exactly those names.
func FuzzJoinGroups(f *testing.F) {
	f.Add("staff,admins", "100%", "")
	f.Add("%2C", ",", "a\nb")
	f.Add(" admins", "admins ", "domain users")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		groups := []string{a, b, c}
		h := joinGroups(groups)
		parts := strings.Split(h, ",")
		if len(parts) != len(groups) {
			t.Fatalf("joinGroups(%q) = %q: %d elements", groups, h, len(parts))
		}
		for i, p := range parts {
			d, err := url.PathUnescape(p)
			if err != nil || d != groups[i] {
				t.Fatalf("joinGroups(%q) = %q: element %d decodes to %q (%v)", groups, h, i, d, err)
			}
			if strings.TrimSpace(p) != p {
				t.Fatalf("joinGroups(%q) = %q: element %d has white space at an end, which HTTP or the app trims", groups, h, i)
			}
		}
		for i := 0; i < len(h); i++ {
			if h[i] < 0x20 || h[i] == 0x7f {
				t.Fatalf("joinGroups(%q) = %q holds a control character", groups, h)
			}
		}
	})
}

// servletViews are the paths a servlet container may serve for a raw request path: path
// parameters (";…") cut from each segment before decoding (Tomcat) or after it, then dot-segments
// resolved. ok is false when the raw path does not decode.
func servletViews(raw string) ([]string, bool) {
	resolve := func(p string) string { // RFC 3986 remove_dot_segments, and "//" as "/"
		trailing := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
		p = path.Clean("/" + p)
		if trailing && p != "/" {
			p += "/"
		}
		return p
	}
	strip := func(p string) string {
		segs := strings.Split(p, "/")
		for i, s := range segs {
			segs[i], _, _ = strings.Cut(s, ";")
		}
		return strings.Join(segs, "/")
	}
	before, err1 := url.PathUnescape(strip(raw))
	decoded, err2 := url.PathUnescape(raw)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	return []string{resolve(before), resolve(strip(decoded))}, true
}

// FuzzPathDecision is the path normaliser together with the skip-auth and forward-auth decisions:
// whenever zdgate lets a path through without login, every way a servlet container reads that path
// is public too, and forward-auth decides the same path in X-Forwarded-Uri the same way.
func FuzzPathDecision(f *testing.F) {
	for _, s := range []string{
		"/public/x", "/public/..;/admin", "/public/..;x=y/admin", "/public/%2e%2e;/admin", "/public/%2E%2E%3B/admin",
		"/public/..%3b/admin", "/public/.;/../admin", "/public/%2e;/../admin", "/admin;x.css", "/admin%3bx.css",
		"/admin;/x.css", "/public;x/..;/admin", "/public//..;//admin", "/%2e%2e;/public/x", "/public/%252e%252e;/admin",
		"/public/.%2e;/admin", "/public/%2e./admin", "/public/..\\admin", "/public/..%5cadmin", "/style.css;jsessionid=1",
	} {
		f.Add(s)
	}
	p := &Proxy{
		skip:  pathRules{regexp.MustCompile(`^/public/`), regexp.MustCompile(`\.css$`)},
		trust: trust(mustPrefixes("127.0.0.1/32")),
	}
	f.Fuzz(func(t *testing.T, raw string) {
		norm, err := normalizePath(raw)
		public := err == nil && p.public(norm)
		if public {
			// The proxy forwards the normalised path, re-escaped.
			sent := (&url.URL{Path: norm}).EscapedPath()
			views, ok := servletViews(sent)
			if !ok {
				t.Fatalf("%q is public as %q but %q does not decode", raw, norm, sent)
			}
			for _, v := range views {
				if !p.skip.match(v) {
					t.Fatalf("%q is public as %q, but a servlet container serves %q for %q", raw, norm, v, sent)
				}
			}
		}
		if raw == "" || raw[0] != '/' {
			return
		}
		// Forward-auth gets the whole request URI; its path part must be decided the same way.
		r := httptest.NewRequest("GET", "/oauth2/auth", nil)
		r.RemoteAddr = "127.0.0.1:1234"
		r.Header.Set("X-Forwarded-Uri", raw)
		fp, canonical, ok := p.forwardedPath(r)
		if !ok || fp == "" || !canonical || !p.public(fp) {
			return
		}
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			t.Fatalf("forward-auth lets %q through as %q, which is no request URI", raw, fp)
		}
		if n, err := normalizePath(u.EscapedPath()); err != nil || !p.public(n) {
			t.Fatalf("forward-auth lets %q through as %q; the proxy does not let its path %q through", raw, fp, u.EscapedPath())
		}
		views, ok := servletViews(u.EscapedPath())
		if !ok {
			t.Fatalf("forward-auth lets %q through, but its path does not decode", raw)
		}
		for _, v := range views {
			if !p.skip.match(v) {
				t.Fatalf("forward-auth lets %q through as %q, but a servlet container serves %q", raw, fp, v)
			}
		}
	})
}

// FuzzUpgradeDecision: whatever Upgrade, Connection and HTTP2-Settings a client sends, what the
// reverse proxy would switch to afterwards (its own rule: Connection lists "upgrade", then the first
// Upgrade value) is nothing or WebSocket, and an h2c offer never keeps its settings.
func FuzzUpgradeDecision(f *testing.F) {
	f.Add("h2c", "Upgrade, HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA", "")
	f.Add("websocket", "Upgrade", "", "")
	f.Add("WebSocket", "keep-alive, Upgrade", "", "")
	f.Add("websocket", "Upgrade", "", "h2c")
	f.Add("h2c, websocket", "upgrade", "", "")
	f.Add(" websocket ", "Upgrade", "x", "")
	f.Add("TLS/1.2, HTTP/1.1", "Upgrade", "", "")
	f.Fuzz(func(t *testing.T, upgrade, connection, settings, second string) {
		h := http.Header{}
		if upgrade != "" {
			h.Add("Upgrade", upgrade)
		}
		if second != "" {
			h.Add("Upgrade", second)
		}
		h.Set("Connection", connection)
		if settings != "" {
			h.Set("Http2-Settings", settings)
		}
		dropUpgrade(h)
		switchTo := ""
		if httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
			switchTo = h.Get("Upgrade")
		}
		if switchTo != "" && !strings.EqualFold(strings.TrimSpace(switchTo), "websocket") {
			t.Fatalf("Upgrade %q %q, Connection %q: the proxy would switch to %q", upgrade, second, connection, switchTo)
		}
		if len(h["Upgrade"]) > 1 {
			t.Fatalf("Upgrade %q %q kept %d values", upgrade, second, len(h["Upgrade"]))
		}
		if h.Get("Upgrade") != "" && h.Get("Http2-Settings") != "" {
			t.Fatalf("an upgrade kept HTTP2-Settings %q", h.Get("Http2-Settings"))
		}
	})
}
