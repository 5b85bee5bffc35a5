package oidc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"

	"golang.org/x/oauth2"
)

// Login is the per-attempt secret state of one authorization-code flow. The proxy seals it into a
// short-lived cookie keyed by State, so several tabs can log in at once.
type Login struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	// RedirectURL is the callback of this login when it is not Config.RedirectURL: a site served
	// under several hosts sends each login back to the host it started on. The code is redeemed
	// with the same value, as OAuth 2.0 requires (RFC 6749 §4.1.3).
	RedirectURL string `json:"r,omitempty"`
}

// NewLogin makes fresh random state, nonce and PKCE verifier.
func NewLogin() Login {
	return Login{State: random(24), Nonce: random(24), Verifier: oauth2.GenerateVerifier()}
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

// AuthCodeURL is where the browser is sent to log in: code flow with PKCE S256 and a nonce.
func (c *Client) AuthCodeURL(l Login) (string, error) {
	p, err := c.provider("authorize")
	if err != nil {
		return "", err
	}
	return p.loginConfig(l, "").AuthCodeURL(l.State,
		oauth2.S256ChallengeOption(l.Verifier),
		oauth2.SetAuthURLParam("nonce", l.Nonce)), nil
}

// Exchange turns the callback's code into a verified Identity: it redeems the code with the PKCE
// verifier, verifies the ID token (signature against the JWKS, iss, aud, exp) and its nonce, then asks
// the userinfo endpoint, which must answer for the same sub.
func (c *Client) Exchange(ctx context.Context, code string, l Login) (Identity, Tokens, error) {
	p, err := c.provider("exchange")
	if err != nil {
		return Identity{}, Tokens{}, err
	}
	ctx = c.ctx(ctx, "exchange")
	tok, err := p.loginConfig(l, c.cfg.ClientSecret()).Exchange(ctx, code, oauth2.VerifierOption(l.Verifier))
	if err != nil {
		e := classify("exchange", err)
		c.noteAuthenticated(e)
		if KindOf(e) == Revoked { // invalid_grant on a code is a bad code, not a revoked user
			e = invalid("exchange", err)
		}
		return Identity{}, Tokens{}, e
	}
	c.noteAuthenticated(nil)
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return Identity{}, Tokens{}, invalid("exchange", errors.New("token response has no id_token"))
	}
	idt, err := c.verify(ctx, p, p.idVerifier, "verify id_token", rawID)
	if err != nil {
		return Identity{}, Tokens{}, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(l.Nonce)) != 1 || l.Nonce == "" {
		return Identity{}, Tokens{}, invalid("verify id_token", errors.New("nonce does not match this login"))
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, Tokens{}, invalid("verify id_token", err)
	}
	if p.userinfo != "" {
		ui, err := c.userinfo(ctx, p, tok.AccessToken)
		if err != nil {
			return Identity{}, Tokens{}, err
		}
		if ui["sub"] != idt.Subject {
			return Identity{}, Tokens{}, invalid("userinfo", fmt.Errorf("userinfo sub does not match the ID token's"))
		}
		claims = merge(maps.Clone(claims), ui, c.cfg.EmailVerifiedClaim)
	}
	t := Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, IDToken: rawID, Expiry: tok.Expiry}
	return c.identity(claims), t, nil
}

// loginConfig is the oauth2 config of one login: its own callback, when it has one.
func (p *provider) loginConfig(l Login, secret string) *oauth2.Config {
	cfg := p.oauthConfig(secret)
	if l.RedirectURL != "" {
		cfg.RedirectURL = l.RedirectURL
	}
	return cfg
}

// classifyVerify keeps JWKS fetch failures (IdP down) apart from tokens that do not verify.
func classifyVerify(step string, err error) error {
	e := classify(step, err)
	if KindOf(e) == Unavailable {
		return e
	}
	return invalid(step, err)
}
