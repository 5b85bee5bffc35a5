package tokens

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Zendesk's claim and header names. The struct tags below repeat them,
// because Go tags must be literals; everything else uses these constants.
const (
	claimScope          = "scope"
	claimExternalID     = "external_id"
	claimName           = "name"
	claimEmail          = "email"
	claimEmailVerified  = "email_verified"
	claimIssuedAt       = "iat"
	claimExpiry         = "exp"
	claimJTI            = "jti"
	claimOrganization   = "organization"
	claimOrganizationID = "organization_id"
	claimTags           = "tags"
	claimRole           = "role"
	claimCustomRoleID   = "custom_role_id"
	claimLocale         = "locale"
	claimPhone          = "phone"
	claimRemotePhotoURL = "remote_photo_url"
	claimUserFields     = "user_fields"

	headerAlg = "alg"
	headerTyp = "typ"
	headerKID = "kid"

	algHS256       = "HS256"
	typJWT         = "JWT"
	scopeUser      = "user"
	roleUser       = "user"
	roleAgent      = "agent"
	roleAdmin      = "admin"
	zendeskRoleSet = "user, agent or admin"
)

// isZendeskRole reports whether r is a role Zendesk SSO understands.
func isZendeskRole(r string) bool {
	return r == roleUser || r == roleAgent || r == roleAdmin
}

// User is the verified identity that goes into a token. The proxy builds it
// from the IdP (usually with [Mapping.User]); it must never come from
// anything the browser sent.
type User struct {
	// ExternalID is Zendesk's primary key for the person: stable, never
	// reassigned, and never an email address.
	ExternalID string
	Name       string
	// Email is set only when the IdP said email_verified:true, and then
	// EmailVerified is true as well. A token never carries an email the
	// IdP has not vouched for: in Zendesk an email identifies an account.
	Email         string
	EmailVerified bool

	// The rest is used by the SSO and SDK flavors only, and set only from
	// claims an operator mapped explicitly: these change a person's rights
	// and data in Zendesk (tags replace all tags, role changes access).
	Organization   string
	OrganizationID string // the organization's external ID in Zendesk
	Role           string // user, agent or admin
	CustomRoleID   string
	// Locale is a Zendesk locale id (a number, as Zendesk documents it);
	// 0 means none. [Mapping.User] maps BCP 47 tags through [LocaleIDs].
	Locale         int
	Phone          string
	RemotePhotoURL string
	Tags           []string
	UserFields     map[string]any // user field key -> value
}

// messagingClaims is the Messaging payload. email_verified is only ever
// true or absent: Sign drops an unverified email altogether.
type messagingClaims struct {
	Scope         string `json:"scope"`
	ExternalID    string `json:"external_id"`
	Name          string `json:"name,omitempty"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
	stamps
}

// chatClaims is the Chat payload; every field is required by Zendesk.
type chatClaims struct {
	Name       string `json:"name"`
	Email      string `json:"email"`
	ExternalID string `json:"external_id"`
	stamps
}

// ssoClaims is the SSO and Support SDK payload. Optional fields are left
// out when empty, so an unmapped field never overwrites Zendesk's data.
type ssoClaims struct {
	stamps
	JTI            string         `json:"jti"`
	Email          string         `json:"email"`
	Name           string         `json:"name"`
	ExternalID     string         `json:"external_id"`
	Organization   string         `json:"organization,omitempty"`
	OrganizationID string         `json:"organization_id,omitempty"`
	Tags           []string       `json:"tags,omitempty"`
	Role           string         `json:"role,omitempty"`
	CustomRoleID   string         `json:"custom_role_id,omitempty"`
	Locale         int            `json:"locale,omitempty"`
	Phone          string         `json:"phone,omitempty"`
	RemotePhotoURL string         `json:"remote_photo_url,omitempty"`
	UserFields     map[string]any `json:"user_fields,omitempty"`
}

// stamps are iat and exp, in seconds, where each payload puts them (JSON keeps the order of
// fields, and of an embedded struct's fields at its place). exp is left out when zero: sso and sdk
// tokens carry none by default; messaging and chat always have one. The methods make each payload
// a jwt.Claims for golang-jwt.
type stamps struct {
	IssuedAt int64 `json:"iat"`
	Expiry   int64 `json:"exp,omitempty"`
}

func (s stamps) GetIssuedAt() (*jwt.NumericDate, error) { return numericDate(s.IssuedAt), nil }
func (s stamps) GetExpirationTime() (*jwt.NumericDate, error) {
	return numericDate(s.Expiry), nil
}
func (stamps) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (stamps) GetIssuer() (string, error)              { return "", nil }
func (stamps) GetSubject() (string, error)             { return "", nil }
func (stamps) GetAudience() (jwt.ClaimStrings, error)  { return nil, nil }

func numericDate(unix int64) *jwt.NumericDate {
	if unix == 0 {
		return nil
	}
	return jwt.NewNumericDate(time.Unix(unix, 0))
}

// check applies the flavor's rules to u before anything is signed and
// returns every problem at once. Error texts name claims, never values
// (except a role, which is not personal data).
func (r rules) check(f Flavor, u User) error {
	var errs []error
	switch n := utf8.RuneCountInString(u.ExternalID); {
	case u.ExternalID == "":
		errs = append(errs, &ClaimError{Claim: claimExternalID, Reason: "missing"})
	case !utf8.ValidString(u.ExternalID):
		// JSON encoding would replace the bad bytes and so change the id.
		errs = append(errs, &ClaimError{Claim: claimExternalID, Reason: "not valid UTF-8"})
	case n > r.externalIDLimit:
		errs = append(errs, &LimitError{Flavor: f, Claim: claimExternalID, Length: n, Limit: r.externalIDLimit})
	}
	if r.emailRequired && (u.Email == "" || !u.EmailVerified) {
		errs = append(errs, fmt.Errorf("tokens: %s: %w", f, ErrEmailRequired))
	}
	if u.Email != "" && u.EmailVerified {
		switch {
		case !utf8.ValidString(u.Email):
			errs = append(errs, &ClaimError{Claim: claimEmail, Reason: "not valid UTF-8"})
		case r.emailASCII && !isASCII(u.Email):
			errs = append(errs, &ClaimError{Claim: claimEmail, Reason: chatEmailRule})
		}
	}
	if u.Locale < 0 {
		errs = append(errs, &ClaimError{Claim: claimLocale, Reason: "a negative locale id"})
	}
	if r.nameRequired && u.Name == "" {
		errs = append(errs, &ClaimError{Claim: claimName, Reason: "missing"})
	}
	if r.profile {
		if u.Role != "" && !isZendeskRole(u.Role) {
			errs = append(errs, fmt.Errorf("%w: %q is not a Zendesk role (want %s)", ErrRoleNotAllowed, u.Role, zendeskRoleSet))
		}
		for k, v := range u.UserFields {
			if k == "" {
				errs = append(errs, &ClaimError{Claim: claimUserFields, Reason: "a field has an empty key"})
			} else if v == nil {
				// Zendesk erases a field sent as null; zdgate never does that.
				errs = append(errs, &ClaimError{Claim: claimUserFields, Reason: fmt.Sprintf("field %q is null, which would erase it", k)})
			}
		}
	}
	return errors.Join(errs...)
}
