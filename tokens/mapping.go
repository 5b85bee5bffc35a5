package tokens

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The OIDC claims Mapping reads when nothing else is configured.
const (
	oidcSub               = "sub"
	oidcName              = "name"
	oidcGivenName         = "given_name"
	oidcFamilyName        = "family_name"
	oidcPreferredUsername = "preferred_username"
	oidcEmail             = "email"
	oidcEmailVerified     = "email_verified"
)

// Mapping turns the claims the IdP verified into a [User]. The operator's
// configuration (which claim is which) lives in cmd and proxy; the rules
// (what may become a Zendesk claim, and when) live here.
//
// Anything that changes a person's rights or data in Zendesk (role, tags,
// organization, user fields...) is emitted only when mapped here from a
// named IdP claim; an IdP claim that merely happens to be called "role" is
// ignored. Mapped claims the IdP does not send are left out of the token
// rather than sent empty, so Zendesk keeps what it has.
type Mapping struct {
	// ExternalIDClaim is the IdP claim that becomes external_id, default
	// "sub". It must be stable and never reassigned; "email" is refused.
	ExternalIDClaim string
	// ExternalIDPrefix is put in front of the value, e.g. to keep two IdPs
	// apart in one Zendesk account.
	ExternalIDPrefix string
	// NameClaim is the IdP claim for the display name, default "name".
	// When it is missing or empty the name falls back to given_name and
	// family_name, then preferred_username, then the local part of the
	// verified email, so that Chat and SSO (which need a name) still work.
	NameClaim string

	// Help Center (sso, sdk) profile claims, each from the named IdP claim.
	OrganizationClaim   string
	OrganizationIDClaim string
	TagsClaim           string // a JSON array of strings, or one string
	RoleClaim           string // needs AllowedRoles
	CustomRoleIDClaim   string
	// LocaleClaim's value becomes SSO's numeric locale: a locale id as it
	// is, or a BCP 47 tag looked up in Locales and then the built-in
	// [LocaleIDs]. Any other value is a *ClaimError, never passed through.
	LocaleClaim         string
	PhoneClaim          string
	RemotePhotoURLClaim string
	// AllowedRoles are the Zendesk roles (user, agent, admin) RoleClaim may
	// grant. A mapped value outside the list is an error
	// ([ErrRoleNotAllowed]), not a silent downgrade, so a misconfigured IdP
	// is noticed.
	AllowedRoles []string
	// UserFields maps a Zendesk user field key to the IdP claim filling it.
	UserFields map[string]string
	// Locales adds BCP 47 tags (any case, "_" or "-") to the table that
	// maps LocaleClaim values to Zendesk locale ids; it wins over the
	// built-in entries.
	Locales map[string]int
}

// Validate reports every problem with the mapping at once and changes
// nothing. Each message starts with the field's name.
func (m Mapping) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("tokens: mapping: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if m.ExternalIDClaim == oidcEmail || m.ExternalIDClaim == oidcEmailVerified {
		bad("ExternalIDClaim", "%q can change or be unverified; use a stable id such as sub", m.ExternalIDClaim)
	}
	if !utf8.ValidString(m.ExternalIDPrefix) {
		bad("ExternalIDPrefix", "not valid UTF-8")
	} else if n := utf8.RuneCountInString(m.ExternalIDPrefix); n >= Chat.ExternalIDLimit() {
		bad("ExternalIDPrefix", "%d characters leaves no room for an id", n)
	}
	for _, r := range m.AllowedRoles {
		if !isZendeskRole(r) {
			bad("AllowedRoles", "%q is not a Zendesk role (want %s)", r, zendeskRoleSet)
		}
	}
	switch {
	case m.RoleClaim != "" && len(m.AllowedRoles) == 0:
		bad("RoleClaim", "needs AllowedRoles, or every role would be refused")
	case m.RoleClaim == "" && len(m.AllowedRoles) > 0:
		bad("AllowedRoles", "has no effect without RoleClaim")
	}
	for _, key := range slices.Sorted(maps.Keys(m.UserFields)) {
		if key == "" {
			bad("UserFields", "empty user field key")
		}
		if m.UserFields[key] == "" {
			bad("UserFields", "user field %q has no IdP claim", key)
		}
	}
	for _, tag := range slices.Sorted(maps.Keys(m.Locales)) {
		if _, numeric := ParseLocaleID(tag); normLocale(tag) == "" || numeric {
			bad("Locales", "%q is not a locale tag such as fr or pt-BR", tag)
		}
		if m.Locales[tag] <= 0 {
			bad("Locales", "%q: the Zendesk locale id must be a positive number", tag)
		}
	}
	return errors.Join(errs...)
}

