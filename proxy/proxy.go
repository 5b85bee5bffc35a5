// Package proxy is zdgate's http.Handler: the /oauth2 routes, the Zendesk token routes, forward-auth,
// and the authenticated reverse proxy that injects the Zendesk loader into HTML pages.
//
// Middleware order, outermost first: request id -> access log + metrics -> route. Every handler
// returns an error; one renderer (render) turns it into a status and a generic message and logs the
// cause, so no internal error text, token or secret reaches a client.
package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/zdgate/zdgate/internal/expiring"
	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/proxy/inject"
	"github.com/zdgate/zdgate/proxy/session"
	"github.com/zdgate/zdgate/tokens"
)

// Auth modes of --auth-mode.
const (
	AuthRequired = "required"
	AuthOptional = "optional"
)

// Config is everything the handler needs, already parsed and validated by cmd/zdgate; New checks it
// again and refuses what it cannot serve safely.
type Config struct {
	Upstream  *url.URL
	PublicURL *url.URL // external origin; the callback is PublicURL + /oauth2/callback

	// OIDC is the identity provider of a single-IdP configuration, with AllowedEmailDomains,
	// AllowedGroups and Mapping its rules. Providers replaces all four when several are configured.
	OIDC         *oidc.Client
	Providers    []Provider
	Sessions     session.Store
	Sealer       *session.Sealer // login-state cookies
	Revocations  session.Revocations
	OwnCookie    func(name string) bool
	CookieName   string
	CookieSecure bool
	CookieDomain string

	AuthMode               string
	SkipAuth               []*regexp.Regexp
	AllowedEmailDomains    []string
	AllowedGroups          []string
	TrustedProxies         []netip.Prefix
	AllowedRedirectDomains []string
	PassAccessToken        bool // forward-auth: also answer X-Auth-Request-Access-Token
	// BearerRateLimit is how many bearer tokens per second one client address may have checked at
	// the IdP (remembered answers do not count); burst twice that; 0 means no limit.
	BearerRateLimit float64

	RecheckInterval time.Duration
	RecheckGrace    time.Duration
	SessionTTL      time.Duration

	Injector   *inject.Injector // serves /zendesk/auth.js; nil: 404
	Inject     bool             // --inject: add the loader to proxied HTML pages
	InjectSkip []*regexp.Regexp

	Signers map[tokens.Flavor]*tokens.Signer // a flavor without a signer answers 404
	// StaffSSO signs Help Center SSO tokens for providers whose SSO is tokens.Staff, with the
	// secret of Zendesk's team-member JWT SSO configuration; Signers[tokens.SSO] is the end users'.
	StaffSSO         *tokens.Signer
	Mapping          tokens.Mapping
	ZendeskSubdomain string
	ZendeskHosts     []string
	SSOLogoutIdP     bool // Zendesk remote logout also ends the IdP session (RP-initiated logout)

	UpstreamTransport http.RoundTripper // default: a tuned http.Transport with timeouts
	Logger            *slog.Logger
	Registerer        prometheus.Registerer
	Now               func() time.Time
	// TracerProvider turns on OpenTelemetry spans for requests and IdP re-checks; nil: no tracing,
	// and nothing on the request path pays for it. The IdP and upstream transports are spanned
	// by whoever builds them (cmd/zdgate).
	TracerProvider trace.TracerProvider
}

// Proxy is the handler. Build it with New.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	trust   trust
	skip    pathRules
	injSkip pathRules
	rp      *httputil.ReverseProxy
	mux     *http.ServeMux
	entry   http.Handler // serve, wrapped in the request span when tracing
	tr      *tracing     // nil: tracing off

	providers *providerSet

	flight       singleflight.Group // one IdP re-check per session at a time
	fresh        freshness          // --recheck-interval
	budget       recheckBudget      // bounds of a re-check
	recent       *recentChecks      // results of re-checks, for requests still carrying the old cookie
	bearers      *bearerCache
	limits       *clientLimits                     // --bearer-rate-limit
	states       *expiring.Cache[string, struct{}] // login states already used: a replay is refused
	invalid      *routeMetrics                     // series of requests refused before routing (bad path)
	eventLimits  *clientLimits                     // widget event reports
	ready        func() bool
	shuttingDown sync.Once
	draining     chan struct{}
}

