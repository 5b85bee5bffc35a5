package oidc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"golang.org/x/oauth2"
)

// Kind says what a failed IdP check means for the session, so callers never have to read error text.
type Kind int

const (
	// Invalid means the input (a code, a token, a response) did not verify: refuse it, log the cause.
	Invalid Kind = iota
	// Revoked means the IdP says the user, grant or token is gone: end the session now.
	Revoked
	// Unavailable means the IdP could not give an answer (timeout, 5xx, refused): fail closed, maybe
	// bridge with --recheck-grace, but never end the session for it.
	Unavailable
)

func (k Kind) String() string {
	switch k {
	case Revoked:
		return "revoked"
	case Unavailable:
		return "unavailable"
	default:
		return "invalid"
	}
}

// Error is every error this package returns from a call to the IdP. Step names the call ("refresh",
// "userinfo", "introspect", "exchange", "verify", ...), Kind how to react.
type Error struct {
	Kind Kind
	Step string
	Err  error
	// Misconfigured says the IdP refused zdgate's own client (invalid_client, unauthorized_client,
	// introspection or revocation 401): a configuration to fix, not the user's fault and not an
	// outage. Kind is then Unavailable: fail closed, keep the session.
	Misconfigured bool
}

func (e *Error) Error() string {
	kind := e.Kind.String()
	if e.Misconfigured {
		kind = "misconfigured (the IdP refuses this client)"
	}
	return fmt.Sprintf("oidc: %s: %s: %v", e.Step, kind, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

// KindOf classifies err; errors that are not *Error count as Invalid.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Invalid
}

// IsMisconfigured reports whether err is the IdP refusing zdgate's own client (see
// Error.Misconfigured).
func IsMisconfigured(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Misconfigured
}

// StatusError is a non-2xx answer from an IdP endpoint that we called directly.
type StatusError struct {
	StatusCode int
}

func (e *StatusError) Error() string { return fmt.Sprintf("status %d", e.StatusCode) }

func invalid(step string, err error) error { return &Error{Kind: Invalid, Step: step, Err: err} }

// classify maps a transport, HTTP or OAuth2 error to a Kind by type and status, never by text.
func classify(step string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	kind := Invalid
	misconfigured := false
	var re *oauth2.RetrieveError
	var se *StatusError
	var ne net.Error
	switch {
	case errors.Is(err, ErrFailingFast):
		kind = Unavailable
	case errors.As(err, &re):
		switch {
		case re.ErrorCode == "invalid_grant":
			kind = Revoked
		case re.Response != nil && (re.Response.StatusCode >= 500 || re.Response.StatusCode == http.StatusTooManyRequests):
			kind = Unavailable
		default:
			// invalid_client and friends are our configuration, not the user's fault: do not end
			// sessions for it, fail closed, and say so.
			kind = Unavailable
			switch re.ErrorCode {
			case "invalid_client", "unauthorized_client", "unsupported_grant_type":
				misconfigured = true
			case "":
				misconfigured = re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized
			}
		}
	case errors.As(err, &se):
		switch {
		case se.StatusCode == http.StatusUnauthorized || se.StatusCode == http.StatusForbidden:
			kind = Revoked
		default:
			kind = Unavailable
		}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.As(err, &ne):
		kind = Unavailable
	default:
		var oe *net.OpError
		if errors.As(err, &oe) {
			kind = Unavailable
		}
	}
	return &Error{Kind: kind, Step: step, Err: err, Misconfigured: misconfigured}
}
