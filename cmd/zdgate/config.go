package main

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/zdgate/zdgate/proxy/session"
	"github.com/zdgate/zdgate/tokens"
)

// Config is every setting of `zdgate serve` (and `config check`), as given; Validate checks it
// without changing it, and wire turns it into the packages' own configs.
type Config struct {
	Listen, MetricsListen string
	Upstream, PublicURL   string

	OIDCIssuer, OIDCClientID               string
	OIDCClientSecret, OIDCClientSecretFile string
	OIDCScopes, OIDCAudiences              []string
	InsecureBearerUserinfo                 bool
	BearerRateLimit                        float64
	RecheckInterval, RecheckGrace          time.Duration

	CookieSecret, CookieSecretFile string
	CookieName, CookieDomain       string
	CookieSecure                   bool
	SessionTTL                     time.Duration
	SessionStore                   string
	RedisURL, RedisURLFile         string

	AuthMode                         string
	SkipAuthPath                     []string
	AllowedEmailDomain, AllowedGroup []string
	GroupsClaim                      string
	EmailVerifiedClaim               string
	TrustedProxy                     []string
	AllowedRedirectDomain            []string
	PassAccessToken                  bool

	Inject          bool
	InjectSkipPath  []string
	InjectScanLimit int

	ZendeskSnippetKey                                  string
	ZendeskMessagingKeyID                              string
	ZendeskMessagingSecret, ZendeskMessagingSecretFile string
	ZendeskChatSecret, ZendeskChatSecretFile           string
	ZendeskSSOSecret, ZendeskSSOSecretFile             string
	ZendeskSDKSecret, ZendeskSDKSecretFile             string
	ZendeskSubdomain                                   string
	ZendeskHost                                        []string
	ZendeskSSOLogoutIdP                                bool
	ZendeskFlavor                                      string
	ZendeskTokenTTL                                    time.Duration

	ExternalIDClaim, ExternalIDPrefix, NameClaim                                    string
	ClaimOrganization, ClaimOrganizationID, ClaimTags, ClaimRole, ClaimCustomRoleID string
	ClaimLocale, ClaimPhone, ClaimRemotePhotoURL                                    string
	ZendeskAllowedRole, ClaimUserField                                              []string

	LogFormat, LogLevel string
	ShutdownTimeout     time.Duration

	registered *optionSet // the options bound to this Config, for config check's printout
}

