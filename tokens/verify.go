package tokens

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// VerifyOptions says what a token is checked against.
type VerifyOptions struct {
	Flavor Flavor
	// Secret is the flavor's shared secret, used as raw bytes exactly as
	// Zendesk does. Without it the signature is reported as not checked.
	Secret []byte
	// KeyID, for messaging, is the key ID the kid header must equal; empty
	// means any non-empty kid.
	KeyID string
	// Now is the clock for iat and exp; nil means time.Now.
	Now func() time.Time
}

// Result is what [Verify] found: the decoded header and claims (numbers
// as json.Number, so they print exactly) and one line per broken rule.
type Result struct {
	Header map[string]any // nil if the token could not be decoded
	Claims map[string]any // nil if the token could not be decoded
	// Problems has one line per broken rule that Zendesk documents (or an
	// unusable token: bad signature, not a JWT), in a fixed order: header,
	// signature, then claims. Empty means Zendesk should accept it.
	Problems []string
	// Warnings has one line per broken rule of zdgate's stricter contract
	// (docs/reference.md §4) that Zendesk does not document: a token with warnings
	// only is one Zendesk accepts, but not one zdgate would mint.
	Warnings []string
}

// Valid reports whether no Zendesk rule was broken.
func (r *Result) Valid() bool { return len(r.Problems) == 0 }

// Err is nil for a valid token, else every problem joined, for callers that
// want an error rather than a list.
func (r *Result) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	errs := make([]error, len(r.Problems))
	for i, p := range r.Problems {
		errs[i] = errors.New(p)
	}
	return errors.Join(errs...)
}

