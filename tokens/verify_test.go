package tokens

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func validHeader(f Flavor) map[string]any {
	h := map[string]any{"alg": "HS256", "typ": "JWT"}
	if f == Messaging {
		h["kid"] = testKID
	}
	return h
}

// validClaims is a token body that breaks no rule of f at fixedNow.
func validClaims(f Flavor) map[string]any {
	now := fixedNow.Unix()
	switch f {
	case Messaging:
		return map[string]any{"scope": "user", "external_id": "user-42", "name": "Ada",
			"email": "ada@example.com", "email_verified": true, "iat": now, "exp": now + 600}
	case Chat:
		return map[string]any{"name": "Ada", "email": "ada@example.com", "external_id": "user-42",
			"iat": now, "exp": now + 300}
	default:
		return map[string]any{"iat": now, "jti": "6f1c1f7e-7a4b-4c43-9b1e-2d1f0b7a9c11",
			"email": "ada@example.com", "name": "Ada", "external_id": "user-42"}
	}
}

func TestVerifyValid(t *testing.T) {
	for _, f := range Flavors() {
		t.Run(string(f), func(t *testing.T) {
			tok := craft(mustJSON(t, validHeader(f)), mustJSON(t, validClaims(f)), []byte(testSecret))
			r := Verify(tok, VerifyOptions{Flavor: f, Secret: []byte(testSecret), KeyID: testKID, Now: clock})
			if !r.Valid() || r.Err() != nil {
				t.Fatalf("Verify() problems = %q; want none", r.Problems)
			}
			if r.Claims["external_id"] != "user-42" || r.Header["alg"] != "HS256" {
				t.Errorf("Verify() header %v, claims %v; want the decoded token", r.Header, r.Claims)
			}
		})
	}
}

