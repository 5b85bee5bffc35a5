package tokens

import (
	"maps"
	"strconv"
	"strings"
)

// Zendesk's SSO "locale" (end users) is "The locale in Zendesk, specified
// as a number" (Zendesk, "Setting up single sign-on with JWT", attribute
// table; support.zendesk.com/hc/en-us/articles/4408845838874): a locale
// id, not a BCP 47 tag. IdPs send tags ("en-US", OIDC's locale claim), so
// a tag must be mapped to an id or refused; passing "en-US" through is
// never right.
//
// defaultLocaleIDs holds only ids that Zendesk itself documents: its
// Locales API reference shows en-US as id 1 and de (Deutsch) as id 8
// (developer.zendesk.com/api-reference/ticketing/account-configuration/
// locales/). Every other id is account data: an operator reads them from
// https://<subdomain>.zendesk.com/api/v2/locales/public.json and adds them
// with Mapping.Locales (--zendesk-locale-map TAG=ID).
var defaultLocaleIDs = map[string]int{
	"en-us": 1,
	"de":    8,
}

// LocaleIDs returns the built-in table of BCP 47 tags (lower case) to
// Zendesk locale ids, for documentation and help texts. The map is a copy.
func LocaleIDs() map[string]int { return maps.Clone(defaultLocaleIDs) }

// normLocale folds a tag for lookup: case-insensitive, "_" as "-".
func normLocale(tag string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(tag), "_", "-"))
}

// ParseLocaleID reads a Zendesk locale id written as a decimal number.
func ParseLocaleID(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// localeID turns an IdP locale value into a Zendesk locale id: a positive
// whole number as it is, a tag through extra (the operator's table) and
// then the built-in table. ok is false when the value is neither.
func localeID(v string, extra map[string]int) (int, bool) {
	if id, ok := ParseLocaleID(strings.TrimSpace(v)); ok {
		return id, true
	}
	tag := normLocale(v)
	for k, id := range extra {
		if normLocale(k) == tag {
			return id, true
		}
	}
	id, ok := defaultLocaleIDs[tag]
	return id, ok
}
