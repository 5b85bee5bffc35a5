package tokens

import (
	"errors"
	"fmt"
)

// ErrEmailRequired means the flavor needs an email that the IdP has
// verified and the user has none. Chat, SSO and SDK tokens cannot be minted
// without one; the proxy answers it with 403 {"error":"email_not_verified"}.
var ErrEmailRequired = errors.New("tokens: a verified email is required")

// ErrRoleNotAllowed means the IdP asserted a Zendesk role that the
// operator's allow-list does not contain. It is an error rather than a
// silent "user" because role changes a person's rights in Zendesk.
var ErrRoleNotAllowed = errors.New("tokens: role not allowed")

// ErrKeyInvalid means the signing key from the [KeySource] cannot be used
// (no secret, or no key ID for messaging). The key itself is never part of
// the message.
var ErrKeyInvalid = errors.New("tokens: signing key unusable")

// ClaimError says that a required claim is missing or has a value that
// cannot be used, naming the claim so an operator can fix the IdP or the
// mapping. It never contains the claim's value.
type ClaimError struct {
	// Claim is the claim's name: an IdP claim (e.g. "employee_id") for
	// errors from [Mapping.User], a Zendesk claim (e.g. "external_id")
	// for errors from [Signer.Sign].
	Claim string
	// For is the Zendesk claim an IdP claim was meant to fill; empty when
	// Claim is itself the Zendesk claim.
	For string
	// Reason says what is wrong, e.g. "missing" or "not a string".
	Reason string
}

// Error names the claim and the reason, never the value.
func (e *ClaimError) Error() string {
	if e.For != "" && e.For != e.Claim {
		return fmt.Sprintf("tokens: claim %q (for %s): %s", e.Claim, e.For, e.Reason)
	}
	return fmt.Sprintf("tokens: claim %q: %s", e.Claim, e.Reason)
}

// LimitError says a claim is longer than the flavor allows. zdgate never
// truncates an identifier, because the shortened value could name another
// user; the operator has to choose a shorter claim or prefix.
type LimitError struct {
	Flavor Flavor
	Claim  string
	Length int // in characters (runes)
	Limit  int // in characters (runes)
}

// Error gives the length and the limit, never the value.
func (e *LimitError) Error() string {
	return fmt.Sprintf("tokens: %s: %s is %d characters; the limit is %d", e.Flavor, e.Claim, e.Length, e.Limit)
}