// options registers every flag of Config; the names are the contract of SPEC §1.
func (c *Config) options() *optionSet {
	s := &optionSet{}
	c.registered = s
	s.str(&c.Listen, "listen", ":4180", "address of the proxy")
	s.str(&c.MetricsListen, "metrics-listen", ":9090", "address of /metrics (never served on --listen)")
	s.str(&c.Upstream, "upstream", "", "URL of the protected app (required)")
	s.str(&c.PublicURL, "public-url", "", "external URL of the site, e.g. https://help.example.com; the callback is <public-url>/oauth2/callback (required)")
	s.str(&c.OIDCIssuer, "oidc-issuer", "", "issuer URL of the OpenID Connect provider (required)")
	s.str(&c.OIDCClientID, "oidc-client-id", "", "client id at the IdP (required)")
	s.secretStr(&c.OIDCClientSecret, "oidc-client-secret", "client secret at the IdP")
	s.str(&c.OIDCClientSecretFile, "oidc-client-secret-file", "", "file holding the client secret (re-read when it changes)")
	s.list(&c.OIDCScopes, "oidc-scopes", []string{"openid", "email", "profile", "offline_access"}, false, "scopes asked for (space- or comma-separated, or repeated)")
	s.list(&c.OIDCAudiences, "oidc-audiences", nil, false, "extra audiences accepted on bearer access tokens (mobile apps)")
	s.boolean(&c.InsecureBearerUserinfo, "insecure-bearer-userinfo", false, "DANGEROUS: when the IdP has no introspection endpoint, accept opaque bearer tokens that only userinfo confirms; then ANY access token of the user, issued to ANY client of the IdP (a third-party app the user once signed in to), mints Zendesk tokens for them")
	s.float(&c.BearerRateLimit, "bearer-rate-limit", 10, "bearer tokens (mobile apps, /zendesk/sdk) per second per client address that may be checked at the IdP; remembered answers do not count; burst twice that; 0 = no limit")
	s.duration(&c.RecheckInterval, "recheck-interval", time.Minute, "how old the last IdP confirmation of a session may be before it is confirmed again")
	s.duration(&c.RecheckGrace, "recheck-grace", 0, "how long an IdP outage may be bridged with the last confirmation (0 = fail closed)")
	s.secretStr(&c.CookieSecret, "cookie-secret", "32 bytes (or base64 of 32 bytes) sealing session cookies; a second line is a retired secret that only opens old cookies")
	s.str(&c.CookieSecretFile, "cookie-secret-file", "", "file holding --cookie-secret (re-read when it changes)")
	s.str(&c.CookieName, "cookie-name", "_zdgate", "session cookie name")
	s.str(&c.CookieDomain, "cookie-domain", "", "session cookie Domain attribute (default: host-only)")
	s.boolean(&c.CookieSecure, "cookie-secure", true, "send cookies only over HTTPS (turn off only for plain-HTTP development)")
	s.duration(&c.SessionTTL, "session-ttl", 12*time.Hour, "absolute session lifetime, whatever the refreshes")
	s.str(&c.SessionStore, "session-store", "cookie", "cookie or redis")
	s.secretStr(&c.RedisURL, "redis-url", "redis:// or rediss:// URL for --session-store=redis (may hold a password: treated as a secret)")
	s.str(&c.RedisURLFile, "redis-url-file", "", "file holding --redis-url")
	s.str(&c.AuthMode, "auth-mode", "required", "required: every path needs a login; optional: pages load anonymously, only logged-in visitors get Zendesk tokens")
	s.list(&c.SkipAuthPath, "skip-auth-path", nil, true, "regular expression on the normalised path (never the query) that needs no login")
	s.list(&c.AllowedEmailDomain, "allowed-email-domain", nil, false, "only users with a verified email in these domains may log in")
	s.list(&c.AllowedGroup, "allowed-group", nil, false, "only members of these groups may log in")
	s.str(&c.GroupsClaim, "groups-claim", "groups", "IdP claim holding the user's groups")
	s.str(&c.EmailVerifiedClaim, "email-verified-claim", "email_verified", "IdP claim saying the email is verified (JSON true or the string \"true\"), read from the same document as the email; Entra ID: xms_edov (trusts the tenant's domain verification, see docs/security.md)")
	s.list(&c.TrustedProxy, "trusted-proxy", nil, false, "CIDR whose X-Forwarded-* and X-Request-Id headers are believed")
	s.list(&c.AllowedRedirectDomain, "allowed-redirect-domain", nil, false, "host a full-URL rd may point at (app.example.com, or .example.com for subdomains)")
	s.boolean(&c.PassAccessToken, "pass-access-token", false, "forward-auth: also answer X-Auth-Request-Access-Token with the IdP access token")
	s.boolean(&c.Inject, "inject", true, "inject the Zendesk loader into proxied HTML pages")
	s.list(&c.InjectSkipPath, "inject-skip-path", nil, true, "regular expression of normalised paths never injected")
	s.size(&c.InjectScanLimit, "inject-scan-limit", 256<<10, "256KiB", "give up looking for </head> or <body after this many bytes")
	s.str(&c.ZendeskSnippetKey, "zendesk-snippet-key", "", "if set, also inject Zendesk's own widget snippet with this key")
	s.str(&c.ZendeskMessagingKeyID, "zendesk-messaging-key-id", "", "Messaging signing key id (app_…), the JWT kid")
	s.secretStr(&c.ZendeskMessagingSecret, "zendesk-messaging-secret", "Messaging signing secret")
	s.str(&c.ZendeskMessagingSecretFile, "zendesk-messaging-secret-file", "", "file holding the Messaging secret, or KEY_ID:SECRET on one line")
	s.secretStr(&c.ZendeskChatSecret, "zendesk-chat-secret", "Chat / classic Web Widget visitor-authentication secret")
	s.str(&c.ZendeskChatSecretFile, "zendesk-chat-secret-file", "", "file holding the Chat secret")
	s.secretStr(&c.ZendeskSSOSecret, "zendesk-sso-secret", "Help Center JWT SSO shared secret")
	s.str(&c.ZendeskSSOSecretFile, "zendesk-sso-secret-file", "", "file holding the SSO secret")
	s.secretStr(&c.ZendeskSDKSecret, "zendesk-sdk-secret", "Support SDK JWT secret")
	s.str(&c.ZendeskSDKSecretFile, "zendesk-sdk-secret-file", "", "file holding the Support SDK secret")
	s.str(&c.ZendeskSubdomain, "zendesk-subdomain", "", "your Zendesk subdomain (<subdomain>.zendesk.com), for Help Center SSO")
	s.boolean(&c.ZendeskSSOLogoutIdP, "zendesk-sso-logout-idp", false, "the Help Center remote logout URL also logs out at the IdP (RP-initiated logout)")
	s.list(&c.ZendeskHost, "zendesk-host", nil, false, "extra help-center host accepted in return_to (host-mapped domains)")
	s.str(&c.ZendeskFlavor, "zendesk-flavor", "messaging", "what the injected loader drives: messaging or chat")
	s.duration(&c.ZendeskTokenTTL, "zendesk-token-ttl", 10*time.Minute, "lifetime of Messaging tokens (Chat tokens are capped at 7 min)")
	s.str(&c.ExternalIDClaim, "external-id-claim", "sub", "IdP claim that becomes Zendesk's external_id")
	s.str(&c.ExternalIDPrefix, "external-id-prefix", "", "prefix put before the external_id")
	s.str(&c.NameClaim, "name-claim", "name", "IdP claim that becomes the Zendesk name")
	s.str(&c.ClaimOrganization, "zendesk-claim-organization", "", "IdP claim mapped to SSO/SDK organization")
	s.str(&c.ClaimOrganizationID, "zendesk-claim-organization-id", "", "IdP claim mapped to SSO/SDK organization_id")
	s.str(&c.ClaimTags, "zendesk-claim-tags", "", "IdP claim mapped to SSO/SDK tags (replaces the user's tags)")
	s.str(&c.ClaimRole, "zendesk-claim-role", "", "IdP claim mapped to SSO/SDK role (only values in --zendesk-allowed-role)")
	s.list(&c.ZendeskAllowedRole, "zendesk-allowed-role", nil, false, "role values the role claim may carry (end-user, agent, admin)")
	s.str(&c.ClaimCustomRoleID, "zendesk-claim-custom-role-id", "", "IdP claim mapped to SSO/SDK custom_role_id")
	s.str(&c.ClaimLocale, "zendesk-claim-locale", "", "IdP claim mapped to SSO/SDK locale")
	s.str(&c.ClaimPhone, "zendesk-claim-phone", "", "IdP claim mapped to SSO/SDK phone")
	s.str(&c.ClaimRemotePhotoURL, "zendesk-claim-remote-photo-url", "", "IdP claim mapped to SSO/SDK remote_photo_url")
	s.list(&c.ClaimUserField, "zendesk-claim-user-field", nil, false, "FIELD=CLAIM: IdP claim mapped to SSO/SDK user_fields.FIELD")
	s.str(&c.LogFormat, "log-format", "json", "json or text")
	s.str(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	s.duration(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long SIGTERM waits for in-flight requests")
	return s
}

// Validate reports every problem at once, each prefixed with its flag; it changes nothing.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, a ...any) {
		errs = append(errs, fmt.Errorf("--%s: "+format, append([]any{flag}, a...)...))
	}
	required := func(flag, v string) {
		if strings.TrimSpace(v) == "" {
			bad(flag, "required")
		}
	}
	exclusive := func(flag, v, file string) {
		if v != "" && file != "" {
			bad(flag, "give either --%s or --%s-file, not both", flag, flag)
		}
	}
	httpURL := func(flag, v string) {
		if v == "" {
			return
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(flag, "must be an http:// or https:// URL, got %q", v)
		}
	}
	required("upstream", c.Upstream)
	httpURL("upstream", c.Upstream)
	required("public-url", c.PublicURL)
	httpURL("public-url", c.PublicURL)
	if u, err := url.Parse(c.PublicURL); err == nil && u.Path != "" && u.Path != "/" {
		bad("public-url", "must be an origin without a path, got %q", c.PublicURL)
	}
	required("oidc-issuer", c.OIDCIssuer)
	httpURL("oidc-issuer", c.OIDCIssuer)
	required("oidc-client-id", c.OIDCClientID)
	exclusive("oidc-client-secret", c.OIDCClientSecret, c.OIDCClientSecretFile)
	exclusive("cookie-secret", c.CookieSecret, c.CookieSecretFile)
	if c.CookieSecret == "" && c.CookieSecretFile == "" {
		bad("cookie-secret", "required (or --cookie-secret-file)")
	}
	if c.RecheckInterval <= 0 {
		bad("recheck-interval", "must be positive")
	}
	if c.SessionTTL <= 0 {
		bad("session-ttl", "must be positive")
	}
	if !validCookieName(c.CookieName) {
		bad("cookie-name", "must be letters, digits, '_' or '-', got %q", c.CookieName)
	}
	switch c.SessionStore {
	case "cookie":
	case "redis":
		exclusive("redis-url", c.RedisURL, c.RedisURLFile)
		if c.RedisURL == "" && c.RedisURLFile == "" {
			bad("redis-url", "required with --session-store=redis (or --redis-url-file)")
		}
		if c.RedisURL != "" {
			if err := session.ValidateRedisURL(c.RedisURL); err != nil {
				bad("redis-url", "%v", err)
			}
		}
	default:
		bad("session-store", "must be cookie or redis, got %q", c.SessionStore)
	}
	if c.AuthMode != "required" && c.AuthMode != "optional" {
		bad("auth-mode", "must be required or optional, got %q", c.AuthMode)
	}
	for _, r := range c.SkipAuthPath {
		if _, err := regexp.Compile(r); err != nil {
			bad("skip-auth-path", "invalid regular expression %q", r)
		}
	}
	for _, r := range c.InjectSkipPath {
		if _, err := regexp.Compile(r); err != nil {
			bad("inject-skip-path", "invalid regular expression %q", r)
		}
	}
	for _, p := range c.TrustedProxy {
		if _, err := parsePrefix(p); err != nil {
			bad("trusted-proxy", "want a CIDR like 10.0.0.0/8 or an address, got %q", p)
		}
	}
	for _, d := range c.AllowedRedirectDomain {
		if d == "" || strings.ContainsAny(d, "/:@ ") {
			bad("allowed-redirect-domain", "want a host like app.example.com or .example.com, got %q", d)
		}
	}
	if c.EmailVerifiedClaim == "" || c.EmailVerifiedClaim == "email" {
		bad("email-verified-claim", "want the name of a claim holding true/false, such as email_verified or xms_edov, got %q", c.EmailVerifiedClaim)
	}
	if c.InjectScanLimit <= 0 {
		bad("inject-scan-limit", "must be positive")
	}
	if c.ZendeskFlavor != "messaging" && c.ZendeskFlavor != "chat" {
		bad("zendesk-flavor", "must be messaging or chat, got %q", c.ZendeskFlavor)
	}
	exclusive("zendesk-messaging-secret", c.ZendeskMessagingSecret, c.ZendeskMessagingSecretFile)
	exclusive("zendesk-chat-secret", c.ZendeskChatSecret, c.ZendeskChatSecretFile)
	exclusive("zendesk-sso-secret", c.ZendeskSSOSecret, c.ZendeskSSOSecretFile)
	exclusive("zendesk-sdk-secret", c.ZendeskSDKSecret, c.ZendeskSDKSecretFile)
	if c.ZendeskMessagingSecret != "" && c.ZendeskMessagingKeyID == "" {
		bad("zendesk-messaging-key-id", "required with --zendesk-messaging-secret (or put KEY_ID:SECRET in --zendesk-messaging-secret-file)")
	}
	if (c.ZendeskSSOSecret != "" || c.ZendeskSSOSecretFile != "") && c.ZendeskSubdomain == "" {
		bad("zendesk-subdomain", "required with --zendesk-sso-secret")
	}
	if c.ZendeskSubdomain != "" && !validSubdomain(c.ZendeskSubdomain) {
		bad("zendesk-subdomain", "want the bare subdomain (acme for acme.zendesk.com), got %q", c.ZendeskSubdomain)
	}
	if c.ZendeskTokenTTL <= 0 {
		bad("zendesk-token-ttl", "must be positive")
	}
	for _, f := range c.ClaimUserField {
		if k, v, ok := strings.Cut(f, "="); !ok || k == "" || v == "" {
			bad("zendesk-claim-user-field", "want FIELD=CLAIM, got %q", f)
		}
	}
	if err := c.mapping().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("log-format", "must be json or text, got %q", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		bad("log-level", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return errors.Join(errs...)
}

func validCookieName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func validSubdomain(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return s != ""
}

// parsePrefix accepts a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// mapping is the claim mapping for tokens.
func (c *Config) mapping() tokens.Mapping {
	m := tokens.Mapping{
		ExternalIDClaim: c.ExternalIDClaim, ExternalIDPrefix: c.ExternalIDPrefix, NameClaim: c.NameClaim,
		OrganizationClaim: c.ClaimOrganization, OrganizationIDClaim: c.ClaimOrganizationID, TagsClaim: c.ClaimTags,
		RoleClaim: c.ClaimRole, CustomRoleIDClaim: c.ClaimCustomRoleID, LocaleClaim: c.ClaimLocale,
		PhoneClaim: c.ClaimPhone, RemotePhotoURLClaim: c.ClaimRemotePhotoURL, AllowedRoles: c.ZendeskAllowedRole,
	}
	for _, f := range c.ClaimUserField {
		if k, v, ok := strings.Cut(f, "="); ok {
			if m.UserFields == nil {
				m.UserFields = map[string]string{}
			}
			m.UserFields[k] = v
		}
	}
	return m
}

// scopes accepts "openid email" as well as repeated flags.
func (c *Config) scopes() []string {
	var out []string
	for _, s := range c.OIDCScopes {
		out = append(out, strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })...)
	}
	return out
}
