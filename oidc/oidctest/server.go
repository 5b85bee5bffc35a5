// Package oidctest is a small OpenID Provider for zdgate's tests and for `zdgate demo`. It speaks real
// OpenID Connect over real HTTP with real RSA keys, so go-oidc and x/oauth2 run against it unmodified,
// and it has knobs (delete a user, change claims, rotate keys, go slow or down, forge tokens) for the
// situations that a real IdP produces rarely and at the worst moment.
//
// It is a normal package, not a _test one, because `zdgate demo` serves it to a real browser.
// It listens on loopback only and keeps everything in memory.
package oidctest

import (
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Endpoint paths, relative to URL(). They are also advertised in the discovery document, which is
// what go-oidc and zdgate read; the constants exist for tests that call an endpoint by hand.
const (
	PathDiscovery     = "/.well-known/openid-configuration"
	PathJWKS          = "/jwks"
	PathAuthorize     = "/authorize"
	PathToken         = "/token"
	PathUserinfo      = "/userinfo"
	PathIntrospection = "/introspect"
	PathRevocation    = "/revoke"
	PathEndSession    = "/end_session"
)

// User is an account at the test IdP; its claims go into ID tokens, userinfo and introspection
// answers, so a test states who logs in and what the IdP says about them in one literal.
type User struct {
	Subject, Email, Name, PreferredUsername, Password string
	EmailVerified                                     bool
	Groups                                            []string
	// Extra claims are put in the ID token, userinfo and introspection (e.g. "employee_id", "role",
	// "org"); they cannot override the registered claims (iss, sub, aud, exp, …).
	Extra map[string]any
}

// Client is a relying party registered at the test IdP, so that client authentication, redirect URI
// checks and back-channel logout are exercised as against a real provider.
type Client struct {
	// ID and Secret authenticate the client at the token, introspection and revocation endpoints
	// (client_secret_basic or client_secret_post). An empty Secret makes a public client that
	// authenticates with its client_id alone (PKCE is still required).
	ID, Secret string
	// RedirectURIs must match redirect_uri exactly; empty allows any http://127.0.0.1:PORT/… or
	// http://[::1]:PORT/… URL, so tests on random ports need no registration.
	RedirectURIs []string
	// PostLogoutRedirectURIs must match post_logout_redirect_uri exactly; empty allows any http or
	// https URL on 127.0.0.1 or [::1].
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI, if set, receives a logout_token POST when a session of the IdP ends.
	BackchannelLogoutURI string
}

// Options configure a Server; the zero value gives a working IdP with one client and one user.
type Options struct {
	// Addr is where to listen; default "127.0.0.1:0". Only loopback addresses are accepted.
	Addr string
	// Clients default to one client: ID "zdgate", Secret "zdgate-secret".
	Clients []Client
	// Users default (when empty) to one user: sub "user-1", alice@example.com (verified), name
	// "Alice Example", preferred_username "alice", groups ["staff"], password "password".
	Users []User
	// LoginForm makes /authorize show an HTML login form (username or email, and password), as a
	// browser-driven test or the demo needs. When false, /authorize logs in at once: login_hint
	// (a subject, username or email) selects the user, else the first user.
	LoginForm bool
	// OpaqueAccessTokens issues random strings instead of RS256 JWT access tokens, so that only
	// userinfo or introspection can check them.
	OpaqueAccessTokens bool
	// AccessTokenAudiences are added to the client ID in the aud claim of JWT access tokens.
	AccessTokenAudiences []string
	// AccessTokenTTL and IDTokenTTL default to 5 minutes each.
	AccessTokenTTL, IDTokenTTL time.Duration
	// DisableRefreshRotation keeps a refresh token valid after use. By default every refresh returns
	// a new refresh token and the used one answers invalid_grant. Refresh tokens are issued whenever
	// the scope has offline_access.
	DisableRefreshRotation bool
	// RefreshReuseRevokesGrant adds reuse detection to rotation, as Ory Hydra and oidc-provider
	// have it by default: a used refresh token presented again answers invalid_grant AND revokes
	// its whole grant, so the rotated successor dies too.
	RefreshReuseRevokesGrant bool
	// Disable leaves endpoints out of discovery so they answer 404: any of "userinfo",
	// "introspection", "end_session", "revocation".
	Disable []string
	// Now is the clock for iat, exp and every expiry check; default time.Now. Tests move it instead
	// of sleeping.
	Now func() time.Time
	// OnRequest, if set, sees every request once its form is parsed and before it is answered,
	// with the name Count counts it under, so a test can check what a client sent (a W3C
	// traceparent, say). It must not keep r or read its body.
	OnRequest func(what string, r *http.Request)
}

// Server is a running test IdP. Its methods are safe for concurrent use.
type Server struct {
	opts     Options
	now      func() time.Time
	disabled map[string]bool
	counts   map[string]*atomic.Int64 // fixed set of names, built in Start
	delay    atomic.Int64             // time.Duration
	down     atomic.Bool
	hold     atomic.Pointer[refreshHold] // HoldRefreshes, nil when off

	ln        net.Listener
	srv       *http.Server
	url       string
	done      chan struct{} // closed when Serve has returned
	closing   chan struct{} // closed by Close, ends delays
	closeOnce sync.Once
	bc        *http.Client // back-channel logout sender

	mu         sync.Mutex
	users      []User
	keys       []*signingKey // every key ever made, newest last (kept to check id_token_hint)
	published  int           // how many of the newest keys the JWKS serves
	stranger   *signingKey   // a key never published, made on first use by Forge
	codes      map[string]*authCode
	access     map[string]*accessToken
	refresh    map[string]*refreshToken
	usedRT     map[string]*grant // rotated-away refresh tokens, for reuse detection
	sessions   map[string]*idpSession
	uiSubject  map[string]string
	uiMutate   map[string]func(map[string]any)
	nextMutate func(map[string]any)
	nextRaw    func(map[string]any) string
	refreshLog []Refresh // successful refresh grants, oldest first
}

// countNames are the names Count knows; "token" counts token requests of other grant types.
var countNames = []string{
	"authorize", "token.code", "token.refresh", "token", "userinfo", "introspect", "revoke",
	"end_session", "jwks", "discovery", "backchannel",
}

var disableNames = []string{"userinfo", "introspection", "end_session", "revocation"}

// Start listens on opts.Addr and serves the IdP in a goroutine until Close, so the demo and tests
// share one way to run it.
func Start(opts Options) (*Server, error) {
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("oidctest: listen: %w", err)
	}
	s.ln = ln
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	return s, nil
}

