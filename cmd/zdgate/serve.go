package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/proxy"
	"github.com/zdgate/zdgate/proxy/inject"
	"github.com/zdgate/zdgate/proxy/session"
	"github.com/zdgate/zdgate/tokens"
)

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	cfg, code := loadConfig(args, stdout, stderr, env, "serve")
	if cfg == nil {
		return code
	}
	log, stopLog := newLogger(cfg, stderr)
	defer stopLog()
	app, err := wire(cfg, log, nil)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	if err := app.serve(ctx); err != nil {
		log.Error("zdgate stopped", "cause", err.Error())
		return 1
	}
	return 0
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// app is a wired zdgate: the handler, its servers and its background work.
type app struct {
	cfg       *Config
	log       *slog.Logger
	reg       *prometheus.Registry
	proxy     *proxy.Proxy
	idp       *oidc.Client // the single IdP, or the first of providers:
	idps      []idpClient  // every IdP: the single one (id ""), or each provider's
	staffSSO  *tokens.Signer
	secrets   []reloader
	reloads   *prometheus.CounterVec
	closers   []func()
	tracing   tracingSettings
	pollEvery time.Duration
	// listeners may be given by tests (demo, e2e); else opened from cfg.
	ln, metricsLn net.Listener
}

// hooks lets demo and tests adjust the wiring (e.g. add the offline widget stand-in).
type hooks struct {
	widgetScriptURL string
	secretPoll      time.Duration
}