// New validates cfg and builds the handler.
func New(cfg Config) (*Proxy, error) {
	var errs []error
	if cfg.Upstream == nil || cfg.Upstream.Host == "" {
		errs = append(errs, errors.New("proxy: upstream URL is required"))
	}
	if cfg.PublicURL == nil || cfg.PublicURL.Host == "" {
		errs = append(errs, errors.New("proxy: public URL is required"))
	}
	if (cfg.OIDC == nil && len(cfg.Providers) == 0) || cfg.Sessions == nil || cfg.Sealer == nil {
		errs = append(errs, errors.New("proxy: OIDC client, session store and sealer are required"))
	}
	if cfg.OIDC != nil && len(cfg.Providers) > 0 {
		errs = append(errs, errors.New("proxy: give either OIDC (one identity provider) or Providers, not both"))
	}
	if cfg.AuthMode == "" {
		cfg.AuthMode = AuthRequired
	}
	if cfg.AuthMode != AuthRequired && cfg.AuthMode != AuthOptional {
		errs = append(errs, errors.New("proxy: auth mode must be required or optional"))
	}
	if cfg.RecheckInterval <= 0 {
		errs = append(errs, errors.New("proxy: recheck interval must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "_zdgate"
	}
	if cfg.OwnCookie == nil {
		name := cfg.CookieName
		cfg.OwnCookie = func(n string) bool { return session.OwnCookie(name, n) }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	m, err := newMetrics(cfg.Registerer, len(cfg.Providers) > 0)
	if err != nil {
		return nil, err
	}
	providers, err := newProviders(&cfg, m)
	if err != nil {
		return nil, err
	}
	if err := registerUp(cfg.Registerer, providers); err != nil {
		return nil, err
	}
	p := &Proxy{
		cfg:         cfg,
		log:         cfg.Logger,
		m:           m,
		trust:       trust(cfg.TrustedProxies),
		skip:        pathRules(cfg.SkipAuth),
		injSkip:     pathRules(cfg.InjectSkip),
		fresh:       freshness(cfg.RecheckInterval),
		budget:      newRecheckBudget(providers.idpTimeout(), cfg.Sessions),
		recent:      newRecentChecks(10_000, cfg.SessionTTL),
		bearers:     newBearerCache(10_000),
		limits:      newClientLimits(rate.Limit(cfg.BearerRateLimit), int(2*cfg.BearerRateLimit), 10_000, expiring.Evict),
		states:      expiring.New[string, struct{}](10_000, expiring.Evict),
		eventLimits: newClientLimits(rate.Every(eventEvery), eventBurst, maxLimiters, expiring.Refuse),
		draining:    make(chan struct{}),
		providers:   providers,
	}
	p.invalid = m.route("invalid")
	p.ready = providers.ready
	p.rp = p.newReverseProxy()
	p.mux = p.routes()
	p.entry = http.HandlerFunc(p.serve)
	if p.tr = newTracing(cfg.TracerProvider); p.tr != nil {
		p.entry = p.traceRequests(p.entry)
	}
	return p, nil
}

// routes is the whole URL space of --listen. Method patterns make the mux answer 405 for the rest.
func (p *Proxy) routes() *http.ServeMux {
	mux := http.NewServeMux()
	own := map[string]bool{}
	h := func(pattern, route string, f func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, p.handle(route, f))
		if !own[route] {
			own[route] = true
			// Any other method on zdgate's own paths is 405 here, never proxied to the app.
			mux.Handle(route, p.handle(route, func(w http.ResponseWriter, r *http.Request) error {
				return &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed"}
			}))
		}
	}
	h("GET /oauth2/start", "/oauth2/start", p.start)
	h("GET /oauth2/callback", "/oauth2/callback", p.callback)
	h("GET /oauth2/sign_out", "/oauth2/sign_out", p.signOut)
	h("POST /oauth2/sign_out", "/oauth2/sign_out", p.signOut)
	h("POST /oauth2/backchannel_logout", "/oauth2/backchannel_logout", p.backchannelLogout)
	// Forward-auth takes any method: nginx's auth_request subrequest keeps the original one, and
	// Envoy's HTTP ext_authz appends the original path (/oauth2/auth/<path>).
	mux.Handle("/oauth2/auth", p.handle("/oauth2/auth", p.forwardAuth))
	mux.Handle("/oauth2/auth/", p.handle("/oauth2/auth", p.forwardAuth))
	h("GET /oauth2/userinfo", "/oauth2/userinfo", p.userinfo)
	h("GET /zendesk/token", "/zendesk/token", p.token)
	h("POST /zendesk/token", "/zendesk/token", p.token)
	h("POST /zendesk/sdk", "/zendesk/sdk", p.sdk)
	h("GET /zendesk/sso", "/zendesk/sso", p.sso)
	h("GET /zendesk/sso/logout", "/zendesk/sso/logout", p.ssoLogout)
	h("GET /zendesk/auth.js", "/zendesk/auth.js", p.script)
	h("POST /zendesk/events", "/zendesk/events", p.events)
	h("GET /healthz", "/healthz", p.healthz)
	h("GET /readyz", "/readyz", p.readyz)
	// Everything else, including unknown /oauth2/ and /zendesk/ paths and odd methods, is the app's.
	mux.Handle("/", p.handle("upstream", p.upstream))
	return mux
}

// ServeHTTP starts the request's span (when tracing), then serves it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.entry.ServeHTTP(w, r) }

// serve normalises the path once, then routes. A path that cannot be normalised is refused
// before any rule sees it. Every request gets its access line and metrics, also one that ends in
// a panic (the reverse proxy aborts a response whose copy failed with http.ErrAbortHandler): the
// panic goes on to net/http afterwards, which cuts the connection.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	start := p.cfg.Now()
	id := p.requestID(r)
	w.Header()["X-Request-Id"] = []string{id}
	st := &reqState{rec: recorder{ResponseWriter: w, code: http.StatusOK}, info: reqInfo{id: id, route: "upstream"}}
	rw, info := &st.rec, &st.info
	info.rec = rw
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))

	norm, err := normalizePath(r.URL.EscapedPath())
	var panicked any
	if err != nil {
		info.route, info.metrics = "invalid", p.invalid
		p.render(rw, r, errBadRequest("bad_path", err))
	} else {
		info.path = norm
		info.canonical = norm == r.URL.Path && r.URL.RawPath == ""
		if !info.canonical {
			// Route on the normalised path so "/oauth2/../zendesk/token" cannot dodge a route's checks.
			r2 := *r
			u := *r.URL
			u.Path, u.RawPath = norm, ""
			r2.URL = &u
			r = &r2
		}
		panicked = p.route(rw, r)
	}
	end := p.cfg.Now()
	d := end.Sub(start)
	if info.metrics == nil || info.metrics.route != info.route {
		info.metrics = p.m.route(info.route)
	}
	status := rw.code
	switch {
	case info.gone, panicked != nil && clientGone(r, rw):
		status = statusClientGone
	case panicked == http.ErrAbortHandler:
		p.logRequest(r, slog.LevelWarn, "response cut off: the upstream's answer broke off mid-body", slog.String("route", info.route))
	case panicked != nil:
		status = http.StatusInternalServerError
		p.logRequest(r, slog.LevelError, "panic", slog.String("route", info.route), slog.Any("panic", panicked), slog.String("stack", string(debug.Stack())))
	}
	info.metrics.observe(status, d)
	if p.tr != nil {
		p.tr.routed(r, info, p.trust.clientIP(r))
	}
	p.accessLog(r, info, rw, status, norm, end, d)
	switch {
	case panicked != nil:
		panic(panicked)
	case info.abort:
		panic(http.ErrAbortHandler) // the answer is broken: net/http cuts the connection
	}
}

