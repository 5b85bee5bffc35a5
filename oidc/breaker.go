package oidc

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultFailFast is how long, after an IdP call failed as unavailable, every further call of the
// same Client fails at once (Config.FailFast).
const DefaultFailFast = 5 * time.Second

// ErrFailingFast is the error of a call refused without contacting the IdP, because a call just
// before failed as unavailable. It is wrapped in an *Error of Kind Unavailable.
var ErrFailingFast = errors.New("identity provider unavailable: not called again until it has recovered")

// breaker sits between a Client and its HTTP transport. When a call fails as unavailable (a
// transport error, a timeout, 5xx, 429), calls fail at once with ErrFailingFast for the fail-fast
// period; then one call goes through as a probe while the others still fail fast, and its success
// closes the breaker again. A hung IdP thus costs one timeout per period and replica, not one per
// request. It is per Client, so per IdP.
type breaker struct {
	next   http.RoundTripper
	now    func() time.Time
	period time.Duration

	mu        sync.Mutex
	openUntil time.Time // zero: closed
	probing   bool
}

func (b *breaker) RoundTrip(r *http.Request) (*http.Response, error) {
	probe, err := b.admit()
	if err != nil {
		return nil, err
	}
	res, err := b.next.RoundTrip(r)
	failed := err != nil && !errors.Is(err, context.Canceled) ||
		err == nil && (res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests)
	b.done(probe, failed)
	return res, err
}

func (b *breaker) admit() (probe bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.openUntil.IsZero():
		return false, nil
	case b.now().Before(b.openUntil), b.probing:
		return false, ErrFailingFast
	}
	b.probing = true
	return true, nil
}

func (b *breaker) done(probe, failed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	if failed {
		b.openUntil = b.now().Add(b.period)
	} else {
		b.openUntil = time.Time{}
	}
}

// misconfigFor is how long a refusal of zdgate's own client (Error.Misconfigured) is reported by
// ConfigProblem after the last one, unless a call proves the credentials good first.
const misconfigFor = time.Minute

// configProblem is the last refusal of zdgate's client credentials by the IdP.
type configProblem struct {
	err    error
	at     time.Time
	secret [sha256.Size]byte // of the client secret at the time
}

// trackConfig remembers Misconfigured errors and forgets them when an authenticated call works.
type trackConfig struct{ last atomic.Pointer[configProblem] }

func (c *Client) noteAuthenticated(err error) {
	switch {
	case err == nil:
		c.config.last.Store(nil)
	case IsMisconfigured(err):
		c.config.last.Store(&configProblem{err: err, at: c.cfg.Now(), secret: sha256.Sum256([]byte(c.cfg.ClientSecret()))})
	}
}

// ConfigProblem is the IdP's latest refusal of zdgate's own client (invalid_client and the like),
// or nil: nil again once a client-authenticated call succeeds, the client secret changes, or a
// minute passes without another refusal. /readyz reports it, because a replica whose client the
// IdP refuses can confirm no one.
func (c *Client) ConfigProblem() error {
	p := c.config.last.Load()
	if p == nil || c.cfg.Now().Sub(p.at) > misconfigFor || sha256.Sum256([]byte(c.cfg.ClientSecret())) != p.secret {
		return nil
	}
	return p.err
}

// failing reports whether the latest call failed as unavailable and none has worked since.
func (b *breaker) failing() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.openUntil.IsZero()
}
