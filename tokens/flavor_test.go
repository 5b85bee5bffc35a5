package tokens

import (
	"errors"
	"slices"
	"testing"
)

func TestParseFlavor(t *testing.T) {
	tests := []struct {
		in   string
		want Flavor
		ok   bool
	}{
		{"messaging", Messaging, true},
		{"chat", Chat, true},
		{"sso", SSO, true},
		{"sdk", SDK, true},
		{"", "", false},
		{"Messaging", "", false},
		{" chat", "", false},
		{"zopim", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFlavor(tt.in)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("ParseFlavor(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
			if !tt.ok && !errors.Is(err, ErrUnknownFlavor) {
				t.Errorf("ParseFlavor(%q) error = %v; want ErrUnknownFlavor", tt.in, err)
			}
		})
	}
}

func TestFlavors(t *testing.T) {
	want := []Flavor{Messaging, Chat, SSO, SDK}
	got := Flavors()
	if !slices.Equal(got, want) {
		t.Fatalf("Flavors() = %q; want %q", got, want)
	}
	got[0] = "changed"
	if Flavors()[0] != Messaging {
		t.Errorf("Flavors() shares its slice between calls")
	}
	for _, f := range want {
		if p, err := ParseFlavor(f.String()); p != f || err != nil {
			t.Errorf("ParseFlavor(%q) = %q, %v; want it back", f, p, err)
		}
	}
}