// User builds the User for verified IdP claims. email is taken only when
// claims["email_verified"] says so by the rule of [Verified]. All problems
// are reported at once; each names the IdP claim (see [*ClaimError]).
func (m Mapping) User(claims map[string]any) (User, error) {
	var u User
	var errs []error

	idClaim := cmp.Or(m.ExternalIDClaim, oidcSub)
	switch id, ok, err := scalar(claims, idClaim, claimExternalID); {
	case err != nil:
		errs = append(errs, err)
	case !ok:
		errs = append(errs, &ClaimError{Claim: idClaim, For: claimExternalID, Reason: "missing"})
	default:
		u.ExternalID = m.ExternalIDPrefix + id
	}

	if Verified(claims[oidcEmailVerified]) {
		if e, _ := claims[oidcEmail].(string); e != "" {
			u.Email, u.EmailVerified = e, true
		}
	}

	name, err := m.name(claims, u.Email)
	if err != nil {
		errs = append(errs, err)
	}
	u.Name = name

	optional := []struct {
		claim, zendesk string
		dst            *string
	}{
		{m.OrganizationClaim, claimOrganization, &u.Organization},
		{m.OrganizationIDClaim, claimOrganizationID, &u.OrganizationID},
		{m.CustomRoleIDClaim, claimCustomRoleID, &u.CustomRoleID},
		{m.PhoneClaim, claimPhone, &u.Phone},
		{m.RemotePhotoURLClaim, claimRemotePhotoURL, &u.RemotePhotoURL},
	}
	for _, o := range optional {
		if o.claim == "" {
			continue
		}
		if v, _, err := scalar(claims, o.claim, o.zendesk); err != nil {
			errs = append(errs, err)
		} else {
			*o.dst = v
		}
	}

	if m.LocaleClaim != "" {
		switch v, ok, err := scalar(claims, m.LocaleClaim, claimLocale); {
		case err != nil:
			errs = append(errs, err)
		case !ok:
		default:
			id, known := localeID(v, m.Locales)
			if !known {
				errs = append(errs, &ClaimError{Claim: m.LocaleClaim, For: claimLocale,
					Reason: "neither a Zendesk locale id nor a tag in the locale table (add it with --zendesk-locale-map TAG=ID)"})
			}
			u.Locale = id
		}
	}

	if m.RoleClaim != "" {
		role, ok, err := scalar(claims, m.RoleClaim, claimRole)
		switch {
		case err != nil:
			errs = append(errs, err)
		case !ok:
		case !slices.Contains(m.AllowedRoles, role):
			errs = append(errs, fmt.Errorf("%w: claim %q has role %q", ErrRoleNotAllowed, m.RoleClaim, role))
		default:
			u.Role = role
		}
	}

	if m.TagsClaim != "" {
		tags, err := stringList(claims, m.TagsClaim)
		if err != nil {
			errs = append(errs, err)
		}
		u.Tags = tags
	}

	for _, key := range slices.Sorted(maps.Keys(m.UserFields)) {
		claim := m.UserFields[key]
		v, ok := claims[claim]
		if !ok || v == nil {
			// Never send null: Zendesk would erase the field.
			continue
		}
		if !isFieldValue(v) {
			errs = append(errs, &ClaimError{Claim: claim, For: claimUserFields + "." + key, Reason: "not a string, number, boolean or list of strings"})
			continue
		}
		if u.UserFields == nil {
			u.UserFields = make(map[string]any, len(m.UserFields))
		}
		u.UserFields[key] = v
	}

	if err := errors.Join(errs...); err != nil {
		return User{}, err
	}
	return u, nil
}

// Verified is the one rule for the IdP's email verification flag, stated
// alike in package oidc (oidc.Verified): the JSON boolean true, or the exact
// string "true", which some IdPs send (Amazon Cognito's userinfo answers
// strings). Anything else is unverified: false, "True", "1", 1, null, and a
// missing claim. (What zdgate writes into a Zendesk token is always the JSON
// boolean; Verify checks that.)
func Verified(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return b == "true"
	}
	return false
}

// name picks the display name; see Mapping.NameClaim.
func (m Mapping) name(claims map[string]any, verifiedEmail string) (string, error) {
	claim := cmp.Or(m.NameClaim, oidcName)
	if v, ok := claims[claim]; ok && v != nil {
		s, isStr := v.(string)
		if !isStr {
			return "", &ClaimError{Claim: claim, For: claimName, Reason: "not a string"}
		}
		if s = strings.TrimSpace(s); s != "" {
			return s, nil
		}
	}
	given, _ := claims[oidcGivenName].(string)
	family, _ := claims[oidcFamilyName].(string)
	if s := strings.TrimSpace(strings.TrimSpace(given) + " " + strings.TrimSpace(family)); s != "" {
		return s, nil
	}
	if s, _ := claims[oidcPreferredUsername].(string); strings.TrimSpace(s) != "" {
		return strings.TrimSpace(s), nil
	}
	if local, _, ok := strings.Cut(verifiedEmail, "@"); ok && local != "" {
		return local, nil
	}
	return "", nil
}

// scalar reads a claim that Zendesk wants as a string. Numbers are written
// out exactly (an IdP may send an employee number); an absent, null or
// empty claim is reported as not there (ok false). Anything else is an
// error naming the claim.
func scalar(claims map[string]any, claim, zendesk string) (s string, ok bool, err error) {
	v, present := claims[claim]
	if !present || v == nil {
		return "", false, nil
	}
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	case float64:
		// Above 2^53 the IdP's number was already rounded when decoded.
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return "", false, &ClaimError{Claim: claim, For: zendesk, Reason: "a number that cannot be written exactly; send a string"}
		}
		s = strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		s = strconv.Itoa(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	default:
		return "", false, &ClaimError{Claim: claim, For: zendesk, Reason: "not a string or number"}
	}
	if s == "" {
		return "", false, nil
	}
	return s, true, nil
}

// stringList reads a tags claim: a list of strings, or one string.
func stringList(claims map[string]any, claim string) ([]string, error) {
	switch v := claims[claim].(type) {
	case nil:
		return nil, nil
	case string:
		if v == "" {
			return nil, nil
		}
		return []string{v}, nil
	case []string:
		return slices.Clone(v), nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, &ClaimError{Claim: claim, For: claimTags, Reason: "a list with a non-string element"}
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, &ClaimError{Claim: claim, For: claimTags, Reason: "not a string or a list of strings"}
}

func isFieldValue(v any) bool {
	switch v := v.(type) {
	case string, bool, json.Number, float64, int, int64, []string:
		return true
	case []any:
		return isStringArray(v)
	}
	return false
}
