package tokens

import (
	"errors"
	"fmt"
	"time"
)

// Flavor names one of Zendesk's JWT systems. They are not interchangeable:
// each has its own secret, header and claims, so a token is always minted
// and checked for exactly one flavor.
type Flavor string

// The flavors zdgate can mint.
const (
	// Messaging is for the Web Widget for messaging
	// (zE('messenger','loginUser')) and the Zendesk Android, iOS and Unity
	// SDKs. Its header carries the signing key's ID as kid.
	Messaging Flavor = "messaging"
	// Chat is for the classic Web Widget's chat jwtFn and the Chat SDK v2.
	Chat Flavor = "chat"
	// SSO is for Help Center / Support JWT single sign-on at /access/jwt.
	SSO Flavor = "sso"
	// SDK is for the classic Support SDK's JWT endpoint.
	SDK Flavor = "sdk"
)

// ErrUnknownFlavor is wrapped by every error about a flavor name that is
// not one of [Flavors], so configuration code can say which flag is wrong.
var ErrUnknownFlavor = errors.New("tokens: unknown flavor")

// Flavors lists every flavor in a fixed order, for help texts and for code
// that sets up one route or secret per flavor. The slice is new on each
// call, so callers may keep or change it.
func Flavors() []Flavor {
	return []Flavor{Messaging, Chat, SSO, SDK}
}

// ParseFlavor turns a flag or query value into a Flavor. Only the exact
// lower-case names are accepted: a typo must stop start-up rather than fall
// back to another flavor.
func ParseFlavor(s string) (Flavor, error) {
	f := Flavor(s)
	if !f.valid() {
		return "", fmt.Errorf("%w %q (want messaging, chat, sso or sdk)", ErrUnknownFlavor, s)
	}
	return f, nil
}

// String returns the flavor's name as used in flags, routes and metrics.
func (f Flavor) String() string { return string(f) }

// RequiresEmail reports whether the flavor cannot be minted without a
// verified email, so a caller can answer "email not verified" before doing
// any other work. [Signer.Sign] enforces the same rule with
// [ErrEmailRequired].
func (f Flavor) RequiresEmail() bool { return f.rules().emailRequired }

// ExternalIDLimit is the most characters (not bytes) an external_id may
// have in this flavor; longer ones are refused with a [*LimitError], never
// truncated, because a truncated id could name another user.
func (f Flavor) ExternalIDLimit() int { return f.rules().externalIDLimit }

// MaxTTL is the longest lifetime a [Signer] gives this flavor's tokens, whatever its Config.TTL
// (0: no cap). Chat's is 5 minutes: Zendesk's 7-minute maximum less its 2 minutes of clock skew.
func (f Flavor) MaxTTL() time.Duration { return f.rules().mintCap }

func (f Flavor) valid() bool {
	switch f {
	case Messaging, Chat, SSO, SDK:
		return true
	}
	return false
}

// rules is everything that differs between flavors, in one place.
type rules struct {
	kid             bool          // header carries the signing key ID
	scope           bool          // claims carry scope:"user"
	jti             bool          // claims carry a random, unique jti
	profile         bool          // organization, tags, role, user_fields... allowed
	emailRequired   bool          // a verified email is required
	emailASCII      bool          // the email must be ASCII (Chat: no accented characters)
	nameRequired    bool          // a name is required
	expRequired     bool          // exp is always present
	externalIDLimit int           // in characters
	maxLifetime     time.Duration // largest exp-iat Zendesk accepts (Verify); 0 = none documented
	mintCap         time.Duration // longest lifetime a Signer mints; 0 = no cap
	defaultTTL      time.Duration // used when Config.TTL is 0
	// What Zendesk itself documents, as opposed to zdgate's stricter
	// contract above: token verify reports a broken Zendesk rule as an
	// error and a broken zdgate rule as a warning.
	zendeskIDLimit    bool // externalIDLimit is Zendesk's documented limit
	zendeskIDOptional bool // Zendesk documents external_id as optional
	zendeskIAT        bool // Zendesk documents iat as required
	zendeskExp        bool // Zendesk documents exp as required
}

const (
	// clockSkew is how far ahead of our clock an iat may be; Zendesk
	// documents two minutes for Chat and SSO.
	clockSkew = 2 * time.Minute
	// chatMaxLifetime is Chat's documented maximum of exp-iat (7 minutes).
	chatMaxLifetime = 420 * time.Second
	// chatMintCap is the longest Chat token zdgate mints: Zendesk's 7 minutes less the 2 minutes of
	// clock skew it allows, so a token from a server whose clock runs ahead is still accepted. This
	// is the one place the Chat lifetime rule lives; --zendesk-token-ttl's help quotes it.
	chatMintCap = chatMaxLifetime - clockSkew
	// millisecondsThreshold: an iat or exp above this (year 5138 in
	// seconds) is taken to be in milliseconds, the classic Date.now() bug.
	millisecondsThreshold = 1e11
)

func (f Flavor) rules() rules {
	switch f {
	case Messaging:
		// Messaging's claim table (Zendesk, Unity SDK authentication page):
		// external_id required, "The maximum length is 255 characters";
		// exp optional; iat not listed.
		return rules{
			kid: true, scope: true, expRequired: true,
			externalIDLimit: 255, defaultTTL: 10 * time.Minute,
			zendeskIDLimit: true,
		}
	case Chat:
		return rules{
			emailRequired: true, emailASCII: true, nameRequired: true, expRequired: true,
			externalIDLimit: 200, maxLifetime: chatMaxLifetime, mintCap: chatMintCap, defaultTTL: chatMintCap,
			// Chat documents iat and exp as required and no external_id
			// limit (support.zendesk.com/hc/en-us/articles/4408838925082).
			zendeskIAT: true, zendeskExp: true,
		}
	case SSO, SDK:
		// Zendesk documents no external_id limit for SSO; 255 is the
		// limit of a Zendesk user's external_id elsewhere.
		// SSO's attribute table: iat, jti, email, name required;
		// external_id optional ("If your users are uniquely identified by
		// something other than an email address...").
		return rules{
			jti: true, profile: true, emailRequired: true, nameRequired: true,
			externalIDLimit:   255,
			zendeskIDOptional: true, zendeskIAT: true,
		}
	}
	return rules{}
}
