package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/zdgate/zdgate/internal/expiring"
	"github.com/zdgate/zdgate/oidc"
)

// bearerRefusalTTL is how long a bearer token the IdP refused (or that did not verify) is refused
// again from memory, by its hash, without asking the IdP.
const bearerRefusalTTL = time.Minute

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != "" && len(tok) <= 16<<10
}

// bearerIdentity verifies a bearer access token at the IdP, then re-checks it like a session. The
// answer is remembered under the token's SHA-256: a confirmed token for at most --recheck-interval
// and never past its expiry, a refused one for bearerRefusalTTL. Only tokens not remembered reach
// the IdP, and those count against --bearer-rate-limit for the client's address (429 beyond it), so
// the IdP never sees one call per bad request.
func (p *Proxy) bearerIdentity(r *http.Request, tok string) (oidc.Identity, error) {
	_, id, err := p.bearerUser(r, tok)
	return id, err
}

// bearerUser is bearerIdentity with the token's provider. With several providers the token goes
// to the one provider it can belong to (providerSet.forBearer), never to each in turn.
func (p *Proxy) bearerUser(r *http.Request, tok string) (*provider, oidc.Identity, error) {
	pv, err := p.providers.forBearer(tok)
	if err != nil {
		return nil, oidc.Identity{}, err
	}
	key := sha256.Sum256([]byte(tok))
	now := p.cfg.Now()
	if e, ok := p.bearers.Get(key, now); ok {
		if e.err != nil {
			return nil, oidc.Identity{}, bearerRefusal(e.err)
		}
		setSub(r.Context(), e.id.Subject)
		return pv, e.id, p.policy(pv, e.id)
	}
	if !p.limits.allow(p.trust.clientIP(r), now) {
		return nil, oidc.Identity{}, errRateLimited
	}
	v, _, _ := p.flight.Do("bearer:"+string(key[:]), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
		defer cancel()
		id, t, err := pv.OIDC.VerifyBearer(ctx, tok)
		pv.m.idpChecks.WithLabelValues("bearer", resultOf(err)).Inc()
		switch {
		case err == nil:
			until := now.Add(p.cfg.RecheckInterval)
			if !t.Expiry.IsZero() && t.Expiry.Before(until) {
				until = t.Expiry
			}
			p.bearers.Add(key, bearerEntry{id: id}, until, now)
		case oidc.KindOf(err) != oidc.Unavailable:
			p.bearers.Add(key, bearerEntry{err: err}, now.Add(bearerRefusalTTL), now)
		}
		return bearerResult{id, err}, nil
	})
	res := v.(bearerResult)
	if res.err != nil {
		return nil, oidc.Identity{}, bearerRefusal(res.err)
	}
	setSub(r.Context(), res.id.Subject)
	return pv, res.id, p.policy(pv, res.id)
}

// bearerRefusal is the answer to a bearer token the IdP did not confirm: 503 when it could not
// answer, 401 invalid_audience when the token is for another client, else 401 invalid_token.
func bearerRefusal(err error) error {
	switch {
	case oidc.KindOf(err) == oidc.Unavailable:
		return wrapUnavailable(err)
	case errors.Is(err, oidc.ErrAudience):
		return errUnauthorized("invalid_audience", err)
	}
	return errUnauthorized("invalid_token", err)
}

var errRateLimited = &httpError{status: http.StatusTooManyRequests, code: "rate_limited",
	err: errors.New("too many bearer tokens to check from this client address")}

type bearerResult struct {
	id  oidc.Identity
	err error
}

// bearerCache remembers bearer tokens by hash: confirmed (id) or refused (err), each until its
// time by the injected clock, the least recently used dropped beyond its size.
type bearerCache = expiring.Cache[[32]byte, bearerEntry]

type bearerEntry struct {
	id  oidc.Identity
	err error // the refusal, when not confirmed
}

func newBearerCache(size int) *bearerCache {
	return expiring.New[[32]byte, bearerEntry](size, expiring.Evict)
}
