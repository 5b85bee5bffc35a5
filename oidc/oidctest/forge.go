package oidctest

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// ForgeAlg names a way to sign a forged token. The attacks are real: the keys are the IdP's own (or a
// real stranger's), so a verifier that accepts one of them has a real hole.
type ForgeAlg string

// The forgeries a relying party must tell apart: only ForgeRS256 is genuine.
const (
	// ForgeRS256 signs with the IdP's current key and kid: a genuine token with chosen claims.
	ForgeRS256 ForgeAlg = "RS256"
	// ForgeNone is an unsigned token (alg "none", empty signature) naming the current kid.
	ForgeNone ForgeAlg = "none"
	// ForgeHS256PublicKey is HS256 keyed with the PEM (PKIX "PUBLIC KEY") of the current RSA public
	// key, the classic algorithm-confusion attack.
	ForgeHS256PublicKey ForgeAlg = "HS256-pubkey"
	// ForgeUnknownKey is RS256 signed by a fresh RSA key whose kid is not in the JWKS.
	ForgeUnknownKey ForgeAlg = "RS256-unknown-kid"
)

// Forge signs claims as alg says, for negative tests of token verification. The typ header is
// "JWT". It panics on an unknown alg or claims that cannot be encoded: the test is wrong.
func (s *Server) Forge(alg ForgeAlg, claims map[string]any) string {
	claims = normalizeTimes(claims)
	cur := s.currentKey()
	var (
		out string
		err error
	)
	switch alg {
	case ForgeRS256:
		out, err = signRS256(cur, claims, "JWT")
	case ForgeNone:
		t := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(claims))
		t.Header["kid"] = cur.id
		out, err = t.SignedString(jwt.UnsafeAllowNoneSignatureType)
	case ForgeHS256PublicKey:
		var der []byte
		if der, err = x509.MarshalPKIXPublicKey(&cur.priv.PublicKey); err == nil {
			t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims))
			t.Header["kid"] = cur.id
			out, err = t.SignedString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		}
	case ForgeUnknownKey:
		var k *signingKey
		if k, err = s.strangerKey(); err == nil {
			out, err = signRS256(k, claims, "JWT")
		}
	default:
		panic(fmt.Sprintf("oidctest: Forge: unknown alg %q", alg))
	}
	if err != nil {
		panic(fmt.Sprintf("oidctest: Forge(%s): %v", alg, err))
	}
	return out
}

// strangerKey is made once, on first use: key generation is slow under -race.
func (s *Server) strangerKey() (*signingKey, error) {
	s.mu.Lock()
	k := s.stranger
	s.mu.Unlock()
	if k != nil {
		return k, nil
	}
	k, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stranger == nil {
		s.stranger = k
	}
	return s.stranger, nil
}

// IDTokenClaims returns the claims of a valid ID token for sub at client aud (with nonce, if not
// empty), in a new IdP session (sid), to start a forgery from. A sub that is not a user gets the
// registered claims only.
func (s *Server) IDTokenClaims(sub, aud, nonce string) map[string]any {
	s.mu.Lock()
	u, ok := s.userLocked(sub)
	sid := s.newSessionLocked(sub)
	s.mu.Unlock()
	if !ok {
		u = User{Subject: sub}
	}
	return s.idTokenClaims(u, aud, sid, nonce, "", s.now())
}

// AccessToken mints an access token for sub at the first client, in a new IdP session, and registers
// it so userinfo and introspection accept it; mutate may change its claims first (aud, exp, scope,
// …), and userinfo and introspection then judge the token by the changed claims. With
// OpaqueAccessTokens the token is an opaque string described by those claims. It panics if the
// claims cannot be signed: the test is wrong.
func (s *Server) AccessToken(sub string, mutate func(claims map[string]any)) string {
	now := s.now()
	s.mu.Lock()
	g := &grant{
		clientID: s.opts.Clients[0].ID, sub: sub, sid: s.newSessionLocked(sub),
		scope: "openid email profile", authTime: now,
	}
	s.mu.Unlock()
	tok, err := s.mintAccess(g, mutate)
	if err != nil {
		panic(fmt.Sprintf("oidctest: AccessToken: %v", err))
	}
	return tok
}
