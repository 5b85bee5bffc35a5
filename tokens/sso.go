package tokens

import (
	"errors"
	"fmt"
)

// SSOUsers names one of Zendesk's JWT SSO configurations. Zendesk keeps separate JWT SSO
// configurations for team members (admins and agents, including light agents and contributors)
// and for end users, each with its own remote login URL and its own shared secret, assigned in
// Admin Center > Account > Security > Team member authentication / End user authentication
// (https://support.zendesk.com/hc/en-us/articles/4408845838874, "Enabling JWT single sign-on":
// "multiple JWT single sign-on configurations that can be used to authenticate team members ...,
// end users, or both"; Zendesk "tries to determine whether the unauthenticated user is an end user
// or team member and redirects the user to your organization's appropriate remote sign-in page").
// A token for one configuration is signed with that configuration's secret: one [Signer] each.
type SSOUsers string

// The two JWT SSO configurations.
const (
	// EndUsers is the end-user configuration: customers of the help center.
	EndUsers SSOUsers = "end-users"
	// Staff is the team-member configuration: agents and admins.
	Staff SSOUsers = "staff"
)

// ParseSSOUsers reads a configuration value: exactly "end-users" or "staff".
func ParseSSOUsers(s string) (SSOUsers, error) {
	switch u := SSOUsers(s); u {
	case EndUsers, Staff:
		return u, nil
	}
	return "", fmt.Errorf("tokens: %q is not a Zendesk SSO configuration (want end-users or staff)", s)
}

// CheckFor reports the mapped claims that have no place in tokens for these users. role and
// custom_role_id set what a team member may do in Zendesk (a light agent is role "agent" plus the
// light agent role's custom_role_id, as Zendesk's staff answer under the article above); an
// identity provider for end users must never be able to raise one of its users to agent or admin,
// so for EndUsers mapping them, or listing allowed roles, is an error. Staff may map them.
func (m Mapping) CheckFor(u SSOUsers) error {
	if u != EndUsers {
		return nil
	}
	var errs []error
	bad := func(field string) {
		errs = append(errs, fmt.Errorf("tokens: mapping: %s: only for staff (team member SSO); end users have no Zendesk role to map", field))
	}
	if m.RoleClaim != "" {
		bad("RoleClaim")
	}
	if len(m.AllowedRoles) > 0 {
		bad("AllowedRoles")
	}
	if m.CustomRoleIDClaim != "" {
		bad("CustomRoleIDClaim")
	}
	return errors.Join(errs...)
}
