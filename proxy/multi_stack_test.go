package proxy

import (
	"context"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/proxy/session"
	"github.com/zdgate/zdgate/tokens"
)

const testStaffSSOSecret = "staff-sso-secret-for-tests"

// staffHost is the host the staff provider is bound to in multiStack; the test clients dial the
// front server for every host, as DNS would.
const staffHost = "staff.test"

// The two people of multiStack. Both IdPs have a user "u-1": they must never become one Zendesk
// user, nor may a logout at one end the other's session.
var (
	staffUser = oidctest.User{Subject: "u-1", Email: "alice@acme.example", EmailVerified: true, Name: "Alice Staff",
		PreferredUsername: "alice", Groups: []string{"support"}, Extra: map[string]any{"zendesk_role": "agent"}}
	customerUser = oidctest.User{Subject: "u-1", Email: "bob@customer.example", EmailVerified: true, Name: "Bob Customer",
		PreferredUsername: "bob", Groups: []string{"customers"}, Extra: map[string]any{"zendesk_role": "admin"}}
)

// multiStack is zdgate with two identity providers over real loopback sockets: "staff" (IdP A,
// bound to staffHost, Zendesk staff SSO with a role mapping, external ids "emp-") and "customers"
// (IdP B, end-user SSO, external ids "cust-", no Chat, the one that takes opaque bearer tokens).
type multiStack struct {
	*stack
	a, b       *oidctest.Server
	staffURL   string // the front server under staffHost
	clientA    *oidc.Client
	clientB    *oidc.Client
	revs       *session.MemoryRevocations
	front      string
	frontAddr  string
	byHostDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

type multiOpts struct {
	a, b   oidctest.Options
	mutate func(*Config)
}

func newMultiStack(t *testing.T, o multiOpts) *multiStack {
	t.Helper()
	ms := &multiStack{stack: &stack{t: t, clock: &clock{t: time.Now()}, idpClock: &clock{t: time.Now()}, seen: make(chan *http.Request, 64), reg: prometheus.NewRegistry()}}
	st := ms.stack
	st.secrets = [][]byte{testCookieSecret}
	var handler http.Handler
	st.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(st.front.Close)
	ms.front = st.front.URL
	ms.frontAddr = st.front.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(ms.frontAddr)
	ms.staffURL = "http://" + staffHost + ":" + port
	ms.byHostDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); host == staffHost {
			addr = ms.frontAddr // what DNS would say
		}
		return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
	}

	o.a.Users = append(o.a.Users, staffUser)
	o.a.Clients = []oidctest.Client{{ID: "zdgate-staff", Secret: "staff-client-secret",
		RedirectURIs:         []string{ms.front + "/oauth2/callback", ms.staffURL + "/oauth2/callback"},
		BackchannelLogoutURI: ms.front + "/oauth2/backchannel_logout"}}
	o.b.Users = append(o.b.Users, customerUser)
	o.b.Clients = []oidctest.Client{{ID: "zdgate-customers", Secret: "customers-client-secret",
		BackchannelLogoutURI: ms.front + "/oauth2/backchannel_logout"}}
	ms.a, ms.b = oidctest.NewT(t, o.a), oidctest.NewT(t, o.b)
	st.idp = ms.a
	st.upstream = httptest.NewServer(echo(st.seen))
	t.Cleanup(st.upstream.Close)
	public, _ := url.Parse(ms.front)
	upstreamURL, _ := url.Parse(st.upstream.URL)

	client := func(idp *oidctest.Server) *oidc.Client {
		cl := idp.Client()
		c, err := oidc.New(oidc.Config{
			Issuer: idp.URL(), ClientID: cl.ID, ClientSecret: func() string { return cl.Secret },
			RedirectURL: ms.front + "/oauth2/callback", HTTPClient: &http.Client{Timeout: 2 * time.Second},
			Now: st.idpClock.Now, // token expiry and the fail-fast period
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Discover(context.Background()); err != nil {
			t.Fatalf("Discover(%s) = %v", idp.URL(), err)
		}
		return c
	}
	ms.clientA, ms.clientB = client(ms.a), client(ms.b)
	secrets := func() [][]byte { st.secMu.Lock(); defer st.secMu.Unlock(); return st.secrets }
	ms.revs = session.NewMemoryRevocations(12*time.Hour, 1000, st.clock.Now)
	cs, err := session.NewCookieStore(session.CookieConfig{Name: "_zdgate", TTL: 12 * time.Hour, Secrets: secrets, Now: st.clock.Now, Revoked: ms.revs})
	if err != nil {
		t.Fatal(err)
	}
	st.store = cs
	cfg := st.baseConfig(t, upstreamURL, public, secrets, ms.revs)
	cfg.Providers = []Provider{
		{ID: "staff", DisplayName: "Acme employees", Hosts: []string{staffHost}, OIDC: ms.clientA,
			Mapping: tokens.Mapping{ExternalIDPrefix: "emp-", RoleClaim: "zendesk_role", AllowedRoles: []string{"agent", "admin"}},
			SSO:     tokens.Staff, BearerJWT: true},
		{ID: "customers", DisplayName: "Acme customers", OIDC: ms.clientB,
			Mapping: tokens.Mapping{ExternalIDPrefix: "cust-"},
			Flavors: []tokens.Flavor{tokens.Messaging, tokens.SSO, tokens.SDK}, BearerJWT: true, BearerOpaque: true},
	}
	cfg.StaffSSO = st.signer(t, tokens.SSO, tokens.Key{Secret: []byte(testStaffSSOSecret)}, 0)
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	st.proxy, err = New(cfg)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	handler = st.proxy
	st.client = ms.newClient()
	return ms
}

// newClient is a browser: a cookie jar, no redirects followed, and staffHost resolved to the
// front server.
func (ms *multiStack) newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		Transport:     &http.Transport{DialContext: ms.byHostDial},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// loginVia logs c in at /oauth2/start?provider=id (through the auto-login IdP) and returns where
// the callback sent it.
func (ms *multiStack) loginVia(c *http.Client, id, rd string) string {
	ms.t.Helper()
	res, body := ms.do(c, "GET", "/oauth2/start?provider="+id+"&rd="+url.QueryEscape(rd), nil)
	if res.StatusCode != http.StatusFound {
		ms.t.Fatalf("start at %s: %d %s", id, res.StatusCode, body)
	}
	return ms.finishLogin(c, res.Header.Get("Location"))
}

// token asks /zendesk/token for flavor and returns the status and the verified claims.
func (ms *multiStack) token(c *http.Client, base, flavor string) (int, map[string]any) {
	ms.t.Helper()
	res, body := ms.do(c, "GET", base+"/zendesk/token?flavor="+flavor, nil)
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, jsonBody(ms.t, body)
	}
	secret, kid := testMessagingSecret, testMessagingKey
	if flavor == "chat" {
		secret, kid = testChatSecret, ""
	}
	f, _ := tokens.ParseFlavor(flavor)
	r := tokens.Verify(jsonBody(ms.t, body)["jwt"].(string), tokens.VerifyOptions{Flavor: f, Secret: []byte(secret), KeyID: kid})
	if len(r.Problems) > 0 {
		ms.t.Fatalf("%s token does not verify: %v", flavor, r.Problems)
	}
	return res.StatusCode, r.Claims
}

// sessionAt opens the session cookie c holds for base (the front or the staff host).
func (ms *multiStack) sessionAt(c *http.Client, base string) (*session.Session, error) {
	u, _ := url.Parse(base)
	req := httptest.NewRequest("GET", "/", nil)
	for _, ck := range c.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	return ms.store.Load(context.Background(), req)
}

// idpCalls is every call an oidctest IdP counted.
func idpCalls(idp *oidctest.Server) int {
	n := 0
	for _, what := range []string{"authorize", "token.code", "token.refresh", "token", "userinfo", "introspect", "revoke", "end_session", "jwks", "discovery"} {
		n += idp.Count(what)
	}
	return n
}
