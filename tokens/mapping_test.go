package tokens

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestMappingExternalID(t *testing.T) {
	tests := []struct {
		name   string
		m      Mapping
		claims map[string]any
		want   string
		err    *ClaimError // nil = no error
	}{
		{"sub by default", Mapping{}, map[string]any{"sub": "abc"}, "abc", nil},
		{"prefix", Mapping{ExternalIDPrefix: "corp:"}, map[string]any{"sub": "abc"}, "corp:abc", nil},
		{"custom claim", Mapping{ExternalIDClaim: "employee_id"}, map[string]any{"sub": "abc", "employee_id": "E-7"}, "E-7", nil},
		{"number claim", Mapping{ExternalIDClaim: "employee_id"}, map[string]any{"employee_id": 12345.0}, "12345", nil},
		{"json.Number claim", Mapping{ExternalIDClaim: "employee_id"}, map[string]any{"employee_id": json.Number("9007199254740993")}, "9007199254740993", nil},
		{"sub missing", Mapping{}, map[string]any{"email": "a@b"}, "",
			&ClaimError{Claim: "sub", For: "external_id", Reason: "missing"}},
		{"custom claim missing", Mapping{ExternalIDClaim: "employee_id"}, map[string]any{"sub": "abc"}, "",
			&ClaimError{Claim: "employee_id", For: "external_id", Reason: "missing"}},
		{"custom claim empty", Mapping{ExternalIDClaim: "employee_id"}, map[string]any{"employee_id": ""}, "",
			&ClaimError{Claim: "employee_id", For: "external_id", Reason: "missing"}},
		{"custom claim null", Mapping{ExternalIDClaim: "employee_id"}, map[string]any{"employee_id": nil}, "",
			&ClaimError{Claim: "employee_id", For: "external_id", Reason: "missing"}},
		{"boolean claim", Mapping{ExternalIDClaim: "employee_id"}, map[string]any{"employee_id": true}, "",
			&ClaimError{Claim: "employee_id", For: "external_id", Reason: "not a string or number"}},
		{"fractional number", Mapping{ExternalIDClaim: "employee_id"}, map[string]any{"employee_id": 1.5}, "",
			&ClaimError{Claim: "employee_id", For: "external_id", Reason: "a number that cannot be written exactly; send a string"}},
		{"number beyond 2^53", Mapping{ExternalIDClaim: "employee_id"}, map[string]any{"employee_id": 1e17}, "",
			&ClaimError{Claim: "employee_id", For: "external_id", Reason: "a number that cannot be written exactly; send a string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := tt.m.User(tt.claims)
			if tt.err == nil {
				if err != nil || u.ExternalID != tt.want {
					t.Errorf("User() = %q, %v; want %q", u.ExternalID, err, tt.want)
				}
				return
			}
			var ce *ClaimError
			if !errors.As(err, &ce) || *ce != *tt.err {
				t.Fatalf("User() error = %v; want %+v", err, *tt.err)
			}
			if !strings.Contains(err.Error(), tt.err.Claim) {
				t.Errorf("User() error %q does not name claim %q", err, tt.err.Claim)
			}
		})
	}
}

func TestMappingEmail(t *testing.T) {
	tests := []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"verified", map[string]any{"email": "a@example.com", "email_verified": true}, "a@example.com"},
		{"not verified", map[string]any{"email": "a@example.com", "email_verified": false}, ""},
		{"verified as the string true", map[string]any{"email": "a@example.com", "email_verified": "true"}, "a@example.com"},
		{"verified as the string True", map[string]any{"email": "a@example.com", "email_verified": "True"}, ""},
		{"verified as the string 1", map[string]any{"email": "a@example.com", "email_verified": "1"}, ""},
		{"verified as the string false", map[string]any{"email": "a@example.com", "email_verified": "false"}, ""},
		{"verified as a number", map[string]any{"email": "a@example.com", "email_verified": 1.0}, ""},
		{"no email_verified", map[string]any{"email": "a@example.com"}, ""},
		{"verified without email", map[string]any{"email_verified": true}, ""},
		{"email not a string", map[string]any{"email": 7.0, "email_verified": true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.claims["sub"] = "abc"
			u, err := Mapping{}.User(tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			if u.Email != tt.want || u.EmailVerified != (tt.want != "") {
				t.Errorf("User() email = %q, verified %v; want %q, %v", u.Email, u.EmailVerified, tt.want, tt.want != "")
			}
		})
	}
}

