package main

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/zdgate/zdgate/proxy"
	"github.com/zdgate/zdgate/tokens"
)

// ProviderConfig is one item of the --config file's providers: list: the ProviderOptions group,
// instantiated once per item (the same option declarations as the single-IdP flags, bound to this
// item's fields), plus the keys only an item has (ProviderItemOptions).
type ProviderConfig struct {
	ProviderOptions
	ProviderItemOptions

	registered *optionSet // this item's options, its errors prefixed with providers[i]
}

// ProviderItemOptions are what distinguishes providers from each other: a name, the hosts that
// lead to it, and which Zendesk identities its users get. They exist only in providers: items.
type ProviderItemOptions struct {
	ID, DisplayName    string
	Hosts              []string
	ZendeskFlavors     []string
	ZendeskSSO         string
	BearerTokens       bool
	OpaqueBearerTokens bool

	flavors []tokens.Flavor // nil: every configured flavor
	sso     tokens.SSOUsers
}

func (g *ProviderItemOptions) options() []*option {
	id := strOpt(&g.ID, "id", "", "the provider's name in sessions, metrics, X-Forwarded-Provider and /oauth2/start?provider=ID: 1 to 32 of a-z, 0-9 and - (required)").
		into("proxy.Provider.ID").checks(func() error {
		if !proxy.ValidProviderID(g.ID) {
			return fmt.Errorf("want 1 to 32 of a-z, 0-9 and -, got %q", g.ID)
		}
		return nil
	})
	id.chart.pattern = "^[a-z0-9-]{1,32}$"
	return []*option{
		id,
		strOpt(&g.DisplayName, "display-name", "", "what the sign-in chooser shows (default: the id)").into("proxy.Provider.DisplayName"),
		listOpt(&g.Hosts, "hosts", nil, false, "request hosts (host or host:port) whose logins go to this provider, each with its own callback <scheme of --public-url>://<host>/oauth2/callback").
			into("proxy.Provider.Hosts").checks(func() error {
			var errs []error
			for _, h := range g.Hosts {
				if u, err := url.Parse("//" + h); err != nil || u.Host != h || u.Hostname() == "" || u.User != nil {
					errs = append(errs, fmt.Errorf("want a host like help.example.com or help.example.com:8443, got %q", h))
				}
			}
			return errors.Join(errs...)
		}),
		listOpt(&g.ZendeskFlavors, "zendesk-flavors", nil, false, "the Zendesk flavors its users may get: messaging, chat, sso, sdk (default, or empty: every flavor with a secret)").
			into("proxy.Provider.Flavors").checks(func() error {
			g.flavors = nil
			var errs []error
			for _, f := range g.ZendeskFlavors {
				fl, err := tokens.ParseFlavor(f)
				if err != nil {
					errs = append(errs, fmt.Errorf("want messaging, chat, sso or sdk, got %q", f))
					continue
				}
				g.flavors = append(g.flavors, fl)
			}
			return errors.Join(errs...)
		}),
		strOpt(&g.ZendeskSSO, "zendesk-sso", string(tokens.EndUsers), "which Zendesk JWT SSO configuration its users reach the help center through: end-users (--zendesk-sso-secret) or staff (--zendesk-sso-staff-secret; role and custom_role_id may be mapped)").
			into("proxy.Provider.SSO").oneOf(string(tokens.EndUsers), string(tokens.Staff)).checks(func() error {
			g.sso, _ = tokens.ParseSSOUsers(g.ZendeskSSO) // oneOf reports a bad value
			return nil
		}),
		boolOpt(&g.BearerTokens, "bearer-tokens", true, "accept JWT bearer access tokens (mobile apps, /zendesk/sdk) whose iss is this provider's issuer").into("proxy.Provider.BearerJWT"),
		boolOpt(&g.OpaqueBearerTokens, "opaque-bearer-tokens", false, "send opaque (non-JWT) bearer access tokens to this provider; at most one provider may").into("proxy.Provider.BearerOpaque"),
	}
}

// providerItemOptions are the declarations of a providers: item, bound to a throw-away item, for
// the generated reference.
func providerItemOptions() *optionSet { return newProviderConfig(0).registered }

