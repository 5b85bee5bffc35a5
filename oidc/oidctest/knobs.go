package oidctest

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// AddUser adds u, or replaces the user with the same Subject, so a test can log in someone new
// without restarting the IdP.
func (s *Server) AddUser(u User) {
	if u.Subject == "" {
		panic("oidctest: AddUser: empty Subject")
	}
	u = cloneUser(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.users, func(x User) bool { return x.Subject == u.Subject }); i >= 0 {
		s.users[i] = u
		return
	}
	s.users = append(s.users, u)
}

// Users returns a copy of the accounts, e.g. for `zdgate demo` to print the demo login.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, len(s.users))
	for i, u := range s.users {
		out[i] = cloneUser(u)
	}
	return out
}

// DeleteUser removes the user, as an administrator who offboards someone: from then on a refresh
// answers 400 invalid_grant, userinfo 401 and introspection active:false for every token of theirs,
// and those tokens stay dead even if a user with the same Subject is added again. Unknown subjects
// are ignored.
func (s *Server) DeleteUser(sub string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = slices.DeleteFunc(s.users, func(u User) bool { return u.Subject == sub })
	for _, at := range s.access {
		if at.sub == sub || at.g.sub == sub {
			at.revoked = true
		}
	}
	for _, rt := range s.refresh {
		if rt.g.sub == sub {
			rt.g.revoked = true
		}
	}
	for _, c := range s.codes {
		if c.sub == sub {
			c.used = true
		}
	}
	s.endSessionsLocked(sub, "")
}

// UpdateUser changes a user's claims (f gets a copy; Subject cannot change), so a test can check
// that the next refresh, userinfo or introspection answer carries them. f runs without the
// server's lock held. It panics if there is no such user: the test is wrong.
func (s *Server) UpdateUser(sub string, f func(*User)) {
	s.mu.Lock()
	u, ok := s.userLocked(sub)
	s.mu.Unlock()
	if !ok {
		panic(fmt.Sprintf("oidctest: UpdateUser: no user %q", sub))
	}
	f(&u)
	u.Subject = sub
	s.AddUser(u)
}

// SetDelay makes every endpoint wait d before answering (0 turns it off), so a test can prove that
// zdgate's IdP calls time out. A client that gives up ends the wait early.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// SetDown makes every endpoint answer 503 while down is true, for outage and grace-period tests.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// SetUserinfoSubject makes userinfo answer sub=override for tokens of user sub (override "" undoes
// it), for the check that userinfo confirms the same subject as the ID token.
func (s *Server) SetUserinfoSubject(sub, override string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if override == "" {
		delete(s.uiSubject, sub)
		return
	}
	s.uiSubject[sub] = override
}

// SetUserinfo makes userinfo answer, for tokens of user sub, the claims that mutate makes of the
// user's current claims (nil undoes it): an IdP whose userinfo disagrees with its ID token, e.g. a
// different email without email_verified. The ID token and introspection are not affected.
func (s *Server) SetUserinfo(sub string, mutate func(claims map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mutate == nil {
		delete(s.uiMutate, sub)
		return
	}
	s.uiMutate[sub] = mutate
}

// Count returns how many calls an endpoint has had, so a test can prove caching and singleflight:
// "authorize", "token.code", "token.refresh", "token" (other grant types), "userinfo",
// "introspect", "revoke", "end_session", "jwks", "discovery", and "backchannel" (logout tokens
// sent). Calls answered 503 by SetDown count too. Unknown names count 0.
func (s *Server) Count(what string) int {
	if c := s.counts[what]; c != nil {
		return int(c.Load())
	}
	return 0
}

// ResetCounts sets every counter to zero and empties the Refreshes log, e.g. after the login that
// a test's setup did.
func (s *Server) ResetCounts() {
	for _, c := range s.counts {
		c.Store(0)
	}
	s.mu.Lock()
	s.refreshLog = nil
	s.mu.Unlock()
}

// Refresh is one refresh grant the IdP honoured: whose, in which IdP session, and when.
type Refresh struct {
	Subject, SID string
	At           time.Time
}

// Refreshes lists the refresh grants honoured so far, oldest first, so a test can check who
// refreshed when (say, once per session per re-check interval across a fleet). Count
// ("token.refresh") minus len(Refreshes()) is the number of refresh requests refused.
func (s *Server) Refreshes() []Refresh {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.refreshLog)
}

// NextIDToken lets mutate change the claims of the next ID token issued (code or refresh grant)
// before it is signed with the real key, e.g. a wrong nonce, aud, iss or a past exp. One-shot.
func (s *Server) NextIDToken(mutate func(claims map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextMutate = mutate
}

// NextIDTokenRaw replaces the next ID token issued entirely with what f returns (f gets the claims
// the token would have had; use Forge), e.g. an alg=none token. One-shot; applied after NextIDToken.
func (s *Server) NextIDTokenRaw(f func(claims map[string]any) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextRaw = f
}

// RevokeToken revokes an access or refresh token as RFC 7009 revocation by its client would (a
// refresh token takes the access tokens of its grant with it), without client authentication.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeLocked(token, "")
}

// refreshHold is one HoldRefreshes: arrivals are announced on arrived, and released ends the wait.
type refreshHold struct {
	arrived  chan struct{}
	released chan struct{}
	once     sync.Once
}

// HoldRefreshes makes refresh grants wait, once counted and authenticated but before the refresh
// token is looked at, until release is called, their client gives up, or the IdP closes: a slow
// token endpoint that a test controls, so it can act while a refresh is surely in flight (say,
// disconnect the browser whose request started it). A grant whose client gives up while held is
// not answered and spends nothing. Each held grant sends one value on arrived (buffered; extra
// arrivals beyond the buffer are not announced). release ends this hold for the grants waiting and
// for later ones; it is safe to call more than once.
func (s *Server) HoldRefreshes() (arrived <-chan struct{}, release func()) {
	h := &refreshHold{arrived: make(chan struct{}, 64), released: make(chan struct{})}
	s.hold.Store(h)
	return h.arrived, func() {
		h.once.Do(func() {
			s.hold.CompareAndSwap(h, nil)
			close(h.released)
		})
	}
}

// waitHold waits out a HoldRefreshes; false means the grant must not be answered.
func (s *Server) waitHold(r *http.Request) bool {
	h := s.hold.Load()
	if h == nil {
		return true
	}
	select {
	case h.arrived <- struct{}{}:
	default:
	}
	select {
	case <-h.released:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}