func TestMappingName(t *testing.T) {
	tests := []struct {
		name   string
		m      Mapping
		claims map[string]any
		want   string
	}{
		{"name", Mapping{}, map[string]any{"name": "Ada Lovelace", "preferred_username": "ada"}, "Ada Lovelace"},
		{"custom claim", Mapping{NameClaim: "display"}, map[string]any{"display": "Countess", "name": "Ada"}, "Countess"},
		{"given and family", Mapping{}, map[string]any{"given_name": "Ada", "family_name": "Lovelace"}, "Ada Lovelace"},
		{"given only", Mapping{}, map[string]any{"name": " ", "given_name": "Ada"}, "Ada"},
		{"preferred_username", Mapping{}, map[string]any{"preferred_username": "ada"}, "ada"},
		{"verified email", Mapping{}, map[string]any{"email": "ada@example.com", "email_verified": true}, "ada"},
		{"unverified email is not used", Mapping{}, map[string]any{"email": "ada@example.com"}, ""},
		{"nothing", Mapping{}, map[string]any{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.claims["sub"] = "abc"
			u, err := tt.m.User(tt.claims)
			if err != nil || u.Name != tt.want {
				t.Errorf("User() name = %q, %v; want %q", u.Name, err, tt.want)
			}
		})
	}
	t.Run("name not a string", func(t *testing.T) {
		_, err := Mapping{}.User(map[string]any{"sub": "abc", "name": 3.0})
		var ce *ClaimError
		if !errors.As(err, &ce) || ce.Claim != "name" {
			t.Errorf("User() error = %v; want a *ClaimError for name", err)
		}
	})
}

// idpClaims is what a hostile or careless IdP might send: privileged
// Zendesk claim names at the top level.
func idpClaims() map[string]any {
	return map[string]any{
		"sub": "abc", "name": "Ada", "email": "ada@example.com", "email_verified": true,
		"role": "admin", "tags": []any{"vip"}, "organization": "Evil Corp", "organization_id": "o1",
		"custom_role_id": "1", "locale": "de", "phone": "+1", "remote_photo_url": "https://x/p.png",
		"user_fields": map[string]any{"plan": "gold"}, "plan": "gold",
		"groups": []any{"zendesk-agents"}, "dept": "support", "seats": 4.0,
	}
}

func TestMappingPrivilegedClaimsNeedMapping(t *testing.T) {
	u, err := Mapping{}.User(idpClaims())
	if err != nil {
		t.Fatal(err)
	}
	want := User{ExternalID: "abc", Name: "Ada", Email: "ada@example.com", EmailVerified: true}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("User() = %+v; want %+v", u, want)
	}
	tok, _, err := newTestSigner(t, Config{Flavor: SSO}).Sign(u)
	if err != nil {
		t.Fatal(err)
	}
	_, c := segments(t, tok)
	for _, claim := range []string{"role", "tags", "organization", "organization_id", "custom_role_id",
		"locale", "phone", "remote_photo_url", "user_fields"} {
		if v, ok := c[claim]; ok {
			t.Errorf("Sign(User()) has %s = %v; want none without a mapping", claim, v)
		}
	}
}

func TestMappingProfile(t *testing.T) {
	m := Mapping{
		OrganizationClaim: "dept", OrganizationIDClaim: "organization_id", TagsClaim: "groups",
		RoleClaim: "zd_role", AllowedRoles: []string{"user", "agent"}, CustomRoleIDClaim: "custom_role_id",
		LocaleClaim: "locale", PhoneClaim: "phone", RemotePhotoURLClaim: "picture",
		UserFields: map[string]string{"plan": "plan", "seats": "seats", "absent": "nope", "nulled": "gone"},
	}
	claims := idpClaims()
	claims["zd_role"] = "agent"
	claims["gone"] = nil
	u, err := m.User(claims)
	if err != nil {
		t.Fatal(err)
	}
	want := User{
		ExternalID: "abc", Name: "Ada", Email: "ada@example.com", EmailVerified: true,
		Organization: "support", OrganizationID: "o1", Role: "agent", CustomRoleID: "1", Locale: 8, Phone: "+1",
		Tags: []string{"zendesk-agents"}, UserFields: map[string]any{"plan": "gold", "seats": 4.0},
	}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("User() =\n%+v\nwant\n%+v", u, want)
	}
}

func TestMappingRole(t *testing.T) {
	m := Mapping{RoleClaim: "zd_role", AllowedRoles: []string{"user", "agent"}}
	tests := []struct {
		name   string
		claims map[string]any
		want   string
		err    error
	}{
		{"allowed", map[string]any{"zd_role": "agent"}, "agent", nil},
		{"outside the allow-list", map[string]any{"zd_role": "admin"}, "", ErrRoleNotAllowed},
		{"unknown role", map[string]any{"zd_role": "owner"}, "", ErrRoleNotAllowed},
		{"claim absent", map[string]any{"role": "admin"}, "", nil},
		{"claim not a string", map[string]any{"zd_role": []any{"admin"}}, "", &ClaimError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.claims["sub"] = "abc"
			u, err := m.User(tt.claims)
			switch target := tt.err.(type) {
			case nil:
				if err != nil {
					t.Fatalf("User() error = %v; want none", err)
				}
			case *ClaimError:
				if !errors.As(err, &target) {
					t.Fatalf("User() error = %v; want a *ClaimError", err)
				}
			default:
				if !errors.Is(err, tt.err) {
					t.Fatalf("User() error = %v; want %v", err, tt.err)
				}
			}
			if u.Role != tt.want {
				t.Errorf("User() role = %q; want %q", u.Role, tt.want)
			}
		})
	}
}

