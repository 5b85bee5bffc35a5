package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/zdgate/zdgate/oidc"
)

// identityHeaders are the headers zdgate sets for the upstream, and families that upstream
// frameworks commonly trust for identity. Every incoming copy, whatever its case or '_' spelling,
// is deleted before zdgate sets its own.
var identityHeaders = []string{
	"x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-forwarded-preferred-username",
	"x-forwarded-provider", "x-forwarded-access-token", "x-remote-user", "x-remote-email", "x-remote-group", "x-remote-groups",
	"x-user", "x-email", "x-real-ip", "forwarded",
}

// pathHeaders name a request path other than the request line's; some frameworks route on them
// (Symfony's and Zend's X-Original-URL and X-Rewrite-URL, IIS, apps behind nginx reading
// X-Original-URI). The app is to serve the path the rules judged, so every incoming copy is
// deleted, in any case and '_' spelling; X-Forwarded-Prefix is kept only from a --trusted-proxy
// (an ingress that strips a path prefix says which).
var pathHeaders = []string{
	"x-original-url", "x-rewrite-url", "x-original-uri", "x-forwarded-uri", "x-forwarded-path", "x-envoy-original-path",
}

// stripPaths deletes every header that names another path than the request line's, and
// X-Forwarded-Prefix too unless prefix is true.
func stripPaths(h http.Header, prefix bool) {
	for name := range h {
		drop := !prefix && foldedEqual(name, "x-forwarded-prefix")
		for _, ph := range pathHeaders {
			drop = drop || foldedEqual(name, ph)
		}
		if drop {
			delete(h, name)
		}
	}
}

// identityPrefixes are whole header families that are stripped.
var identityPrefixes = []string{"x-auth-request-", "remote-", "x-zdgate-"}

// foldHeader is the name a header would have if the upstream treated '_' as '-' and ignored case
// (many servers do: CGI, PHP, some Rack and WSGI setups).
func foldHeader(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// foldedHasPrefix reports whether foldHeader(name) starts with prefix (lower case, '-' only),
// without building the folded name: stripIdentity runs on every header of every proxied request.
// A name with non-ASCII bytes (net/http's server refuses those, but a Header can hold anything)
// takes foldHeader's Unicode-aware path: "K" (Kelvin) folds to "k" there.
func foldedHasPrefix(name, prefix string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return strings.HasPrefix(foldHeader(name), prefix)
		}
	}
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// foldedEqual reports whether foldHeader(name) == id.
func foldedEqual(name, id string) bool {
	if len(name) == len(id) {
		return foldedHasPrefix(name, id)
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return foldHeader(name) == id
		}
	}
	return false
}

// stripIdentity deletes every header that could carry a spoofed identity.
func stripIdentity(h http.Header) {
	for name := range h {
		drop := false
		for _, id := range identityHeaders {
			if foldedEqual(name, id) {
				drop = true
				break
			}
		}
		if !drop {
			for _, p := range identityPrefixes {
				if foldedHasPrefix(name, p) {
					drop = true
					break
				}
			}
		}
		if !drop && foldedHasPrefix(name, "x-forwarded-") {
			// X-Forwarded-For/Host/Proto are rebuilt by the proxy; any other X-Forwarded-* spelled
			// with '_' is an attempt to slip past that.
			drop = strings.Contains(name, "_")
		}
		if drop {
			delete(h, name)
		}
	}
}

// identityOf is what the app (or the ingress, through forward-auth) is told about a confirmed
// user. HTTP cannot carry every string unchanged: white space at either end of a header value is
// trimmed by every writer and parser, and Go's server turns CR and LF in a response header into
// spaces, so "admin " or "admin\n" at the IdP, another account than "admin", would reach the app as
// "admin". A subject, username or verified email that would change on the way is refused (403
// claims_rejected); group names are percent-encoded instead (joinGroups).
func identityOf(provider string, ident oidc.Identity) (upstreamIdentity, error) {
	id := upstreamIdentity{sub: ident.Subject, groups: joinGroups(ident.Groups), user: ident.PreferredUsername, provider: provider}
	if ident.EmailVerified {
		id.email = ident.Email
	}
	for _, c := range [...]struct{ name, v string }{{"sub", id.sub}, {"preferred_username", id.user}, {"email", id.email}} {
		if !headerSafe(c.v) {
			return upstreamIdentity{}, errForbidden("claims_rejected", errors.New("claim "+c.name+" cannot pass in a header unchanged (control character, or white space at an end)"))
		}
	}
	return id, nil
}

// headerSafe reports whether v arrives as itself in a header value: no control character (HTAB
// included) and no space at either end.
func headerSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return v == "" || v[0] != ' ' && v[len(v)-1] != ' '
}

// joinGroups is the value of X-Forwarded-Groups and X-Auth-Request-Groups: the group names joined
// by ",", each percent-encoded where it holds '%', ',' or a control character, or a space at either
// end, so a group called "staff,admins" stays one element ("staff%2Cadmins") instead of forging the
// group "admins" for an app that splits on commas, and " admins" (which HTTP, or an app trimming
// each element, would read as "admins") arrives as "%20admins". Names without those characters,
// which is nearly all, pass unchanged.
func joinGroups(groups []string) string {
	var b strings.Builder
	for i, g := range groups {
		if i > 0 {
			b.WriteByte(',')
		}
		for j := 0; j < len(g); j++ {
			c := g[j]
			if c == '%' || c == ',' || c < 0x20 || c == 0x7f || c == ' ' && (j == 0 || j == len(g)-1) {
				const hex = "0123456789ABCDEF"
				b.WriteByte('%')
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&15])
				continue
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

// trust decides which peers' forwarding headers are believed.
type trust []netip.Prefix

// peer returns the address of the TCP peer.
func peer(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func (t trust) contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// fromTrusted reports whether the request came straight from a --trusted-proxy.
func (t trust) fromTrusted(r *http.Request) bool { return t.contains(peer(r)) }

// clientIP is the right-most X-Forwarded-For address that is not a trusted proxy, when the peer is
// trusted; else the peer itself.
func (t trust) clientIP(r *http.Request) string {
	p := peer(r)
	if !t.contains(p) {
		return p.String()
	}
	xff := strings.Join(r.Header.Values("X-Forwarded-For"), ",")
	parts := strings.Split(xff, ",")
	for i := len(parts) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(parts[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !t.contains(a) {
			return a.String()
		}
	}
	return p.String()
}

// removeOwnCookies rewrites the Cookie header without zdgate's own cookies, so the session never
// reaches the upstream.
func removeOwnCookies(h http.Header, own func(string) bool) {
	lines := h.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	var kept []string
	for _, line := range lines {
		for _, part := range strings.Split(line, ";") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, _, _ := strings.Cut(part, "=")
			if own(strings.TrimSpace(name)) {
				continue
			}
			kept = append(kept, part)
		}
	}
	h.Del("Cookie")
	if len(kept) > 0 {
		h.Set("Cookie", strings.Join(kept, "; "))
	}
}
