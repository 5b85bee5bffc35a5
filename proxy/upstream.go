package proxy

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"
)

// upstream serves every path that is not zdgate's own: authenticate per --auth-mode and
// --skip-auth-path, then proxy.
func (p *Proxy) upstream(w http.ResponseWriter, r *http.Request) error {
	// Decided first, for every path: skip-auth paths included.
	dropUpgrade(r.Header)
	info := infoOf(r)
	norm := r.URL.Path
	if info != nil {
		norm = info.path
	}
	var id upstreamIdentity
	if !p.public(norm) {
		s, ident, err := p.authenticate(w, r)
		switch {
		case err == nil:
			if id, err = identityOf(s.Provider, ident); err != nil {
				return err
			}
		case p.cfg.AuthMode == AuthOptional && isAnonymous(err):
			// Optional mode: the page loads anonymously; only Zendesk tokens need a login.
		case isAnonymous(err) && r.Method == http.MethodGet && wantsHTML(r):
			p.startLogin(w, r, p.safeRedirect(r.URL.RequestURI()))
			return nil
		default:
			return err
		}
	}
	if info != nil {
		info.upstream = id // read by Rewrite; no new context per request
	} else if id.sub != "" {
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, &id))
	}
	p.rp.ServeHTTP(w, r)
	return nil
}

// dropUpgrade removes a protocol switch that may not reach the app. Only a WebSocket upgrade
// ("Upgrade: websocket", any case, alone) is forwarded: after any other 101 (h2c above all) the
// connection would be a raw tunnel to the app whose requests skip login, skip-auth rules, header
// stripping and re-checks. Anything else loses Upgrade and HTTP2-Settings and is proxied as the
// plain request it also is (curl --http2 on http:// keeps working, over HTTP/1.1).
func dropUpgrade(h http.Header) {
	up, settings := h["Upgrade"], h["Http2-Settings"]
	if up == nil && settings == nil {
		return
	}
	if len(up) == 1 && settings == nil && strings.EqualFold(strings.TrimSpace(up[0]), "websocket") {
		return
	}
	delete(h, "Upgrade")
	delete(h, "Http2-Settings")
}

// isAnonymous: no session, or one that just ended (expired, revoked): the visitor must log in.
func isAnonymous(err error) bool {
	var he *httpError
	return errors.As(err, &he) && he.status == http.StatusUnauthorized
}

type identityKey struct{}

// upstreamIdentity is what the upstream is told about the user; sub is empty for an anonymous
// request (--skip-auth-path, --auth-mode=optional), provider with a single IdP.
type upstreamIdentity struct {
	sub, email, groups, user, provider string
}

// identityHeaderNames are the header names one way of telling the identity uses.
type identityHeaderNames struct{ user, email, groups, username, provider string }

var (
	// forwardedHeaders go to the app with a proxied request.
	forwardedHeaders = identityHeaderNames{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups",
		"X-Forwarded-Preferred-Username", "X-Forwarded-Provider"}
	// authRequestHeaders answer the ingress in forward-auth, as oauth2-proxy names them.
	authRequestHeaders = identityHeaderNames{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups",
		"X-Auth-Request-Preferred-Username", "X-Auth-Request-Provider"}
)

// set writes id into h under the names n; the empty values are left out.
func (id *upstreamIdentity) set(h http.Header, n *identityHeaderNames) {
	h.Set(n.user, id.sub)
	for _, v := range [...]struct{ name, value string }{{n.email, id.email}, {n.groups, id.groups}, {n.username, id.user}, {n.provider, id.provider}} {
		if v.value != "" {
			h.Set(v.name, v.value)
		}
	}
}