func (r *Result) addf(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// warnf records a broken zdgate rule that Zendesk does not document.
func (r *Result) warnf(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// zendeskOr records a problem when Zendesk documents the rule, else a
// warning.
func (r *Result) zendeskOr(zendesk bool, format string, args ...any) {
	if zendesk {
		r.addf(format, args...)
	} else {
		r.warnf(format, args...)
	}
}

// Verify checks token against every rule of the flavor (docs/reference.md §4): signature (HS256
// with the raw secret, via golang-jwt), header and claims. It reports every
// broken rule, not only the first, because a person debugging a Zendesk
// 401 wants the whole list, and it keeps Zendesk's documented rules
// (Problems) apart from the stricter contract zdgate mints to (Warnings:
// external_id in SSO, iat and exp in messaging, an email only with
// email_verified:true, chat's 200-character external_id), so that a token
// Zendesk accepts is never called invalid.
func Verify(token string, opt VerifyOptions) *Result {
	r := &Result{}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	known := opt.Flavor.valid()
	if !known {
		r.addf("unknown flavor %q (want messaging, chat, sso or sdk)", string(opt.Flavor))
	}
	if n := strings.Count(token, ".") + 1; n != 3 {
		r.addf("malformed token: %d dot-separated parts; want 3", n)
		return r
	}
	parts := strings.SplitN(token, ".", 3)
	r.Header = decodeSegment(r, "header", parts[0])
	r.Claims = decodeSegment(r, "claims", parts[1])
	if r.Header == nil || r.Claims == nil {
		return r
	}
	f := opt.Flavor
	ru := f.rules()
	checkHeader(r, f, ru, known, opt.KeyID)
	checkSignature(r, token, opt.Secret)
	if known {
		c := claimChecker{r: r, c: r.Claims, f: f, ru: ru, now: now()}
		c.check()
	}
	return r
}

// decodeSegment decodes one base64url JSON object, or reports why not.
func decodeSegment(r *Result, what, seg string) map[string]any {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		r.addf("malformed token: %s is not unpadded base64url", what)
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		r.addf("malformed token: %s is not a JSON object", what)
		return nil
	}
	return m
}

func checkHeader(r *Result, f Flavor, ru rules, known bool, wantKID string) {
	switch alg, ok := r.Header[headerAlg]; {
	case !ok:
		r.addf("alg missing; want %q", algHS256)
	case alg != algHS256:
		r.addf("alg is %s; want %q (Zendesk accepts only HS256)", describe(alg), algHS256)
	}
	switch typ, ok := r.Header[headerTyp]; {
	case !ok && f == Messaging:
		r.addf("typ missing; want %q", typJWT)
	case ok && typ != typJWT:
		r.addf("typ is %s; want %q", describe(typ), typJWT)
	}
	kid, hasKID := r.Header[headerKID]
	if !known {
		return
	}
	if !ru.kid {
		if hasKID {
			// Zendesk ignores an extra header field; it hints at a mix-up.
			r.warnf("kid present; %s tokens carry none (a messaging token?)", f)
		}
		return
	}
	switch s, isString := kid.(string); {
	case !hasKID:
		r.addf("kid missing; messaging needs the signing key ID (app_...)")
	case !isString:
		r.addf("kid is not a string")
	case s == "":
		r.addf("kid is empty; messaging needs the signing key ID (app_...)")
	case wantKID != "" && s != wantKID:
		r.addf("kid is %q; want %q", s, wantKID)
	}
}

// checkSignature lets golang-jwt, restricted to HS256, check the signature
// with the secret's raw bytes. A wrong alg is already reported by
// checkHeader, so it is not reported twice.
func checkSignature(r *Result, token string, secret []byte) {
	if r.Header[headerAlg] != algHS256 {
		return
	}
	if len(secret) == 0 {
		r.addf("no secret given; signature not checked")
		return
	}
	p := jwt.NewParser(jwt.WithValidMethods([]string{algHS256}), jwt.WithoutClaimsValidation())
	_, err := p.Parse(token, func(*jwt.Token) (any, error) { return secret, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		r.addf("signature does not match the secret (wrong secret or flavor, or a secret that was base64-decoded)")
	default:
		r.addf("signature not checked: malformed signature")
	}
}

// claimChecker applies one flavor's claim rules to decoded claims.
type claimChecker struct {
	r   *Result
	c   map[string]any
	f   Flavor
	ru  rules
	now time.Time
}

func (k claimChecker) check() {
	if k.ru.scope {
		switch v, ok := k.c[claimScope]; {
		case !ok:
			k.r.addf("scope missing; want %q", scopeUser)
		case v != scopeUser:
			k.r.addf("scope is %s; want %q", describe(v), scopeUser)
		}
	}
	k.externalID()
	iat, iatOK := k.seconds(claimIssuedAt, true, k.ru.zendeskIAT)
	if iatOK && iat.After(k.now.Add(clockSkew)) {
		k.r.zendeskOr(k.ru.zendeskIAT, "iat is in the future (%s), beyond %v of clock skew", iat.UTC().Format(time.RFC3339), clockSkew)
	}
	exp, expOK := k.seconds(claimExpiry, k.ru.expRequired, k.ru.zendeskExp)
	if expOK {
		if !k.now.Before(exp) {
			k.r.addf("expired at %s", exp.UTC().Format(time.RFC3339))
		}
		if iatOK {
			life := exp.Sub(iat)
			switch {
			case life <= 0:
				k.r.addf("exp is not after iat")
			case k.ru.maxLifetime > 0 && life > k.ru.maxLifetime:
				k.r.addf("exp is %ds after iat; %s allows at most %ds", int64(life/time.Second), k.f, int64(k.ru.maxLifetime/time.Second))
			}
		}
	}
	if k.ru.jti {
		switch v, ok := k.c[claimJTI]; {
		case !ok:
			k.r.addf("jti missing; %s needs a unique random jti", k.f)
		case v == "" || !isString(v):
			k.r.addf("jti is not a non-empty string")
		}
	}
	k.email()
	switch v, ok := k.c[claimName]; {
	case !ok && k.ru.nameRequired:
		k.r.addf("name missing")
	case ok && !isString(v):
		k.r.addf("name is not a string")
	case ok && v == "" && k.ru.nameRequired:
		k.r.addf("name is empty")
	}
	if k.ru.profile {
		k.profile()
	}
}

func (k claimChecker) externalID() {
	v, ok := k.c[claimExternalID]
	if !ok {
		k.r.zendeskOr(!k.ru.zendeskIDOptional, "external_id missing")
		return
	}
	s, isStr := v.(string)
	switch n := utf8.RuneCountInString(s); {
	case !isStr:
		k.r.addf("external_id is %s; want a string (Zendesk answers 401 otherwise)", describeType(v))
	case s == "":
		k.r.zendeskOr(!k.ru.zendeskIDOptional, "external_id is empty")
	case n > k.ru.externalIDLimit:
		k.r.zendeskOr(k.ru.zendeskIDLimit, "external_id is %d characters; %s allows %d", n, k.f, k.ru.externalIDLimit)
	}
}

func (k claimChecker) email() {
	v, hasEmail := k.c[claimEmail]
	switch {
	case !hasEmail && k.ru.emailRequired:
		k.r.addf("email missing; %s needs one", k.f)
	case hasEmail && !isString(v):
		k.r.addf("email is not a string")
	case hasEmail && v == "":
		k.r.addf("email is empty")
	case hasEmail && k.ru.emailASCII && !isASCII(v.(string)):
		k.r.addf("email %s", chatEmailRule)
	}
	ev, hasEV := k.c[claimEmailVerified]
	if hasEV {
		if _, isBool := ev.(bool); !isBool {
			k.r.addf("email_verified is %s; want a JSON boolean", describeType(ev))
		}
	}
	if k.f == Messaging && hasEmail && ev != true {
		// Zendesk then ignores the email ("If false, email will not be
		// used to identify the user"); zdgate never mints one.
		k.r.warnf("email present without email_verified:true (messaging must not carry an unverified email)")
	}
}

// profile checks the optional SSO/SDK claims that change a user's data and
// rights in Zendesk.
func (k claimChecker) profile() {
	if v, ok := k.c[claimRole]; ok {
		if s, _ := v.(string); !isZendeskRole(s) {
			k.r.addf("role is %s; want %s", describe(v), zendeskRoleSet)
		}
	}
	if v, ok := k.c[claimTags]; ok && !isStringArray(v) {
		k.r.addf("tags is %s; want a JSON array of strings", describeType(v))
	}
	if v, ok := k.c[claimUserFields]; ok {
		if _, isObj := v.(map[string]any); !isObj {
			k.r.addf("user_fields is %s; want a JSON object", describeType(v))
		}
	}
	if v, ok := k.c[claimLocale]; ok {
		k.locale(v)
	}
	for _, name := range []string{claimOrganization, claimOrganizationID, claimPhone, claimRemotePhotoURL} {
		if v, ok := k.c[name]; ok && !isString(v) {
			k.r.addf("%s is %s; want a string", name, describeType(v))
		}
	}
}

// locale checks SSO's locale: "The locale in Zendesk, specified as a
// number" (the SSO attribute table). Zendesk's own sample request sends a
// string of digits ("locale_id":"8"), so that is only a warning; a tag
// such as "en-US" is an error.
func (k claimChecker) locale(v any) {
	switch v := v.(type) {
	case json.Number:
		if id, err := v.Int64(); err != nil || id <= 0 {
			k.r.addf("locale is not a positive whole number (a Zendesk locale id)")
		}
	case string:
		if _, ok := ParseLocaleID(v); ok {
			k.r.warnf("locale is a string of digits; Zendesk documents a number")
		} else {
			k.r.addf("locale is %q; want a Zendesk locale id (a number such as 1 for en-US), not a language tag", v)
		}
	default:
		k.r.addf("locale is %s; want a number (a Zendesk locale id)", describeType(v))
	}
}

// seconds reads a NumericDate claim and reports what is wrong with it. A
// missing claim is an error when Zendesk requires it and a warning when
// only zdgate does.
func (k claimChecker) seconds(name string, required, zendesk bool) (time.Time, bool) {
	v, ok := k.c[name]
	if !ok {
		if required {
			k.r.zendeskOr(zendesk, "%s missing", name)
		}
		return time.Time{}, false
	}
	n, isNum := v.(json.Number)
	if !isNum {
		k.r.addf("%s is %s; want a number of seconds", name, describeType(v))
		return time.Time{}, false
	}
	i, err := n.Int64()
	if err != nil {
		if f, ferr := n.Float64(); ferr == nil && f > millisecondsThreshold {
			k.r.addf("%s looks like milliseconds; want seconds", name)
		} else {
			k.r.addf("%s is not a whole number of seconds", name)
		}
		return time.Time{}, false
	}
	if i > millisecondsThreshold {
		k.r.addf("%s looks like milliseconds; want seconds", name)
		return time.Time{}, false
	}
	if i <= 0 {
		k.r.addf("%s is not a positive number of seconds", name)
		return time.Time{}, false
	}
	return time.Unix(i, 0), true
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

func isStringArray(v any) bool {
	a, ok := v.([]any)
	if !ok {
		return false
	}
	for _, e := range a {
		if !isString(e) {
			return false
		}
	}
	return true
}

// describe shows a short header or claim value in a problem: strings are
// quoted, other values named by type.
func describe(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return describeType(v)
}

// describeType names a decoded JSON value's type in JSON's terms.
func describeType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
