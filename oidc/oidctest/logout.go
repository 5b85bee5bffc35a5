package oidctest

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// backchannelEvent is the event that marks a JWT as a logout token (OIDC Back-Channel Logout §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutTokenTTL is how long a logout token is valid; the spec recommends at most two minutes.
const logoutTokenTTL = 2 * time.Minute

// handleEndSession is OIDC RP-Initiated Logout: it ends the IdP session named by id_token_hint,
// tells every client with a BackchannelLogoutURI (and waits for them), then redirects to the
// post_logout_redirect_uri, or shows a "signed out" page.
func (s *Server) handleEndSession(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "oidctest: cannot parse form", http.StatusBadRequest)
		return
	}
	hint, target, clientID := r.Form.Get("id_token_hint"), r.Form.Get("post_logout_redirect_uri"), r.Form.Get("client_id")
	var sub, sid string
	if hint != "" {
		claims, err := s.parseOurs(hint)
		if err != nil {
			http.Error(w, "oidctest: id_token_hint is not an ID token of this IdP", http.StatusBadRequest)
			return
		}
		sub, _ = claims["sub"].(string)
		sid, _ = claims["sid"].(string)
		aud := audience(claims["aud"])
		switch {
		case clientID != "" && !slices.Contains(aud, clientID):
			http.Error(w, "oidctest: client_id is not the audience of id_token_hint", http.StatusBadRequest)
			return
		case clientID == "" && len(aud) > 0:
			clientID = aud[0]
		}
	}
	if target != "" {
		c, ok := s.client(clientID)
		if !ok {
			http.Error(w, "oidctest: post_logout_redirect_uri needs id_token_hint or client_id", http.StatusBadRequest)
			return
		}
		if !redirectAllowed(c.PostLogoutRedirectURIs, target, "http", "https") {
			http.Error(w, "oidctest: post_logout_redirect_uri is not registered for this client", http.StatusBadRequest)
			return
		}
	}
	if sub != "" || sid != "" {
		s.mu.Lock()
		s.endSessionsLocked(sub, sid)
		s.mu.Unlock()
		_ = s.sendBackchannel(r.Context(), sub, sid) // a failing receiver does not stop the logout
	}
	if target == "" {
		writeHTML(w, http.StatusOK, signedOutPage, nil)
		return
	}
	u, _ := url.Parse(target) // checked by redirectAllowed or registered verbatim
	if state := r.Form.Get("state"); state != "" {
		q := u.Query()
		q.Set("state", state)
		u.RawQuery = q.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// BackchannelLogout ends the IdP session sid (every session of sub when sid is empty) and POSTs a
// signed logout_token to every client's BackchannelLogoutURI, as end_session does, so a test can
// play an administrator who signs a user out at the IdP. It returns the receivers' failures.
func (s *Server) BackchannelLogout(sub, sid string) error {
	s.mu.Lock()
	s.endSessionsLocked(sub, sid)
	s.mu.Unlock()
	return s.sendBackchannel(context.Background(), sub, sid)
}

// LogoutToken returns a valid logout token for the first client (mutate may break it), for tests of
// a back-channel logout receiver.
func (s *Server) LogoutToken(sub, sid string, mutate func(claims map[string]any)) string {
	claims := s.logoutClaims(s.opts.Clients[0].ID, sub, sid)
	if mutate != nil {
		mutate(claims)
	}
	tok, err := s.sign(claims, "logout+jwt")
	if err != nil {
		panic(err) // only claims that cannot be JSON-encoded get here: a bug in the calling test
	}
	return tok
}

func (s *Server) logoutClaims(aud, sub, sid string) map[string]any {
	now := s.now()
	c := map[string]any{
		"iss":    s.url,
		"aud":    aud,
		"iat":    now.Unix(),
		"exp":    now.Add(logoutTokenTTL).Unix(),
		"jti":    randomToken(),
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}

// sendBackchannel POSTs one logout token to each client that has a BackchannelLogoutURI, one after
// the other, each bounded by the sender's timeout.
func (s *Server) sendBackchannel(ctx context.Context, sub, sid string) error {
	var errs []error
	for _, c := range s.opts.Clients {
		if c.BackchannelLogoutURI == "" {
			continue
		}
		s.counts["backchannel"].Add(1)
		tok, err := s.sign(s.logoutClaims(c.ID, sub, sid), "logout+jwt")
		if err == nil {
			err = s.postLogoutToken(ctx, c.BackchannelLogoutURI, tok)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("oidctest: back-channel logout to client %q: %w", c.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) postLogoutToken(ctx context.Context, target, tok string) error {
	body := url.Values{"logout_token": {tok}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.bc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

var signedOutPage = template.Must(template.New("signedout").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Signed out · zdgate dev IdP</title>
` + pageStyle + `
</head>
<body>
<main>
<h1>zdgate dev IdP</h1>
<p id="signed-out">You are signed out.</p>
<p class="note">A development identity provider for local testing only.</p>
</main>
</body>
</html>
`))