// newProviderConfig binds a fresh item's options (with their defaults); index names it in errors.
func newProviderConfig(index int) *ProviderConfig {
	pc := &ProviderConfig{}
	s := &optionSet{prefix: fmt.Sprintf("providers[%d]", index)}
	s.addAll(pc.ProviderItemOptions.options())
	s.addAll(pc.ProviderOptions.options())
	pc.registered = s
	return pc
}

// setProviders reads the providers: list of the --config file into c.Providers. Every problem is
// its own error naming the item; an unknown key is providers[1].oidc-isuer: unknown key.
func (c *Config) setProviders(v any, where string) []error {
	items, ok := v.([]any)
	if !ok {
		if v == nil {
			return nil
		}
		return []error{fmt.Errorf("--config: providers: want a list of providers (in %s)", where)}
	}
	c.Providers = nil
	var errs []error
	for i, it := range items {
		pc := newProviderConfig(i)
		m, ok := it.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("providers[%d]: want a mapping of provider keys (id, oidc-issuer, ...) (in %s)", i, where))
			continue
		}
		errs = append(errs, pc.registered.applyYAML(m, where, func(string) bool { return false })...)
		c.Providers = append(c.Providers, pc)
	}
	return errs
}

// validateProviders checks the providers: list as a whole and each item, every problem at once:
// the single-IdP provider options given too, each item's own checks, duplicate ids, hosts claimed
// twice, providers whose external ids could collide in Zendesk, staff SSO without its secret,
// roles mapped for end users, and bearer tokens no provider could tell apart.
func (c *Config) validateProviders() []error {
	var errs []error
	for _, o := range c.providerOpts {
		if !o.atDefault() {
			errs = append(errs, fmt.Errorf("--%s: cannot be used together with providers: (in --config); give it to each provider there", o.name))
		}
	}
	ids := map[string]int{}
	hosts := map[string]int{}
	opaque := -1
	for i, pc := range c.Providers {
		at := pc.registered.prefix
		errs = append(errs, pc.registered.check()...)
		for _, err := range pc.ProviderOptions.validate() {
			errs = append(errs, fmt.Errorf("%s: %v", at, err))
		}
		if j, dup := ids[pc.ID]; dup && pc.ID != "" {
			errs = append(errs, fmt.Errorf("%s.id: %q is also providers[%d]'s", at, pc.ID, j))
		}
		ids[pc.ID] = i
		for _, h := range pc.Hosts {
			key := strings.TrimSuffix(strings.ToLower(h), ".")
			if j, dup := hosts[key]; dup {
				errs = append(errs, fmt.Errorf("%s.hosts: %q is also claimed by providers[%d] (%s)", at, h, j, c.Providers[j].ID))
			}
			hosts[key] = i
		}
		if pc.OpaqueBearerTokens {
			if opaque >= 0 {
				errs = append(errs, fmt.Errorf("%s.opaque-bearer-tokens: providers[%d] (%s) takes them already; opaque tokens cannot say whose they are, so at most one provider may", at, opaque, c.Providers[opaque].ID))
			} else {
				opaque = i
			}
		}
		if err := pc.mapping.CheckFor(pc.sso); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				errs = append(errs, fmt.Errorf("%s: %s (zendesk-sso is %s)", at, line, pc.sso))
			}
		}
		if pc.sso == tokens.Staff && c.ZendeskSSOStaffSecret == "" && c.ZendeskSSOStaffSecretFile == "" {
			errs = append(errs, fmt.Errorf("%s.zendesk-sso: staff needs --zendesk-sso-staff-secret (the secret of Zendesk's team-member JWT SSO configuration)", at))
		}
		for _, f := range pc.flavors {
			if !c.hasSecret(f, pc.sso) {
				errs = append(errs, fmt.Errorf("%s.zendesk-flavors: %s has no secret (%s)", at, f, secretFlagOf(f, pc.sso)))
			}
		}
		for j := range i {
			errs = append(errs, c.collisions(j, i)...)
		}
	}
	return errs
}

