package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/zdgate/zdgate/internal/expiring"
	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/proxy/session"
)

// outcome is how one re-check at the IdP ended.
type outcome int

const (
	// confirmed: the IdP vouched for the user again; checkResult.s is the new state.
	confirmed outcome = iota
	// ended: the IdP (or the shared store) says the session is over. Final: every cookie of the
	// session gets this answer from now on, without another IdP call.
	ended
	// failed: no answer (IdP or store unavailable, an answer that did not verify). The session is
	// kept; the next request tries again.
	failed
)

// checkResult is one re-check of a session, shared by the requests that waited on it and
// remembered for those that come with the older cookie afterwards.
type checkResult struct {
	outcome outcome
	s       *session.Session // confirmed: the new state; failed: one the IdP confirmed but the store did not take, or nil
	err     error            // ended, failed: the error to answer with
	saved   bool             // confirmed: the shared store already holds s
}

// use turns a result into what a request is served with.
func (c *checkResult) use() (confirmation, error) {
	if c.outcome != confirmed {
		return confirmation{}, c.err
	}
	return confirmation{s: c.s, save: !c.saved}, nil
}

func endedBy(err error) *checkResult  { return &checkResult{outcome: ended, err: err} }
func failedBy(err error) *checkResult { return &checkResult{outcome: failed, err: err} }

// locker is a session store shared by replicas (Redis): a re-check holds its lock, so two replicas
// never spend the same rotating refresh token. Timeout bounds one of its round trips.
type locker interface {
	Lock(ctx context.Context, sessionID string, ttl time.Duration) (unlock func(), err error)
	Timeout() time.Duration
}

// lockWait is how long a re-check waits for the lock of a session that another replica is
// re-checking. A live replica has finished by then unless the IdP itself is slow; one that died
// holding the lock never will, and its lock expires only after recheckBudget.lockTTL. Rather than
// hang until then, the request answers 503 and the browser tries again.
const lockWait = 2 * time.Second

// recheckBudget bounds a re-check from end to end, so that nothing waits on it longer than the
// IdP client's and the store's own timeouts allow, and so that the Redis lock a re-check holds
// outlives the work it protects, yet not by more than a store round trip.
type recheckBudget struct {
	idp   time.Duration // the IdP step: refresh grant, userinfo, signing keys (the IdP client's timeout)
	store time.Duration // one round trip to the shared store; 0 without one
	wait  time.Duration // for the lock of a re-check on another replica
}

func newRecheckBudget(idp time.Duration, store session.Store) recheckBudget {
	b := recheckBudget{idp: cmp.Or(idp, oidc.DefaultTimeout)}
	if lk, ok := store.(locker); ok {
		b.store = lk.Timeout()
		b.wait = min(lockWait, b.lockTTL())
	}
	return b
}

// hold is how long a re-check may keep the lock once it has it: load again, the IdP step, save.
func (b recheckBudget) hold() time.Duration { return b.store + b.idp + b.store }

// lockTTL is how long Redis keeps the lock: hold, plus the round trip that took it (the lock
// starts when Redis sets it, the holder's hold when the answer is back).
func (b recheckBudget) lockTTL() time.Duration { return b.store + b.hold() }

// total bounds the whole re-check: waiting for the lock, then holding it.
func (b recheckBudget) total() time.Duration {
	if b.store == 0 {
		return b.idp
	}
	return b.wait + b.hold()
}

