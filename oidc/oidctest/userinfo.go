package oidctest

import (
	"net/http"
	"strings"
)

// handleUserinfo answers with the user's current claims for a live access token (OIDC Core §5.3),
// and 401 with a WWW-Authenticate challenge otherwise, as RFC 6750 §3 has it.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	tok, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="oidctest"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_request", "error_description": "no bearer token"})
		return
	}
	s.mu.Lock()
	u, alive := s.accessAliveLocked(s.access[tok])
	override, mutate := s.uiSubject[u.Subject], s.uiMutate[u.Subject]
	s.mu.Unlock()
	if !alive {
		w.Header().Set("WWW-Authenticate", `Bearer realm="oidctest", error="invalid_token", error_description="the access token is unknown, expired or revoked"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token", "error_description": "the access token is unknown, expired or revoked"})
		return
	}
	claims := userClaims(u)
	if mutate != nil {
		mutate(claims)
	}
	if override != "" {
		claims["sub"] = override
	}
	writeJSON(w, http.StatusOK, claims)
}

func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

// handleIntrospect is RFC 7662: any authenticated client may ask about any token. Live tokens come
// with the user's current claims, so a relying party that can only introspect still sees changes.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	if _, oerr := s.authenticateClient(r); oerr != nil {
		oerr.write(w)
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		badRequest("invalid_request", "token is required").write(w)
		return
	}
	inactive := map[string]any{"active": false}
	s.mu.Lock()
	at, rt := s.access[tok], s.refresh[tok]
	var u User
	alive := false
	switch {
	case at != nil:
		u, alive = s.accessAliveLocked(at)
	case rt != nil:
		u, alive = s.grantAliveLocked(rt.g)
	}
	s.mu.Unlock()
	if !alive {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	resp := userClaims(u)
	resp["active"] = true
	resp["iss"] = s.url
	if u.PreferredUsername != "" {
		resp["username"] = u.PreferredUsername
	}
	if at != nil {
		resp["sub"] = at.sub
		resp["client_id"] = at.clientID
		resp["scope"] = at.scope
		resp["aud"] = at.aud
		resp["iat"] = at.iat.Unix()
		if !at.exp.IsZero() {
			resp["exp"] = at.exp.Unix()
		}
		resp["token_type"] = "Bearer"
		resp["sid"] = at.sid
	} else {
		resp["client_id"] = rt.g.clientID
		resp["scope"] = rt.g.scope
		resp["aud"] = []string{rt.g.clientID}
		resp["iat"] = rt.iat.Unix()
		resp["token_type"] = "refresh_token"
		resp["sid"] = rt.g.sid
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleRevoke is RFC 7009: a client revokes its own access or refresh token; unknown tokens and
// other clients' tokens are answered 200 as well, so nothing can be probed.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	c, oerr := s.authenticateClient(r)
	if oerr != nil {
		oerr.write(w)
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		badRequest("invalid_request", "token is required").write(w)
		return
	}
	s.mu.Lock()
	s.revokeLocked(tok, c.ID)
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// revokeLocked revokes an access token alone, or a refresh token with its whole grant (every access
// token issued from the same login, RFC 7009 §2.1). clientID "" skips the ownership check.
func (s *Server) revokeLocked(tok, clientID string) {
	if at := s.access[tok]; at != nil && (clientID == "" || at.g.clientID == clientID) {
		at.revoked = true
	}
	if rt := s.refresh[tok]; rt != nil && (clientID == "" || rt.g.clientID == clientID) {
		rt.g.revoked = true
		delete(s.refresh, tok)
	}
}
