package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/zdgate/zdgate/tokens"
)

// ProviderOptions are one identity provider: its client, who of its users may enter, and how its
// claims map to Zendesk's. They are one group on purpose: a YAML list of providers will declare
// nothing new, only instantiate this group once per item (options binds a fresh ProviderOptions,
// optionSet.applyYAML sets it from the item, validate and the checks parse it).
type ProviderOptions struct {
	OIDCIssuer, OIDCClientID               string
	OIDCClientSecret, OIDCClientSecretFile string
	OIDCScopes, OIDCAudiences              []string
	GroupsClaim                            string
	EmailVerifiedClaim                     string
	InsecureBearerUserinfo                 bool

	AllowedEmailDomain, AllowedGroup []string

	ExternalIDClaim, ExternalIDPrefix, NameClaim                                    string
	ClaimOrganization, ClaimOrganizationID, ClaimTags, ClaimRole, ClaimCustomRoleID string
	ClaimLocale, ClaimPhone, ClaimRemotePhotoURL                                    string
	ZendeskAllowedRole, ClaimUserField, ZendeskLocaleMap                            []string

	scopes  []string
	mapping tokens.Mapping
}

func (g *ProviderOptions) options() []*option {
	claim := func(p *string, name, zendesk, extra string) *option {
		return strOpt(p, name, "", "IdP claim mapped to SSO/SDK "+zendesk+extra).into("tokens.Mapping")
	}
	opts := []*option{
		strOpt(&g.OIDCIssuer, "oidc-issuer", "", "issuer URL of the OpenID Connect provider (required)").into("oidc.Config.Issuer").kindOf("URL").
			checks(required(&g.OIDCIssuer), httpURL(&g.OIDCIssuer, nil)),
		strOpt(&g.OIDCClientID, "oidc-client-id", "", "client id at the IdP (required)").into("oidc.Config.ClientID").checks(required(&g.OIDCClientID)),
	}
	opts = append(opts, secretWithFile(&g.OIDCClientSecret, &g.OIDCClientSecretFile, "oidc-client-secret",
		"client secret at the IdP", "file holding the client secret (re-read when it changes)", "oidc.Config.ClientSecret")...)
	scopes := listOpt(&g.OIDCScopes, "oidc-scopes", []string{"openid", "email", "profile", "offline_access"}, false, "scopes asked for (space- or comma-separated, or repeated)").
		into("oidc.Config.Scopes").checks(func() error {
		g.scopes = nil
		for _, s := range g.OIDCScopes {
			g.scopes = append(g.scopes, strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })...)
		}
		return nil
	})
	scopes.chart = chartHint{asString: true, desc: "--oidc-scopes [openid email profile offline_access], space-separated"}
	role := listOpt(&g.ZendeskAllowedRole, "zendesk-allowed-role", nil, false, "Zendesk roles the role claim may grant: user, agent or admin (Zendesk's SSO role values; end users are \"user\"); needs --zendesk-claim-role; any other role in the claim refuses every token of that user, all flavors (403 claims_rejected), never a silent downgrade").into("tokens.Mapping.AllowedRoles")
	role.chart.itemEnum = []string{"user", "agent", "admin"}
	locales := listOpt(&g.ZendeskLocaleMap, "zendesk-locale-map", nil, false, "TAG=ID: a BCP 47 tag and its Zendesk locale id (from /api/v2/locales/public.json); built in: en-US=1, de=8").
		into("tokens.Mapping.Locales").checks(func() error {
		var errs []error
		for _, l := range g.ZendeskLocaleMap {
			if _, _, ok := parseLocaleMapping(l); !ok {
				errs = append(errs, fmt.Errorf("want TAG=ID with a positive Zendesk locale id, e.g. fr=16, got %q", l))
			}
		}
		return errors.Join(errs...)
	})
	locales.chart.itemPattern = "^[^=]+=[0-9]+$"
	userField := listOpt(&g.ClaimUserField, "zendesk-claim-user-field", nil, false, "FIELD=CLAIM: IdP claim mapped to SSO/SDK user_fields.FIELD").
		into("tokens.Mapping.UserFields").checks(func() error {
		var errs []error
		for _, f := range g.ClaimUserField {
			if k, v, ok := strings.Cut(f, "="); !ok || k == "" || v == "" {
				errs = append(errs, fmt.Errorf("want FIELD=CLAIM, got %q", f))
			}
		}
		return errors.Join(errs...)
	})
	userField.chart.itemPattern = "^[^=]+=[^=]+$"
	return append(opts,
		scopes,
		listOpt(&g.OIDCAudiences, "oidc-audiences", nil, false, "extra audiences accepted on bearer access tokens (mobile apps)").into("oidc.Config.Audiences"),
		strOpt(&g.GroupsClaim, "groups-claim", "groups", "IdP claim holding the user's groups").into("oidc.Config.GroupsClaim"),
		strOpt(&g.EmailVerifiedClaim, "email-verified-claim", "email_verified", "IdP claim saying the email is verified (JSON true or the string \"true\"), read from the same document as the email; Entra ID: xms_edov (trusts the tenant's domain verification, see docs/security.md)").
			into("oidc.Config.EmailVerifiedClaim").checks(func() error {
			if g.EmailVerifiedClaim == "" || g.EmailVerifiedClaim == "email" {
				return fmt.Errorf("want the name of a claim holding true/false, such as email_verified or xms_edov, got %q", g.EmailVerifiedClaim)
			}
			return nil
		}),
		boolOpt(&g.InsecureBearerUserinfo, "insecure-bearer-userinfo", false, "DANGEROUS: when opaque bearer tokens cannot be introspected (the IdP has no introspection endpoint, or no client secret is set to call it), accept them after userinfo alone; then ANY access token of the user, issued to ANY client of the IdP (a third-party app the user once signed in to), mints Zendesk tokens for them").
			into("oidc.Config.InsecureBearerUserinfo"),
		listOpt(&g.AllowedEmailDomain, "allowed-email-domain", nil, false, "only users with a verified email in these domains may log in").into("proxy.Config.AllowedEmailDomains"),
		listOpt(&g.AllowedGroup, "allowed-group", nil, false, "only members of these groups may log in").into("proxy.Config.AllowedGroups"),
		strOpt(&g.ExternalIDClaim, "external-id-claim", "sub", "IdP claim that becomes Zendesk's external_id").into("tokens.Mapping.ExternalIDClaim"),
		strOpt(&g.ExternalIDPrefix, "external-id-prefix", "", "prefix put before the external_id").into("tokens.Mapping.ExternalIDPrefix"),
		strOpt(&g.NameClaim, "name-claim", "name", "IdP claim that becomes the Zendesk name").into("tokens.Mapping.NameClaim"),
		claim(&g.ClaimOrganization, "zendesk-claim-organization", "organization", ""),
		claim(&g.ClaimOrganizationID, "zendesk-claim-organization-id", "organization_id", ""),
		claim(&g.ClaimTags, "zendesk-claim-tags", "tags", " (replaces the user's tags)"),
		claim(&g.ClaimRole, "zendesk-claim-role", "role", " (only values in --zendesk-allowed-role)"),
		role,
		claim(&g.ClaimCustomRoleID, "zendesk-claim-custom-role-id", "custom_role_id", ""),
		strOpt(&g.ClaimLocale, "zendesk-claim-locale", "", "IdP claim mapped to SSO/SDK locale, sent as a Zendesk locale id: a number as it is, a tag (en-US) through --zendesk-locale-map and the built-in table; anything else refuses every token of that user, all flavors (403 claim_<claim>)").into("tokens.Mapping"),
		locales,
		claim(&g.ClaimPhone, "zendesk-claim-phone", "phone", ""),
		claim(&g.ClaimRemotePhotoURL, "zendesk-claim-remote-photo-url", "remote_photo_url", ""),
		userField,
	)
}

