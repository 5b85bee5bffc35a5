package proxy

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the series of docs/reference.md §6. Labels are route templates and small enums, never paths or users.
type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	minted        *prometheus.CounterVec
	idpChecks     *prometheus.CounterVec
	injections    *prometheus.CounterVec
	sessionsEnded *prometheus.CounterVec
	errors        *prometheus.CounterVec
	widgetEvents  *prometheus.CounterVec
	// With several providers, minted, idpChecks and sessionsEnded have a provider label; the
	// fields above are then these curried with provider="" (events of no known provider, such as
	// an expired cookie), and forProvider curries them with each provider's id.
	byProvider providerMetrics

	routesMu sync.Mutex
	routes   map[string]*routeMetrics
}

// providerLabel is the label zdgate_idp_checks_total, zdgate_sessions_ended_total,
// zdgate_tokens_minted_total and zdgate_idp_up gain when several providers are configured.
const providerLabel = "provider"

func newMetrics(reg prometheus.Registerer, multi bool) (*metrics, error) {
	perProvider := func(labels ...string) []string {
		if multi {
			return append(labels, providerLabel)
		}
		return labels
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zdgate_http_requests_total", Help: "HTTP requests answered, by route template and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zdgate_http_request_duration_seconds", Help: "Time to answer a request (until the handler returns), by route template.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		minted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zdgate_tokens_minted_total", Help: "Zendesk JWTs minted, by flavor.",
		}, perProvider("flavor")),
		idpChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zdgate_idp_checks_total", Help: "Confirmations of a user at the IdP (and token revocations at sign-out), by kind (login, refresh, userinfo, introspect, none, bearer, revoke) and result (ok, revoked, unavailable, invalid).",
		}, perProvider("kind", "result")),
		injections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zdgate_injections_total", Help: "HTML pages considered for loader injection, by result.",
		}, []string{"result"}),
		sessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zdgate_sessions_ended_total", Help: "Sessions ended, by reason (sign_out, revoked, backchannel, expired).",
		}, perProvider("reason")),
		routes: map[string]*routeMetrics{},
		widgetEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zdgate_widget_events_total", Help: "Failures the loader reported to /zendesk/events, by flavor, event (login_failed, token_failed, widget_missing) and reason (a fixed list; everything else is other).",
		}, []string{"flavor", "event", "reason"}),
	}
	// The public error codes (docs/reference.md §2) say why requests fail, so alerts can tell an IdP outage
	// (idp_unavailable) from a Redis one (session_store_unavailable) or refused mints (claim_*).
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zdgate_http_errors_total", Help: "Requests answered with an error, by route template and public error code (idp_unavailable, session_store_unavailable, ...).",
	}, []string{"route", "code"})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.minted, m.idpChecks, m.injections, m.sessionsEnded, m.errors, m.widgetEvents} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.byProvider = providerMetrics{idpChecks: m.idpChecks, sessionsEnded: m.sessionsEnded, minted: m.minted}
	if multi {
		none := m.forProvider("", true)
		m.idpChecks, m.sessionsEnded, m.minted = none.idpChecks, none.sessionsEnded, none.minted
	}
	return m, nil
}

// forProvider are the series of provider id: the metrics themselves in a single-IdP
// configuration, else curried with provider=id.
func (m *metrics) forProvider(id string, multi bool) providerMetrics {
	if !multi {
		return m.byProvider
	}
	l := prometheus.Labels{providerLabel: id}
	return providerMetrics{
		idpChecks:     m.byProvider.idpChecks.MustCurryWith(l),
		sessionsEnded: m.byProvider.sessionsEnded.MustCurryWith(l),
		minted:        m.byProvider.minted.MustCurryWith(l),
	}
}

// registerUp registers zdgate_idp_up: 1 while a provider's IdP looks healthy (oidc.Client.Up),
// one series per provider (with the provider label when there are several).
func registerUp(reg prometheus.Registerer, ps *providerSet) error {
	for _, pv := range ps.list {
		opts := prometheus.GaugeOpts{
			Name: "zdgate_idp_up",
			Help: "1 while the identity provider is discovered, its latest call did not fail as unavailable and it accepts zdgate's client; else 0. Per provider when several are configured.",
		}
		if ps.multi {
			opts.ConstLabels = prometheus.Labels{providerLabel: pv.ID}
		}
		c := pv.OIDC
		if err := reg.Register(prometheus.NewGaugeFunc(opts, func() float64 {
			if c.Up() {
				return 1
			}
			return 0
		})); err != nil {
			return err
		}
	}
	return nil
}

// statusText are the status codes as label values, made once.
var statusText = func() (t [600]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

// routeMetrics are one route's request series, bound once: WithLabelValues hashes the label values
// and takes a lock on every call, which the hot path should not pay. A status code's counter is
// bound the first time that code is answered, so no series appears before it counts something.
type routeMetrics struct {
	route    string
	requests *prometheus.CounterVec
	duration prometheus.Observer
	codes    [len(statusText)]atomic.Pointer[prometheus.Counter]
}

// route returns the bound series of route, made on first use (handlers are built once, in New).
func (m *metrics) route(route string) *routeMetrics {
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	rm := m.routes[route]
	if rm == nil {
		rm = &routeMetrics{route: route, requests: m.requests, duration: m.duration.WithLabelValues(route)}
		m.routes[route] = rm
	}
	return rm
}

func (rm *routeMetrics) observe(code int, d time.Duration) {
	rm.duration.Observe(d.Seconds())
	if code < 0 || code >= len(rm.codes) {
		rm.requests.WithLabelValues(rm.route, "other").Inc()
		return
	}
	c := rm.codes[code].Load()
	if c == nil {
		v := rm.requests.WithLabelValues(rm.route, statusText[code])
		c = &v
		rm.codes[code].Store(c) // a race stores the same child twice: harmless
	}
	(*c).Inc()
}

// IdPTransport (registered by the caller that builds the IdP HTTP client, before the proxy) wraps the IdP HTTP client's transport to time every call, labelled with the kind of
// call the oidc package put in the request context.
func IdPTransport(reg prometheus.Registerer, next http.RoundTripper, kindOf func(*http.Request) string) (http.RoundTripper, *prometheus.HistogramVec, error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "zdgate_idp_check_duration_seconds", Help: "Latency of HTTP calls to the IdP, by kind of call, measured in the HTTP client transport.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"kind"})
	if err := reg.Register(h); err != nil {
		return nil, nil, err
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		start := time.Now()
		res, err := next.RoundTrip(r)
		h.WithLabelValues(kindOf(r)).Observe(time.Since(start).Seconds())
		return res, err
	}), h, nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// ObserveInjection counts one injector decision (the injector's Observe callback).
func (p *Proxy) ObserveInjection(result string) { p.m.injections.WithLabelValues(result).Inc() }
