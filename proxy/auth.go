package proxy

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/proxy/session"
)

// errNoSession means the request carries no usable session: anonymous.
var errNoSession = errUnauthorized("unauthenticated", nil)

// authenticate loads the session of r, re-checks it at the IdP when its last confirmation is older
// than --recheck-interval (one IdP call per session at a time), applies the access rules again, and
// writes a changed session back. It returns errNoSession for anonymous requests, 401 after a
// revocation (the session is ended), 403 when the rules no longer admit the user, and 503 when the
// IdP cannot confirm past --recheck-grace.
func (p *Proxy) authenticate(w http.ResponseWriter, r *http.Request) (*session.Session, oidc.Identity, error) {
	s, err := p.cfg.Sessions.Load(r)
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
	c, err := p.confirm(w, r, pv, s)
	if err != nil {
		if oidc.KindOf(err) == oidc.Revoked || isPolicy(err) {
			p.dropSession(w, r)
		}
		return nil, oidc.Identity{}, err
	}
	if c.changed && !c.saved {
		if err := p.cfg.Sessions.Save(w, r, c.Session); err != nil {
			return nil, oidc.Identity{}, errUnavailable("session_store_unavailable", err)
		}
	}
	id := pv.OIDC.IdentityOf(c.Claims)
	setSub(r.Context(), id.Subject)
	return c.Session, id, nil
}

// confirmed is a session after confirm; changed says it must be written back, saved that the
// shared store already has it.
type confirmed struct {
	*session.Session
	changed, saved bool
}

// locker is a session store shared by replicas (Redis): a re-check holds its lock, so two replicas
// never spend the same rotating refresh token.
type locker interface {
	Lock(ctx context.Context, sessionID string, ttl time.Duration) (unlock func(), err error)
}

// confirm re-checks s at the IdP if its confirmation is stale. Concurrent requests of one session
// share one IdP call (singleflight), and the result is remembered for requests that still carry the
// pre-refresh cookie, so a rotated refresh token is never presented twice.
func (p *Proxy) confirm(w http.ResponseWriter, r *http.Request, pv *provider, s *session.Session) (confirmed, error) {
	ctx := r.Context()
	now := p.cfg.Now()
	if now.Sub(s.ConfirmedAt) < p.cfg.RecheckInterval {
		return confirmed{Session: s}, p.policy(pv, pv.OIDC.IdentityOf(s.Claims))
	}
	if fresh, ok := p.recent.get(s.ID, now, p.cfg.RecheckInterval); ok && fresh.ConfirmedAt.After(s.ConfirmedAt) {
		if fresh.err != nil {
			return confirmed{}, fresh.err
		}
		return confirmed{Session: fresh.Session, changed: true, saved: fresh.saved}, p.policy(pv, pv.OIDC.IdentityOf(fresh.Claims))
	}
	if latest := p.recent.latest(s.ID, now); latest != nil && latest.ConfirmedAt.After(s.ConfirmedAt) {
		// This cookie is older than the session's latest confirmation on this replica: its
		// refresh token was rotated since, and presenting it again would make an IdP with reuse
		// detection revoke the whole grant. Re-check from the latest state instead.
		s = latest
	}
	v, _, _ := p.flight.Do(s.ID, func() (any, error) {
		// Detached from the request that happened to start it: others are waiting on the answer.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		res := p.recheckShared(cctx, w, r, pv, s)
		p.recent.put(s.ID, res, p.cfg.Now())
		return res, nil
	})
	res := v.(*checkResult)
	if res.err != nil {
		if oidc.KindOf(res.err) == oidc.Unavailable && p.cfg.RecheckGrace > 0 && now.Sub(s.ConfirmedAt) < p.cfg.RecheckGrace {
			// Bridge a short IdP outage with the last confirmation, as configured.
			return confirmed{Session: s}, p.policy(pv, pv.OIDC.IdentityOf(s.Claims))
		}
		return confirmed{}, res.err
	}
	return confirmed{Session: res.Session, changed: true, saved: res.saved}, p.policy(pv, pv.OIDC.IdentityOf(res.Claims))
}

// recheckShared re-checks s; with a shared store it first takes the session's lock and looks again,
// because another replica may have refreshed it meanwhile, and saves before unlocking.
func (p *Proxy) recheckShared(ctx context.Context, w http.ResponseWriter, r *http.Request, pv *provider, s *session.Session) *checkResult {
	lk, ok := p.cfg.Sessions.(locker)
	if !ok {
		return p.recheck(ctx, pv, s)
	}
	unlock, err := lk.Lock(ctx, s.ID, 30*time.Second)
	if err != nil {
		return &checkResult{ConfirmedAt: s.ConfirmedAt, err: errUnavailable("session_store_unavailable", err)}
	}
	defer unlock()
	cur, err := p.cfg.Sessions.Load(r)
	switch {
	case err == nil && p.cfg.Now().Sub(cur.ConfirmedAt) < p.cfg.RecheckInterval:
		return &checkResult{Session: cur, ConfirmedAt: cur.ConfirmedAt, saved: true} // another replica did it
	case err == nil:
		s = cur
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrExpired), errors.Is(err, session.ErrRevoked), errors.Is(err, session.ErrInvalid):
		return &checkResult{ConfirmedAt: p.cfg.Now(), err: errUnauthorized("session_revoked", err), ended: true}
	default:
		return &checkResult{ConfirmedAt: s.ConfirmedAt, err: errUnavailable("session_store_unavailable", err)}
	}
	res := p.recheck(ctx, pv, s)
	if res.err == nil {
		if err := p.cfg.Sessions.Save(w, r, res.Session); err != nil {
			return &checkResult{ConfirmedAt: s.ConfirmedAt, err: errUnavailable("session_store_unavailable", err)}
		}
		res.saved = true
	}
	return res
}

