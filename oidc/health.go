package oidc

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
)

// Issuer is the issuer URL this client trusts (Config.Issuer).
func (c *Client) Issuer() string { return c.cfg.Issuer }

// IssuedFor reports whether a token that names iss and aud could be meant for this client: iss is
// its issuer and aud names its client id or one of Config.Audiences. It decides nothing about the
// token's validity; it only picks which client is to verify a token when several IdPs are
// configured.
func (c *Client) IssuedFor(iss string, aud []string) bool {
	return iss == c.cfg.Issuer && slices.ContainsFunc(aud, c.audienceOK)
}

// maxPeek bounds the token PeekIssuer decodes.
const maxPeek = 16 << 10

// PeekIssuer reads iss and aud from a compact JWT WITHOUT checking its signature or anything
// else. Its only use is to choose which client verifies the token (one IdP among several, by
// IssuedFor); the chosen client then verifies it in full. ok is false for anything that is not a
// JWT with a string iss.
func PeekIssuer(raw string) (iss string, aud []string, ok bool) {
	if len(raw) > maxPeek || strings.Count(raw, ".") != 2 {
		return "", nil, false
	}
	_, rest, _ := strings.Cut(raw, ".")
	payload, _, _ := strings.Cut(rest, ".")
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", nil, false
	}
	var claims struct {
		Issuer   string          `json:"iss"`
		Audience json.RawMessage `json:"aud"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Issuer == "" {
		return "", nil, false
	}
	return claims.Issuer, audiences(rawAudience(claims.Audience)), true
}

// Capabilities are what the IdP's discovery document announced, for `config check`.
type Capabilities struct {
	RefreshTokens     bool // the refresh_token grant (grant_types_supported)
	Userinfo          bool
	Introspection     bool
	Revocation        bool
	EndSession        bool // RP-initiated logout
	BackchannelLogout bool // backchannel_logout_supported
}

// Capabilities reports what discovery announced; ok is false before Discover succeeded.
func (c *Client) Capabilities() (caps Capabilities, ok bool) {
	p := c.state.Load()
	if p == nil {
		return Capabilities{}, false
	}
	return Capabilities{
		RefreshTokens: p.refresh, Userinfo: p.userinfo != "", Introspection: p.introspect != "",
		Revocation: p.revocation != "", EndSession: p.endSession != "", BackchannelLogout: p.backchannel,
	}, true
}

// Up reports whether the IdP looks healthy from here: discovered, its latest call did not fail as
// unavailable (the fail-fast breaker is closed; it opens at a failure and closes at the next call
// that works), and it does not refuse zdgate's own client (ConfigProblem). It never calls the IdP.
func (c *Client) Up() bool {
	return c.Ready() && (c.brk == nil || !c.brk.failing()) && c.ConfigProblem() == nil
}
