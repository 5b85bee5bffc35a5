package proxy

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/proxy/session"
)

// errNoSession means the request carries no usable session: anonymous.
var errNoSession = errUnauthorized("unauthenticated", nil)

// authenticate loads the session of r, confirms it (see decide), builds its identity once, applies
// the access rules once, and writes a changed session back. It returns errNoSession for anonymous
// requests, 401 after a revocation (the session is ended), 403 when the rules no longer admit the
// user, and 503 when the IdP cannot confirm past --recheck-grace.
func (p *Proxy) authenticate(w http.ResponseWriter, r *http.Request) (*session.Session, oidc.Identity, error) {
	ctx := r.Context()
	s, err := p.cfg.Sessions.Load(ctx, r)
	switch {
	case err == nil:
	case errors.Is(err, session.ErrNotFound):
		return nil, oidc.Identity{}, errNoSession
	case errors.Is(err, session.ErrExpired), errors.Is(err, session.ErrRevoked), errors.Is(err, session.ErrInvalid):
		// Drop the dead cookie so the browser stops sending it; the request is anonymous.
		p.dropSession(w, r)
		if errors.Is(err, session.ErrExpired) {
			p.m.sessionsEnded.WithLabelValues("expired").Inc()
		}
		return nil, oidc.Identity{}, errUnauthorized("unauthenticated", err)
	default:
		// The store itself failed (Redis down): fail closed without touching the cookie.
		return nil, oidc.Identity{}, errUnavailable("session_store_unavailable", err)
	}
	pv, err := p.providers.of(s)
	if err != nil {
		p.dropSession(w, r)
		return nil, oidc.Identity{}, errUnauthorized("unauthenticated", err)
	}
	c, err := p.confirm(ctx, r, pv, s)
	if err != nil {
		if oidc.KindOf(err) == oidc.Revoked {
			p.dropSession(w, r)
		}
		return nil, oidc.Identity{}, err
	}
	id := pv.OIDC.IdentityOf(c.s.Claims)
	if err := p.policy(pv, id); err != nil {
		p.dropSession(w, r)
		return nil, oidc.Identity{}, err
	}
	if c.save {
		if err := p.cfg.Sessions.Save(ctx, w, r, c.s); err != nil {
			return nil, oidc.Identity{}, errUnavailable("session_store_unavailable", err)
		}
	}
	setSub(ctx, id.Subject)
	return c.s, id, nil
}

// freshness is the rule for how long an IdP confirmation vouches for a session: one made at t is
// fresh while now - t < --recheck-interval, and due for a re-check from then on.
type freshness time.Duration

func (f freshness) fresh(confirmedAt, now time.Time) bool {
	return now.Sub(confirmedAt) < time.Duration(f)
}

// verdict is what confirm decides to do with a session.
type verdict int

const (
	// useCookie: the cookie's own confirmation is fresh; serve it as it is.
	useCookie verdict = iota
	// useShared: a re-check of this session on this replica answers for the cookie: a
	// confirmation newer than the cookie's that is still fresh, or the end of the session.
	useShared
	// recheckNow: the session is due; confirm it at the IdP, once per session at a time.
	recheckNow
)

// decision is a verdict and what it applies to.
type decision struct {
	verdict verdict
	shared  *checkResult     // useShared: the re-check that answers
	base    *session.Session // recheckNow: the state to re-check from
}

// decide applies the freshness rule to s, with what this replica remembers of its re-checks.
// Requests of one browser that still carry the cookie from before a refresh (concurrent tabs, a
// retry) are answered by that refresh; and a due re-check starts from the newest state known here,
// never from a stale cookie whose refresh token was rotated away since (presenting it again would
// make an IdP with reuse detection revoke the whole grant).
func (p *Proxy) decide(s *session.Session, now time.Time) decision {
	if p.fresh.fresh(s.ConfirmedAt, now) {
		return decision{verdict: useCookie}
	}
	last, good := p.recent.get(s.ID, now)
	switch {
	case last == nil:
	case last.outcome == ended:
		return decision{verdict: useShared, shared: last}
	case last.outcome == confirmed && last.s.ConfirmedAt.After(s.ConfirmedAt) && p.fresh.fresh(last.s.ConfirmedAt, now):
		return decision{verdict: useShared, shared: last}
	}
	if good != nil && good.ConfirmedAt.After(s.ConfirmedAt) {
		return decision{verdict: recheckNow, base: good}
	}
	return decision{verdict: recheckNow, base: s}
}

// confirmation is the state a request is served with; save says the request must write it back
// (its cookie holds an older state, and no shared store has it yet).
type confirmation struct {
	s    *session.Session
	save bool
}

// confirm carries out decide's verdict for s. A failed re-check is bridged with the last
// confirmation while --recheck-grace allows, if the IdP could not answer.
func (p *Proxy) confirm(ctx context.Context, r *http.Request, pv *provider, s *session.Session) (confirmation, error) {
	now := p.cfg.Now()
	d := p.decide(s, now)
	switch d.verdict {
	case useCookie:
		return confirmation{s: s}, nil
	case useShared:
		return d.shared.use()
	}
	res, err := p.recheckOnce(ctx, r, pv, d.base)
	if err != nil {
		return confirmation{}, err
	}
	if res.outcome == failed && oidc.KindOf(res.err) == oidc.Unavailable && p.cfg.RecheckGrace > 0 && now.Sub(d.base.ConfirmedAt) < p.cfg.RecheckGrace {
		// Bridge a short IdP outage with the last confirmation, as configured.
		return confirmation{s: d.base}, nil
	}
	return res.use()
}

// errPolicy marks a user the access rules refuse.
type policyError struct{ reason string }

func (e *policyError) Error() string { return "access rules: " + e.reason }

// policy applies --allowed-email-domain and --allowed-group (pv's) to a confirmed identity.
func (p *Proxy) policy(pv *provider, id oidc.Identity) error {
	if len(pv.AllowedEmailDomains) > 0 {
		domain, ok := emailDomain(id.Email)
		if !ok || !id.EmailVerified {
			return errForbidden("access_denied", &policyError{"no verified email"})
		}
		if !slices.ContainsFunc(pv.AllowedEmailDomains, func(d string) bool { return strings.EqualFold(strings.TrimPrefix(d, "@"), domain) }) {
			return errForbidden("access_denied", &policyError{"email domain not allowed"})
		}
	}
	if len(pv.AllowedGroups) > 0 && !slices.ContainsFunc(id.Groups, func(g string) bool { return slices.Contains(pv.AllowedGroups, g) }) {
		return errForbidden("access_denied", &policyError{"not in an allowed group"})
	}
	return nil
}

// emailDomain returns the domain of an address with exactly one '@' and a non-empty local part.
func emailDomain(email string) (string, bool) {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return "", false
	}
	return strings.ToLower(strings.TrimSuffix(domain, ".")), true
}
