package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// forwardAuth answers nginx auth_request, Traefik ForwardAuth and Envoy ext_authz (HTTP): 202 with
// X-Auth-Request-* headers for a valid session, 403 when the access rules refuse the user, 401
// otherwise — never a redirect. The original request is read from X-Forwarded-Uri / X-Original-URI,
// -Host and -Method only when they come from a --trusted-proxy; a malformed forwarded URI is 401.
func (p *Proxy) forwardAuth(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	path, canonical, ok := p.forwardedPath(r)
	if !ok {
		return errUnauthorized("unauthenticated", errors.New("malformed forwarded URI"))
	}
	// The ingress sends the app the original URI, not the normalised one: only a path that is
	// already in normal form can be public, so the app cannot read it differently than the rules.
	if path != "" && canonical && p.public(path) {
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	sess, id, err := p.authenticate(w, r)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && he.status == http.StatusForbidden {
			return err
		}
		return errUnauthorized("unauthenticated", err)
	}
	up, err := identityOf(sess.Provider, id)
	if err != nil {
		return err
	}
	h := w.Header()
	up.set(h, &authRequestHeaders)
	if p.cfg.PassAccessToken && sess.AccessToken != "" {
		h.Set("X-Auth-Request-Access-Token", sess.AccessToken)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// forwardedPath is the normalised path of the request the ingress is asking about, "" when no
// trusted forwarding header names one, and ok=false when one is present but malformed. canonical
// says the original was already in normal form (no dot-segments, "//", backslashes or needless
// escapes).
func (p *Proxy) forwardedPath(r *http.Request) (path string, canonical, ok bool) {
	if !p.trust.fromTrusted(r) {
		return "", true, true
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/oauth2/auth/"); ok {
		// Envoy ext_authz (HTTP): the original path follows the prefix; it was normalised with
		// the request's own path.
		info := infoOf(r)
		return "/" + rest, info != nil && info.canonical, true
	}
	raw := r.Header.Get("X-Forwarded-Uri")
	if raw == "" {
		raw = r.Header.Get("X-Original-URI")
	}
	if raw == "" {
		if orig := r.Header.Get("X-Original-URL"); orig != "" { // ingress-nginx sends a full URL
			u, err := url.Parse(orig)
			if err != nil || u.Host == "" {
				return "", false, false
			}
			raw = u.RequestURI()
		}
	}
	if raw == "" {
		return "", true, true
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= 0x20 || c == 0x7f {
			return "", false, false
		}
	}
	if raw[0] != '/' {
		return "", false, false
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil || u.Host != "" {
		return "", false, false
	}
	if m := r.Header.Get("X-Forwarded-Method"); m != "" && !isToken(m) {
		return "", false, false
	}
	norm, err := normalizePath(u.EscapedPath())
	if err != nil {
		return "", false, false
	}
	return norm, norm == u.Path && u.RawPath == "", true
}
