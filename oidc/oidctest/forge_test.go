package oidctest

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
)

func header(t *testing.T, raw string) map[string]any {
	t.Helper()
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestForgeriesAreRejectedByGoOIDC(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	claims := s.IDTokenClaims("user-1", "zdgate", "n-1")
	kid := jwksKids(t, s)[0]

	tests := []struct {
		alg     ForgeAlg
		wantAlg string
		valid   bool
	}{
		{ForgeRS256, "RS256", true},
		{ForgeNone, "none", false},
		{ForgeHS256PublicKey, "HS256", false},
		{ForgeUnknownKey, "RS256", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.alg), func(t *testing.T) {
			raw := s.Forge(tt.alg, maps.Clone(claims))
			h := header(t, raw)
			if h["alg"] != tt.wantAlg {
				t.Errorf("alg = %v; want %s", h["alg"], tt.wantAlg)
			}
			if (h["kid"] == kid) == (tt.alg == ForgeUnknownKey) {
				t.Errorf("kid = %v; JWKS kid %s", h["kid"], kid)
			}
			idt, err := p.verifier.Verify(p.ctx, raw)
			if tt.valid {
				if err != nil || idt.Nonce != "n-1" || idt.Subject != "user-1" {
					t.Fatalf("Verify = %v; want a valid token for user-1 with nonce n-1", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("go-oidc accepted a %s forgery", tt.alg)
			}
		})
	}

	// The HS256 forgery is a real algorithm-confusion token: it verifies with the public key's PEM.
	der, _ := x509.MarshalPKIXPublicKey(&s.currentKey().priv.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	_, err := jwt.Parse(s.Forge(ForgeHS256PublicKey, maps.Clone(claims)), func(*jwt.Token) (any, error) { return pemKey, nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		t.Errorf("HS256 forgery does not verify with the public key PEM: %v", err)
	}
}

func TestNextIDToken(t *testing.T) {
	s := NewT(t, Options{})
	p := newRP(t, s)
	exchange := func() *oauth2.Token {
		t.Helper()
		v := oauth2.GenerateVerifier()
		code := p.authorize(t, "s", oauth2.S256ChallengeOption(v), gooidc.Nonce("right"))
		tok, err := p.conf.Exchange(p.ctx, code, oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	verify := func(tok *oauth2.Token) (*gooidc.IDToken, error) {
		return p.verifier.Verify(p.ctx, tok.Extra("id_token").(string))
	}

	s.NextIDToken(func(c map[string]any) { c["nonce"] = "wrong" })
	if idt, err := verify(exchange()); err != nil || idt.Nonce != "wrong" {
		t.Errorf("mutated nonce: %v, %v; want a valid token with nonce wrong", idt, err)
	}
	if idt, err := verify(exchange()); err != nil || idt.Nonce != "right" {
		t.Errorf("NextIDToken is not one-shot: %v, %v", idt, err)
	}

	for name, mutate := range map[string]func(map[string]any){
		"aud": func(c map[string]any) { c["aud"] = "someone-else" },
		"iss": func(c map[string]any) { c["iss"] = "https://evil.example" },
		"exp": func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour) },
	} {
		s.NextIDToken(mutate)
		if _, err := verify(exchange()); err == nil {
			t.Errorf("ID token with a bad %s verified", name)
		}
	}

	s.NextIDTokenRaw(func(c map[string]any) string { return s.Forge(ForgeNone, c) })
	if _, err := verify(exchange()); err == nil {
		t.Errorf("alg=none ID token from NextIDTokenRaw verified")
	}

	// The refresh grant takes the hook too.
	tok := exchange()
	s.NextIDToken(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	tok2, err := p.refresh(tok)
	if err != nil {
		t.Fatal(err)
	}
	var te *gooidc.TokenExpiredError
	if _, err := verify(tok2); !errors.As(err, &te) {
		t.Errorf("refreshed ID token with a past exp: %v; want TokenExpiredError", err)
	}
}
