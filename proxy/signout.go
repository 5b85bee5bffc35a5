package proxy

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/proxy/session"
)

// endSession ends the request's session for good, in this order: it goes on the revocation list
// (a copy of its cookie taken before is refused at once on this replica, with Redis on every
// replica), it is deleted from the store and its cookies expired, and its refresh token (else its
// access token) is revoked at the IdP's RFC 7009 revocation_endpoint, so that other replicas refuse
// a copy at their next re-check. It returns the ended session, nil when there was none. If the
// store cannot end it (Redis down), nothing is reported as done: the error is returned and the
// browser keeps its cookie, so a retry can finish the job. The store's part runs to its end even if
// the browser leaves meanwhile (each store call is bounded by the store's own timeout).
func (p *Proxy) endSession(w http.ResponseWriter, r *http.Request) (*session.Session, error) {
	ctx := context.WithoutCancel(r.Context())
	s, err := p.cfg.Sessions.Load(ctx, r)
	switch {
	case err == nil:
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrExpired), errors.Is(err, session.ErrRevoked), errors.Is(err, session.ErrInvalid):
		s = nil // nothing left to end but the cookies
	default:
		return nil, errUnavailable("session_store_unavailable", err)
	}
	if s != nil && p.cfg.Revocations != nil {
		if err := p.cfg.Revocations.RevokeSession(ctx, s.ID); err != nil {
			return nil, errUnavailable("session_store_unavailable", err)
		}
	}
	if err := p.clearSession(ctx, w, r); err != nil {
		return nil, errUnavailable("session_store_unavailable", err)
	}
	if s == nil {
		return nil, nil
	}
	pv, err := p.providers.of(s)
	if err != nil {
		return nil, nil // no configured IdP holds its grant: nothing more to end
	}
	pv.m.sessionsEnded.WithLabelValues("sign_out").Inc()
	p.revokeAtIdP(r, pv, s)
	return s, nil
}

// clearSession deletes the request's session from the store and expires its cookies, or, when the
// store fails, changes nothing in the browser and returns the error.
func (p *Proxy) clearSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	held := headerOnly{}
	if err := p.cfg.Sessions.Clear(ctx, held, r); err != nil {
		return err
	}
	for _, c := range held.Header()["Set-Cookie"] {
		w.Header().Add("Set-Cookie", c)
	}
	return nil
}

// dropSession expires the cookies of a session that has already ended (expired, revoked, refused
// by the rules) and deletes what the store holds of it. A store failure is logged, not returned:
// the request is refused either way, and the ended session cannot be used again (a revoked one is
// refused by the IdP at its next re-check; the cookies are gone from this browser).
func (p *Proxy) dropSession(w http.ResponseWriter, r *http.Request) {
	if err := p.cfg.Sessions.Clear(context.WithoutCancel(r.Context()), w, r); err != nil {
		p.logRequest(r, slog.LevelWarn, "session store: could not delete an ended session", slog.String("cause", err.Error()))
	}
}

// revokeAtIdP revokes s's tokens at the IdP, bounded and detached from the browser, which may
// leave. A failure is logged: the session is already over here, but a copy of its cookie keeps
// working on other cookie-store replicas until the IdP refuses its refresh token.
func (p *Proxy) revokeAtIdP(r *http.Request, pv *provider, s *session.Session) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	done, err := pv.OIDC.Revoke(ctx, oidc.Tokens{AccessToken: s.AccessToken, RefreshToken: s.RefreshToken})
	if !done && err == nil {
		return // the IdP has no revocation endpoint
	}
	pv.m.idpChecks.WithLabelValues("revoke", resultOf(err)).Inc()
	if err != nil {
		p.logRequest(r, slog.LevelWarn, "sign-out: the IdP did not revoke the session's tokens",
			slog.String("cause", err.Error()), slog.String("sub", s.Subject))
	}
}

// logRequest logs msg with the request's id.
func (p *Proxy) logRequest(r *http.Request, level slog.Level, msg string, attrs ...slog.Attr) {
	if info := infoOf(r); info != nil {
		attrs = append(attrs, slog.String("request_id", info.id))
	}
	p.log.LogAttrs(r.Context(), level, msg, attrs...)
}

// headerOnly collects the headers a store writes, so they reach the response only on success.
type headerOnly http.Header

func (h headerOnly) Header() http.Header       { return http.Header(h) }
func (headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (headerOnly) WriteHeader(int)             {}

// confirmSignOut answers a cross-site sign-out request with a form that signs out when the user
// submits it (a same-origin POST); the session, here and at the IdP, is left alone.
func (p *Proxy) confirmSignOut(w http.ResponseWriter, r *http.Request, rd string, why error) error {
	p.logRequest(r, slog.LevelInfo, "cross-site sign-out: asking the user to confirm", slog.String("cause", why.Error()))
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// No form-action: browsers apply it to the redirects after the POST too, and the sign-out
	// continues to the IdP's end_session endpoint, another origin.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	return confirmSignOutPage.Execute(w, map[string]string{"RD": rd})
}

var confirmSignOutPage = template.Must(template.New("confirm").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign out?</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}</style></head>
<body><h1>Sign out?</h1><p>Another site asked to sign you out of this one.</p>
<form method="post" action="/oauth2/sign_out?rd={{.RD}}"><button type="submit" id="zdgate-sign-out">Sign out</button></form>
<p><a href="/">Stay signed in</a></p></body></html>
`))