// collisions compares providers i < j: external ids that could be equal in Zendesk, and tokens
// that could not tell them apart.
func (c *Config) collisions(i, j int) []error {
	a, b := c.Providers[i], c.Providers[j]
	var errs []error
	// Zendesk has one external_id per user, shared by Messaging, Chat, SSO and the SDK (a messaging
	// login is matched to the Support user of that external_id), so any two providers that mint
	// anything must keep their ids apart: neither prefix may start the other's, or user "x-1" of
	// one and user "1" of another with prefix "...x-" become one Zendesk user.
	if fa, fb := c.mintable(a), c.mintable(b); len(fa) > 0 && len(fb) > 0 {
		pa, pb := a.ExternalIDPrefix, b.ExternalIDPrefix
		if strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa) {
			errs = append(errs, fmt.Errorf("%s.external-id-prefix: %q and providers[%d] (%s)'s %q can make the same Zendesk external_id (%s mints %s, %s mints %s); give each provider a prefix that does not start the other's, e.g. emp- and cust-",
				b.registered.prefix, pb, i, a.ID, pa, a.ID, flavorList(fa), b.ID, flavorList(fb)))
		}
	}
	if strings.TrimSuffix(a.OIDCIssuer, "/") == strings.TrimSuffix(b.OIDCIssuer, "/") && a.OIDCIssuer != "" {
		shared := a.OIDCClientID == b.OIDCClientID
		if a.BearerTokens && b.BearerTokens {
			for _, aud := range append([]string{a.OIDCClientID}, a.OIDCAudiences...) {
				shared = shared || aud == b.OIDCClientID || slices.Contains(b.OIDCAudiences, aud)
			}
		}
		if shared {
			errs = append(errs, fmt.Errorf("%s.oidc-issuer: same issuer as providers[%d] (%s) and the same client id or bearer audience, so a logout or bearer token cannot say which of the two it is for",
				b.registered.prefix, i, a.ID))
		}
	}
	return errs
}

// mintable are the flavors pc's users can get: its zendesk-flavors (default all) that have a
// secret.
func (c *Config) mintable(pc *ProviderConfig) []tokens.Flavor {
	want := pc.flavors
	if want == nil {
		want = tokens.Flavors()
	}
	var out []tokens.Flavor
	for _, f := range want {
		if c.hasSecret(f, pc.sso) {
			out = append(out, f)
		}
	}
	return out
}

// hasSecret reports whether flavor f can be signed for a provider of SSO configuration sso.
func (c *Config) hasSecret(f tokens.Flavor, sso tokens.SSOUsers) bool {
	z := c.ZendeskOptions
	switch f {
	case tokens.Messaging:
		return z.ZendeskMessagingSecret != "" || z.ZendeskMessagingSecretFile != ""
	case tokens.Chat:
		return z.ZendeskChatSecret != "" || z.ZendeskChatSecretFile != ""
	case tokens.SSO:
		if sso == tokens.Staff {
			return z.ZendeskSSOStaffSecret != "" || z.ZendeskSSOStaffSecretFile != ""
		}
		return z.ZendeskSSOSecret != "" || z.ZendeskSSOSecretFile != ""
	case tokens.SDK:
		return z.ZendeskSDKSecret != "" || z.ZendeskSDKSecretFile != ""
	}
	return false
}

func secretFlagOf(f tokens.Flavor, sso tokens.SSOUsers) string {
	if f == tokens.SSO && sso == tokens.Staff {
		return "--zendesk-sso-staff-secret"
	}
	return "--zendesk-" + string(f) + "-secret"
}

func flavorList(fs []tokens.Flavor) string {
	var s []string
	for _, f := range fs {
		s = append(s, string(f))
	}
	return strings.Join(s, ", ")
}

// proxyProvider is the validated item as the handler's provider, without its client.
func (pc *ProviderConfig) proxyProvider() proxy.Provider {
	return proxy.Provider{
		ID: pc.ID, DisplayName: pc.DisplayName, Hosts: pc.Hosts,
		AllowedEmailDomains: pc.AllowedEmailDomain, AllowedGroups: pc.AllowedGroup, Mapping: pc.mapping,
		Flavors: pc.flavors, SSO: pc.sso, BearerJWT: pc.BearerTokens, BearerOpaque: pc.OpaqueBearerTokens,
	}
}
