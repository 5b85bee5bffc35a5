package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/zdgate/zdgate/proxy"
	"github.com/zdgate/zdgate/proxy/session"
	"github.com/zdgate/zdgate/tokens"
)

// Config is every setting of `zdgate serve` (and `config check`), in groups that each fill one
// part of the packages' configs. The exported fields are the values as given; Validate checks them
// and keeps the parsed forms (URLs, regular expressions, CIDRs, the claim mapping) in the groups'
// unexported fields, which wire then uses: nothing is parsed twice. Each group declares its own
// options (its options method); docs/reference.md is generated from them.
type Config struct {
	ServerOptions
	ProxyOptions
	ProviderOptions
	SessionOptions
	InjectOptions
	ZendeskOptions

	// Providers are the items of the --config file's providers: list (several identity
	// providers); empty, the ProviderOptions above are the one provider.
	Providers []*ProviderConfig

	registered   *optionSet // the options bound to this Config, for config check's printout
	providerOpts []*option  // the single-IdP provider's options, which providers: replaces
	validated    bool
}

// multi reports whether several providers are configured (providers:).
func (c *Config) multi() bool { return len(c.Providers) > 0 }

// options registers every flag of Config, group by group; the names are the contract of
// docs/reference.md §1.
func (c *Config) options() *optionSet {
	s := &optionSet{}
	c.registered = s
	s.addAll(c.ServerOptions.options())
	s.addAll(c.ProxyOptions.options())
	c.providerOpts = c.ProviderOptions.options()
	s.addAll(c.providerOpts)
	s.addAll(c.SessionOptions.options())
	s.addAll(c.InjectOptions.options())
	s.addAll(c.ZendeskOptions.options())
	s.lists = map[string]func(any, string) []error{"providers": c.setProviders}
	return s
}

// Validate reports every problem at once, each prefixed with its flag, and keeps the parsed values
// for wire. It does not change a setting.
func (c *Config) Validate() error {
	if c.registered == nil {
		c.options() // a Config built by hand: bind the checks to its fields
	}
	var errs []error
	if c.multi() {
		// providers: replaces the single provider's options: their checks (--oidc-issuer:
		// required, ...) are each item's, and any of them given too is an error.
		errs = append(c.registered.check(c.providerOpts), c.validateProviders()...)
	} else {
		errs = append(c.registered.check(), c.ProviderOptions.validate()...)
	}
	errs = append(errs, c.SessionOptions.validate()...)
	errs = append(errs, c.ZendeskOptions.validate(c.Providers)...)
	err := errors.Join(errs...)
	c.validated = err == nil
	return err
}

// ServerOptions are the listeners, logging and shutdown.
type ServerOptions struct {
	Listen, MetricsListen string
	LogFormat, LogLevel   string
	ShutdownTimeout       time.Duration

	logLevel slog.Level
}