// TestVerifyRules breaks one rule at a time, for every flavor it applies
// to, and expects exactly that rule's problem: as a Problem where Zendesk
// documents the rule, as a Warning (and a token Zendesk accepts) for the
// flavors in policy, where only zdgate's stricter contract has it.
func TestVerifyRules(t *testing.T) {
	now := fixedNow.Unix()
	all := Flavors()
	noKID := []Flavor{Chat, SSO, SDK}
	decoded, err := base64.StdEncoding.DecodeString("c2VjcmV0LXRoYXQtbG9va3MtYmFzZTY0")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		flavors []Flavor
		edit    func(h, c map[string]any)
		signer  []byte // secret the token is signed with; nil = testSecret
		verify  []byte // secret Verify is given; nil = testSecret
		keyID   string
		want    func(f Flavor) []string
		policy  []Flavor              // flavors where want is a zdgate warning, not a Zendesk problem
		warns   func(Flavor) []string // warnings besides the problems; nil = none
	}{
		{
			name: "wrong secret", flavors: all, signer: []byte("another secret"),
			want: fixed("signature does not match the secret (wrong secret or flavor, or a secret that was base64-decoded)"),
		},
		{
			name: "secret base64-decoded when signing", flavors: all,
			signer: decoded, verify: []byte("c2VjcmV0LXRoYXQtbG9va3MtYmFzZTY0"),
			want: fixed("signature does not match the secret (wrong secret or flavor, or a secret that was base64-decoded)"),
		},
		{
			name: "no secret given", flavors: all, verify: []byte{},
			want: fixed("no secret given; signature not checked"),
		},
		{
			name: "alg none", flavors: all, edit: func(h, _ map[string]any) { h["alg"] = "none" },
			want: fixed(`alg is "none"; want "HS256" (Zendesk accepts only HS256)`),
		},
		{
			name: "alg HS512", flavors: all, edit: func(h, _ map[string]any) { h["alg"] = "HS512" },
			want: fixed(`alg is "HS512"; want "HS256" (Zendesk accepts only HS256)`),
		},
		{
			name: "alg missing", flavors: all, edit: func(h, _ map[string]any) { delete(h, "alg") },
			want: fixed(`alg missing; want "HS256"`),
		},
		{
			name: "typ not JWT", flavors: all, edit: func(h, _ map[string]any) { h["typ"] = "JWS" },
			want: fixed(`typ is "JWS"; want "JWT"`),
		},
		{
			name: "typ missing", flavors: []Flavor{Messaging}, edit: func(h, _ map[string]any) { delete(h, "typ") },
			want: fixed(`typ missing; want "JWT"`),
		},
		{
			name: "kid missing", flavors: []Flavor{Messaging}, edit: func(h, _ map[string]any) { delete(h, "kid") },
			want: fixed("kid missing; messaging needs the signing key ID (app_...)"),
		},
		{
			name: "kid empty", flavors: []Flavor{Messaging}, edit: func(h, _ map[string]any) { h["kid"] = "" },
			want: fixed("kid is empty; messaging needs the signing key ID (app_...)"),
		},
		{
			name: "kid not a string", flavors: []Flavor{Messaging}, edit: func(h, _ map[string]any) { h["kid"] = 7 },
			want: fixed("kid is not a string"),
		},
		{
			name: "kid differs", flavors: []Flavor{Messaging}, keyID: "app_other",
			want: fixed(fmt.Sprintf("kid is %q; want %q", testKID, "app_other")),
		},
		{
			name: "kid on a flavor without one", flavors: noKID, edit: func(h, _ map[string]any) { h["kid"] = testKID },
			policy: noKID,
			want: func(f Flavor) []string {
				return []string{fmt.Sprintf("kid present; %s tokens carry none (a messaging token?)", f)}
			},
		},
		{
			name: "scope missing", flavors: []Flavor{Messaging}, edit: func(_, c map[string]any) { delete(c, "scope") },
			want: fixed(`scope missing; want "user"`),
		},
		{
			name: "scope appUser", flavors: []Flavor{Messaging}, edit: func(_, c map[string]any) { c["scope"] = "appUser" },
			want: fixed(`scope is "appUser"; want "user"`),
		},
		{
			name: "external_id missing", flavors: all, edit: func(_, c map[string]any) { delete(c, "external_id") },
			policy: []Flavor{SSO, SDK},
			want:   fixed("external_id missing"),
		},
		{
			name: "external_id number", flavors: all, edit: func(_, c map[string]any) { c["external_id"] = 42 },
			want: fixed("external_id is a number; want a string (Zendesk answers 401 otherwise)"),
		},
		{
			name: "external_id empty", flavors: all, edit: func(_, c map[string]any) { c["external_id"] = "" },
			policy: []Flavor{SSO, SDK},
			want:   fixed("external_id is empty"),
		},
		{
			name: "external_id over the limit", flavors: all,
			edit:   func(_, c map[string]any) { c["external_id"] = strings.Repeat("é", 256) },
			policy: []Flavor{Chat, SSO, SDK},
			want: func(f Flavor) []string {
				return []string{fmt.Sprintf("external_id is 256 characters; %s allows %d", f, f.ExternalIDLimit())}
			},
		},
		{
			name: "external_id at chat's limit plus one", flavors: []Flavor{Chat},
			edit:   func(_, c map[string]any) { c["external_id"] = strings.Repeat("日", 201) },
			policy: []Flavor{Chat},
			want:   fixed("external_id is 201 characters; chat allows 200"),
		},
		{
			name: "iat missing", flavors: all, edit: func(_, c map[string]any) { delete(c, "iat") },
			policy: []Flavor{Messaging},
			want:   fixed("iat missing"),
		},
		{
			name: "iat in milliseconds", flavors: all, edit: func(_, c map[string]any) { c["iat"] = now * 1000 },
			want: fixed("iat looks like milliseconds; want seconds"),
		},
		{
			name: "iat a string", flavors: all, edit: func(_, c map[string]any) { c["iat"] = "1700000000" },
			want: fixed("iat is a string; want a number of seconds"),
		},
		{
			name: "iat fractional", flavors: all, edit: func(_, c map[string]any) { c["iat"] = float64(now) + 0.5 },
			want: fixed("iat is not a whole number of seconds"),
		},
		{
			name: "iat beyond clock skew", flavors: all,
			edit:   func(_, c map[string]any) { c["iat"] = now + 121 },
			policy: []Flavor{Messaging},
			want:   fixed("iat is in the future (2023-11-14T22:15:21Z), beyond 2m0s of clock skew"),
		},
		{
			name: "exp missing", flavors: []Flavor{Messaging, Chat}, edit: func(_, c map[string]any) { delete(c, "exp") },
			policy: []Flavor{Messaging},
			want:   fixed("exp missing"),
		},
		{
			name: "expired", flavors: all, edit: func(_, c map[string]any) { c["iat"], c["exp"] = now-400, now },
			want: fixed("expired at 2023-11-14T22:13:20Z"),
		},
		{
			name: "exp in milliseconds", flavors: all, edit: func(_, c map[string]any) { c["exp"] = (now + 300) * 1000 },
			want: fixed("exp looks like milliseconds; want seconds"),
		},
		{
			name: "exp before iat", flavors: all, edit: func(_, c map[string]any) { c["iat"], c["exp"] = now+60, now+30 },
			want: fixed("exp is not after iat"),
		},
		{
			name: "chat lifetime over 420s", flavors: []Flavor{Chat}, edit: func(_, c map[string]any) { c["exp"] = now + 421 },
			want: fixed("exp is 421s after iat; chat allows at most 420s"),
		},
		{
			name: "jti missing", flavors: []Flavor{SSO, SDK}, edit: func(_, c map[string]any) { delete(c, "jti") },
			want: func(f Flavor) []string { return []string{fmt.Sprintf("jti missing; %s needs a unique random jti", f)} },
		},
		{
			name: "jti empty", flavors: []Flavor{SSO, SDK}, edit: func(_, c map[string]any) { c["jti"] = "" },
			want: fixed("jti is not a non-empty string"),
		},
		{
			name: "email missing", flavors: []Flavor{Chat, SSO, SDK}, edit: func(_, c map[string]any) { delete(c, "email") },
			want: func(f Flavor) []string { return []string{fmt.Sprintf("email missing; %s needs one", f)} },
		},
		{
			name: "email not a string", flavors: all, edit: func(_, c map[string]any) { c["email"] = true },
			want: fixed("email is not a string"),
		},
		{
			name: "email without email_verified", flavors: []Flavor{Messaging},
			edit:   func(_, c map[string]any) { delete(c, "email_verified") },
			policy: []Flavor{Messaging},
			want:   fixed("email present without email_verified:true (messaging must not carry an unverified email)"),
		},
		{
			name: "email with email_verified false", flavors: []Flavor{Messaging},
			edit:   func(_, c map[string]any) { c["email_verified"] = false },
			policy: []Flavor{Messaging},
			want:   fixed("email present without email_verified:true (messaging must not carry an unverified email)"),
		},
		{
			name: "email_verified as a string", flavors: []Flavor{Chat, SSO, SDK},
			edit: func(_, c map[string]any) { c["email_verified"] = "true" },
			want: fixed("email_verified is a string; want a JSON boolean"),
		},
		{
			name: "email_verified as a string in messaging", flavors: []Flavor{Messaging},
			edit:  func(_, c map[string]any) { c["email_verified"] = "true" },
			want:  fixed("email_verified is a string; want a JSON boolean"),
			warns: fixed("email present without email_verified:true (messaging must not carry an unverified email)"),
		},
		{
			name: "name missing", flavors: []Flavor{Chat, SSO, SDK}, edit: func(_, c map[string]any) { delete(c, "name") },
			want: fixed("name missing"),
		},
		{
			name: "name not a string", flavors: all, edit: func(_, c map[string]any) { c["name"] = 1 },
			want: fixed("name is not a string"),
		},
		{
			name: "role not a Zendesk role", flavors: []Flavor{SSO, SDK}, edit: func(_, c map[string]any) { c["role"] = "owner" },
			want: fixed(`role is "owner"; want user, agent or admin`),
		},
		{
			name: "tags not an array", flavors: []Flavor{SSO, SDK}, edit: func(_, c map[string]any) { c["tags"] = "vip" },
			want: fixed("tags is a string; want a JSON array of strings"),
		},
		{
			name: "user_fields not an object", flavors: []Flavor{SSO, SDK}, edit: func(_, c map[string]any) { c["user_fields"] = []string{"a"} },
			want: fixed("user_fields is an array; want a JSON object"),
		},
		{
			name: "organization_id a number", flavors: []Flavor{SSO, SDK}, edit: func(_, c map[string]any) { c["organization_id"] = 7 },
			want: fixed("organization_id is a number; want a string"),
		},
	}
	for _, tt := range tests {
		for _, f := range tt.flavors {
			t.Run(tt.name+"/"+string(f), func(t *testing.T) {
				h, c := validHeader(f), validClaims(f)
				if tt.edit != nil {
					tt.edit(h, c)
				}
				signer := cmpOrBytes(tt.signer, []byte(testSecret))
				verify := cmpOrBytes(tt.verify, []byte(testSecret))
				tok := craft(mustJSON(t, h), mustJSON(t, c), signer)
				if h["alg"] == "none" {
					tok = tok[:strings.LastIndexByte(tok, '.')+1]
				}
				r := Verify(tok, VerifyOptions{Flavor: f, Secret: verify, KeyID: tt.keyID, Now: clock})
				problems, warnings := tt.want(f), []string(nil)
				if tt.warns != nil {
					warnings = tt.warns(f)
				}
				if slices.Contains(tt.policy, f) {
					problems, warnings = nil, problems
				}
				if !slices.Equal(r.Problems, problems) {
					t.Errorf("Verify() problems = %q; want %q", r.Problems, problems)
				}
				if !slices.Equal(r.Warnings, warnings) {
					t.Errorf("Verify() warnings = %q; want %q", r.Warnings, warnings)
				}
				if (r.Err() == nil) != (len(problems) == 0) || r.Valid() != (len(problems) == 0) {
					t.Errorf("Verify().Err() = %v, Valid() = %v; want an error exactly when Zendesk would refuse", r.Err(), r.Valid())
				}
			})
		}
	}
}

