package tokens

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestMappingLocale(t *testing.T) {
	m := Mapping{LocaleClaim: "locale", Locales: map[string]int{"fr": 16, "PT_br": 19}}
	tests := []struct {
		name  string
		value any
		want  int
		bad   bool
	}{
		{"Zendesk's documented en-US", "en-US", 1, false},
		{"case and underscore folded", "EN_us", 1, false},
		{"Zendesk's documented de", "de", 8, false},
		{"operator table", "fr", 16, false},
		{"operator table, folded key", "pt-BR", 19, false},
		{"an id as a string", "1176", 1176, false},
		{"an id as a number", 8.0, 8, false},
		{"absent", nil, 0, false},
		{"unknown tag is refused, never passed through", "en-GB", 0, true},
		{"a language the table lacks", "sv", 0, true},
		{"zero is no id", "0", 0, true},
		{"negative", -3.0, 0, true},
		{"not a scalar", []any{"en"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := map[string]any{"sub": "u1", "name": "Ada", "email": "ada@example.com", "email_verified": true}
			if tt.value != nil {
				claims["locale"] = tt.value
			}
			u, err := m.User(claims)
			if tt.bad {
				var ce *ClaimError
				if !errors.As(err, &ce) || ce.Claim != "locale" || ce.For != "locale" {
					t.Fatalf("User() error = %v; want a *ClaimError for locale", err)
				}
				if s, ok := tt.value.(string); ok && strings.Contains(err.Error(), s) && s != "0" {
					t.Errorf("User() error %q repeats the claim's value", err)
				}
				return
			}
			if err != nil || u.Locale != tt.want {
				t.Fatalf("User() = locale %d, %v; want %d", u.Locale, err, tt.want)
			}
			if tt.want == 0 {
				return
			}
			tok, _, err := newTestSigner(t, Config{Flavor: SSO}).Sign(u)
			if err != nil {
				t.Fatal(err)
			}
			// Zendesk: "The locale in Zendesk, specified as a number".
			if _, c := segments(t, tok); c["locale"] != json.Number(strconv.Itoa(tt.want)) {
				t.Errorf("SSO token locale = %#v; want the number %d", c["locale"], tt.want)
			}
			if r := Verify(tok, VerifyOptions{Flavor: SSO, Secret: []byte(testSecret), Now: clock}); !r.Valid() || len(r.Warnings) > 0 {
				t.Errorf("Verify() = %q %q; want a clean token", r.Problems, r.Warnings)
			}
		})
	}
}

func TestMappingLocalesValidate(t *testing.T) {
	for _, locales := range []map[string]int{{"": 3}, {"fr": 0}, {"12": 4}, {"de": -1}} {
		if err := (Mapping{LocaleClaim: "locale", Locales: locales}).Validate(); err == nil || !strings.Contains(err.Error(), "Locales") {
			t.Errorf("Validate(%v) = %v; want a Locales error", locales, err)
		}
	}
	if err := (Mapping{Locales: map[string]int{"fr-CA": 1186}}).Validate(); err != nil {
		t.Errorf("Validate() = %v; want nil", err)
	}
}