// wire builds every component from a Config, with the values Validate parsed (it validates a
// Config that was not). Each package's New checks its own input too.
func wire(cfg *Config, log *slog.Logger, h *hooks) (*app, error) {
	if !cfg.validated {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
	}
	if h == nil {
		h = &hooks{}
	}
	a := &app{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zdgate_secret_reloads_total", Help: "Re-reads of changed --*-file secrets, by secret and result (ok, error).",
	}, []string{"secret", "result"})
	a.reg.MustRegister(a.reloads)

	var errs []error
	// Secrets.
	cookieSecret, err := newSecret("cookie-secret", cfg.CookieSecret, cfg.CookieSecretFile, session.ParseSecrets)
	errs = append(errs, err)
	clientSecrets := map[*ProviderOptions]*secret[string]{}
	for i, po := range cfg.providerGroups() {
		name := "oidc-client-secret"
		if cfg.multi() {
			name = fmt.Sprintf("providers[%d].oidc-client-secret", i)
		}
		clientSecret, err := newSecret(name, po.OIDCClientSecret, po.OIDCClientSecretFile, func(s string) (string, error) { return s, nil })
		errs = append(errs, err)
		clientSecrets[po] = clientSecret
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a.watch(cookieSecret, cfg.CookieSecretFile)
	for _, po := range cfg.providerGroups() {
		a.watch(clientSecrets[po], po.OIDCClientSecretFile)
	}

	// Tracing: off unless the OTEL_* environment asks for it (tracing.go).
	if a.tracing, err = tracingFromEnv(os.LookupEnv); err != nil {
		return nil, err
	}
	var tp trace.TracerProvider // stays a nil interface when off: no span anywhere
	if a.tracing.on {
		sdk, err := newTracerProvider(context.Background(), a.tracing, log)
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, shutdownTracing(sdk, log))
		tp = sdk
	}

	signers := map[tokens.Flavor]*tokens.Signer{}
	addSigner := func(f tokens.Flavor, flag, value, file string, parse func(string) (tokens.Key, error), ttl time.Duration) *tokens.Signer {
		if value == "" && file == "" {
			return nil
		}
		s, err := newSecret(flag, value, file, parse)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		a.watch(s, file)
		tc := tokens.Config{Flavor: f, Keys: keySource{s}, TTL: ttl}
		if f == tokens.Messaging {
			tc.MessagingEmail = cfg.messagingEmail
		}
		signer, err := tokens.NewSigner(tc)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %v", flag, err))
			return nil
		}
		if flag != "zendesk-sso-staff-secret" {
			signers[f] = signer
		}
		return signer
	}
	// One --zendesk-token-ttl for messaging and chat; the Signer caps chat at tokens.Chat.MaxTTL().
	addSigner(tokens.Messaging, "zendesk-messaging-secret", cfg.ZendeskMessagingSecret, cfg.ZendeskMessagingSecretFile, messagingKey(cfg.ZendeskMessagingKeyID), cfg.ZendeskTokenTTL)
	addSigner(tokens.Chat, "zendesk-chat-secret", cfg.ZendeskChatSecret, cfg.ZendeskChatSecretFile, parseKey, cfg.ZendeskTokenTTL)
	addSigner(tokens.SSO, "zendesk-sso-secret", cfg.ZendeskSSOSecret, cfg.ZendeskSSOSecretFile, parseKey, 0)
	addSigner(tokens.SDK, "zendesk-sdk-secret", cfg.ZendeskSDKSecret, cfg.ZendeskSDKSecretFile, parseKey, 0)
	a.staffSSO = addSigner(tokens.SSO, "zendesk-sso-staff-secret", cfg.ZendeskSSOStaffSecret, cfg.ZendeskSSOStaffSecretFile, parseKey, 0)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	publicURL, upstream := cfg.publicURL, cfg.upstream

	// IdP clients: bounded, instrumented; each has its own fail-fast breaker, so one IdP's outage
	// is only its own users'.
	idpTransport, _, err := proxy.IdPTransport(a.reg, &http.Transport{
		Proxy:                 http.ProxyFromEnvironment, // corporate egress proxies are common for IdP calls
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
	}, oidc.CallKind)
	if err != nil {
		return nil, err
	}
	var upstreamTransport http.RoundTripper // nil: the proxy's own
	if tp != nil {
		idpTransport = tracedTransport(tp, idpTransport, idpSpanName)
		upstreamTransport = tracedTransport(tp, proxy.NewUpstreamTransport(), upstreamSpanName)
	}
	var providers []proxy.Provider
	for i, po := range cfg.providerGroups() {
		idp, err := oidc.New(oidc.Config{
			Issuer: po.OIDCIssuer, ClientID: po.OIDCClientID, ClientSecret: clientSecrets[po].Get,
			RedirectURL: publicURL.String() + "/oauth2/callback", Scopes: po.scopes, Audiences: po.OIDCAudiences,
			HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: idpTransport}, GroupsClaim: po.GroupsClaim,
			EmailVerifiedClaim: po.EmailVerifiedClaim, InsecureBearerUserinfo: po.InsecureBearerUserinfo,
		})
		if err != nil {
			return nil, err
		}
		c := idpClient{client: idp, options: po}
		if cfg.multi() {
			pc := cfg.Providers[i]
			c.id = pc.ID
			pp := pc.proxyProvider()
			pp.OIDC = idp
			providers = append(providers, pp)
		}
		a.idps = append(a.idps, c)
	}
	a.idp = a.idps[0].client
	var single *oidc.Client
	if !cfg.multi() {
		single = a.idp
	}

	store, revocations, err := a.sessionStore(cfg, cookieSecret.Get)
	if err != nil {
		return nil, err
	}
	sealer, err := session.NewSealer(cookieSecret.Get)
	if err != nil {
		return nil, err
	}

	widget := h.widgetScriptURL
	if cfg.ZendeskSnippetKey != "" {
		widget = inject.SnippetURL(cfg.ZendeskSnippetKey)
	}
	var p *proxy.Proxy // set below, before any request can be served
	observe := func(result string) { p.ObserveInjection(result) }
	injector, err := inject.New(inject.Config{
		ScanLimit: cfg.InjectScanLimit, Flavor: cfg.ZendeskFlavor, WidgetScriptURL: widget,
		Observe: observe, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	p, err = proxy.New(proxy.Config{
		Upstream: upstream, PublicURL: publicURL,
		OIDC: single, Providers: providers, Sessions: store, Sealer: sealer, Revocations: revocations, OwnCookie: store.IsOwnCookie,
		CookieName: cfg.CookieName, CookieSecure: cfg.CookieSecure, CookieDomain: cfg.CookieDomain,
		AuthMode: cfg.AuthMode, SkipAuth: cfg.skipAuth, AllowedEmailDomains: cfg.AllowedEmailDomain, AllowedGroups: cfg.AllowedGroup,
		TrustedProxies: cfg.trusted, AllowedRedirectDomains: cfg.AllowedRedirectDomain, PassAccessToken: cfg.PassAccessToken,
		BearerRateLimit: cfg.BearerRateLimit,
		RecheckInterval: cfg.RecheckInterval, RecheckGrace: cfg.RecheckGrace, SessionTTL: cfg.SessionTTL,
		Injector: injector, Inject: cfg.Inject, InjectSkip: cfg.injectSkip,
		Signers: signers, StaffSSO: a.staffSSO, Mapping: cfg.mapping, ZendeskSubdomain: cfg.ZendeskSubdomain, ZendeskHosts: cfg.ZendeskHost, SSOLogoutIdP: cfg.ZendeskSSOLogoutIdP,
		Logger: log, Registerer: a.reg, UpstreamTransport: upstreamTransport, TracerProvider: tp,
	})
	if err != nil {
		return nil, err
	}
	a.proxy = p
	if h.secretPoll == 0 {
		h.secretPoll = 2 * time.Second
	}
	a.pollEvery = h.secretPoll
	return a, nil
}

// idpClient is one identity provider's client, with its id ("" for the single IdP) and options.
type idpClient struct {
	id      string
	client  *oidc.Client
	options *ProviderOptions
}

// providerGroups are the ProviderOptions of every IdP: the single one, or each providers: item's.
func (c *Config) providerGroups() []*ProviderOptions {
	if !c.multi() {
		return []*ProviderOptions{&c.ProviderOptions}
	}
	out := make([]*ProviderOptions, len(c.Providers))
	for i, pc := range c.Providers {
		out[i] = &pc.ProviderOptions
	}
	return out
}

// sessionStore is the cookie store, or the Redis store shared by replicas (with its revocation list,
// so a back-channel logout on one replica ends the session on all).
func (a *app) sessionStore(cfg *Config, secrets session.Secrets) (sessionStore, session.Revocations, error) {
	cookie := session.CookieConfig{Name: cfg.CookieName, Domain: cfg.CookieDomain, Secure: cfg.CookieSecure, TTL: cfg.SessionTTL, Secrets: secrets}
	if cfg.SessionStore != "redis" {
		revs := session.NewMemoryRevocations(cfg.SessionTTL, session.DefaultMaxRevocations, nil)
		cookie.Revoked = revs
		s, err := session.NewCookieStore(cookie)
		return s, revs, err
	}
	// The URL may hold a password: it is a secret, read from --redis-url or --redis-url-file. It is
	// read once; rotate a Redis password with a rolling restart.
	u, err := newSecret("redis-url", cfg.RedisURL, cfg.RedisURLFile, func(v string) (string, error) {
		return v, session.ValidateRedisURL(v)
	})
	if err != nil {
		return nil, nil, err
	}
	redis.SetLogger(redisLogger{a.log})
	s, err := session.NewRedisStore(session.RedisConfig{URL: u.Get(), Cookie: cookie})
	if err != nil {
		return nil, nil, fmt.Errorf("--redis-url: %v", err)
	}
	a.closers = append(a.closers, func() { s.Close() })
	return s, s.Revocations(), nil
}

// sessionStore is what both stores offer the proxy.
type sessionStore interface {
	session.Store
	IsOwnCookie(name string) bool
}

// redisLogger sends go-redis's internal messages (failed dials during an outage) to slog at debug
// level: each refused request is already logged with session_store_unavailable and its cause.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Debug("redis: " + fmt.Sprintf(format, v...))
}