// validate builds the claim mapping once and lets tokens judge it (tokens is the home of every
// Zendesk rule).
func (g *ProviderOptions) validate() []error {
	g.mapping = tokens.Mapping{
		ExternalIDClaim: g.ExternalIDClaim, ExternalIDPrefix: g.ExternalIDPrefix, NameClaim: g.NameClaim,
		OrganizationClaim: g.ClaimOrganization, OrganizationIDClaim: g.ClaimOrganizationID, TagsClaim: g.ClaimTags,
		RoleClaim: g.ClaimRole, CustomRoleIDClaim: g.ClaimCustomRoleID, LocaleClaim: g.ClaimLocale,
		PhoneClaim: g.ClaimPhone, RemotePhotoURLClaim: g.ClaimRemotePhotoURL, AllowedRoles: g.ZendeskAllowedRole,
	}
	for _, l := range g.ZendeskLocaleMap {
		if tag, id, ok := parseLocaleMapping(l); ok {
			if g.mapping.Locales == nil {
				g.mapping.Locales = map[string]int{}
			}
			g.mapping.Locales[tag] = id
		}
	}
	for _, f := range g.ClaimUserField {
		if k, v, ok := strings.Cut(f, "="); ok && k != "" && v != "" {
			if g.mapping.UserFields == nil {
				g.mapping.UserFields = map[string]string{}
			}
			g.mapping.UserFields[k] = v
		}
	}
	if err := g.mapping.Validate(); err != nil {
		return []error{err}
	}
	return nil
}

// parseLocaleMapping reads one --zendesk-locale-map entry, TAG=ID.
func parseLocaleMapping(s string) (tag string, id int, ok bool) {
	tag, v, found := strings.Cut(s, "=")
	id, numeric := tokens.ParseLocaleID(strings.TrimSpace(v))
	tag = strings.TrimSpace(tag)
	return tag, id, found && numeric && tag != ""
}
