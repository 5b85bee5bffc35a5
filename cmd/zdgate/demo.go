package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

// demoUser and demoUser2 are the accounts the demo IdP knows: two people, so a sign-out and a
// login as someone else (a shared device) can be tried.
var (
	demoUser = oidctest.User{
		Subject: "demo-user-0001", Email: "alice@example.com", EmailVerified: true, Name: "Alice Example",
		PreferredUsername: "alice", Password: "wonderland", Groups: []string{"staff", "support"},
	}
	demoUser2 = oidctest.User{
		Subject: "demo-user-0002", Email: "bob@example.com", EmailVerified: true, Name: "Bob Example",
		PreferredUsername: "bob", Password: "builder", Groups: []string{"customers"},
	}
)

// The two providers of the default demo: an employees IdP whose user is demoUser and a
// customers IdP whose user is demoUser2, each with its own external_id prefix.
var demoProviders = []struct {
	id, name, prefix string
	user             oidctest.User
}{
	{"employees", "Acme employees", "emp-", demoUser},
	{"customers", "Acme customers", "cust-", demoUser2},
}

// demoStack is everything `zdgate demo` runs, also used by the end-to-end tests.
type demoStack struct {
	idp     *oidctest.Server   // the single IdP, or the employees' one
	idps    []*oidctest.Server // with multi: one per demoProviders entry
	app     *demoApp
	zdgate  *app
	url     string
	secrets map[string]string
	stopLog func() // flushes the batched log
}

// demoOptions are the few knobs of `zdgate demo`.
type demoOptions struct {
	listen, metricsListen string
	snippetKey            string
	flavor                string
	logLevel              string
	inject                bool
	// multi runs two identity providers behind the chooser (demoProviders); the command's default,
	// off with --single-idp (and in tests unless they ask for it).
	multi bool
	// For tests only (no flags): --auth-mode and --recheck-interval of the demo's zdgate.
	authMode        string
	recheckInterval time.Duration
}

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	o := demoOptions{}
	s := &optionSet{} // demo's own few options; the Config it wires is built below
	s.add(strOpt(&o.listen, "listen", "127.0.0.1:4180", "address of zdgate in the demo (loopback)"))
	s.add(strOpt(&o.metricsListen, "metrics-listen", "127.0.0.1:0", "address of /metrics in the demo"))
	s.add(strOpt(&o.snippetKey, "zendesk-snippet-key", "", "load Zendesk's real widget with this key instead of the offline stand-in (needs the network)"))
	s.add(strOpt(&o.flavor, "zendesk-flavor", "messaging", "messaging or chat"))
	s.add(strOpt(&o.logLevel, "log-level", "info", "debug, info, warn or error"))
	s.add(boolOpt(&o.inject, "inject", true, "inject the loader into the sample app's pages"))
	single := false
	s.add(boolOpt(&single, "single-idp", false, "run one identity provider instead of two (\"Acme employees\" and \"Acme customers\" behind the sign-in chooser)"))
	if _, err := s.parse(args, env); err != nil {
		if err == errHelp {
			var b strings.Builder
			b.WriteString("Usage: zdgate demo [flags]\n\nRuns two development OIDC providers (one with --single-idp), a sample app and zdgate on loopback. No network needed.\n\n")
			s.usage(&b)
			fmt.Fprint(stdout, b.String())
			return 0
		}
		printErrors(stderr, err)
		return 2
	}
	o.multi = !single
	if o.flavor != "messaging" && o.flavor != "chat" {
		fmt.Fprintln(stderr, "zdgate: --zendesk-flavor: must be messaging or chat")
		return 2
	}
	st, err := startDemo(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "zdgate demo:", err)
		return 1
	}
	defer st.close()
	fmt.Fprint(stdout, st.banner(o))
	errc := make(chan error, 1)
	go func() { errc <- st.zdgate.serve(ctx) }()
	if err := <-errc; err != nil {
		fmt.Fprintln(stderr, "zdgate demo:", err)
		return 1
	}
	return 0
}

