package oidctest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
)

// oauthError is an error answer of the token, introspection and revocation endpoints (RFC 6749 §5.2).
type oauthError struct {
	status int
	code   string
	desc   string
}

func (e *oauthError) write(w http.ResponseWriter) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="oidctest"`)
	}
	writeJSON(w, e.status, map[string]any{"error": e.code, "error_description": e.desc})
}

func badRequest(code, desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, desc: desc}
}

func invalidGrant(desc string) *oauthError { return badRequest("invalid_grant", desc) }

// authenticateClient checks client_secret_basic or client_secret_post (one of them, not both).
// Basic credentials are form-url-decoded first, as RFC 6749 §2.3.1 and x/oauth2 have it.
func (s *Server) authenticateClient(r *http.Request) (Client, *oauthError) {
	unauthorized := &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed"}
	if err := r.ParseForm(); err != nil {
		return Client{}, badRequest("invalid_request", "cannot parse form")
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		if r.PostForm.Has("client_secret") {
			return Client{}, badRequest("invalid_request", "more than one client authentication method")
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return Client{}, unauthorized
		}
		if form := r.PostForm.Get("client_id"); form != "" && form != id {
			return Client{}, badRequest("invalid_request", "client_id differs from the authenticated client")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, ok := s.client(id)
	if !ok || id == "" {
		return Client{}, unauthorized
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return Client{}, unauthorized
	}
	return c, nil
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	c, oerr := s.authenticateClient(r)
	if oerr != nil {
		oerr.write(w)
		return
	}
	var resp map[string]any
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		resp, oerr = s.codeGrant(c, r.PostForm)
	case "refresh_token":
		if !s.waitHold(r) {
			return // the client gave up (or the IdP closes) while held: nothing was spent
		}
		resp, oerr = s.refreshGrant(c, r.PostForm)
	case "":
		oerr = badRequest("invalid_request", "grant_type is required")
	default:
		oerr = badRequest("unsupported_grant_type", "only authorization_code and refresh_token")
	}
	if oerr != nil {
		oerr.write(w)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// codeGrant redeems an authorization code once. A failed attempt uses the code up too, and a replay
// revokes every token the first redemption produced (RFC 6749 §4.1.2).
func (s *Server) codeGrant(c Client, form url.Values) (map[string]any, *oauthError) {
	s.mu.Lock()
	code := s.codes[form.Get("code")]
	switch {
	case code == nil:
		s.mu.Unlock()
		return nil, invalidGrant("unknown authorization code")
	case code.used:
		if code.g != nil {
			code.g.revoked = true
		}
		s.mu.Unlock()
		return nil, invalidGrant("authorization code already used")
	}
	code.used = true
	var problem string
	switch {
	case !s.now().Before(code.expires):
		problem = "authorization code expired"
	case code.clientID != c.ID:
		problem = "authorization code was issued to another client"
	case form.Get("redirect_uri") != code.redirectURI:
		problem = "redirect_uri does not match the authorization request"
	case form.Get("code_verifier") == "":
		problem = "code_verifier is required (PKCE)"
	case !validPKCE(form.Get("code_verifier")):
		problem = "code_verifier is malformed"
	case s256(form.Get("code_verifier")) != code.challenge:
		problem = "code_verifier does not match code_challenge"
	}
	if problem != "" {
		s.mu.Unlock()
		return nil, invalidGrant(problem)
	}
	g := &grant{clientID: c.ID, sub: code.sub, sid: code.sid, scope: code.scope, authTime: code.authTime}
	code.g = g
	u, ok := s.grantAliveLocked(g)
	s.mu.Unlock()
	if !ok {
		return nil, invalidGrant("user or session is gone")
	}
	resp, err := s.issue(g, u, code.nonce, "")
	if err != nil {
		return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: err.Error()}
	}
	return resp, nil
}

// refreshGrant answers with the user's current claims; the refresh token is rotated unless
// DisableRefreshRotation.
func (s *Server) refreshGrant(c Client, form url.Values) (map[string]any, *oauthError) {
	tok := form.Get("refresh_token")
	s.mu.Lock()
	rt := s.refresh[tok]
	if g := s.usedRT[tok]; rt == nil && g != nil && s.opts.RefreshReuseRevokesGrant {
		g.revoked = true // reuse detected: the whole grant goes, the successor token too
	}
	if rt == nil || rt.g.clientID != c.ID {
		s.mu.Unlock()
		return nil, invalidGrant("unknown, used or revoked refresh token")
	}
	u, ok := s.grantAliveLocked(rt.g)
	if !ok {
		s.mu.Unlock()
		return nil, invalidGrant("user, session or grant is gone")
	}
	keep := ""
	if s.opts.DisableRefreshRotation {
		keep = tok
	} else {
		delete(s.refresh, tok)
		s.usedRT[tok] = rt.g
	}
	s.refreshLog = append(s.refreshLog, Refresh{Subject: rt.g.sub, SID: rt.g.sid, At: s.now()})
	s.mu.Unlock()
	resp, err := s.issue(rt.g, u, "", keep)
	if err != nil {
		return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: err.Error()}
	}
	return resp, nil
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// validPKCE checks the RFC 7636 syntax shared by code_verifier and an S256 code_challenge
// (43 to 128 unreserved characters).
func validPKCE(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_', r == '~':
		default:
			return false
		}
	}
	return true
}
