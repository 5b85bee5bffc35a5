package oidctest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// What the IdP remembers. Every map is guarded by Server.mu.

// authCode is an authorization code: single use, bound to everything the token request must repeat.
type authCode struct {
	clientID, redirectURI, challenge, nonce, sub, scope, sid string
	authTime, expires                                        time.Time
	used                                                     bool
	g                                                        *grant // set when exchanged, so a replay can revoke it
}

// grant is one login of one user at one client: the tokens issued from one code, including every
// refresh. Revoking it (refresh token revocation, code replay, user deletion) kills them all.
type grant struct {
	clientID, sub, sid, scope string
	authTime                  time.Time
	revoked                   bool
}

// accessToken is what the token says (read back from its claims, so a test's mutate function
// changes what userinfo and introspection answer too).
type accessToken struct {
	g                         *grant
	sub, clientID, scope, sid string
	aud                       []string
	iat, exp                  time.Time // exp zero: never expires
	revoked                   bool
}

type refreshToken struct {
	g   *grant
	iat time.Time
}

// idpSession is the IdP's own login session, named by the sid claim; RP-initiated or back-channel
// logout ends it, and with it every token issued in it.
type idpSession struct {
	sub   string
	ended bool
}

const codeTTL = 2 * time.Minute

func (s *Server) userLocked(sub string) (User, bool) {
	for _, u := range s.users {
		if u.Subject == sub {
			return cloneUser(u), true
		}
	}
	return User{}, false
}

func (s *Server) sessionEndedLocked(sid string) bool {
	sess := s.sessions[sid]
	return sess != nil && sess.ended
}

func (s *Server) newSessionLocked(sub string) string {
	sid := randomToken()[:22]
	s.sessions[sid] = &idpSession{sub: sub}
	return sid
}

// endSessionsLocked ends session sid, or every session of sub when sid is empty.
func (s *Server) endSessionsLocked(sub, sid string) {
	for id, sess := range s.sessions {
		if id == sid || (sid == "" && sess.sub == sub) {
			sess.ended = true
		}
	}
}

func (s *Server) grantAliveLocked(g *grant) (User, bool) {
	if g.revoked || s.sessionEndedLocked(g.sid) {
		return User{}, false
	}
	return s.userLocked(g.sub)
}

// accessAliveLocked reports whether userinfo and introspection should accept the token, and for whom.
func (s *Server) accessAliveLocked(at *accessToken) (User, bool) {
	if at == nil || at.revoked || at.g.revoked || s.sessionEndedLocked(at.sid) {
		return User{}, false
	}
	if !at.exp.IsZero() && !s.now().Before(at.exp) {
		return User{}, false
	}
	return s.userLocked(at.sub)
}

// userClaims are the claims about u that ID tokens, userinfo and introspection share.
func userClaims(u User) map[string]any {
	c := map[string]any{}
	for k, v := range u.Extra {
		c[k] = v
	}
	c["sub"] = u.Subject
	if u.Email != "" {
		c["email"] = u.Email
		c["email_verified"] = u.EmailVerified
	}
	if u.Name != "" {
		c["name"] = u.Name
	}
	if u.PreferredUsername != "" {
		c["preferred_username"] = u.PreferredUsername
	}
	if u.Groups != nil {
		c["groups"] = slices.Clone(u.Groups)
	}
	return c
}

// idTokenClaims builds the claims of an ID token for u at clientID; nonce and accessToken may be
// empty (a refreshed ID token has no nonce).
func (s *Server) idTokenClaims(u User, clientID, sid, nonce, accessToken string, authTime time.Time) map[string]any {
	now := s.now()
	c := userClaims(u)
	c["iss"] = s.url
	c["aud"] = clientID
	c["azp"] = clientID
	c["iat"] = now.Unix()
	c["exp"] = now.Add(s.opts.IDTokenTTL).Unix()
	c["auth_time"] = authTime.Unix()
	if sid != "" {
		c["sid"] = sid
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c["at_hash"] = base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	}
	return c
}

