package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
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

// FuzzJoinGroups: whatever the group names, the header splits back into exactly those names.
func FuzzJoinGroups(f *testing.F) {
	f.Add("staff,admins", "100%", "")
	f.Add("%2C", ",", "a\nb")
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
		}
		for i := 0; i < len(h); i++ {
			if h[i] < 0x20 || h[i] == 0x7f {
				t.Fatalf("joinGroups(%q) = %q holds a control character", groups, h)
			}
		}
	})
}