// recheckOnce re-checks base at the IdP, once per session at a time on this replica: concurrent
// requests of the session share the one re-check and its answer. The re-check runs detached from
// every request and bounded by p.budget, so a browser that leaves cannot cut short a refresh
// whose rotated token the others depend on; a request whose own client leaves stops waiting and
// returns its context's error.
func (p *Proxy) recheckOnce(ctx context.Context, r *http.Request, pv *provider, base *session.Session) (*checkResult, error) {
	cookies := cookiesOnly(r)
	ch := p.flight.DoChan(base.ID, func() (v any, _ error) {
		defer func() {
			// DoChan would re-raise a panic on a goroutine of its own, ending the process.
			if e := recover(); e != nil {
				v = failedBy(fmt.Errorf("re-check panicked: %v", e))
			}
		}()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.budget.total())
		defer cancel()
		res := p.recheckShared(cctx, cookies, pv, base)
		p.recent.put(base.ID, res, p.cfg.Now())
		return res, nil
	})
	select {
	case v := <-ch:
		return v.Val.(*checkResult), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// cookiesOnly is a request with r's cookies and nothing else, for the store calls of a re-check
// that may outlive r.
func cookiesOnly(r *http.Request) *http.Request {
	return &http.Request{Header: http.Header{"Cookie": r.Header["Cookie"]}}
}

// recheckShared re-checks s. With a shared store it first takes the session's lock and loads the
// session again, because another replica may have refreshed it meanwhile, and saves before it
// unlocks: all within the lock's TTL.
func (p *Proxy) recheckShared(ctx context.Context, r *http.Request, pv *provider, s *session.Session) *checkResult {
	lk, ok := p.cfg.Sessions.(locker)
	if !ok {
		return p.recheck(ctx, pv, s)
	}
	wctx, cancel := context.WithTimeout(ctx, p.budget.wait)
	unlock, err := lk.Lock(wctx, s.ID, p.budget.lockTTL())
	cancel()
	if err != nil {
		return failedBy(errUnavailable("session_store_unavailable", err))
	}
	defer unlock()
	ctx, cancel = context.WithTimeout(ctx, p.budget.hold())
	defer cancel()
	cur, err := p.cfg.Sessions.Load(ctx, r)
	switch {
	case err == nil && p.fresh.fresh(cur.ConfirmedAt, p.cfg.Now()):
		return &checkResult{outcome: confirmed, s: cur, saved: true} // another replica did it
	case err == nil && !s.ConfirmedAt.After(cur.ConfirmedAt):
		s = cur
	case err == nil:
		// s is newer than the store's copy: a refresh on this replica whose save the store did not
		// take. Its refresh token is the live one; the store's was spent.
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrExpired), errors.Is(err, session.ErrRevoked), errors.Is(err, session.ErrInvalid):
		return endedBy(errUnauthorized("session_revoked", err))
	default:
		return failedBy(errUnavailable("session_store_unavailable", err))
	}
	res := p.recheck(ctx, pv, s)
	if res.outcome == confirmed {
		if err := p.saveRefreshed(ctx, r, res.s); err != nil {
			f := failedBy(errUnavailable("session_store_unavailable", err))
			f.s = res.s // remembered as this replica's newest state, so its next re-check starts there
			return f
		}
		res.saved = true
	}
	return res
}

// saveRefreshed writes a re-checked session to the shared store. The IdP may have rotated its
// refresh token already, so the new state must not be dropped for a passing store failure (a Redis
// failover): while the lock is held (ctx), a save the store could not take is tried again.
func (p *Proxy) saveRefreshed(ctx context.Context, r *http.Request, s *session.Session) error {
	backoff := 50 * time.Millisecond
	for {
		// The request is only read for its ticket: a refresh never issues a new one.
		err := p.cfg.Sessions.Save(ctx, headerOnly{}, r, s)
		if err == nil || !errors.Is(err, session.ErrUnavailable) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// recheck asks s's provider pv about s, within the budget's IdP step.
func (p *Proxy) recheck(ctx context.Context, pv *provider, s *session.Session) *checkResult {
	ctx, cancel := context.WithTimeout(ctx, p.budget.idp)
	defer cancel()
	t := oidc.Tokens{AccessToken: s.AccessToken, RefreshToken: s.RefreshToken, IDToken: s.IDToken, Expiry: s.TokenExpiry}
	kind := pv.OIDC.RecheckKind(t)
	ctx, traced := p.traceRecheck(ctx, kind)
	id, nt, err := pv.OIDC.Recheck(ctx, t, s.Subject)
	traced(resultOf(err))
	pv.m.idpChecks.WithLabelValues(kind, resultOf(err)).Inc()
	if err != nil {
		if oidc.KindOf(err) == oidc.Revoked {
			pv.m.sessionsEnded.WithLabelValues("revoked").Inc()
			return endedBy(errUnauthorized("session_revoked", err))
		}
		// Unavailable, or an answer that did not verify: fail closed, keep the session, retry next time.
		return failedBy(wrapUnavailable(err))
	}
	ns := *s
	ns.Claims = id.Claims
	ns.AccessToken, ns.RefreshToken, ns.IDToken, ns.TokenExpiry = nt.AccessToken, nt.RefreshToken, nt.IDToken, nt.Expiry
	ns.ConfirmedAt = p.cfg.Now()
	return &checkResult{outcome: confirmed, s: &ns}
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

// recentChecks remembers, per session, the latest re-check's result and the newest state the IdP
// confirmed on this replica, for up to the session TTL, the least recently used dropped beyond its
// size. decide reads them for requests with a cookie from before a re-check.
type recentChecks struct {
	ttl time.Duration
	c   *expiring.Cache[string, recentEntry]
}

type recentEntry struct {
	last *checkResult     // the latest re-check
	good *session.Session // the newest state the IdP confirmed, nil if none yet
}

func newRecentChecks(size int, ttl time.Duration) *recentChecks {
	return &recentChecks{ttl: ttl, c: expiring.New[string, recentEntry](size, expiring.Evict)}
}

// get returns the latest re-check of id and the newest confirmed state, each nil if none is known.
func (rc *recentChecks) get(id string, now time.Time) (last *checkResult, good *session.Session) {
	e, _ := rc.c.Get(id, now)
	return e.last, e.good
}

func (rc *recentChecks) put(id string, r *checkResult, now time.Time) {
	e, _ := rc.c.Get(id, now)
	e.last = r
	if r.s != nil { // confirmed, or confirmed but not saved
		e.good = r.s
	}
	rc.c.Add(id, e, now.Add(rc.ttl), now)
}
