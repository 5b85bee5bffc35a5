package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"time"
)

// Identity is a user as the IdP has just confirmed them. Claims holds every claim (ID token merged
// with userinfo, userinfo winning), with email_verified normalised to a JSON boolean.
type Identity struct {
	Subject           string
	Email             string
	EmailVerified     bool
	Name              string
	PreferredUsername string
	Groups            []string
	SID               string
	Claims            map[string]any
}

// LogValue keeps identities out of logs beyond the subject.
func (id Identity) LogValue() slog.Value { return slog.StringValue("sub:" + id.Subject) }

// Tokens are the IdP's tokens for one session. They are sealed into the session, never sent to the
// browser in the clear.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	Expiry       time.Time
}

// LogValue redacts every token.
func (Tokens) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Default claim names; Config.GroupsClaim and Config.EmailVerifiedClaim change them per client.
const (
	defaultGroupsClaim        = "groups"
	defaultEmailVerifiedClaim = "email_verified"
)

// identity builds an Identity from merged claims with this client's claim names.
func (c *Client) identity(claims map[string]any) Identity {
	return identityFrom(claims, c.cfg.GroupsClaim, c.cfg.EmailVerifiedClaim)
}

// identityFrom builds an Identity from merged claims. The verification flag is read from
// verifiedClaim (default email_verified) with the rule of Verified, and Identity.Claims says it as
// the JSON boolean claims["email_verified"], which is all the token mapping reads. claims itself is
// never written: it may be a session's, shared by every request that carries the same cookie. When
// its flag disagrees (an IdP that sends "true" as a string, a session sealed before
// --email-verified-claim changed), Identity.Claims is a copy with the flag normalised.
func identityFrom(claims map[string]any, groupsClaim, verifiedClaim string) Identity {
	if verifiedClaim == "" {
		verifiedClaim = defaultEmailVerifiedClaim
	}
	id := Identity{Claims: claims}
	id.Subject, _ = claims["sub"].(string)
	id.Email, _ = claims["email"].(string)
	id.Name, _ = claims["name"].(string)
	id.PreferredUsername, _ = claims["preferred_username"].(string)
	id.SID, _ = claims["sid"].(string)
	id.EmailVerified = id.Email != "" && Verified(claims[verifiedClaim])
	if v, ok := claims["email_verified"]; ok || verifiedClaim != defaultEmailVerifiedClaim {
		if b, isBool := v.(bool); !isBool || b != id.EmailVerified {
			id.Claims = maps.Clone(claims)
			id.Claims["email_verified"] = id.EmailVerified
		}
	}
	if groupsClaim == "" {
		groupsClaim = defaultGroupsClaim
	}
	switch g := claims[groupsClaim].(type) {
	case []any:
		for _, v := range g {
			if s, ok := v.(string); ok {
				id.Groups = append(id.Groups, s)
			}
		}
	case []string:
		id.Groups = append(id.Groups, g...)
	case string:
		if g != "" {
			id.Groups = []string{g}
		}
	}
	return id
}

// Verified is the one rule for an email verification flag, stated alike in package tokens
// (Mapping.User): the JSON boolean true, or the exact string "true", which some IdPs send (Amazon
// Cognito's userinfo answers strings). Anything else counts as unverified: false, "True", "1", 1,
// null, and a missing claim.
func Verified(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return b == "true"
	}
	return false
}

// merge copies src (a userinfo answer) over dst (ID token or introspection claims), userinfo
// winning, except the protocol claims that only make sense in the token.
//
// An email and its verification flag (verifiedClaim) are one pair, taken from one document: when
// src names an email, the flag comes from src as well, and a src without the flag leaves the email
// unverified. Only when src repeats dst's email exactly does dst's flag for that same address stand
// (Entra ID, for one, puts xms_edov in the ID token and not in userinfo). A flag in a document that
// names no email vouches for nothing and is ignored.
func merge(dst, src map[string]any, verifiedClaim string) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	if verifiedClaim == "" {
		verifiedClaim = defaultEmailVerifiedClaim
	}
	srcEmail, srcHasEmail := src["email"]
	_, srcHasFlag := src[verifiedClaim]
	sameEmail := false
	if a, ok := srcEmail.(string); ok {
		b, _ := dst["email"].(string)
		sameEmail = a != "" && a == b
	}
	for k, v := range src {
		switch k {
		case "iss", "aud", "exp", "iat", "nbf", "nonce", "at_hash", "c_hash", "azp", "auth_time", "jti":
			continue
		case verifiedClaim, defaultEmailVerifiedClaim:
			if !srcHasEmail {
				continue
			}
		}
		dst[k] = v
	}
	if srcHasEmail && !srcHasFlag && !sameEmail {
		delete(dst, verifiedClaim)
		delete(dst, defaultEmailVerifiedClaim)
	}
	return dst
}

// userinfo calls the userinfo endpoint with the access token and returns its claims. A 401/403 is
// Revoked (the IdP no longer honours this user's token), 5xx and transport errors Unavailable.
func (c *Client) userinfo(ctx context.Context, p *provider, accessToken string) (map[string]any, error) {
	if p.userinfo == "" {
		return nil, invalid("userinfo", errors.New("the IdP has no userinfo endpoint"))
	}
	req, err := bearerRequest(withKind(ctx, "userinfo"), http.MethodGet, p.userinfo, accessToken)
	if err != nil {
		return nil, invalid("userinfo", err)
	}
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, classify("userinfo", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		return nil, classify("userinfo", &StatusError{StatusCode: res.StatusCode})
	}
	var claims map[string]any
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&claims); err != nil {
		// A signed (application/jwt) userinfo is not supported: fail closed with a clear cause.
		return nil, invalid("userinfo", fmt.Errorf("decode JSON answer: %w", err))
	}
	if s, _ := claims["sub"].(string); s == "" {
		return nil, invalid("userinfo", errors.New("answer has no sub"))
	}
	return claims, nil
}

// IdentityOf rebuilds an Identity from claims this client confirmed earlier (kept in a session), with
// the configured groups claim.
func (c *Client) IdentityOf(claims map[string]any) Identity {
	return c.identity(claims)
}