// startDemo starts the IdP and the sample app and wires zdgate (not yet serving).
func startDemo(o demoOptions, logTo io.Writer) (*demoStack, error) {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %v (is another demo running? try --listen 127.0.0.1:0)", o.listen, err)
	}
	mln, err := net.Listen("tcp", o.metricsListen)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("--metrics-listen %s: %v", o.metricsListen, err)
	}
	public := "http://" + ln.Addr().String()
	st := &demoStack{url: public, secrets: map[string]string{
		"cookie":           randomString(32),
		"messaging_key_id": "app_demo0000000000000000",
		"messaging":        randomString(24),
		"chat":             randomString(24),
		"client":           randomString(24),
	}}
	startIdP := func(client string, users ...oidctest.User) (*oidctest.Server, error) {
		idp, err := oidctest.Start(oidctest.Options{
			LoginForm: true,
			Users:     users,
			Clients: []oidctest.Client{{
				ID: client, Secret: st.secrets["client"],
				RedirectURIs:         []string{public + "/oauth2/callback"},
				BackchannelLogoutURI: public + "/oauth2/backchannel_logout",
			}},
		})
		if err != nil {
			return nil, fmt.Errorf("starting the demo IdP: %v", err)
		}
		st.idps = append(st.idps, idp)
		return idp, nil
	}
	shown := map[string]demoProvider{}
	if o.multi {
		for _, dp := range demoProviders {
			if _, err = startIdP("zdgate-demo-"+dp.id, dp.user); err != nil {
				break
			}
			shown[dp.id] = demoProvider{name: dp.name, prefix: dp.prefix}
		}
	} else {
		_, err = startIdP("zdgate-demo", demoUser, demoUser2)
	}
	if err == nil {
		st.idp = st.idps[0]
		st.app, err = startDemoApp(st.secrets["messaging"], st.secrets["chat"], shown)
	}
	if err != nil {
		st.close()
		ln.Close()
		mln.Close()
		return nil, err
	}
	cfg := &Config{}
	cfg.options() // defaults
	cfg.Upstream = st.app.url
	cfg.PublicURL = public
	if o.multi {
		for i, dp := range demoProviders {
			pc := newProviderConfig(i)
			pc.ID, pc.DisplayName, pc.ExternalIDPrefix = dp.id, dp.name, dp.prefix
			pc.OIDCIssuer, pc.OIDCClientID, pc.OIDCClientSecret = st.idps[i].URL(), "zdgate-demo-"+dp.id, st.secrets["client"]
			cfg.Providers = append(cfg.Providers, pc)
		}
	} else {
		cfg.OIDCIssuer = st.idp.URL()
		cfg.OIDCClientID = "zdgate-demo"
		cfg.OIDCClientSecret = st.secrets["client"]
	}
	cfg.CookieSecret = st.secrets["cookie"]
	cfg.CookieSecure = false // plain HTTP on loopback
	cfg.ZendeskMessagingKeyID = st.secrets["messaging_key_id"]
	cfg.ZendeskMessagingSecret = st.secrets["messaging"]
	cfg.ZendeskChatSecret = st.secrets["chat"]
	cfg.ZendeskFlavor = o.flavor
	cfg.ZendeskSnippetKey = o.snippetKey
	cfg.Inject = o.inject
	cfg.SkipAuthPath = []string{"^/public/"}
	if o.authMode != "" {
		cfg.AuthMode = o.authMode
	}
	if o.recheckInterval > 0 {
		cfg.RecheckInterval = o.recheckInterval
	}
	cfg.LogFormat = "text"
	cfg.LogLevel = o.logLevel
	cfg.ShutdownTimeout = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		st.close()
		return nil, err
	}
	h := &hooks{}
	if o.snippetKey == "" {
		h.widgetScriptURL = public + "/public/zendesk-standin.js"
	}
	log, stopLog := newLogger(cfg, logTo)
	st.stopLog = stopLog
	a, err := wire(cfg, log, h)
	if err != nil {
		st.close()
		return nil, err
	}
	a.ln, a.metricsLn = ln, mln
	st.zdgate = a
	return st, nil
}

func (st *demoStack) close() {
	if st.stopLog != nil {
		st.stopLog()
	}
	if st.app != nil {
		st.app.close()
	}
	for _, idp := range st.idps {
		idp.Close()
	}
}

func (st *demoStack) banner(o demoOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nzdgate demo — everything on loopback, no network needed.\n\n  Open:        %s/\n", st.url)
	if o.multi {
		b.WriteString("  The first page asks how to sign in (two identity providers, each its own user):\n")
		for i, dp := range demoProviders {
			fmt.Fprintf(&b, "    %-15s %s / %-11s external_id %s…   IdP %s\n", dp.name+":", dp.user.PreferredUsername, dp.user.Password, dp.prefix, st.idps[i].URL())
		}
		b.WriteString("  (sign out, then sign in through the other provider: the widget gets the other identity)\n\n")
		b.WriteString("  Demo IdPs:   real OpenID Connect: discovery, JWKS, PKCE, refresh, userinfo, back-channel logout\n")
		b.WriteString("               (zdgate demo --single-idp runs one IdP with both users instead)\n")
	} else {
		fmt.Fprintf(&b, `  Log in as:   %s / %s   (at the demo IdP's login page)
       or as:  %s / %s   (sign out first, then log in as the other user: a shared device)

  Demo IdP:    %s   (real OpenID Connect: discovery, JWKS, PKCE, refresh, userinfo, back-channel logout)
`, demoUser.PreferredUsername, demoUser.Password, demoUser2.PreferredUsername, demoUser2.Password, st.idp.URL())
	}
	fmt.Fprintf(&b, `  Sample app:  %s   (its pages contain no Zendesk code; zdgate injects the loader)
  Metrics:     http://%s/metrics

  Demo Zendesk secrets (random for this run):
    messaging key id:  %s
    messaging secret:  %s
    chat secret:       %s

`, st.app.url, st.zdgate.metricsLn.Addr(), st.secrets["messaging_key_id"], st.secrets["messaging"], st.secrets["chat"])
	if o.snippetKey == "" {
		b.WriteString("  The page shows an OFFLINE STAND-IN for Zendesk's widget: it displays the JWT that\n  zE('messenger','loginUser') received and its claims, and a log of every widget call across pages\n  (login, logout, user switch, failures). --zendesk-snippet-key loads the real widget.\n\n")
	}
	fmt.Fprintf(&b, "  Check a token yourself:\n    echo -n '%s' | go run ./cmd/zdgate token verify --flavor messaging --key-id %s --secret-file - <JWT>\n\n  Ctrl-C stops the demo.\n\n",
		st.secrets["messaging"], st.secrets["messaging_key_id"])
	return b.String()
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
