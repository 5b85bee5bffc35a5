package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// signingKey is one RSA key of the IdP; kid names it in token headers and in the JWKS.
type signingKey struct {
	id   string
	priv *rsa.PrivateKey
}

func newSigningKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("oidctest: generate RSA key: %w", err)
	}
	return &signingKey{id: randomHex(8), priv: priv}, nil
}

// RotateKeys makes a new RSA key (with a new kid) sign everything from now on. The JWKS serves the
// new key and the previous one, as a provider does during a rollover, so that relying parties must
// refetch the JWKS on an unknown kid.
func (s *Server) RotateKeys() {
	k, err := newSigningKey()
	if err != nil {
		panic(err) // crypto/rand failing leaves nothing sensible to do in a test IdP
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
	s.published = min(2, len(s.keys))
}

// DropOldKeys makes the JWKS serve only the current key, ending a rollover: tokens signed by older
// keys no longer verify for a relying party that fetches the JWKS afresh.
func (s *Server) DropOldKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = 1
}

func (s *Server) currentKey() *signingKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1]
}

func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	pub := slices.Clone(s.keys[len(s.keys)-s.published:])
	s.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, k := range slices.Backward(pub) { // newest first
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key: &k.priv.PublicKey, KeyID: k.id, Use: "sig", Algorithm: string(jose.RS256),
		})
	}
	writeJSON(w, http.StatusOK, set)
}

// signRS256 signs claims with k, naming k in the kid header; typ sets the typ header ("JWT",
// "at+jwt", "logout+jwt").
func signRS256(k *signingKey, claims map[string]any, typ string) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(normalizeTimes(claims)))
	t.Header["kid"] = k.id
	t.Header["typ"] = typ
	out, err := t.SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("oidctest: sign: %w", err)
	}
	return out, nil
}

// sign signs with the current key.
func (s *Server) sign(claims map[string]any, typ string) (string, error) {
	return signRS256(s.currentKey(), claims, typ)
}

// normalizeTimes turns time.Time values of the time claims into seconds, so a test's mutate
// function may write claims["exp"] = time.Now().Add(-time.Hour).
func normalizeTimes(claims map[string]any) map[string]any {
	for _, name := range []string{"exp", "iat", "nbf", "auth_time"} {
		if t, ok := claims[name].(time.Time); ok {
			claims[name] = t.Unix()
		}
	}
	return claims
}

// parseOurs checks that raw was signed by one of the IdP's keys (published or not) and issued by
// it; expiry is ignored, as for an id_token_hint.
func (s *Server) parseOurs(raw string) (jwt.MapClaims, error) {
	s.mu.Lock()
	keys := slices.Clone(s.keys)
	s.mu.Unlock()
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range keys {
			if k.id == kid {
				return &k.priv.PublicKey, nil
			}
		}
		return nil, errors.New("unknown kid")
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		return nil, err
	}
	if typ, _ := tok.Header["typ"].(string); typ != "JWT" {
		return nil, fmt.Errorf("typ %q is not an ID token", typ)
	}
	if iss, _ := claims["iss"].(string); iss != s.url {
		return nil, fmt.Errorf("issuer %q is not %q", iss, s.url)
	}
	return claims, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}

// randomToken is an unguessable opaque value for codes, tokens, session ids and jti.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "oidctest: cannot encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