// newReverseProxy builds the ReverseProxy: Rewrite (never Director) so hop-by-hop and forwarding
// headers start clean, a shared buffer pool, a 502 page for a dead upstream, and the injector.
func (p *Proxy) newReverseProxy() *httputil.ReverseProxy {
	transport := p.cfg.UpstreamTransport
	if transport == nil {
		transport = NewUpstreamTransport()
	}
	target := p.cfg.Upstream
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			in := pr.In
			pr.SetURL(target)
			// Forward the normalised path the rules saw, so the upstream cannot read another one.
			if info := infoOf(in); info != nil && info.path != "" {
				pr.Out.URL.Path = joinPath(target.Path, info.path)
				pr.Out.URL.RawPath = ""
			}
			pr.Out.Host = in.Host // the app sees the site's host, like any reverse proxy in front of it
			if p.trust.fromTrusted(in) {
				if xff := in.Header.Values("X-Forwarded-For"); len(xff) > 0 {
					pr.Out.Header["X-Forwarded-For"] = xff
				}
			}
			pr.SetXForwarded()
			if p.trust.fromTrusted(in) {
				if v := in.Header.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
					pr.Out.Header.Set("X-Forwarded-Proto", v)
				}
				if v := in.Header.Get("X-Forwarded-Host"); v != "" {
					pr.Out.Header.Set("X-Forwarded-Host", v)
				}
			}
			stripIdentity(pr.Out.Header)
			stripPaths(pr.Out.Header, p.trust.fromTrusted(in))
			removeOwnCookies(pr.Out.Header, p.cfg.OwnCookie)
			if info := infoOf(in); info != nil {
				pr.Out.Header.Set("X-Request-Id", info.id)
			}
			id, _ := in.Context().Value(identityKey{}).(*upstreamIdentity)
			if info := infoOf(in); info != nil {
				id = &info.upstream
			}
			if id != nil && id.sub != "" {
				id.set(pr.Out.Header, &forwardedHeaders)
			}
			if p.injecting(in) {
				p.cfg.Injector.PrepareRequest(pr.Out)
			}
		},
		Transport:  transport,
		BufferPool: bufferPool{},
		// Zero: ReverseProxy flushes every write of a streaming response (text/event-stream, or an
		// unknown length, which injected pages have) and buffers the rest, like a bare proxy.
		FlushInterval: 0,
		ModifyResponse: func(res *http.Response) error {
			if res.StatusCode == http.StatusSwitchingProtocols {
				return checkWebSocketAccept(res)
			}
			if res.Request != nil {
				if info := infoOf(res.Request); info != nil && info.upstream.sub != "" {
					keepPrivate(res.Header)
				}
			}
			if res.Request != nil && p.injecting(res.Request) {
				return p.cfg.Injector.ModifyResponse(res)
			}
			return nil
		},
		// A client that went away is recorded as 499 by render, and nothing is written.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.render(w, r, &httpError{status: http.StatusBadGateway, code: "bad_gateway", err: err})
		},
		ErrorLog: nil,
	}
}

// injecting decides per request whether the injector may see the response.
func (p *Proxy) injecting(r *http.Request) bool {
	if !p.cfg.Inject || p.cfg.Injector == nil || r.Method != http.MethodGet {
		return false
	}
	if info := infoOf(r); info != nil && p.injSkip.match(info.path) {
		return false
	}
	return true
}

func joinPath(base, p string) string {
	if base == "" || base == "/" {
		return p
	}
	return strings.TrimSuffix(base, "/") + p
}

// NewUpstreamTransport is the upstream client: bounded dial, TLS and header waits, and enough idle
// connections that a busy sidecar does not reconnect per request.
func NewUpstreamTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // never an environment proxy between a sidecar and its app
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		ForceAttemptHTTP2:     true,
	}
}

// bufferPool shares 32 KiB copy buffers between all proxied responses.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// keepPrivate makes the answer to an authenticated request one that no shared cache may store: a
// CDN or caching ingress in front of zdgate would otherwise serve a protected page to the next
// visitor without asking zdgate. "public", "s-maxage" and a field-named "private" go, and a bare
// "private" is added (browsers may still cache); a "no-store" answer stays as it is.
func keepPrivate(h http.Header) {
	if len(h["Cache-Control"]) == 0 {
		h["Cache-Control"] = []string{"private"}
		return
	}
	var kept []string
	for _, line := range h.Values("Cache-Control") {
		for _, d := range splitDirectives(line) {
			name, _, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store":
				if !strings.Contains(d, "=") {
					return
				}
			case "public", "s-maxage", "private":
				continue
			}
			kept = append(kept, d)
		}
	}
	h["Cache-Control"] = []string{strings.Join(append(kept, "private"), ", ")}
}

// splitDirectives splits a Cache-Control value at the commas outside quoted strings, trimmed,
// without empty elements.
func splitDirectives(v string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i <= len(v); i++ {
		switch {
		case i < len(v) && v[i] == '\\' && quoted:
			i++
		case i < len(v) && v[i] == '"':
			quoted = !quoted
		case i == len(v) || v[i] == ',' && !quoted:
			if d := strings.TrimSpace(v[start:min(i, len(v))]); d != "" {
				out = append(out, d)
			}
			start = i + 1
		}
	}
	return out
}

// errFakeSwitch is a 101 from the app that no WebSocket server would send.
var errFakeSwitch = errors.New("upstream switched protocols without a valid Sec-WebSocket-Accept")

// checkWebSocketAccept lets a 101 through only with the Sec-WebSocket-Accept that RFC 6455 derives
// from the request's Sec-WebSocket-Key, which only a WebSocket server computes. After the switch
// the connection is a raw tunnel to the app: an app that answers 101 without being a WebSocket
// server (a status it echoes, a stub) and keeps reading HTTP would take the attacker's next
// requests straight, skipping login, the rules and header stripping (WebSocket smuggling).
// Refused, the answer is a 502 and the app's connection is closed.
func checkWebSocketAccept(res *http.Response) error {
	if res.Request == nil {
		return errFakeSwitch
	}
	key := res.Request.Header.Get("Sec-WebSocket-Key")
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if key == "" || res.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return errFakeSwitch
	}
	return nil
}
