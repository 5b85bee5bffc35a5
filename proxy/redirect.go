package proxy

import (
	"net/url"
	"strings"
)

// safeRedirect returns rd if it is a same-site path (or a full URL on an allowed host), else "/".
// It refuses everything a browser might read as another origin: "//host", "/\host", schemes,
// userinfo, and any control or white-space character (browsers strip tabs and newlines, so
// "/\t/evil" becomes "//evil").
func (p *Proxy) safeRedirect(rd string) string {
	if rd == "" || len(rd) > 2048 {
		return "/"
	}
	for i := 0; i < len(rd); i++ {
		if c := rd[i]; c <= 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	if rd[0] == '/' {
		if len(rd) > 1 && (rd[1] == '/' || rd[1] == '\\') {
			return "/"
		}
		u, err := url.Parse(rd)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
			return "/"
		}
		return rd
	}
	u, err := url.Parse(rd)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" {
		return "/"
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && p.cfg.PublicURL.Scheme == "http") {
		return "/"
	}
	host := canonicalHost(u.Hostname())
	if host == canonicalHost(p.cfg.PublicURL.Hostname()) || hostAllowed(host, p.cfg.AllowedRedirectDomains) || p.ownHost(u.Host) {
		return u.String()
	}
	return "/"
}

// canonicalHost lower-cases a host name and drops one trailing dot, so App.Example.com. and
// app.example.com are the same host to every rule.
func canonicalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// hostAllowed matches host against entries that are exact hosts or ".example.com" (the domain and
// every subdomain, on a label boundary: never "evilexample.com").
func hostAllowed(host string, allowed []string) bool {
	for _, a := range allowed {
		a = canonicalHost(a)
		if strings.HasPrefix(a, ".") {
			if host == a[1:] || strings.HasSuffix(host, a) {
				return true
			}
		} else if host == a {
			return true
		}
	}
	return false
}
