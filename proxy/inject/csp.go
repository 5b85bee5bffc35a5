package inject

import (
	"hash/fnv"
	"log/slog"
	"net/http"
	"strings"
)

// The loader is an external script from the page's own origin. checkCSP
// decides, from the response's enforced Content-Security-Policy headers,
// whether the browser would run it and with which nonce. Every policy must
// allow it (several headers, and comma-joined policies in one header, are all
// enforced). A policy's list for a script element is script-src-elem, else
// script-src, else default-src; a policy with none of them does not restrict
// scripts. A list allows the loader if it has 'nonce-X' and the tag carries X,
// or, without 'strict-dynamic' (which discards the rest), if it has 'self', *,
// http: or https:, or a host-source matching the page's host. A page whose
// policies allow the loader neither with one of their nonces nor without one
// is not injected: injecting would only put a blocked script and a console
// error on it. <meta http-equiv> policies are not read.

// checkCSP returns the nonce to put on the injected tags ("" for none) and
// whether the policies let the loader run.
func (i *Injector) checkCSP(res *http.Response) (nonce string, ok bool) {
	vals := res.Header.Values("Content-Security-Policy")
	if len(vals) == 0 {
		return "", true
	}
	lists := scriptSourceLists(vals)
	if len(lists) == 0 {
		return "", true
	}
	self := selfOrigin(res.Request, i.scriptPath)
	for _, n := range nonces(lists) {
		if allAllow(lists, n, self) {
			return n, true
		}
	}
	if allAllow(lists, "", self) {
		return "", true
	}
	i.logBlocked(res.Request, vals)
	return "", false
}

func isASCIISpace(c rune) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

// scriptSourceLists returns, for each policy in the header values that
// restricts script elements, its effective source list (possibly empty,
// which allows nothing).
func scriptSourceLists(vals []string) [][]string {
	var lists [][]string
	for _, v := range vals {
		for _, policy := range strings.Split(v, ",") {
			var elem, src, def []string
			var hasElem, hasSrc, hasDef bool
			for _, d := range strings.Split(policy, ";") {
				fields := strings.FieldsFunc(d, isASCIISpace)
				if len(fields) == 0 {
					continue
				}
				values := fields[1:]
				if values == nil {
					values = []string{}
				}
				// Only the first occurrence of a directive counts.
				switch strings.ToLower(fields[0]) {
				case "script-src-elem":
					if !hasElem {
						elem, hasElem = values, true
					}
				case "script-src":
					if !hasSrc {
						src, hasSrc = values, true
					}
				case "default-src":
					if !hasDef {
						def, hasDef = values, true
					}
				}
			}
			switch {
			case hasElem:
				lists = append(lists, elem)
			case hasSrc:
				lists = append(lists, src)
			case hasDef:
				lists = append(lists, def)
			}
		}
	}
	return lists
}

// nonces returns the distinct well-formed nonces of the lists, in order.
func nonces(lists [][]string) []string {
	var out []string
	for _, l := range lists {
		for _, t := range l {
			n, ok := nonceValue(t)
			if !ok {
				continue
			}
			dup := false
			for _, o := range out {
				dup = dup || o == n
			}
			if !dup {
				out = append(out, n)
			}
		}
	}
	return out
}

// nonceValue returns X from a source expression 'nonce-X' whose X is a
// base64 value (the only form browsers accept).
func nonceValue(t string) (string, bool) {
	const prefix = "'nonce-"
	if len(t) <= len(prefix)+1 || !strings.EqualFold(t[:len(prefix)], prefix) || t[len(t)-1] != '\'' {
		return "", false
	}
	v := t[len(prefix) : len(t)-1]
	pad := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '=':
			pad++
		case pad > 0:
			return "", false // '=' only at the end
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '+', c == '/', c == '-', c == '_':
		default:
			return "", false
		}
	}
	if pad > 2 || pad == len(v) {
		return "", false
	}
	return v, true
}

func allAllow(lists [][]string, nonce string, self origin) bool {
	for _, l := range lists {
		if !allows(l, nonce, self) {
			return false
		}
	}
	return true
}

func allows(list []string, nonce string, self origin) bool {
	strict := false
	for _, t := range list {
		if n, ok := nonceValue(t); ok && nonce != "" && n == nonce {
			return true
		}
		strict = strict || strings.EqualFold(t, "'strict-dynamic'")
	}
	if strict {
		return false
	}
	for _, t := range list {
		if allowsSelf(t, self) {
			return true
		}
	}
	return false
}

