package tokens

import (
	"strings"
	"testing"
)

func TestParseSSOUsers(t *testing.T) {
	for in, want := range map[string]SSOUsers{"end-users": EndUsers, "staff": Staff} {
		if got, err := ParseSSOUsers(in); err != nil || got != want {
			t.Errorf("ParseSSOUsers(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Staff", "end_users", "agents"} {
		if _, err := ParseSSOUsers(bad); err == nil {
			t.Errorf("ParseSSOUsers(%q) accepted", bad)
		}
	}
}

// TestRolesOnlyForStaff: an end-user IdP can never be configured to hand out Zendesk roles.
func TestRolesOnlyForStaff(t *testing.T) {
	m := Mapping{RoleClaim: "zendesk_role", AllowedRoles: []string{"agent"}, CustomRoleIDClaim: "light_agent_role"}
	if err := m.CheckFor(Staff); err != nil {
		t.Errorf("CheckFor(staff) = %v; want nil", err)
	}
	err := m.CheckFor(EndUsers)
	if err == nil {
		t.Fatal("CheckFor(end-users) of a role mapping = nil")
	}
	for _, field := range []string{"RoleClaim", "AllowedRoles", "CustomRoleIDClaim"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("CheckFor(end-users) = %q; want it to name %s", err, field)
		}
	}
	if err := (Mapping{ExternalIDPrefix: "cust-", OrganizationClaim: "org"}).CheckFor(EndUsers); err != nil {
		t.Errorf("CheckFor(end-users) of a mapping without roles = %v", err)
	}
}