// issueIDToken applies the one-shot NextIDToken / NextIDTokenRaw hooks, then signs.
func (s *Server) issueIDToken(claims map[string]any) (string, error) {
	s.mu.Lock()
	mutate, raw := s.nextMutate, s.nextRaw
	s.nextMutate, s.nextRaw = nil, nil
	s.mu.Unlock()
	if mutate != nil {
		mutate(claims)
	}
	if raw != nil {
		return raw(claims), nil
	}
	return s.sign(claims, "JWT")
}

// mintAccess issues and registers an access token of g; mutate may change its claims first.
func (s *Server) mintAccess(g *grant, mutate func(map[string]any)) (string, error) {
	now := s.now()
	claims := map[string]any{
		"iss":       s.url,
		"sub":       g.sub,
		"aud":       slices.Concat([]string{g.clientID}, s.opts.AccessTokenAudiences),
		"exp":       now.Add(s.opts.AccessTokenTTL).Unix(),
		"iat":       now.Unix(),
		"jti":       randomToken(),
		"scope":     g.scope,
		"client_id": g.clientID,
		"sid":       g.sid,
	}
	if mutate != nil {
		mutate(claims)
	}
	normalizeTimes(claims)
	tok := randomToken()
	if !s.opts.OpaqueAccessTokens {
		var err error
		if tok, err = s.sign(claims, "at+jwt"); err != nil {
			return "", err
		}
	}
	str := func(name string) string { v, _ := claims[name].(string); return v }
	rec := &accessToken{
		g: g, sub: str("sub"), clientID: str("client_id"), scope: str("scope"), sid: str("sid"),
		aud: audience(claims["aud"]), iat: unixClaim(claims["iat"]), exp: unixClaim(claims["exp"]),
	}
	s.mu.Lock()
	s.access[tok] = rec
	s.mu.Unlock()
	return tok, nil
}

func (s *Server) mintRefresh(g *grant) string {
	tok := randomToken()
	s.mu.Lock()
	s.refresh[tok] = &refreshToken{g: g, iat: s.now()}
	s.mu.Unlock()
	return tok
}

// issue answers a successful token request: an access token, an ID token with u's current claims,
// and a refresh token when the scope has offline_access (refresh, if not empty, is handed back
// instead of a new one: no rotation).
func (s *Server) issue(g *grant, u User, nonce, refresh string) (map[string]any, error) {
	at, err := s.mintAccess(g, nil)
	if err != nil {
		return nil, err
	}
	idt, err := s.issueIDToken(s.idTokenClaims(u, g.clientID, g.sid, nonce, at, g.authTime))
	if err != nil {
		return nil, err
	}
	resp := map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   int64(s.opts.AccessTokenTTL / time.Second),
		"id_token":     idt,
		"scope":        g.scope,
	}
	if hasScope(g.scope, "offline_access") {
		if refresh == "" {
			refresh = s.mintRefresh(g)
		}
		resp["refresh_token"] = refresh
	}
	return resp, nil
}

func hasScope(scope, want string) bool {
	return slices.Contains(strings.Fields(scope), want)
}

// audience reads an aud claim: a string or a list of strings.
func audience(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []string:
		return slices.Clone(a)
	case []any:
		var out []string
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case jwt.ClaimStrings:
		return slices.Clone(a)
	}
	return nil
}

// unixClaim reads a NumericDate claim as a test may have written it; zero if absent.
func unixClaim(v any) time.Time {
	var secs float64
	switch n := v.(type) {
	case int:
		secs = float64(n)
	case int64:
		secs = float64(n)
	case float64:
		secs = n
	case json.Number:
		secs, _ = n.Float64()
	case time.Time:
		return n
	case *jwt.NumericDate:
		if n != nil {
			return n.Time
		}
		return time.Time{}
	case jwt.NumericDate:
		return n.Time
	default:
		return time.Time{}
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9))
}