// checkResult is one IdP re-check of a session: the updated copy, or why it failed.
type checkResult struct {
	*session.Session
	ConfirmedAt time.Time
	err         error
	saved       bool // already written to the shared store
	ended       bool // the IdP (or the shared store) says the session is over: final
}

func (p *Proxy) recheck(ctx context.Context, pv *provider, s *session.Session) *checkResult {
	t := oidc.Tokens{AccessToken: s.AccessToken, RefreshToken: s.RefreshToken, IDToken: s.IDToken, Expiry: s.TokenExpiry}
	kind := "userinfo"
	if s.RefreshToken != "" {
		kind = "refresh"
	}
	ctx, traced := p.traceRecheck(ctx, kind)
	id, nt, err := pv.OIDC.Recheck(ctx, t, s.Subject)
	traced(resultOf(err))
	pv.m.idpChecks.WithLabelValues(kind, resultOf(err)).Inc()
	if err != nil {
		if oidc.KindOf(err) == oidc.Revoked {
			pv.m.sessionsEnded.WithLabelValues("revoked").Inc()
			return &checkResult{ConfirmedAt: p.cfg.Now(), err: errUnauthorized("session_revoked", err), ended: true}
		}
		// Unavailable, or an answer that did not verify: fail closed, keep the session, retry next time.
		return &checkResult{ConfirmedAt: s.ConfirmedAt, err: wrapUnavailable(err)}
	}
	ns := *s
	ns.Claims = id.Claims
	ns.AccessToken, ns.RefreshToken, ns.IDToken, ns.TokenExpiry = nt.AccessToken, nt.RefreshToken, nt.IDToken, nt.Expiry
	ns.ConfirmedAt = p.cfg.Now()
	return &checkResult{Session: &ns, ConfirmedAt: ns.ConfirmedAt}
}

// wrapUnavailable keeps the oidc Kind visible to callers (errors.As) while rendering a 503:
// idp_misconfigured when the IdP refuses zdgate's own client, else idp_unavailable.
func wrapUnavailable(err error) error {
	if oidc.IsMisconfigured(err) {
		return &httpError{status: http.StatusServiceUnavailable, code: "idp_misconfigured", err: err}
	}
	return &httpError{status: http.StatusServiceUnavailable, code: "idp_unavailable", err: err}
}

func resultOf(err error) string {
	if err == nil {
		return "ok"
	}
	return oidc.KindOf(err).String()
}

// errPolicy marks a user the access rules refuse.
type policyError struct{ reason string }

func (e *policyError) Error() string { return "access rules: " + e.reason }

func isPolicy(err error) bool {
	var pe *policyError
	return errors.As(err, &pe)
}

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

// recentChecks remembers, per session, the latest re-check's result and the newest state the IdP
// confirmed on this replica, for up to the session TTL, the least recently used dropped beyond its
// size. Requests with a cookie from before a re-check use them: a fresh result as it is, an ended
// session as final (replays of a dead cookie cost no IdP call and are not counted again), and an
// older state as the base of the next re-check (never a rotated-away refresh token).
type recentChecks struct {
	ttl time.Duration
	c   *lru.Cache[string, recentEntry]
}

type recentEntry struct {
	last *checkResult     // the latest re-check
	good *session.Session // the newest state the IdP confirmed, nil if none yet
	at   time.Time        // when last was stored
}

func newRecentChecks(size int, ttl time.Duration) *recentChecks {
	c, _ := lru.New[string, recentEntry](size) // only fails for size <= 0
	return &recentChecks{ttl: ttl, c: c}
}

// get returns the latest result for id while it is usable: an ended session within the TTL, any
// other result until it is fresh (the recheck interval) old.
func (rc *recentChecks) get(id string, now time.Time, fresh time.Duration) (*checkResult, bool) {
	e, ok := rc.c.Get(id)
	if !ok || e.last == nil || now.Sub(e.at) >= rc.ttl {
		return nil, false
	}
	if e.last.ended || now.Sub(e.last.ConfirmedAt) < fresh {
		return e.last, true
	}
	return nil, false
}

// latest is the newest confirmed state of id on this replica, or nil.
func (rc *recentChecks) latest(id string, now time.Time) *session.Session {
	e, ok := rc.c.Get(id)
	if !ok || now.Sub(e.at) >= rc.ttl {
		return nil
	}
	return e.good
}

func (rc *recentChecks) put(id string, r *checkResult, now time.Time) {
	e, _ := rc.c.Get(id)
	e.last, e.at = r, now
	if r.err == nil && r.Session != nil {
		e.good = r.Session
	}
	rc.c.Add(id, e)
}