func fixed(problems ...string) func(Flavor) []string {
	return func(Flavor) []string { return problems }
}

func cmpOrBytes(b, def []byte) []byte {
	if b == nil {
		return def
	}
	return b
}

func TestVerifyBoundaries(t *testing.T) {
	now := fixedNow.Unix()
	tests := []struct {
		name   string
		flavor Flavor
		edit   func(c map[string]any)
	}{
		{"chat lifetime exactly 420s", Chat, func(c map[string]any) { c["exp"] = now + 420 }},
		{"iat within clock skew", SSO, func(c map[string]any) { c["iat"] = now + 120 }},
		{"external_id of 255 multi-byte characters", Messaging, func(c map[string]any) { c["external_id"] = strings.Repeat("é", 255) }},
		{"external_id of 200 characters", Chat, func(c map[string]any) { c["external_id"] = strings.Repeat("日", 200) }},
		{"sso without exp", SSO, func(c map[string]any) { delete(c, "exp") }},
		{"messaging without email", Messaging, func(c map[string]any) { delete(c, "email"); delete(c, "email_verified") }},
		{"messaging without name", Messaging, func(c map[string]any) { delete(c, "name") }},
		{"sso locale id", SSO, func(c map[string]any) { c["locale"] = 8 }},
		{"chat ascii email", Chat, func(c map[string]any) { c["email"] = "o.connor+x@example.com" }},
		{"sso profile claims", SDK, func(c map[string]any) {
			c["role"], c["tags"], c["user_fields"], c["organization"] = "agent", []string{"a"}, map[string]any{"k": 1}, "Org"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validClaims(tt.flavor)
			tt.edit(c)
			tok := craft(mustJSON(t, validHeader(tt.flavor)), mustJSON(t, c), []byte(testSecret))
			if r := Verify(tok, VerifyOptions{Flavor: tt.flavor, Secret: []byte(testSecret), Now: clock}); !r.Valid() {
				t.Errorf("Verify() problems = %q; want none", r.Problems)
			}
		})
	}
}