func (g *ServerOptions) options() []*option {
	// slog also takes INFO or warn+2; --help and the chart name the four plain levels.
	logLevel := strOpt(&g.LogLevel, "log-level", "info", "debug, info, warn or error").into("slog handler").checks(func() (err error) {
		if g.logLevel, err = parseLevel(g.LogLevel); err != nil {
			return fmt.Errorf("must be debug, info, warn or error, got %q", g.LogLevel)
		}
		return nil
	})
	logLevel.enum = []string{"debug", "info", "warn", "error"}
	return []*option{
		strOpt(&g.Listen, "listen", ":4180", "address of the proxy").into("http.Server (proxy)").chartDerived(),
		strOpt(&g.MetricsListen, "metrics-listen", ":9090", "address of /metrics (never served on --listen)").into("http.Server (metrics)").chartDerived(),
		strOpt(&g.LogFormat, "log-format", "json", "json or text").into("slog handler").oneOf("json", "text"),
		logLevel,
		durationOpt(&g.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long SIGTERM waits for in-flight requests").into("http.Server.Shutdown"),
	}
}

// ProxyOptions are what the handler needs besides the IdP and the sessions: where to proxy, which
// paths need a login, whose forwarding headers to believe, and how often to re-check.
type ProxyOptions struct {
	Upstream, PublicURL           string
	AuthMode                      string
	SkipAuthPath                  []string
	TrustedProxy                  []string
	AllowedRedirectDomain         []string
	PassAccessToken               bool
	RecheckInterval, RecheckGrace time.Duration
	BearerRateLimit               float64

	upstream, publicURL *url.URL
	skipAuth            []*regexp.Regexp
	trusted             []netip.Prefix
}

func (g *ProxyOptions) options() []*option {
	return []*option{
		strOpt(&g.Upstream, "upstream", "", "URL of the protected app (required)").into("proxy.Config.Upstream").kindOf("URL").chartDerived().
			checks(required(&g.Upstream), httpURL(&g.Upstream, &g.upstream)),
		strOpt(&g.PublicURL, "public-url", "", "external URL of the site, e.g. https://help.example.com; the callback is <public-url>/oauth2/callback (required)").
			into("proxy.Config.PublicURL, oidc.Config.RedirectURL").kindOf("URL").
			checks(required(&g.PublicURL), httpURL(&g.PublicURL, &g.publicURL), func() error {
				if g.publicURL != nil && g.publicURL.Path != "" && g.publicURL.Path != "/" {
					return fmt.Errorf("must be an origin without a path, got %q", g.PublicURL)
				}
				if g.publicURL != nil {
					g.publicURL.Path = ""
				}
				return nil
			}),
		durationOpt(&g.RecheckInterval, "recheck-interval", time.Minute, "how old the last IdP confirmation of a session may be before it is confirmed again").
			into("proxy.Config.RecheckInterval").checks(positive(&g.RecheckInterval)),
		durationOpt(&g.RecheckGrace, "recheck-grace", 0, "how long an IdP outage may be bridged with the last confirmation (0 = fail closed)").into("proxy.Config.RecheckGrace"),
		strOpt(&g.AuthMode, "auth-mode", "required", "required: every path needs a login; optional: pages load anonymously, only logged-in visitors get Zendesk tokens").
			into("proxy.Config.AuthMode").oneOf(proxy.AuthRequired, proxy.AuthOptional),
		listOpt(&g.SkipAuthPath, "skip-auth-path", nil, true, "regular expression on the normalised path (never the query) that needs no login").
			into("proxy.Config.SkipAuth").checks(regexps(&g.SkipAuthPath, &g.skipAuth)),
		listOpt(&g.TrustedProxy, "trusted-proxy", nil, false, "CIDR whose X-Forwarded-* and X-Request-Id headers are believed").
			into("proxy.Config.TrustedProxies").checks(prefixes(&g.TrustedProxy, &g.trusted)),
		listOpt(&g.AllowedRedirectDomain, "allowed-redirect-domain", nil, false, "host a full-URL rd may point at (app.example.com, or .example.com for subdomains)").
			into("proxy.Config.AllowedRedirectDomains").checks(func() error {
			var errs []error
			for _, d := range g.AllowedRedirectDomain {
				if d == "" || strings.ContainsAny(d, "/:@ ") {
					errs = append(errs, fmt.Errorf("want a host like app.example.com or .example.com, got %q", d))
				}
			}
			return errors.Join(errs...)
		}),
		boolOpt(&g.PassAccessToken, "pass-access-token", false, "forward-auth: also answer X-Auth-Request-Access-Token with the IdP access token").into("proxy.Config.PassAccessToken"),
		floatOpt(&g.BearerRateLimit, "bearer-rate-limit", 10, "bearer tokens (mobile apps, /zendesk/sdk) per second per client address (per /64 for IPv6) that may be checked at the IdP; remembered answers do not count; burst twice that; 0 = no limit").
			into("proxy.Config.BearerRateLimit"),
	}
}

// SessionOptions are the session cookie and where sessions live.
type SessionOptions struct {
	CookieSecret, CookieSecretFile string
	CookieName, CookieDomain       string
	CookieSecure                   bool
	SessionTTL                     time.Duration
	SessionStore                   string
	RedisURL, RedisURLFile         string
}

func (g *SessionOptions) options() []*option {
	opts := secretWithFile(&g.CookieSecret, &g.CookieSecretFile, "cookie-secret",
		"32 bytes (or base64 of 32 bytes) sealing session cookies; a second line is a retired secret that only opens old cookies",
		"file holding --cookie-secret (re-read when it changes)", "session.CookieConfig.Secrets")
	redis := secretWithFile(&g.RedisURL, &g.RedisURLFile, "redis-url",
		"redis:// or rediss:// URL for --session-store=redis (may hold a password: treated as a secret)",
		"file holding --redis-url", "session.RedisConfig.URL")
	both := redis[0].check
	redis[0].check = func() error { // only with the Redis store, as it always was
		if g.SessionStore != "redis" {
			return nil
		}
		return both()
	}
	redis[0].chart = chartHint{include: true, desc: "--redis-url without a password; URLs with credentials go in secrets.redisUrl",
		pattern: `^$|^rediss?://([^:@/\s]*@)?[^@\s]*$`}
	return append(append(opts,
		strOpt(&g.CookieName, "cookie-name", "_zdgate", "session cookie name").into("session.CookieConfig.Name").checks(func() error {
			if !validCookieName(g.CookieName) {
				return fmt.Errorf("must be letters, digits, '_' or '-', got %q", g.CookieName)
			}
			return nil
		}),
		strOpt(&g.CookieDomain, "cookie-domain", "", "session cookie Domain attribute (default: host-only)").into("session.CookieConfig.Domain"),
		boolOpt(&g.CookieSecure, "cookie-secure", true, "send cookies only over HTTPS (turn off only for plain-HTTP development)").into("session.CookieConfig.Secure"),
		durationOpt(&g.SessionTTL, "session-ttl", 12*time.Hour, "absolute session lifetime, whatever the refreshes").into("session.CookieConfig.TTL").checks(positive(&g.SessionTTL)),
		strOpt(&g.SessionStore, "session-store", "cookie", "cookie or redis").into("session.NewCookieStore / session.NewRedisStore").oneOf("cookie", "redis"),
	), redis...)
}

// validate checks what spans several session options.
func (g *SessionOptions) validate() []error {
	var errs []error
	if g.CookieSecret == "" && g.CookieSecretFile == "" {
		errs = append(errs, errors.New("--cookie-secret: required (or --cookie-secret-file)"))
	}
	if g.SessionStore == "redis" {
		if g.RedisURL == "" && g.RedisURLFile == "" {
			errs = append(errs, errors.New("--redis-url: required with --session-store=redis (or --redis-url-file)"))
		}
		if g.RedisURL != "" {
			if err := session.ValidateRedisURL(g.RedisURL); err != nil {
				errs = append(errs, fmt.Errorf("--redis-url: %v", err))
			}
		}
	}
	return errs
}

// InjectOptions are the loader injection into proxied pages.
type InjectOptions struct {
	Inject            bool
	InjectSkipPath    []string
	InjectScanLimit   int
	ZendeskSnippetKey string
	ZendeskFlavor     string

	injectSkip []*regexp.Regexp
}

func (g *InjectOptions) options() []*option {
	return []*option{
		boolOpt(&g.Inject, "inject", true, "inject the Zendesk loader into proxied HTML pages").into("proxy.Config.Inject"),
		listOpt(&g.InjectSkipPath, "inject-skip-path", nil, true, "regular expression of normalised paths never injected").
			into("proxy.Config.InjectSkip").checks(regexps(&g.InjectSkipPath, &g.injectSkip)),
		sizeOpt(&g.InjectScanLimit, "inject-scan-limit", 256<<10, "256KiB", "give up looking for </head> or <body after this many bytes").
			into("inject.Config.ScanLimit").checks(func() error {
			if g.InjectScanLimit <= 0 {
				return errors.New("must be positive")
			}
			return nil
		}),
		strOpt(&g.ZendeskSnippetKey, "zendesk-snippet-key", "", "if set, also inject Zendesk's own widget snippet with this key").into("inject.Config.WidgetScriptURL"),
		strOpt(&g.ZendeskFlavor, "zendesk-flavor", "messaging", "what the injected loader drives: messaging or chat").into("inject.Config.Flavor").oneOf("messaging", "chat"),
	}
}

// ZendeskOptions are the signing secrets and the Help Center settings.
type ZendeskOptions struct {
	ZendeskMessagingKeyID                              string
	ZendeskMessagingSecret, ZendeskMessagingSecretFile string
	ZendeskChatSecret, ZendeskChatSecretFile           string
	ZendeskSSOSecret, ZendeskSSOSecretFile             string
	ZendeskSSOStaffSecret, ZendeskSSOStaffSecretFile   string
	ZendeskSDKSecret, ZendeskSDKSecretFile             string
	ZendeskSubdomain                                   string
	ZendeskHost                                        []string
	ZendeskSSOLogoutIdP                                bool
	ZendeskTokenTTL                                    time.Duration
	ZendeskMessagingEmail                              string

	messagingEmail tokens.MessagingEmail
}

func (g *ZendeskOptions) options() []*option {
	var opts []*option
	opts = append(opts, strOpt(&g.ZendeskMessagingKeyID, "zendesk-messaging-key-id", "", "Messaging signing key id (app_…), the JWT kid").into("tokens.Key.ID (messaging)"))
	opts = append(opts, secretWithFile(&g.ZendeskMessagingSecret, &g.ZendeskMessagingSecretFile, "zendesk-messaging-secret",
		"Messaging signing secret", "file holding the Messaging secret, or KEY_ID:SECRET on one line", "tokens.Config.Keys (messaging)")...)
	opts = append(opts, secretWithFile(&g.ZendeskChatSecret, &g.ZendeskChatSecretFile, "zendesk-chat-secret",
		"Chat / classic Web Widget visitor-authentication secret", "file holding the Chat secret", "tokens.Config.Keys (chat)")...)
	opts = append(opts, secretWithFile(&g.ZendeskSSOSecret, &g.ZendeskSSOSecretFile, "zendesk-sso-secret",
		"Help Center JWT SSO shared secret (Zendesk's end-user SSO configuration)", "file holding the SSO secret", "tokens.Config.Keys (sso)")...)
	opts = append(opts, secretWithFile(&g.ZendeskSSOStaffSecret, &g.ZendeskSSOStaffSecretFile, "zendesk-sso-staff-secret",
		"shared secret of Zendesk's team-member (staff) JWT SSO configuration, for providers: items with zendesk-sso: staff", "file holding the staff SSO secret", "proxy.Config.StaffSSO")...)
	opts = append(opts, secretWithFile(&g.ZendeskSDKSecret, &g.ZendeskSDKSecretFile, "zendesk-sdk-secret",
		"Support SDK JWT secret", "file holding the Support SDK secret", "tokens.Config.Keys (sdk)")...)
	sub := strOpt(&g.ZendeskSubdomain, "zendesk-subdomain", "", "your Zendesk subdomain (<subdomain>.zendesk.com), for Help Center SSO").into("proxy.Config.ZendeskSubdomain").
		checks(func() error {
			if g.ZendeskSubdomain != "" && !validSubdomain(g.ZendeskSubdomain) {
				return fmt.Errorf("want the bare subdomain (acme for acme.zendesk.com), got %q", g.ZendeskSubdomain)
			}
			return nil
		})
	sub.chart.pattern = `^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	return append(opts, sub,
		boolOpt(&g.ZendeskSSOLogoutIdP, "zendesk-sso-logout-idp", false, "the Help Center remote logout URL also logs out at the IdP (RP-initiated logout)").into("proxy.Config.SSOLogoutIdP"),
		listOpt(&g.ZendeskHost, "zendesk-host", nil, false, "extra help-center host accepted in return_to (host-mapped domains)").into("proxy.Config.ZendeskHosts"),
		durationOpt(&g.ZendeskTokenTTL, "zendesk-token-ttl", 10*time.Minute,
			fmt.Sprintf("lifetime of Messaging tokens (Chat tokens live at most %v)", shortDuration(tokens.Chat.MaxTTL()))).
			into("tokens.Config.TTL (messaging, chat)").checks(positive(&g.ZendeskTokenTTL)),
		strOpt(&g.ZendeskMessagingEmail, "zendesk-messaging-email", "verified",
			"email in Messaging tokens: verified (only an IdP-verified email, with email_verified:true) or omit (never; avoids Zendesk's 409 when a verified email moves to another external_id)").
			into("tokens.Config.MessagingEmail").oneOf("verified", "omit").checks(func() error {
			g.messagingEmail, _ = tokens.ParseMessagingEmail(g.ZendeskMessagingEmail) // oneOf reports a bad value
			return nil
		}),
	)
}

// validate checks what spans several Zendesk options (and the providers that use them).
func (g *ZendeskOptions) validate(providers []*ProviderConfig) []error {
	var errs []error
	if g.ZendeskSSOStaffSecret != "" || g.ZendeskSSOStaffSecretFile != "" {
		if !slices.ContainsFunc(providers, func(pc *ProviderConfig) bool { return pc.sso == tokens.Staff }) {
			errs = append(errs, errors.New("--zendesk-sso-staff-secret: only used by a providers: item (in --config) with zendesk-sso: staff, and there is none"))
		}
		if g.ZendeskSubdomain == "" {
			errs = append(errs, errors.New("--zendesk-subdomain: required with --zendesk-sso-staff-secret"))
		}
	}
	if g.ZendeskMessagingSecret != "" && g.ZendeskMessagingKeyID == "" {
		errs = append(errs, errors.New("--zendesk-messaging-key-id: required with --zendesk-messaging-secret (or put KEY_ID:SECRET in --zendesk-messaging-secret-file)"))
	}
	if (g.ZendeskSSOSecret != "" || g.ZendeskSSOSecretFile != "") && g.ZendeskSubdomain == "" {
		errs = append(errs, errors.New("--zendesk-subdomain: required with --zendesk-sso-secret"))
	}
	return errs
}

// shortDuration prints 5m0s as 5 min.
func shortDuration(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return d.String()
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
