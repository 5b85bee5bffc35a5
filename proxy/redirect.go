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
	if err != nil || u.User != nil || u.Opaque != "" || !plainHost(u.Host) {
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

// plainHost reports whether host (host or host:port, from url.Parse) is non-empty and only ASCII
// letters, digits, '-', '.', '_', or an IPv6 literal, with an optional port. Anything else
// (percent-escapes, Unicode such as the full-width solidus U+FF0F, which IDNA maps to '/') may be
// read as another host by some URL parser, so it is no redirect target.
func plainHost(host string) bool {
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._:[]", c) >= 0) {
			return false
		}
	}
	return true
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
