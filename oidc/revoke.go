package oidc

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Revoke asks the IdP's RFC 7009 revocation_endpoint to revoke a session's grant at sign-out: the
// refresh token when there is one (RFC 7009 §2.1: the IdP should then revoke the access tokens of
// the same grant too), else the access token. It reports false, with no error, when the IdP
// advertises no revocation endpoint or there is no token. The client authenticates as at the
// token endpoint; a public client sends its client_id. Errors are *Error: Unavailable (the IdP
// did not answer, or refused zdgate's client: Misconfigured) or Invalid.
func (c *Client) Revoke(ctx context.Context, t Tokens) (bool, error) {
	p := c.state.Load()
	if p == nil || p.revocation == "" {
		return false, nil
	}
	token, hint := t.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = t.AccessToken, "access_token"
	}
	if token == "" {
		return false, nil
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	secret := c.cfg.ClientSecret()
	basic := secret != "" && p.oauth.Endpoint.AuthStyle != oauth2.AuthStyleInParams
	if !basic {
		form.Set("client_id", c.cfg.ClientID)
		if secret != "" {
			form.Set("client_secret", secret)
		}
	}
	req, err := http.NewRequestWithContext(c.ctx(ctx, "revoke"), http.MethodPost, p.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return false, invalid("revoke", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(secret))
	}
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return false, classify("revoke", err)
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	switch {
	case res.StatusCode == http.StatusOK:
		c.noteAuthenticated(nil)
		return true, nil
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
		err := &Error{Kind: Unavailable, Step: "revoke", Err: &StatusError{StatusCode: res.StatusCode}, Misconfigured: true}
		c.noteAuthenticated(err)
		return false, err
	case res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests:
		return false, classify("revoke", &StatusError{StatusCode: res.StatusCode})
	}
	return false, invalid("revoke", errors.Join(errors.New("the IdP did not revoke the token"), &StatusError{StatusCode: res.StatusCode}))
}
