package session

import (
	"context"
	"errors"
	"time"

	"github.com/zdgate/zdgate/internal/expiring"
)

// Revocations ends sessions when the IdP sends a back-channel logout, and at
// sign-out. A sealed cookie cannot be recalled from the browser, so the store
// asks this list on every Load. It is an interface because an in-memory list
// only covers one replica; a shared (Redis) one makes logout work across all.
type Revocations interface {
	// RevokeSession ends the one session with this ID (a sign-out), for the
	// rest of its lifetime: a copy of its cookie taken before is refused.
	RevokeSession(ctx context.Context, id string) error
	// RevokeSID ends every session that carries this IdP session id.
	RevokeSID(ctx context.Context, sid string) error
	// RevokeSubject ends every session of sub created up to now; a later
	// login of the same user is unaffected.
	RevokeSubject(ctx context.Context, sub string) error
	// Revoked reports whether s has been ended by one of the above.
	Revoked(ctx context.Context, s *Session) (bool, error)
}

// DefaultMaxRevocations is the size of a MemoryRevocations when none is given.
const DefaultMaxRevocations = 100_000

// MemoryRevocations is a Revocations for a single replica. Memory is bounded
// twice: an entry is dropped once it is older than the session TTL (every
// session it could end has expired by then), and beyond max entries the
// oldest is evicted, which can let a session revoked long ago live out its
// TTL; size max for the logouts expected within one TTL.
type MemoryRevocations struct {
	ttl time.Duration
	max int
	now func() time.Time
	c   *expiring.Cache[revKey, time.Time] // when each was revoked; read with Peek, so the oldest goes first
}

type revKind uint8

const (
	bySID revKind = iota + 1
	bySubject
	byID
)

type revKey struct {
	kind  revKind
	value string
}

var _ Revocations = (*MemoryRevocations)(nil)

// NewMemoryRevocations returns an empty list whose entries last ttl (the
// session TTL; 0 or less keeps them until evicted) and which holds at most max
// entries (0 or less means DefaultMaxRevocations). now nil means time.Now.
func NewMemoryRevocations(ttl time.Duration, max int, now func() time.Time) *MemoryRevocations {
	if max <= 0 {
		max = DefaultMaxRevocations
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryRevocations{ttl: ttl, max: max, now: now, c: expiring.New[revKey, time.Time](max, expiring.Evict)}
}

// RevokeSession ends the session with this ID on this replica: its cookie,
// and every copy of it, is refused from now on until the session would have
// expired anyway.
func (m *MemoryRevocations) RevokeSession(_ context.Context, id string) error {
	if id == "" {
		return errors.New("session: revoke: empty session id")
	}
	m.add(revKey{byID, id})
	return nil
}

// RevokeSID ends every session with this IdP session id, whenever it was
// created: a logged-out IdP session must not come back.
func (m *MemoryRevocations) RevokeSID(_ context.Context, sid string) error {
	if sid == "" {
		return errors.New("session: revoke: empty sid")
	}
	m.add(revKey{bySID, sid})
	return nil
}

// RevokeSubject ends the sessions of sub created up to now, leaving a login
// after the logout alone.
func (m *MemoryRevocations) RevokeSubject(_ context.Context, sub string) error {
	if sub == "" {
		return errors.New("session: revoke: empty subject")
	}
	m.add(revKey{bySubject, sub})
	return nil
}

// Revoked reports whether s was ended by RevokeSession, RevokeSID or
// RevokeSubject.
func (m *MemoryRevocations) Revoked(_ context.Context, s *Session) (bool, error) {
	now := m.now()
	if s.ID != "" {
		if _, ok := m.c.Peek(revKey{byID, s.ID}, now); ok {
			return true, nil
		}
	}
	if s.SID != "" {
		if _, ok := m.c.Peek(revKey{bySID, scopedName(s.Provider, s.SID)}, now); ok {
			return true, nil
		}
	}
	if at, ok := m.c.Peek(revKey{bySubject, scopedName(s.Provider, s.Subject)}, now); ok && !s.CreatedAt.After(at) {
		return true, nil
	}
	return false, nil
}

// Len is the number of entries held, expired ones included until a lookup
// finds them expired, or they are evicted.
func (m *MemoryRevocations) Len() int { return m.c.Len() }

// add revokes key as of now; revoking it again refreshes its time.
func (m *MemoryRevocations) add(key revKey) {
	now := m.now()
	var until time.Time // no expiry without a TTL
	if m.ttl > 0 {
		until = now.Add(m.ttl)
	}
	m.c.Add(key, now, until, now)
}