func (a *app) watch(r reloader, file string) {
	if file != "" {
		a.secrets = append(a.secrets, r)
	}
}

// serve runs until ctx ends (SIGTERM), then drains: readiness goes false, the listeners close,
// in-flight requests get --shutdown-timeout to finish.
func (a *app) serve(ctx context.Context) error {
	var err error
	if a.ln == nil {
		if a.ln, err = net.Listen("tcp", a.cfg.Listen); err != nil {
			return fmt.Errorf("--listen: %v", err)
		}
	}
	if a.metricsLn == nil {
		if a.metricsLn, err = net.Listen("tcp", a.cfg.MetricsListen); err != nil {
			a.ln.Close()
			return fmt.Errorf("--metrics-listen: %v", err)
		}
	}
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	var wg sync.WaitGroup
	wg.Add(1 + len(a.idps))
	for _, c := range a.idps {
		go func() {
			defer wg.Done()
			attrs := []any{"issuer", c.options.OIDCIssuer}
			if c.id != "" {
				attrs = append(attrs, "provider", c.id)
			}
			c.client.Run(bg, func(err error) {
				a.log.Warn("identity provider discovery failed; not ready yet", append([]any{"cause", err.Error()}, attrs...)...)
			})
			if c.client.Ready() {
				a.log.Info("identity provider discovered", attrs...)
			}
		}()
	}
	go func() {
		defer wg.Done()
		watchSecrets(bg, a.pollEvery, a.log, a.reloads, a.secrets)
	}()

	srv := &http.Server{
		Handler:           a.proxy,
		ReadHeaderTimeout: 10 * time.Second,
		// No whole-request ReadTimeout/WriteTimeout: they would cut WebSocket and SSE streams.
		// Idle and header waits are bounded; each upstream response waits at most the transport's
		// ResponseHeaderTimeout, and zdgate's own routes write small answers at once.
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	msrv := &http.Server{
		Handler:           promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10,
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(a.ln) }()
	go func() { errc <- msrv.Serve(a.metricsLn) }()
	a.log.Info("zdgate listening", "listen", a.ln.Addr().String(), "metrics", a.metricsLn.Addr().String(),
		"upstream", a.cfg.Upstream, "public_url", a.cfg.PublicURL, "version", version, "tracing", a.tracing.String())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout.String())
	a.proxy.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	msrv.Shutdown(sctx)
	stopBG()
	wg.Wait()
	for _, c := range a.closers {
		c()
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	if shutErr != nil {
		return fmt.Errorf("in-flight requests did not finish within --shutdown-timeout: %w", shutErr)
	}
	a.log.Info("stopped cleanly")
	return nil
}