// NewT starts a Server for the test t and closes it when t ends, so a test needs one line.
func NewT(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("oidctest.Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server at once, ending open connections and waiting delays, so tests leave no
// goroutines behind. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		_ = s.srv.Close()
		<-s.done
		s.bc.CloseIdleConnections()
	})
}

// URL is the issuer, e.g. http://127.0.0.1:PORT (no trailing slash); go-oidc's NewProvider takes it.
func (s *Server) URL() string { return s.url }

// Client returns the first registered client, the one most tests configure zdgate with.
func (s *Server) Client() Client { return cloneClient(s.opts.Clients[0]) }

func newServer(opts Options) (*Server, error) {
	var errs []error
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if err := checkLoopbackAddr(opts.Addr); err != nil {
		errs = append(errs, err)
	}
	if len(opts.Clients) == 0 {
		opts.Clients = []Client{{ID: "zdgate", Secret: "zdgate-secret"}}
	}
	clients := make([]Client, 0, len(opts.Clients))
	seen := map[string]bool{}
	for _, c := range opts.Clients {
		switch {
		case c.ID == "":
			errs = append(errs, errors.New("oidctest: client with empty ID"))
		case seen[c.ID]:
			errs = append(errs, fmt.Errorf("oidctest: client %q registered twice", c.ID))
		}
		seen[c.ID] = true
		for _, u := range slices.Concat(c.RedirectURIs, c.PostLogoutRedirectURIs, []string{c.BackchannelLogoutURI}) {
			if u == "" {
				continue
			}
			if p, err := url.Parse(u); err != nil || !p.IsAbs() {
				errs = append(errs, fmt.Errorf("oidctest: client %q: %q is not an absolute URL", c.ID, u))
			}
		}
		clients = append(clients, cloneClient(c))
	}
	opts.Clients = clients
	if len(opts.Users) == 0 {
		opts.Users = []User{{
			Subject: "user-1", Email: "alice@example.com", EmailVerified: true, Name: "Alice Example",
			PreferredUsername: "alice", Groups: []string{"staff"}, Password: "password",
		}}
	}
	users := make([]User, 0, len(opts.Users))
	seen = map[string]bool{}
	for _, u := range opts.Users {
		switch {
		case u.Subject == "":
			errs = append(errs, errors.New("oidctest: user with empty Subject"))
		case seen[u.Subject]:
			errs = append(errs, fmt.Errorf("oidctest: user %q listed twice", u.Subject))
		}
		seen[u.Subject] = true
		users = append(users, cloneUser(u))
	}
	if opts.AccessTokenTTL == 0 {
		opts.AccessTokenTTL = 5 * time.Minute
	}
	if opts.IDTokenTTL == 0 {
		opts.IDTokenTTL = 5 * time.Minute
	}
	if opts.AccessTokenTTL < 0 || opts.IDTokenTTL < 0 {
		errs = append(errs, errors.New("oidctest: negative token TTL"))
	}
	disabled := map[string]bool{}
	for _, d := range opts.Disable {
		if !slices.Contains(disableNames, d) {
			errs = append(errs, fmt.Errorf("oidctest: Disable: unknown endpoint %q (want one of %q)", d, disableNames))
		}
		disabled[d] = true
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:      opts,
		now:       opts.Now,
		disabled:  disabled,
		counts:    map[string]*atomic.Int64{},
		done:      make(chan struct{}),
		closing:   make(chan struct{}),
		users:     users,
		keys:      []*signingKey{key},
		published: 1,
		codes:     map[string]*authCode{},
		access:    map[string]*accessToken{},
		refresh:   map[string]*refreshToken{},
		usedRT:    map[string]*grant{},
		sessions:  map[string]*idpSession{},
		uiSubject: map[string]string{},
		uiMutate:  map[string]func(map[string]any){},
	}
	for _, n := range countNames {
		s.counts[n] = new(atomic.Int64)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	s.bc = &http.Client{
		Transport: tr,
		Timeout:   5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a receiver that redirects has not processed the token
		},
	}
	return s, nil
}

func checkLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("oidctest: Addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("oidctest: Addr %q: only loopback addresses are served", addr)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static := func(name string) func(*http.Request) string {
		return func(*http.Request) string { return name }
	}
	handle := func(pattern, endpoint string, count func(*http.Request) string, h http.HandlerFunc) {
		if s.disabled[endpoint] {
			return
		}
		mux.Handle(pattern, s.endpoint(count, h))
	}
	handle("GET "+PathDiscovery, "", static("discovery"), s.handleDiscovery)
	handle("GET "+PathJWKS, "", static("jwks"), s.handleJWKS)
	handle("GET "+PathAuthorize, "", static("authorize"), s.handleAuthorize)
	handle("POST "+PathAuthorize, "", static("authorize"), s.handleLogin)
	handle("POST "+PathToken, "", tokenCountName, s.handleToken)
	handle(PathUserinfo, "userinfo", static("userinfo"), s.handleUserinfo)
	handle("POST "+PathIntrospection, "introspection", static("introspect"), s.handleIntrospect)
	handle("POST "+PathRevocation, "revocation", static("revoke"), s.handleRevoke)
	handle(PathEndSession, "end_session", static("end_session"), s.handleEndSession)
	return mux
}

// endpoint wraps every handler: it counts the call, limits the body, then honours SetDelay and
// SetDown before the handler runs.
func (s *Server) endpoint(count func(*http.Request) string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		// Reading the whole body now lets net/http notice a client that gives up during the delay.
		formErr := r.ParseForm()
		what := count(r)
		if c := s.counts[what]; c != nil {
			c.Add(1)
		}
		if s.opts.OnRequest != nil {
			s.opts.OnRequest(what, r)
		}
		if formErr != nil {
			http.Error(w, "oidctest: cannot parse form", http.StatusBadRequest)
			return
		}
		if d := time.Duration(s.delay.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-s.closing:
				t.Stop()
				return
			case <-t.C:
			}
		}
		if s.down.Load() {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{
				"error": "temporarily_unavailable", "error_description": "oidctest: SetDown(true)",
			})
			return
		}
		h(w, r)
	})
}

func tokenCountName(r *http.Request) string {
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		return "token.code"
	case "refresh_token":
		return "token.refresh"
	}
	return "token"
}

func (s *Server) handleDiscovery(w http.ResponseWriter, _ *http.Request) {
	claims := []string{
		"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "azp", "at_hash",
		"email", "email_verified", "name", "preferred_username", "groups",
	}
	s.mu.Lock()
	for _, u := range s.users {
		for k := range u.Extra {
			if !slices.Contains(claims, k) {
				claims = append(claims, k)
			}
		}
	}
	s.mu.Unlock()
	doc := map[string]any{
		"issuer":                                s.url,
		"authorization_endpoint":                s.url + PathAuthorize,
		"token_endpoint":                        s.url + PathToken,
		"jwks_uri":                              s.url + PathJWKS,
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported": clientAuthMethods,
		"scopes_supported":                      []string{"openid", "email", "profile", "groups", "offline_access"},
		"claims_supported":                      claims,
		"backchannel_logout_supported":          true,
		"backchannel_logout_session_supported":  true,
	}
	if !s.disabled["userinfo"] {
		doc["userinfo_endpoint"] = s.url + PathUserinfo
	}
	if !s.disabled["introspection"] {
		doc["introspection_endpoint"] = s.url + PathIntrospection
		doc["introspection_endpoint_auth_methods_supported"] = clientAuthMethods
	}
	if !s.disabled["revocation"] {
		doc["revocation_endpoint"] = s.url + PathRevocation
		doc["revocation_endpoint_auth_methods_supported"] = clientAuthMethods
	}
	if !s.disabled["end_session"] {
		doc["end_session_endpoint"] = s.url + PathEndSession
	}
	writeJSON(w, http.StatusOK, doc)
}

var clientAuthMethods = []string{"client_secret_basic", "client_secret_post"}

func cloneClient(c Client) Client {
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	return c
}

func cloneUser(u User) User {
	u.Groups = slices.Clone(u.Groups)
	u.Extra = maps.Clone(u.Extra)
	return u
}

func (s *Server) client(id string) (Client, bool) {
	for _, c := range s.opts.Clients {
		if c.ID == id {
			return c, true
		}
	}
	return Client{}, false
}
