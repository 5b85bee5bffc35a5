package main

import (
	"strings"
	"testing"
)

// TestWidgetFlags: the new Zendesk flags refuse malformed values with a message naming the flag,
// and the documented role values work (the old help said "end-user", which stopped start-up).
func TestWidgetFlags(t *testing.T) {
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"--zendesk-messaging-email=never"}, "--zendesk-messaging-email: must be verified or omit"},
		{[]string{"--zendesk-locale-map=fr"}, "--zendesk-locale-map: want TAG=ID"},
		{[]string{"--zendesk-locale-map=fr=0"}, "--zendesk-locale-map: want TAG=ID"},
		{[]string{"--zendesk-locale-map=16=fr"}, "--zendesk-locale-map: want TAG=ID"},
		{[]string{"--zendesk-claim-role=zd_role", "--zendesk-allowed-role=end-user"}, `"end-user" is not a Zendesk role (want user, agent or admin)`},
	}
	for _, c := range bad {
		_, err := parseConfig(t, append(c.args, minimal...), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v; want %q", c.args, err, c.want)
		}
	}
	cfg, err := parseConfig(t, append([]string{"--zendesk-messaging-email=omit", "--zendesk-claim-locale=locale",
		"--zendesk-locale-map=fr=16", "--zendesk-locale-map=pt-BR=19",
		"--zendesk-claim-role=zd_role", "--zendesk-allowed-role=user", "--zendesk-allowed-role=agent"}, minimal...), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.mapping
	if m.Locales["fr"] != 16 || m.Locales["pt-BR"] != 19 {
		t.Errorf("mapping locales = %v", m.Locales)
	}
	u, err := m.User(map[string]any{"sub": "u1", "name": "Ann", "locale": "pt_br", "zd_role": "user"})
	if err != nil || u.Locale != 19 || u.Role != "user" {
		t.Errorf("User() = %+v, %v; want locale 19, role user", u, err)
	}
}
