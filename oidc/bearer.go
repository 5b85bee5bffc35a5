package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// ErrAudience means a bearer token was not issued to zdgate: its aud, or for an opaque token the
// client_id or aud that introspection reports, names neither ClientID nor one of Audiences, or an
// opaque token came from an IdP that cannot say to whom it was issued (no introspection). It is
// wrapped in an *Error of Kind Invalid; test with errors.Is.
var ErrAudience = errors.New("bearer token not issued to this client or its audiences")

// VerifyBearer checks an access token that a native app sent as "Authorization: Bearer". A JWT is
// verified against the IdP's keys (asymmetric algorithms only, iss, exp, and aud in ClientID or
// Audiences). An opaque token must be active at RFC 7662 introspection and issued to ClientID or
// one of Audiences (client_id or aud); without introspection it is refused (ErrAudience) unless
// InsecureBearerUserinfo. Either way the user is then confirmed at userinfo when the IdP has one,
// so a deleted user's unexpired JWT is refused. The returned Tokens carry the access token, so a
// later Recheck can use it.
func (c *Client) VerifyBearer(ctx context.Context, token string) (Identity, Tokens, error) {
	p, err := c.provider("bearer")
	if err != nil {
		return Identity{}, Tokens{}, err
	}
	ctx = c.ctx(ctx, "bearer")
	t := Tokens{AccessToken: token}
	var claims map[string]any
	if strings.Count(token, ".") == 2 {
		at, err := c.verify(ctx, p, p.atVerifier, "bearer", token)
		if err != nil {
			return Identity{}, t, err
		}
		if !slices.ContainsFunc(at.Audience, c.audienceOK) {
			return Identity{}, t, invalid("bearer", fmt.Errorf("%w: aud is %q", ErrAudience, at.Audience))
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
			client, _ := claims["client_id"].(string)
			aud := audiences(claims["aud"])
			if !c.audienceOK(client) && !slices.ContainsFunc(aud, c.audienceOK) {
				return Identity{}, t, invalid("bearer", fmt.Errorf("%w: introspection says client_id %q, aud %q", ErrAudience, truncate(client, 128), aud))
			}
			if exp, ok := claims["exp"].(float64); ok {
				t.Expiry = time.Unix(int64(exp), 0)
			}
		case c.cfg.InsecureBearerUserinfo && p.userinfo != "":
			// Userinfo below is the only check: any client's token for this user passes.
		default:
			return Identity{}, t, invalid("bearer", fmt.Errorf("%w: an opaque token, and the IdP offers no introspection to say to whom it was issued", ErrAudience))
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

// BearerAudienceChecked reports whether this IdP lets opaque bearer tokens be checked for the
// client they were issued to (an introspection endpoint, and a client secret to call it); false
// means they are refused, or with InsecureBearerUserinfo accepted after userinfo alone. JWT access
// tokens are always checked by their aud. Meaningful after Discover.
func (c *Client) BearerAudienceChecked() bool {
	p := c.state.Load()
	return p != nil && p.introspect != "" && c.cfg.ClientSecret() != ""
}

func (c *Client) audienceOK(aud string) bool {
	return aud != "" && (aud == c.cfg.ClientID || slices.Contains(c.cfg.Audiences, aud))
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

// backchannelEvent marks a JWT as a logout token (OIDC Back-Channel Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutClaims are the claims of a logout token that VerifyLogout checks.
type logoutClaims struct {
	Issuer   string                     `json:"iss"`
	Audience json.RawMessage            `json:"aud"`
	Subject  string                     `json:"sub"`
	SID      string                     `json:"sid"`
	JTI      string                     `json:"jti"`
	IssuedAt json.RawMessage            `json:"iat"`
	Expiry   json.RawMessage            `json:"exp"`
	Nonce    json.RawMessage            `json:"nonce"`
	Events   map[string]json.RawMessage `json:"events"`
}

// VerifyLogout checks a back-channel logout token (OIDC Back-Channel Logout 1.0 §2.6): signed by
// the IdP with an asymmetric algorithm, iss, aud naming ClientID, the backchannel-logout event (a
// JSON object), no nonce, sub or sid, iat within LogoutSkew of now, exp not passed when present,
// and a jti not seen before (replays are refused while the token could still be valid).
//
// exp may be absent. The 1.0 final text (2022) did not require it, Ory Hydra sends none, and
// errata set 1 (2023) made it required; go-oidc follows the errata, so these checks are made here.
// Without exp the token is bounded by iat and the skew alone. Every refusal says why.
func (c *Client) VerifyLogout(ctx context.Context, raw string) (Logout, error) {
	const step = "backchannel_logout"
	p, err := c.provider(step)
	if err != nil {
		return Logout{}, err
	}
	payload, err := p.keys.VerifySignature(c.ctx(ctx, step), raw)
	if err != nil {
		return Logout{}, classifyVerify(step, err)
	}
	var lt logoutClaims
	if err := json.Unmarshal(payload, &lt); err != nil {
		return Logout{}, invalid(step, fmt.Errorf("logout token claims: %w", err))
	}
	now := c.cfg.Now()
	bad := func(format string, a ...any) (Logout, error) {
		return Logout{}, invalid(step, fmt.Errorf("logout token "+format, a...))
	}
	switch {
	case lt.Issuer != c.cfg.Issuer:
		return bad("iss %q is not the issuer", truncate(lt.Issuer, 128))
	case !slices.Contains(audiences(rawAudience(lt.Audience)), c.cfg.ClientID):
		return bad("aud does not name client %q", c.cfg.ClientID)
	case len(lt.Events[backchannelEvent]) == 0 || lt.Events[backchannelEvent][0] != '{':
		return bad("has no %s event", backchannelEvent)
	case lt.Nonce != nil:
		return bad("carries a nonce (an ID token, not a logout token)")
	case lt.Subject == "" && lt.SID == "":
		return bad("names neither sub nor sid")
	case lt.JTI == "":
		return bad("has no jti")
	case lt.IssuedAt == nil:
		return bad("has no iat")
	}
	iat, err := numericDate(lt.IssuedAt)
	if err != nil {
		return bad("iat: %v", err)
	}
	if d := now.Sub(iat); d > c.cfg.LogoutSkew || d < -c.cfg.LogoutSkew {
		return bad("iat is %v from now, more than the allowed %v", d.Round(time.Second), c.cfg.LogoutSkew)
	}
	exp := time.Time{}
	if lt.Expiry != nil {
		if exp, err = numericDate(lt.Expiry); err != nil {
			return bad("exp: %v", err)
		}
		if !now.Before(exp) {
			return bad("expired %v ago", now.Sub(exp).Round(time.Second))
		}
	}
	if !c.rememberJTI(lt.JTI, iat, exp, now) {
		return bad("jti was already used")
	}
	return Logout{Subject: lt.Subject, SID: lt.SID}, nil
}

// numericDate reads a JWT NumericDate (seconds, possibly fractional).
func numericDate(raw json.RawMessage) (time.Time, error) {
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f < 0 || f > 1<<40 {
		return time.Time{}, fmt.Errorf("not a NumericDate: %s", truncate(string(raw), 32))
	}
	return time.Unix(int64(f), 0), nil
}

func rawAudience(raw json.RawMessage) any {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	return v
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// maxJTIs bounds the replay cache; entries leave it when their token can no longer pass.
const maxJTIs = 100_000

// rememberJTI records a logout token's jti, or reports false if it was seen before (a replay) or
// the replay cache is full of tokens that could still pass: refuse rather than forget. An entry is
// kept while a replay would pass the other checks: until exp, and no longer than iat stays within
// the allowed skew.
func (c *Client) rememberJTI(jti string, iat, exp, now time.Time) bool {
	until := iat.Add(c.cfg.LogoutSkew + time.Nanosecond)
	if !exp.IsZero() && exp.Before(until) {
		until = exp
	}
	return c.seenJTIs.AddNew(jti, struct{}{}, until, now)
}