func TestMappingTags(t *testing.T) {
	m := Mapping{TagsClaim: "groups"}
	tests := []struct {
		name  string
		value any
		want  []string
		ok    bool
	}{
		{"list", []any{"a", "b"}, []string{"a", "b"}, true},
		{"string list", []string{"a"}, []string{"a"}, true},
		{"one string", "vip", []string{"vip"}, true},
		{"absent", nil, nil, true},
		{"mixed list", []any{"a", 1.0}, nil, false},
		{"object", map[string]any{}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := map[string]any{"sub": "abc"}
			if tt.value != nil {
				claims["groups"] = tt.value
			}
			u, err := m.User(claims)
			if (err == nil) != tt.ok || !slices.Equal(u.Tags, tt.want) {
				t.Errorf("User() tags = %q, %v; want %q, ok %v", u.Tags, err, tt.want, tt.ok)
			}
		})
	}
}

func TestMappingUserFieldTypes(t *testing.T) {
	m := Mapping{UserFields: map[string]string{"f": "c"}}
	tests := []struct {
		name  string
		value any
		ok    bool
	}{
		{"string", "x", true},
		{"number", 2.5, true},
		{"boolean", false, true},
		{"list of strings", []any{"a"}, true},
		{"object", map[string]any{"a": 1}, false},
		{"list of objects", []any{map[string]any{}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := m.User(map[string]any{"sub": "abc", "c": tt.value})
			if (err == nil) != tt.ok {
				t.Fatalf("User() error = %v; want ok %v", err, tt.ok)
			}
			var ce *ClaimError
			if !tt.ok && (!errors.As(err, &ce) || ce.Claim != "c" || ce.For != "user_fields.f") {
				t.Errorf("User() error = %v; want a *ClaimError for claim c", err)
			}
			if tt.ok && !reflect.DeepEqual(u.UserFields["f"], tt.value) {
				t.Errorf("User() user_fields = %v; want f: %v", u.UserFields, tt.value)
			}
		})
	}
}

func TestMappingReportsEveryProblem(t *testing.T) {
	m := Mapping{ExternalIDClaim: "employee_id", RoleClaim: "zd_role", AllowedRoles: []string{"user"}, TagsClaim: "groups"}
	_, err := m.User(map[string]any{"zd_role": "admin", "groups": 1.0})
	var ce *ClaimError
	if !errors.Is(err, ErrRoleNotAllowed) || !errors.As(err, &ce) || !strings.Contains(err.Error(), "employee_id") ||
		!strings.Contains(err.Error(), "groups") {
		t.Errorf("User() error = %v; want the missing employee_id, the role and the tags", err)
	}
}

func TestMappingValidate(t *testing.T) {
	tests := []struct {
		name string
		m    Mapping
		want []string // substrings, one per problem; nil = valid
	}{
		{"zero value", Mapping{}, nil},
		{"full", Mapping{ExternalIDClaim: "oid", ExternalIDPrefix: "corp:", RoleClaim: "r", AllowedRoles: []string{"user", "agent"},
			UserFields: map[string]string{"plan": "plan"}}, nil},
		{"email as external id", Mapping{ExternalIDClaim: "email"}, []string{"ExternalIDClaim"}},
		{"role claim without allow-list", Mapping{RoleClaim: "r"}, []string{"RoleClaim"}},
		{"allow-list without role claim", Mapping{AllowedRoles: []string{"agent"}}, []string{"AllowedRoles"}},
		{"unknown role", Mapping{RoleClaim: "r", AllowedRoles: []string{"owner", "Admin"}},
			[]string{`AllowedRoles: "owner"`, `AllowedRoles: "Admin"`}},
		{"user field without claim", Mapping{UserFields: map[string]string{"plan": "", "": "x"}},
			[]string{"UserFields: empty", `UserFields: user field "plan"`}},
		{"prefix too long", Mapping{ExternalIDPrefix: strings.Repeat("p", 200)}, []string{"ExternalIDPrefix"}},
		{"prefix not UTF-8", Mapping{ExternalIDPrefix: "\xff"}, []string{"ExternalIDPrefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			if tt.want == nil {
				if err != nil {
					t.Errorf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("Validate() = %q; want %d problems", lines, len(tt.want))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestMappingToToken runs the whole path the proxy takes: IdP claims,
// Mapping, Signer, Verify.
func TestMappingToToken(t *testing.T) {
	m := Mapping{ExternalIDClaim: "employee_id", ExternalIDPrefix: "hr-"}
	claims := map[string]any{"sub": "x", "employee_id": 4711.0, "name": "Ada", "email": "ada@example.com", "email_verified": true, "role": "admin"}
	u, err := m.User(claims)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Flavors() {
		t.Run(string(f), func(t *testing.T) {
			tok, _, err := newTestSigner(t, Config{Flavor: f}).Sign(u)
			if err != nil {
				t.Fatal(err)
			}
			r := Verify(tok, VerifyOptions{Flavor: f, Secret: []byte(testSecret), Now: clock})
			if !r.Valid() || r.Claims["external_id"] != "hr-4711" || r.Claims["role"] != nil {
				t.Errorf("Verify() = %q, claims %v; want valid, external_id hr-4711, no role", r.Problems, r.Claims)
			}
		})
	}
}
