// Package session keeps a logged-in browser's identity between requests.
// CookieStore needs no shared server state: the session is sealed
// (AES-256-GCM) into cookies, split into chunks that browsers accept.
// RedisStore keeps it in Redis instead, encrypted with a key that only the
// browser's sealed ticket holds, so that logouts reach every replica. Either
// way a session is bounded by an absolute lifetime that token refreshes never
// extend. The package also seals other short-lived cookies (the login state)
// and remembers back-channel logouts.
//
// The package knows nothing of the identity provider or Zendesk: a Session is
// plain data that the proxy fills in and reads back.
package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Errors from Load and Open. Callers branch on them with errors.Is to decide
// between "log in again" and "something is wrong"; the proxy never shows
// their text to the client.
var (
	// ErrNotFound means the request carries no session cookie at all: an
	// anonymous visitor rather than a broken session.
	ErrNotFound = errors.New("session: no session cookie")
	// ErrInvalid means a cookie is present but cannot be trusted: tampered,
	// truncated, chunks reordered or missing, sealed for another cookie name
	// or with a secret that has been retired, or not encoded as we write it.
	ErrInvalid = errors.New("session: invalid sealed cookie")
	// ErrExpired means the value was genuine but its absolute lifetime is over.
	ErrExpired = errors.New("session: expired")
	// ErrRevoked means the identity provider ended the session through
	// back-channel logout.
	ErrRevoked = errors.New("session: revoked by the identity provider")
	// ErrTooLarge means a session does not fit into the cookies a browser
	// keeps; Save refuses rather than truncating it.
	ErrTooLarge = errors.New("session: too large for cookies")
)

// Session is one logged-in browser. It is plain data so that the cookie store
// here and a server-side store can keep the same thing; times survive a round
// trip through a store to the millisecond, claim numbers come back as float64
// (as from any JSON decoding). Pass it by pointer: String, GoString and
// LogValue redact it so that tokens never reach a log line by accident.
type Session struct {
	ID           string         // random 128-bit, new on every login (no fixation)
	Subject      string         // IdP sub
	SID          string         // IdP session id (back-channel logout), may be empty
	Claims       map[string]any // verified identity claims as last confirmed by the IdP
	AccessToken  string
	RefreshToken string
	IDToken      string    // for id_token_hint at RP-initiated logout
	TokenExpiry  time.Time // access token expiry
	CreatedAt    time.Time // absolute session TTL counts from here; refreshes never extend it
	ConfirmedAt  time.Time // last time the IdP confirmed this user
	// Provider names the identity provider the session belongs to, when several are configured;
	// "" is the only one of a single-IdP configuration (and every session from before providers
	// existed). Its re-checks, revocations and logouts concern that provider alone.
	Provider string
}

// NewID returns a fresh random session ID (128 bits from crypto/rand,
// base64url). A new ID on every login means a session that an attacker
// planted before the login can never become the logged-in one.
func NewID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error; it crashes the program if the
	// operating system cannot supply randomness.
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ExpiresAt is when the session ends however often it is refreshed: the
// absolute lifetime counts from CreatedAt.
func (s *Session) ExpiresAt(ttl time.Duration) time.Time {
	return s.CreatedAt.Add(ttl)
}

// idPrefixLen is how much of the ID logs show: enough to correlate the lines
// of one session, too little to be a lookup key for a server-side store.
const idPrefixLen = 8

func (s *Session) idPrefix() string {
	if len(s.ID) <= idPrefixLen {
		return s.ID
	}
	return s.ID[:idPrefixLen]
}

// LogValue lets slog print a session as its ID prefix and subject only, so
// that logging a session can never leak a token or a claim value.
func (s *Session) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("none")
	}
	return slog.GroupValue(
		slog.String("id", s.idPrefix()),
		slog.String("sub", s.Subject),
	)
}

// String keeps fmt's %v and %s as redacted as LogValue.
func (s *Session) String() string {
	if s == nil {
		return "session(none)"
	}
	return fmt.Sprintf("session(id=%s sub=%q)", s.idPrefix(), s.Subject)
}

// GoString keeps fmt's %#v as redacted as LogValue.
func (s *Session) GoString() string { return s.String() }

// Store is what the proxy uses to keep sessions: CookieStore, or RedisStore
// (with only a ticket in the cookie). r is read for its cookies only; ctx
// bounds whatever the store does beyond that (Redis round trips, the
// revocation check), so a caller can finish a save the browser no longer
// waits for. Save and Clear may write Set-Cookie headers to w, so they run
// before the response header is sent.
type Store interface {
	// Load returns the request's session, or ErrNotFound, ErrInvalid,
	// ErrExpired, ErrRevoked, or an error of the store's backend.
	Load(ctx context.Context, r *http.Request) (*Session, error)
	// Save stores s for the browser; r shows which cookies of an earlier
	// session are to be cleared.
	Save(ctx context.Context, w http.ResponseWriter, r *http.Request, s *Session) error
	// Clear ends the request's session in the browser.
	Clear(ctx context.Context, w http.ResponseWriter, r *http.Request) error
}
