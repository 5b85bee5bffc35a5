package oidc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// VerifyBearer checks an access token that a native app sent as "Authorization: Bearer". A JWT is
// verified against the IdP's JWKS (asymmetric algorithms only, iss, exp, and aud in ClientID or
// Audiences); an opaque token is introspected (or, without introspection, sent to userinfo). Either
// way the user is then confirmed at userinfo when the IdP has one, so a deleted user's unexpired JWT
// is refused. The returned Tokens carry the access token, so a later Recheck can use it.
func (c *Client) VerifyBearer(ctx context.Context, token string) (Identity, Tokens, error) {
	p, err := c.provider("bearer")
	if err != nil {
		return Identity{}, Tokens{}, err
	}
	ctx = c.ctx(ctx, "bearer")
	t := Tokens{AccessToken: token}
	var claims map[string]any
	if strings.Count(token, ".") == 2 {
		at, err := p.atVerifier.Verify(ctx, token)
		if err != nil {
			return Identity{}, t, classifyVerify("bearer", err)
		}
		if !slices.ContainsFunc(at.Audience, c.audienceOK) {
			return Identity{}, t, invalid("bearer", fmt.Errorf("audience %q is not accepted", at.Audience))
		}
		if err := at.Claims(&claims); err != nil {
			return Identity{}, t, invalid("bearer", err)
		}
		if at.Subject == "" {
			return Identity{}, t, invalid("bearer", errors.New("token has no sub"))
		}
		t.Expiry = at.Expiry
	} else {
		switch {
		case p.introspect != "" && c.cfg.ClientSecret() != "":
			claims, err = c.introspect(ctx, p, token)
			if err != nil {
				return Identity{}, t, err
			}
			if aud := audiences(claims["aud"]); len(aud) > 0 && !slices.ContainsFunc(aud, c.audienceOK) {
				return Identity{}, t, invalid("bearer", fmt.Errorf("audience %q is not accepted", aud))
			}
			if exp, ok := claims["exp"].(float64); ok {
				t.Expiry = time.Unix(int64(exp), 0)
			}
		case p.userinfo != "":
			// userinfo below is the check.
		default:
			return Identity{}, t, invalid("bearer", errors.New("opaque token and the IdP offers neither introspection nor userinfo"))
		}
	}
	if p.userinfo != "" {
		ui, err := c.userinfo(ctx, p, token)
		if err != nil {
			return Identity{}, t, err
		}
		if sub, _ := claims["sub"].(string); sub != "" && ui["sub"] != sub {
			return Identity{}, t, invalid("bearer", errors.New("userinfo sub does not match the token's"))
		}
		claims = merge(maps.Clone(claims), ui, c.cfg.EmailVerifiedClaim)
	}
	if s, _ := claims["sub"].(string); s == "" {
		return Identity{}, t, invalid("bearer", errors.New("token has no sub"))
	}
	return c.identity(claims), t, nil
}

func (c *Client) audienceOK(aud string) bool {
	return aud == c.cfg.ClientID || slices.Contains(c.cfg.Audiences, aud)
}

func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Logout is a verified back-channel logout request: end the sessions of SID, or of Subject when SID
// is empty.
type Logout struct {
	Subject string
	SID     string
}

// VerifyLogout checks a back-channel logout token (OIDC Back-Channel Logout 1.0): signature, iss,
// aud, exp, the backchannel-logout event, no nonce, sub or sid, iat within LogoutSkew, and a jti not
// seen before (replays are refused while the token could still be valid).
func (c *Client) VerifyLogout(ctx context.Context, raw string) (Logout, error) {
	p, err := c.provider("backchannel_logout")
	if err != nil {
		return Logout{}, err
	}
	lt, err := p.lgVerifier.VerifyLogout(c.ctx(ctx, "backchannel_logout"), raw)
	if err != nil {
		return Logout{}, classifyVerify("backchannel_logout", err)
	}
	now := c.cfg.Now()
	if lt.IssuedAt.IsZero() {
		return Logout{}, invalid("backchannel_logout", errors.New("logout token has no iat"))
	}
	if d := now.Sub(lt.IssuedAt); d > c.cfg.LogoutSkew || d < -c.cfg.LogoutSkew {
		return Logout{}, invalid("backchannel_logout", errors.New("logout token iat is too far from now"))
	}
	if !c.rememberJTI(lt.TokenID, lt.Expiry, now) {
		return Logout{}, invalid("backchannel_logout", errors.New("logout token jti was already used"))
	}
	return Logout{Subject: lt.Subject, SID: lt.SessionID}, nil
}

// maxJTIs bounds the replay cache; entries leave it when their token has expired.
const maxJTIs = 100_000

func (c *Client) rememberJTI(jti string, exp, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, seen := c.seenJTIs[jti]; seen {
		return false
	}
	if len(c.seenJTIs) >= maxJTIs {
		for k, e := range c.seenJTIs {
			if e.Before(now) {
				delete(c.seenJTIs, k)
			}
		}
		if len(c.seenJTIs) >= maxJTIs {
			return false // flooded: refuse rather than forget
		}
	}
	keep := exp
	if min := now.Add(c.cfg.LogoutSkew); keep.Before(min) {
		keep = min
	}
	c.seenJTIs[jti] = keep
	return true
}