func TestVerifyReportsEveryProblem(t *testing.T) {
	h := `{"alg":"HS256","typ":"JWT"}`
	c := `{"scope":"appUser","external_id":12,"email":"a@example.com","email_verified":"true","iat":1700000000000}`
	r := Verify(craft(h, c, []byte("wrong")), VerifyOptions{Flavor: Messaging, Secret: []byte(testSecret), Now: clock})
	want := []string{
		"kid missing; messaging needs the signing key ID (app_...)",
		"signature does not match the secret (wrong secret or flavor, or a secret that was base64-decoded)",
		`scope is "appUser"; want "user"`,
		"external_id is a number; want a string (Zendesk answers 401 otherwise)",
		"iat looks like milliseconds; want seconds",
		"email_verified is a string; want a JSON boolean",
	}
	if !slices.Equal(r.Problems, want) {
		t.Errorf("Verify() problems =\n%q\nwant\n%q", r.Problems, want)
	}
	wantWarn := []string{"exp missing", "email present without email_verified:true (messaging must not carry an unverified email)"}
	if !slices.Equal(r.Warnings, wantWarn) {
		t.Errorf("Verify() warnings =\n%q\nwant\n%q", r.Warnings, wantWarn)
	}
	for _, p := range want {
		if err := r.Err(); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Err() = %v; want it to contain %q", err, p)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	good := craft(`{"alg":"HS256","typ":"JWT"}`, `{"iat":1}`, []byte(testSecret))
	sig := good[strings.LastIndexByte(good, '.'):]
	tests := []struct {
		name, token string
		want        []string
	}{
		{"empty", "", []string{"malformed token: 1 dot-separated parts; want 3"}},
		{"two parts", "a.b", []string{"malformed token: 2 dot-separated parts; want 3"}},
		{"four parts", "a.b.c.d", []string{"malformed token: 4 dot-separated parts; want 3"}},
		{"header not base64", "!!." + enc([]byte(`{}`)) + sig, []string{"malformed token: header is not unpadded base64url"}},
		{"claims not an object", enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(`[1]`)) + sig, []string{"malformed token: claims is not a JSON object"}},
		{"claims with trailing data", enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(`{}{}`)) + sig, []string{"malformed token: claims is not a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Verify(tt.token, VerifyOptions{Flavor: Chat, Secret: []byte(testSecret), Now: clock})
			if !slices.Equal(r.Problems, tt.want) {
				t.Errorf("Verify() problems = %q; want %q", r.Problems, tt.want)
			}
		})
	}

	t.Run("signature not base64", func(t *testing.T) {
		tok := craft(mustJSON(t, validHeader(Chat)), mustJSON(t, validClaims(Chat)), []byte(testSecret))
		tok = tok[:strings.LastIndexByte(tok, '.')] + ".***"
		r := Verify(tok, VerifyOptions{Flavor: Chat, Secret: []byte(testSecret), Now: clock})
		if want := []string{"signature not checked: malformed signature"}; !slices.Equal(r.Problems, want) {
			t.Errorf("Verify() problems = %q; want %q", r.Problems, want)
		}
	})
}

