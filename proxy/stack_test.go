package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/proxy/inject"
	"github.com/zdgate/zdgate/proxy/session"
	"github.com/zdgate/zdgate/tokens"
)

// clock is a settable time source shared by the proxy and the session store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const (
	testMessagingKey    = "app_test_key"
	testMessagingSecret = "messaging-secret-for-tests"
	testChatSecret      = "chat-secret-for-tests"
	testSSOSecret       = "sso-secret-for-tests"
	testSDKSecret       = "sdk-secret-for-tests"
)

var testCookieSecret = []byte("0123456789abcdef0123456789abcdef")

// stack is an IdP, an upstream and zdgate in front, all over real loopback sockets.
type stack struct {
	t        testing.TB
	idp      *oidctest.Server
	upstream *httptest.Server
	front    *httptest.Server
	proxy    *Proxy
	clock    *clock
	idpClock *clock // the IdP client's own clock (token expiry, fail-fast period), real time unless moved
	store    interface {
		session.Store
		IsOwnCookie(string) bool
	}
	reg     *prometheus.Registry
	client  *http.Client // cookie jar, does not follow redirects
	seen    chan *http.Request
	secrets [][]byte
	secMu   sync.Mutex
}

type stackOpts struct {
	idp         oidctest.Options
	sharedIdP   *oidctest.Server // use this IdP instead of starting one (replica tests)
	clock       *clock           // share a clock between replicas
	redisURL    string           // --session-store=redis
	backchannel bool             // register zdgate's back-channel logout URI at the IdP
	scopes      []string
	upstream    http.Handler
	upstreamURL string // a real app server started by the test (Tomcat, Hypercorn) instead of upstream
	mutate      func(*Config)
	oidc        func(*oidc.Config)              // adjust the IdP client
	wrap        func(http.Handler) http.Handler // middleware in front of zdgate, to watch requests arrive and leave
}

// echo is the default upstream: it reports the request it got as JSON (and HTML for pages).
func echo(seen chan<- *http.Request) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- r.Clone(context.Background()):
		default:
		}
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<!doctype html><html><head><title>app</title></head><body>page "+r.URL.Path+"</body></html>")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "rawpath": r.URL.RawPath, "header": r.Header, "method": r.Method})
	})
}

