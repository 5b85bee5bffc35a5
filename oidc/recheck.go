package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Recheck confirms at the IdP that the user of a session is still who they were, and returns their
// current claims and (possibly rotated) tokens. In order of preference: the refresh-token grant when
// there is a refresh token (a refreshed ID token is verified again and must keep the sub), else the
// userinfo endpoint with the access token, else RFC 7662 introspection of the access token. Errors
// are *Error: Revoked means end the session now, Unavailable means fail closed but keep it.
func (c *Client) Recheck(ctx context.Context, t Tokens, sub string) (Identity, Tokens, error) {
	p, err := c.provider("recheck")
	if err != nil {
		return Identity{}, t, err
	}
	ctx = c.ctx(ctx, "recheck")
	switch c.recheckKind(p, t) {
	case "refresh":
		return c.refresh(ctx, p, t, sub)
	case "userinfo":
		claims, err := c.userinfo(ctx, p, t.AccessToken)
		if err != nil {
			return Identity{}, t, err
		}
		if claims["sub"] != sub {
			return Identity{}, t, &Error{Kind: Revoked, Step: "userinfo", Err: errors.New("sub changed")}
		}
		return c.identity(claims), t, nil
	case "introspect":
		claims, err := c.introspect(ctx, p, t.AccessToken)
		if err != nil {
			return Identity{}, t, err
		}
		if claims["sub"] != sub {
			return Identity{}, t, &Error{Kind: Revoked, Step: "introspect", Err: errors.New("sub changed")}
		}
		return c.identity(claims), t, nil
	}
	return Identity{}, t, invalid("recheck", errors.New("session has no refresh token, and neither userinfo nor introspection can check its access token"))
}

// RecheckKind names the way [Client.Recheck] confirms a session with tokens t: "refresh",
// "userinfo" or "introspect"; "none" when it cannot (no such way at this IdP, or the IdP is not
// discovered yet).
func (c *Client) RecheckKind(t Tokens) string {
	p, err := c.provider("recheck")
	if err != nil {
		return "none"
	}
	return c.recheckKind(p, t)
}

// recheckKind is Recheck's order of preference, in one place.
func (c *Client) recheckKind(p *provider, t Tokens) string {
	switch {
	case t.RefreshToken != "":
		return "refresh"
	case t.AccessToken != "" && p.userinfo != "":
		return "userinfo"
	case t.AccessToken != "" && p.introspect != "" && c.cfg.ClientSecret() != "":
		return "introspect"
	}
	return "none"
}

func (c *Client) refresh(ctx context.Context, p *provider, t Tokens, sub string) (Identity, Tokens, error) {
	src := p.oauthConfig(c.cfg.ClientSecret()).TokenSource(withKind(ctx, "refresh"), &oauth2.Token{
		RefreshToken: t.RefreshToken,
		Expiry:       time.Unix(1, 0), // force the grant
	})
	tok, err := src.Token()
	if err != nil {
		err = classify("refresh", err)
		c.noteAuthenticated(err)
		return Identity{}, t, err
	}
	c.noteAuthenticated(nil)
	nt := Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, IDToken: t.IDToken, Expiry: tok.Expiry}
	if nt.RefreshToken == "" {
		nt.RefreshToken = t.RefreshToken // not rotated
	}
	claims := map[string]any{}
	if rawID, _ := tok.Extra("id_token").(string); rawID != "" {
		idt, err := c.verify(ctx, p, p.idVerifier, "refresh id_token", rawID)
		if err != nil {
			return Identity{}, t, err
		}
		if idt.Subject != sub {
			return Identity{}, t, &Error{Kind: Revoked, Step: "refresh id_token", Err: errors.New("sub changed")}
		}
		if err := idt.Claims(&claims); err != nil {
			return Identity{}, t, invalid("refresh id_token", err)
		}
		nt.IDToken = rawID
	}
	if p.userinfo != "" {
		ui, err := c.userinfo(ctx, p, nt.AccessToken)
		if err != nil {
			return Identity{}, nt, err
		}
		if ui["sub"] != sub {
			return Identity{}, nt, &Error{Kind: Revoked, Step: "userinfo", Err: errors.New("sub changed")}
		}
		claims = merge(maps.Clone(claims), ui, c.cfg.EmailVerifiedClaim)
	} else if len(claims) == 0 {
		return Identity{}, nt, invalid("refresh", errors.New("refresh answer has no id_token and the IdP has no userinfo endpoint"))
	}
	return c.identity(claims), nt, nil
}

// introspect asks the RFC 7662 endpoint about a token. active:false is Revoked.
func (c *Client) introspect(ctx context.Context, p *provider, token string) (map[string]any, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(withKind(ctx, "introspect"), http.MethodPost, p.introspect, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, invalid("introspect", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret()))
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, classify("introspect", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		// A 401 here is our client credentials, not the user: fail closed without ending sessions.
		err := &Error{Kind: Unavailable, Step: "introspect", Err: &StatusError{StatusCode: res.StatusCode},
			Misconfigured: res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden}
		c.noteAuthenticated(err)
		return nil, err
	}
	c.noteAuthenticated(nil)
	var claims map[string]any
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&claims); err != nil {
		return nil, invalid("introspect", fmt.Errorf("decode: %w", err))
	}
	if active, _ := claims["active"].(bool); !active {
		return nil, &Error{Kind: Revoked, Step: "introspect", Err: errors.New("token is not active")}
	}
	if exp, ok := claims["exp"].(float64); ok && time.Unix(int64(exp), 0).Before(c.cfg.Now()) {
		return nil, &Error{Kind: Revoked, Step: "introspect", Err: errors.New("token has expired")}
	}
	return claims, nil
}