func TestVerifyUnknownFlavor(t *testing.T) {
	tok := craft(mustJSON(t, validHeader(Chat)), mustJSON(t, validClaims(Chat)), []byte(testSecret))
	r := Verify(tok, VerifyOptions{Flavor: "zopim", Secret: []byte(testSecret), Now: clock})
	want := []string{`unknown flavor "zopim" (want messaging, chat, sso or sdk)`}
	if !slices.Equal(r.Problems, want) {
		t.Errorf("Verify() problems = %q; want %q", r.Problems, want)
	}
}

func TestResultErr(t *testing.T) {
	r := &Result{Problems: []string{"a", "b"}}
	err := r.Err()
	if err == nil || err.Error() != "a\nb" {
		t.Errorf("Err() = %v; want \"a\\nb\"", err)
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 {
		t.Errorf("Err() does not unwrap to 2 errors")
	}
	if err := (&Result{}).Err(); err != nil {
		t.Errorf("Err() of no problems = %v; want nil", err)
	}
}

// TestVerifyZendeskRulesOnly checks the rules added from Zendesk's
// documentation: SSO's numeric locale and Chat's ASCII email. A token
// Zendesk accepts but zdgate would not mint has warnings and stays valid.
func TestVerifyZendeskRulesOnly(t *testing.T) {
	tests := []struct {
		name     string
		flavor   Flavor
		edit     func(c map[string]any)
		problems []string
		warnings []string
	}{
		{"locale tag", SSO, func(c map[string]any) { c["locale"] = "en-US" },
			[]string{`locale is "en-US"; want a Zendesk locale id (a number such as 1 for en-US), not a language tag`}, nil},
		{"locale digits", SDK, func(c map[string]any) { c["locale"] = "8" },
			nil, []string{"locale is a string of digits; Zendesk documents a number"}},
		{"locale zero", SSO, func(c map[string]any) { c["locale"] = 0 },
			[]string{"locale is not a positive whole number (a Zendesk locale id)"}, nil},
		{"locale bool", SSO, func(c map[string]any) { c["locale"] = true },
			[]string{"locale is a boolean; want a number (a Zendesk locale id)"}, nil},
		{"chat accented email", Chat, func(c map[string]any) { c["email"] = "zoë@example.com" },
			[]string{"email " + chatEmailRule}, nil},
		{"messaging accented email is fine", Messaging, func(c map[string]any) { c["email"] = "zoë@example.com" }, nil, nil},
		{"messaging minimal token Zendesk accepts", Messaging, func(c map[string]any) {
			delete(c, "iat")
			delete(c, "exp")
			delete(c, "email_verified")
		}, nil, []string{"iat missing", "exp missing",
			"email present without email_verified:true (messaging must not carry an unverified email)"}},
		{"sso without external_id", SSO, func(c map[string]any) { delete(c, "external_id") }, nil, []string{"external_id missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validClaims(tt.flavor)
			tt.edit(c)
			tok := craft(mustJSON(t, validHeader(tt.flavor)), mustJSON(t, c), []byte(testSecret))
			r := Verify(tok, VerifyOptions{Flavor: tt.flavor, Secret: []byte(testSecret), Now: clock})
			if !slices.Equal(r.Problems, tt.problems) || !slices.Equal(r.Warnings, tt.warnings) {
				t.Errorf("Verify() = problems %q, warnings %q; want %q, %q", r.Problems, r.Warnings, tt.problems, tt.warnings)
			}
			if r.Valid() != (len(tt.problems) == 0) {
				t.Errorf("Valid() = %v with problems %q", r.Valid(), r.Problems)
			}
		})
	}
}