// route serves r, recovering a panic so that ServeHTTP can log the request before re-raising it.
func (p *Proxy) route(w http.ResponseWriter, r *http.Request) (panicked any) {
	defer func() { panicked = recover() }()
	p.mux.ServeHTTP(w, r)
	return nil
}

// accessLog writes the request's access line. It hands the record straight to the handler: the
// logger's call-site lookup (runtime.Callers) costs more than the line itself and is never shown.
func (p *Proxy) accessLog(r *http.Request, info *reqInfo, rw *recorder, status int, norm string, now time.Time, d time.Duration) {
	h := p.log.Handler()
	if !h.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	rec := slog.NewRecord(now, slog.LevelInfo, "request", 0)
	rec.AddAttrs(
		slog.String("request_id", info.id),
		slog.String("method", sanitizeMethod(r.Method)),
		slog.String("route", info.route),
		slog.String("path", truncate(norm, 256)),
		slog.Int("status", status),
		slog.Int64("bytes", rw.bytes),
		slog.Duration("duration", d),
		slog.String("client", p.trust.clientIP(r)),
		slog.String("sub", info.sub),
	)
	if p.tr != nil {
		if id := traceID(r.Context()); id != "" {
			rec.AddAttrs(slog.String("trace_id", id))
		}
	}
	_ = h.Handle(r.Context(), rec) // a failed log write must not fail the request
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func sanitizeMethod(m string) string {
	if len(m) > 16 {
		return m[:16]
	}
	return m
}

// ownRouteTimeout bounds reading and answering a request on zdgate's own routes (an IdP re-check
// inside is bounded separately, by the IdP client's timeout).
const ownRouteTimeout = 30 * time.Second

// handle sets the route label and renders a returned error.
func (p *Proxy) handle(route string, f func(http.ResponseWriter, *http.Request) error) http.Handler {
	rm := p.m.route(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := infoOf(r); info != nil {
			info.route, info.metrics = route, rm
		}
		if route != "upstream" {
			// zdgate's own answers are small: bound reading the request and writing the answer.
			// Proxied requests have no such deadline, so WebSocket and SSE streams live on.
			rc := http.NewResponseController(w)
			deadline := time.Now().Add(ownRouteTimeout)
			_ = rc.SetReadDeadline(deadline)
			_ = rc.SetWriteDeadline(deadline)
		}
		if err := f(w, r); err != nil {
			p.render(w, r, err)
		}
	})
}