// origin is what a host-source is matched against: the host the browser
// sees and the loader's path.
type origin struct {
	host, port, path string
}

// selfOrigin takes the public host from X-Forwarded-Host (set by
// ProxyRequest.SetXForwarded), else from the outbound request.
func selfOrigin(req *http.Request, path string) origin {
	var hostport string
	if req != nil {
		hostport = req.Host
		if fh := req.Header.Get("X-Forwarded-Host"); fh != "" {
			hostport, _, _ = strings.Cut(fh, ",")
		} else if hostport == "" && req.URL != nil {
			hostport = req.URL.Host
		}
	}
	hostport = strings.ToLower(strings.TrimSpace(hostport))
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		if end := strings.IndexByte(hostport, ']'); end > 0 {
			host, port = hostport[1:end], strings.TrimPrefix(hostport[end+1:], ":")
		}
	} else if c := strings.LastIndexByte(hostport, ':'); c >= 0 {
		host, port = hostport[:c], hostport[c+1:]
	}
	return origin{host: host, port: port, path: path}
}

// allowsSelf reports whether a source expression (other than a nonce)
// matches the loader's URL.
func allowsSelf(t string, self origin) bool {
	lt := strings.ToLower(t)
	switch lt {
	case "'self'", "*", "http:", "https:":
		return true
	}
	if strings.HasPrefix(lt, "'") || strings.HasSuffix(lt, ":") {
		return false // other keywords, hashes, other schemes
	}
	if self.host == "" {
		return false
	}
	rest := t
	if k := strings.Index(rest, "://"); k >= 0 {
		if s := strings.ToLower(rest[:k]); s != "http" && s != "https" {
			return false
		}
		rest = rest[k+3:]
	}
	path := ""
	if k := strings.IndexByte(rest, '/'); k >= 0 {
		rest, path = rest[:k], rest[k:]
	}
	host, port := strings.ToLower(rest), ""
	if k := strings.LastIndexByte(host, ':'); k >= 0 {
		host, port = host[:k], host[k+1:]
	}
	switch {
	case host == "*":
	case strings.HasPrefix(host, "*."):
		if !strings.HasSuffix(self.host, host[1:]) {
			return false
		}
	case host != self.host:
		return false
	}
	defaultPort := func(p string) bool { return p == "" || p == "80" || p == "443" }
	switch {
	case port == "*":
	case port == "" || self.port == "":
		if !defaultPort(port) || !defaultPort(self.port) {
			return false
		}
	case port != self.port:
		return false
	}
	switch {
	case path == "" || path == "/":
	case strings.HasSuffix(path, "/"):
		return strings.HasPrefix(self.path, path)
	default:
		return path == self.path
	}
	return true
}

// logBlocked warns once per distinct policy (nonces blanked, so per-response
// nonces do not make every response distinct); after maxLoggedPolicies
// distinct policies it stops, to bound memory.
func (i *Injector) logBlocked(req *http.Request, vals []string) {
	if i.log == nil {
		return
	}
	policy := redactNonces(strings.Join(vals, ", "))
	h := fnv.New64a()
	h.Write([]byte(policy))
	key := h.Sum64()
	i.mu.Lock()
	_, seen := i.logged[key]
	full := len(i.logged) >= maxLoggedPolicies
	if !seen && !full {
		i.logged[key] = struct{}{}
	}
	i.mu.Unlock()
	if seen || full {
		return
	}
	if len(policy) > 1024 {
		policy = policy[:1024] + "..."
	}
	attrs := []any{slog.String("policy", policy)}
	if req != nil && req.URL != nil {
		attrs = append(attrs, slog.String("path", req.URL.Path))
	}
	i.log.Warn("inject: the page's Content-Security-Policy would block the zdgate loader, so pages with this policy are passed on without it; allow 'self' or a nonce in script-src", attrs...)
}

// redactNonces replaces the value of every 'nonce-…' source with "…".
func redactNonces(s string) string {
	var b strings.Builder
	for {
		k := indexFold(s, "'nonce-")
		if k < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:k+len("'nonce-")])
		s = s[k+len("'nonce-"):]
		end := strings.IndexAny(s, "'; ,")
		if end < 0 {
			end = len(s)
		}
		b.WriteString("...")
		s = s[end:]
	}
}

func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