func newStack(t testing.TB, o stackOpts) *stack {
	t.Helper()
	st := &stack{t: t, clock: o.clock, seen: make(chan *http.Request, 64), reg: prometheus.NewRegistry()}
	if st.clock == nil {
		st.clock = &clock{t: time.Now()}
	}
	st.secrets = [][]byte{testCookieSecret}
	var handler http.Handler
	st.front = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	st.front.Start()
	t.Cleanup(st.front.Close)
	if o.backchannel {
		o.idp.Clients = []oidctest.Client{{ID: "zdgate", Secret: "zdgate-secret", BackchannelLogoutURI: st.front.URL + "/oauth2/backchannel_logout"}}
	}
	if o.sharedIdP != nil {
		st.idp = o.sharedIdP
	} else {
		st.idp = oidctest.NewT(t, o.idp)
	}
	up := o.upstream
	if up == nil {
		up = echo(st.seen)
	}
	st.upstream = httptest.NewServer(up)
	t.Cleanup(st.upstream.Close)
	public, _ := url.Parse(st.front.URL)
	upstreamURL, _ := url.Parse(st.upstream.URL)
	if o.upstreamURL != "" {
		upstreamURL, _ = url.Parse(o.upstreamURL)
	}

	client := st.idp.Client()
	st.idpClock = &clock{t: time.Now()}
	oc := oidc.Config{
		Now:    st.idpClock.Now,
		Issuer: st.idp.URL(), ClientID: client.ID, ClientSecret: func() string { return client.Secret },
		RedirectURL: st.front.URL + "/oauth2/callback", HTTPClient: &http.Client{Timeout: 2 * time.Second},
		Scopes: o.scopes,
	}
	if o.oidc != nil {
		o.oidc(&oc)
	}
	idp, err := oidc.New(oc)
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.Discover(context.Background()); err != nil {
		t.Fatalf("Discover() = %v", err)
	}
	secrets := func() [][]byte { st.secMu.Lock(); defer st.secMu.Unlock(); return st.secrets }
	var revs session.Revocations
	if o.redisURL != "" {
		rs, err := session.NewRedisStore(session.RedisConfig{URL: o.redisURL, Cookie: session.CookieConfig{Name: "_zdgate", TTL: 12 * time.Hour, Secrets: secrets, Now: st.clock.Now}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		st.store, revs = rs, rs.Revocations()
	} else {
		mr := session.NewMemoryRevocations(12*time.Hour, 1000, st.clock.Now)
		cs, err := session.NewCookieStore(session.CookieConfig{Name: "_zdgate", Secure: false, TTL: 12 * time.Hour, Secrets: secrets, Now: st.clock.Now, Revoked: mr})
		if err != nil {
			t.Fatal(err)
		}
		st.store, revs = cs, mr
	}
	cfg := st.baseConfig(t, upstreamURL, public, secrets, revs)
	cfg.OIDC = idp
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	st.proxy, err = New(cfg)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	handler = st.proxy
	if o.wrap != nil {
		handler = o.wrap(st.proxy)
	}
	st.client = newClient()
	return st
}

// baseConfig is the part of a test stack's Config that does not depend on its providers: the
// session store st.store, a sealer over secrets, the injector, one signer per flavor with the
// test keys, and st's clock and registry.
func (st *stack) baseConfig(t testing.TB, upstream, public *url.URL, secrets func() [][]byte, revs session.Revocations) Config {
	t.Helper()
	sealer, err := session.NewSealer(secrets)
	if err != nil {
		t.Fatal(err)
	}
	inj, err := inject.New(inject.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Upstream: upstream, PublicURL: public,
		Sessions: st.store, Sealer: sealer, Revocations: revs, OwnCookie: st.store.IsOwnCookie,
		CookieName: "_zdgate", RecheckInterval: time.Minute, SessionTTL: 12 * time.Hour,
		Injector: inj, Inject: true,
		Signers: map[tokens.Flavor]*tokens.Signer{
			tokens.Messaging: st.signer(t, tokens.Messaging, tokens.Key{ID: testMessagingKey, Secret: []byte(testMessagingSecret)}, 10*time.Minute),
			tokens.Chat:      st.signer(t, tokens.Chat, tokens.Key{Secret: []byte(testChatSecret)}, 5*time.Minute),
			tokens.SSO:       st.signer(t, tokens.SSO, tokens.Key{Secret: []byte(testSSOSecret)}, 0),
			tokens.SDK:       st.signer(t, tokens.SDK, tokens.Key{Secret: []byte(testSDKSecret)}, 0),
		},
		ZendeskSubdomain: "acme",
		Registerer:       st.reg, Now: st.clock.Now,
	}
}

// signer is a token signer of flavor f with the one key k, on st's clock.
func (st *stack) signer(t testing.TB, f tokens.Flavor, k tokens.Key, ttl time.Duration) *tokens.Signer {
	t.Helper()
	s, err := tokens.NewSigner(tokens.Config{Flavor: f, Keys: tokens.StaticKey(k), TTL: ttl, Now: st.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// do sends a request with optional headers and returns the response with its body read.
func (st *stack) do(c *http.Client, method, path string, hdr map[string]string) (*http.Response, string) {
	st.t.Helper()
	target := path
	if strings.HasPrefix(path, "/") {
		target = st.front.URL + path
	}
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		st.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		st.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// login runs the whole code flow with the auto-login IdP and returns the final redirect target.
func (st *stack) login(c *http.Client, rd string) string {
	st.t.Helper()
	res, _ := st.do(c, "GET", "/oauth2/start?rd="+url.QueryEscape(rd), nil)
	if res.StatusCode != http.StatusFound {
		st.t.Fatalf("start: status %d", res.StatusCode)
	}
	return st.finishLogin(c, res.Header.Get("Location"))
}

// finishLogin follows an IdP authorize URL to the callback and returns where the callback sends us.
func (st *stack) finishLogin(c *http.Client, authURL string) string {
	st.t.Helper()
	res, body := st.do(c, "GET", authURL, nil)
	if res.StatusCode != http.StatusFound {
		st.t.Fatalf("authorize: status %d: %s", res.StatusCode, body)
	}
	cb := res.Header.Get("Location")
	res, body = st.do(c, "GET", cb, nil)
	if res.StatusCode != http.StatusFound {
		st.t.Fatalf("callback: status %d: %s", res.StatusCode, body)
	}
	return res.Header.Get("Location")
}

// sessionOf opens the session cookie the client holds, as the store would.
func (st *stack) sessionOf(c *http.Client) (*session.Session, error) {
	u, _ := url.Parse(st.front.URL)
	req := httptest.NewRequest("GET", "/", nil)
	for _, ck := range c.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	return st.store.Load(context.Background(), req)
}

func jsonBody(t testing.TB, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %q", body)
	}
	return m
}

// nextSeen returns the next request the upstream saw.
func (st *stack) nextSeen() *http.Request {
	st.t.Helper()
	select {
	case r := <-st.seen:
		return r
	case <-time.After(5 * time.Second):
		st.t.Fatal("upstream saw no request")
		return nil
	}
}

// noUpstream asserts the upstream saw nothing.
func (st *stack) noUpstream() {
	st.t.Helper()
	select {
	case r := <-st.seen:
		st.t.Fatalf("upstream saw %s %s; want nothing proxied", r.Method, r.URL.Path)
	default:
	}
}

func mustPrefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

// counterValue reads one labelled counter from the registry (0 when absent).
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