// requestID honours an incoming X-Request-Id only from a trusted proxy.
func (p *Proxy) requestID(r *http.Request) string {
	if p.trust.fromTrusted(r) {
		if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 128 && isToken(id) {
			return id
		}
	}
	return newRequestID()
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:", c) >= 0) {
			return false
		}
	}
	return true
}

// Drain makes /readyz answer 503 (SIGTERM: let the load balancer stop sending before we stop).
func (p *Proxy) Drain() { p.shuttingDown.Do(func() { close(p.draining) }) }

func (p *Proxy) healthz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, err := w.Write([]byte("ok\n"))
	return err
}

func (p *Proxy) readyz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	select {
	case <-p.draining:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, err := w.Write([]byte("shutting down\n"))
		return err
	default:
	}
	if !p.ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, err := w.Write([]byte("identity provider discovery not loaded yet\n"))
		return err
	}
	if msg := p.providers.refusedEverywhere(); msg != "" {
		// Not an outage (those stay ready and fail closed per request): the IdP refuses this
		// replica's client, so it can confirm no one. The cause names no secret.
		w.WriteHeader(http.StatusServiceUnavailable)
		_, err := io.WriteString(w, msg)
		return err
	}
	if rc, ok := p.cfg.Sessions.(interface{ Ready(context.Context) error }); ok {
		if err := rc.Ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, err := w.Write([]byte("session store not reachable\n"))
			return err
		}
	}
	_, err := w.Write([]byte("ok\n"))
	return err
}

func (p *Proxy) script(w http.ResponseWriter, r *http.Request) error {
	if p.cfg.Injector == nil {
		return errNotFound
	}
	p.cfg.Injector.ServeScript(w, r)
	return nil
}
