package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/tokens"
)

// token mints a fresh Zendesk JWT for the session (or the bearer access token of a native app):
// {"jwt": "...", "expires_at": <exp>, "user": "<opaque>"}, never cached, never for a cross-site
// browser request. user is widgetUser's keyed hash of the external_id, so the loader can tell a
// user switch from a reload without ever storing who the user is.
func (p *Proxy) token(w http.ResponseWriter, r *http.Request) error {
	if err := p.sameOrigin(r); err != nil {
		return err
	}
	flavor := tokens.Messaging
	if f := r.URL.Query().Get("flavor"); f != "" {
		var err error
		if flavor, err = tokens.ParseFlavor(f); err != nil || (flavor != tokens.Messaging && flavor != tokens.Chat) {
			return errBadRequest("unknown_flavor", err)
		}
	}
	signer := p.cfg.Signers[flavor]
	if signer == nil {
		return errNotFound
	}
	pv, id, err := p.identity(w, r)
	if err != nil {
		return err
	}
	if !pv.allows(flavor) {
		return errFlavorNotAllowed(pv, flavor)
	}
	return p.mint(w, pv, signer, id, true)
}

// identity is the confirmed user of a request and their provider: from "Authorization: Bearer"
// (never touching cookies) or from the session.
func (p *Proxy) identity(w http.ResponseWriter, r *http.Request) (*provider, oidc.Identity, error) {
	if tok, ok := bearerToken(r); ok {
		return p.bearerUser(r, tok)
	}
	if r.Header.Get("Authorization") != "" {
		return nil, oidc.Identity{}, errUnauthorized("invalid_token", errors.New("authorization header is not a bearer token"))
	}
	s, id, err := p.authenticate(w, r)
	if err != nil {
		return nil, id, err
	}
	pv, err := p.providers.of(s)
	return pv, id, err
}

// mint signs a token of signer's flavor for id with pv's claim mapping and writes it as JSON;
// withExp adds the token route's expires_at and user.
func (p *Proxy) mint(w http.ResponseWriter, pv *provider, signer *tokens.Signer, id oidc.Identity, withExp bool) error {
	u, err := pv.Mapping.User(id.Claims)
	if err != nil {
		return claimsError(err)
	}
	jwt, exp, err := signer.Sign(u)
	if err != nil {
		return claimsError(err)
	}
	var user string
	if withExp {
		if user, err = p.widgetUser(u.ExternalID); err != nil {
			return err
		}
	}
	pv.m.minted.WithLabelValues(string(signer.Flavor())).Inc()
	// A compact JWT and the user digest are base64url (and dots): nothing to escape, so the answer
	// is built directly.
	buf := make([]byte, 0, len(jwt)+80)
	buf = append(buf, `{"jwt":"`...)
	buf = append(buf, jwt...)
	buf = append(buf, '"')
	if withExp {
		buf = append(buf, `,"expires_at":`...)
		buf = strconv.AppendInt(buf, exp.Unix(), 10)
		buf = append(buf, `,"user":"`...)
		buf = append(buf, user...)
		buf = append(buf, '"')
	}
	buf = append(buf, "}\n"...)
	noStoreJSON(w.Header())
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(buf)
	return err
}

// widgetUser is the opaque value the loader remembers as "the user the widget is logged in as":
// a keyed hash (session.Sealer.Digest, keyed by the cookie secret) of the Zendesk external_id, the
// identity Zendesk itself keys the widget on. It reveals neither the external_id nor the email,
// and cannot be computed without the cookie secret.
func (p *Proxy) widgetUser(externalID string) (string, error) {
	d, err := p.cfg.Sealer.Digest("widget user", []byte(externalID))
	if err != nil {
		return "", errUnavailable("internal_error", err)
	}
	return d, nil
}

// claimsError turns a claim mapping or signing refusal into a public code, naming the claim only.
func claimsError(err error) error {
	var ce *tokens.ClaimError
	switch {
	case errors.Is(err, tokens.ErrEmailRequired):
		return errForbidden("email_not_verified", err)
	case errors.As(err, &ce):
		return &httpError{status: http.StatusForbidden, code: "claim_" + safeCode(ce.Claim), err: err}
	}
	return errForbidden("claims_rejected", err)
}

func safeCode(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteRune(c)
		}
		if b.Len() >= 64 {
			break
		}
	}
	return b.String()
}

// sameOrigin refuses cross-site browser requests: Sec-Fetch-Site decides when present (only
// same-origin and none pass); else an Origin header must be ours. Native apps send neither.
func (p *Proxy) sameOrigin(r *http.Request) error {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" {
		if sfs == "same-origin" || sfs == "none" {
			return nil
		}
		return errForbidden("cross_site_request", errors.New("Sec-Fetch-Site: "+truncate(sfs, 32)))
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Scheme, p.cfg.PublicURL.Scheme) || !p.ownHost(u.Host) {
			return errForbidden("cross_site_request", errors.New("foreign Origin"))
		}
	}
	return nil
}

// userinfo shows the confirmed identity of this session (after a re-check if due).
func (p *Proxy) userinfo(w http.ResponseWriter, r *http.Request) error {
	s, id, err := p.authenticate(w, r)
	if err != nil {
		return err
	}
	out := map[string]any{"sub": id.Subject, "email_verified": id.EmailVerified}
	if p.providers.multi {
		out["provider"] = s.Provider
	}
	if id.EmailVerified {
		out["email"] = id.Email
	}
	if id.Name != "" {
		out["name"] = id.Name
	}
	if id.PreferredUsername != "" {
		out["preferred_username"] = id.PreferredUsername
	}
	if len(id.Groups) > 0 {
		out["groups"] = id.Groups
	}
	return writeJSON(w, http.StatusOK, out)
}
