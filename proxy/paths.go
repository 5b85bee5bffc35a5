package proxy

import (
	"errors"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// errBadPath is a request path that cannot be normalised safely (bad escapes, NUL).
var errBadPath = errors.New("malformed path")

// errDotParam is a dot-segment with path parameters ("..;", ".;x=y", raw or percent-encoded).
// Servlet containers such as Tomcat strip the parameters and then resolve the "..", so the app
// would serve another path than the one every rule here judged; no real link has one. Refused (400)
// rather than judged, so skip-auth, inject-skip and forward-auth never disagree with the app.
var errDotParam = errors.New("dot-segment with path parameters")

// normalizePath is the one view of a request path that every rule (skip-auth, inject-skip) and the
// upstream see: percent-decoded (so %2e and %2f count as . and /), backslashes as slashes, runs of
// slashes collapsed, dot-segments resolved, a trailing slash kept. It never includes the query.
func normalizePath(escaped string) (string, error) {
	p, err := url.PathUnescape(escaped)
	if err != nil {
		return "", errBadPath
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", errBadPath
	}
	p = strings.ReplaceAll(p, `\`, "/")
	if strings.IndexByte(p, ';') >= 0 {
		for seg := range strings.SplitSeq(p, "/") {
			if name, _, params := strings.Cut(seg, ";"); params && (name == "." || name == "..") {
				return "", errDotParam
			}
		}
	}
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	trailing := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
	p = path.Clean(p)
	if trailing && p != "/" {
		p += "/"
	}
	return p, nil
}

// public reports whether a normalised path needs no login (--skip-auth-path). A path holding ';'
// (raw or percent-encoded) never does: a servlet container reads "/admin;x.css" as /admin, while a
// rule such as \.css$ would read it as a stylesheet. Such paths are authenticated like any other,
// so a ";jsessionid=" app keeps working for logged-in users.
func (p *Proxy) public(norm string) bool {
	return strings.IndexByte(norm, ';') < 0 && p.skip.match(norm)
}

// pathRules is a list of regular expressions on normalised paths.
type pathRules []*regexp.Regexp

// match reports whether a normalised path matches any rule. A path that still holds characters a
// URL could only carry escaped (?, #, control characters) never matches: such a path is a probe, and
// failing closed (auth required) is the safe answer.
func (rs pathRules) match(p string) bool {
	if len(rs) == 0 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '?' || c == '#' || c < 0x20 || c == 0x7f {
			return false
		}
	}
	for _, r := range rs {
		if r.MatchString(p) {
			return true
		}
	}
	return false
}

// CompileRules compiles --skip-auth-path style regexes, naming the flag in errors.
func CompileRules(flag string, exprs []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	var errs []error
	for _, e := range exprs {
		r, err := regexp.Compile(e)
		if err != nil {
			errs = append(errs, errors.New(flag+": invalid regular expression "+strconvQuote(e)))
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func strconvQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
