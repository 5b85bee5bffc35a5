package session

import (
	"context"
	"errors"
)

// scopedName is how revocations name an IdP value (a sid or a subject) of a provider: the value
// itself for the one provider of a single-IdP configuration (""), so markers, indexes and tickets
// are what they always were; else the provider, a NUL and the value. Two identity providers can
// both have a user "123" or a session "abc"; a logout at one must never end the other's.
func scopedName(provider, v string) string {
	if provider == "" {
		return v
	}
	return provider + "\x00" + v
}

// ForProvider is r for the sessions of one identity provider: its RevokeSID and RevokeSubject end
// only sessions whose Provider is provider, whatever the other providers' sessions carry. Use it
// for every back-channel logout when several providers are configured. RevokeSession and Revoked
// are r's own: session IDs are unique across providers, and Revoked reads the session's Provider.
func ForProvider(r Revocations, provider string) Revocations {
	return scoped{r, provider}
}

type scoped struct {
	Revocations
	provider string
}

func (s scoped) RevokeSID(ctx context.Context, sid string) error {
	if sid == "" {
		return errors.New("session: revoke: empty sid")
	}
	return s.Revocations.RevokeSID(ctx, scopedName(s.provider, sid))
}

func (s scoped) RevokeSubject(ctx context.Context, sub string) error {
	if sub == "" {
		return errors.New("session: revoke: empty subject")
	}
	return s.Revocations.RevokeSubject(ctx, scopedName(s.provider, sub))
}
