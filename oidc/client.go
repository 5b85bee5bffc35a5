// Package oidc is zdgate's only door to the identity provider: it builds the login URL (state, nonce,
// PKCE S256), turns a callback code into a verified Identity, re-checks a session against the IdP
// (refresh, userinfo, introspection), verifies bearer access tokens for mobile apps and back-channel
// logout tokens. It is the only importer of go-oidc and x/oauth2, and it never logs: it returns
// *Error values whose Kind tells the caller whether to end a session or to fail closed.
package oidc

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/zdgate/zdgate/internal/expiring"
)

// Config is the IdP client. Issuer, ClientID and RedirectURL are required.
type Config struct {
	Issuer   string
	ClientID string
	// ClientSecret is called on every request that needs it, so a rotated secret file takes effect
	// without a restart. It may return "" for a public client (then introspection is off).
	ClientSecret func() string
	RedirectURL  string
	Scopes       []string
	// Audiences are accepted on bearer access tokens besides ClientID (mobile apps' API audience,
	// or their client ids).
	Audiences []string
	// InsecureBearerUserinfo accepts opaque bearer access tokens that only userinfo can confirm,
	// when the IdP offers no introspection: then ANY access token of the user, issued to any client
	// of the IdP (a third-party app the user once signed in to), is taken as the user's
	// credential for Zendesk. Off, such tokens are refused with ErrAudience.
	InsecureBearerUserinfo bool
	// HTTPClient makes every IdP call; it must have a timeout. Default: DefaultTimeout.
	HTTPClient *http.Client
	// Now is the clock for token expiry checks.
	Now func() time.Time
	// LogoutSkew is how far a logout token's iat may be from now (default 5 min).
	LogoutSkew time.Duration
	// FailFast is how long every IdP call fails at once after one failed as unavailable (default
	// DefaultFailFast; negative turns it off): a hung IdP costs one timeout, not one per request.
	FailFast time.Duration
	// GroupsClaim is the claim read into Identity.Groups (default "groups").
	GroupsClaim string
	// EmailVerifiedClaim is the claim that says the email is verified (default "email_verified"),
	// read from the same document as the email (see merge) with the rule of Verified. Entra ID
	// sends none; its optional claim xms_edov says the tenant verified the email's domain.
	EmailVerifiedClaim string
}

// Client talks to one IdP. It is safe for concurrent use. Until Discover succeeds every call fails
// with Kind Unavailable, and Ready reports false.
type Client struct {
	cfg    Config
	state  atomic.Pointer[provider]
	config trackConfig
	brk    *breaker // nil when FailFast is off

	seenJTIs *expiring.Cache[string, struct{}] // back-channel logout replay guard
}

// provider is everything learnt from discovery; swapped atomically once loaded.
type provider struct {
	p          *gooidc.Provider
	keys       *keySet
	oauth      oauth2.Config
	idVerifier *gooidc.IDTokenVerifier
	atVerifier *gooidc.IDTokenVerifier // bearer access tokens: aud checked by us
	userinfo   string
	introspect string
	endSession string
	revocation string

	refresh, backchannel bool // announced: the refresh_token grant, back-channel logout
}

// New checks the configuration; it does not contact the IdP (call Discover).
func New(cfg Config) (*Client, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("oidc: issuer is required"))
	} else if u, err := url.Parse(cfg.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, errors.New("oidc: issuer must be an http(s) URL"))
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("oidc: client id is required"))
	}
	if cfg.RedirectURL == "" {
		errs = append(errs, errors.New("oidc: redirect URL is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.ClientSecret == nil {
		cfg.ClientSecret = func() string { return "" }
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{gooidc.ScopeOpenID, "email", "profile", gooidc.ScopeOfflineAccess}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LogoutSkew == 0 {
		cfg.LogoutSkew = 5 * time.Minute
	}
	if cfg.FailFast == 0 {
		cfg.FailFast = DefaultFailFast
	}
	var brk *breaker
	if cfg.FailFast > 0 {
		// Every call to the IdP, by us, go-oidc or x/oauth2, goes through the breaker.
		hc := *cfg.HTTPClient
		next := hc.Transport
		if next == nil {
			next = http.DefaultTransport
		}
		brk = &breaker{next: next, now: cfg.Now, period: cfg.FailFast}
		hc.Transport = brk
		cfg.HTTPClient = &hc
	}
	return &Client{cfg: cfg, brk: brk, seenJTIs: expiring.New[string, struct{}](maxJTIs, expiring.Refuse)}, nil
}

// DefaultTimeout bounds one IdP call when Config.HTTPClient is not given.
const DefaultTimeout = 10 * time.Second

// Timeout is the longest one IdP call may take (the HTTP client's timeout; DefaultTimeout when it
// sets none), so that callers can bound work that waits on the IdP.
func (c *Client) Timeout() time.Duration {
	if t := c.cfg.HTTPClient.Timeout; t > 0 {
		return t
	}
	return DefaultTimeout
}

type callKey struct{}

// CallKind names the IdP call a request belongs to ("discovery", "jwks", "exchange", "refresh",
// "userinfo", "introspect", "bearer", "backchannel_logout", "revoke"), so an instrumented transport can label
// its latency metric; "other" when unknown.
func CallKind(r *http.Request) string {
	if k, ok := r.Context().Value(callKey{}).(string); ok {
		return k
	}
	return "other"
}

func withKind(ctx context.Context, kind string) context.Context {
	return context.WithValue(ctx, callKey{}, kind)
}

// ctx attaches our HTTP client for both go-oidc and x/oauth2, and names the call.
func (c *Client) ctx(ctx context.Context, kind string) context.Context {
	ctx = context.WithValue(ctx, callKey{}, kind)
	ctx = gooidc.ClientContext(ctx, c.cfg.HTTPClient)
	return context.WithValue(ctx, oauth2.HTTPClient, c.cfg.HTTPClient)
}

// Discover fetches the discovery document and the JWKS. zdgate is ready only after it succeeds.
func (c *Client) Discover(ctx context.Context) error {
	ctx = c.ctx(ctx, "discovery")
	p, err := gooidc.NewProvider(ctx, c.cfg.Issuer)
	if err != nil {
		return classify("discovery", err)
	}
	var meta struct {
		JWKS        string   `json:"jwks_uri"`
		Userinfo    string   `json:"userinfo_endpoint"`
		Introspect  string   `json:"introspection_endpoint"`
		EndSession  string   `json:"end_session_endpoint"`
		Revocation  string   `json:"revocation_endpoint"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
		GrantTypes  []string `json:"grant_types_supported"`
		Backchannel bool     `json:"backchannel_logout_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return invalid("discovery", err)
	}
	if meta.JWKS == "" {
		return invalid("jwks", errors.New("discovery document has no jwks_uri"))
	}
	keys := &keySet{url: meta.JWKS, client: c.cfg.HTTPClient, now: c.cfg.Now}
	if err := keys.load(c.ctx(ctx, "jwks")); err != nil {
		return err
	}
	pr := &provider{
		p:          p,
		keys:       keys,
		userinfo:   meta.Userinfo,
		introspect: meta.Introspect,
		endSession: meta.EndSession,
		revocation: meta.Revocation,
		// OIDC Discovery 1.0 §3: an absent grant_types_supported means authorization_code and
		// implicit only.
		refresh:     slices.Contains(meta.GrantTypes, "refresh_token"),
		backchannel: meta.Backchannel,
		oauth: oauth2.Config{
			ClientID:    c.cfg.ClientID,
			Endpoint:    endpoint(p.Endpoint(), meta.AuthMethods),
			RedirectURL: c.cfg.RedirectURL,
			Scopes:      c.cfg.Scopes,
		},
	}
	pr.idVerifier = gooidc.NewVerifier(c.cfg.Issuer, keys, &gooidc.Config{ClientID: c.cfg.ClientID, Now: c.cfg.Now, SupportedSigningAlgs: asymmetricAlgs})
	pr.atVerifier = gooidc.NewVerifier(c.cfg.Issuer, keys, &gooidc.Config{
		SkipClientIDCheck:    true, // audience list checked in VerifyBearer
		Now:                  c.cfg.Now,
		SupportedSigningAlgs: asymmetricAlgs,
	})
	c.state.Store(pr)
	return nil
}

// endpoint fixes the client authentication style from discovery. x/oauth2's auto-detection would
// retry every failed token request in the other style: two IdP calls per refresh, twice the timeout,
// and a rotating refresh token presented twice.
func endpoint(e oauth2.Endpoint, methods []string) oauth2.Endpoint {
	e.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic, the default of OIDC discovery
	if len(methods) > 0 && !slices.Contains(methods, "client_secret_basic") && slices.Contains(methods, "client_secret_post") {
		e.AuthStyle = oauth2.AuthStyleInParams
	}
	return e
}

// asymmetricAlgs are the only algorithms accepted on bearer access tokens: never HS* (a public key
// used as an HMAC secret) and never none.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}

// verify checks raw's signature against the IdP's keys first, so that a JWKS fetch failure stays
// Unavailable (go-oidc's error text would lose the type), then runs v's claim checks.
func (c *Client) verify(ctx context.Context, p *provider, v *gooidc.IDTokenVerifier, step, raw string) (*gooidc.IDToken, error) {
	payload, err := p.keys.VerifySignature(ctx, raw)
	if err != nil {
		return nil, classifyVerify(step, err)
	}
	t, err := v.Verify(context.WithValue(ctx, verifiedKey{}, verified{raw: raw, payload: payload}), raw)
	if err != nil {
		return nil, classifyVerify(step, err)
	}
	return t, nil
}

// Ready reports whether discovery and the JWKS have been loaded.
func (c *Client) Ready() bool { return c.state.Load() != nil }

// Run calls Discover until it succeeds or ctx ends, backing off between tries; onErr sees each failure.
func (c *Client) Run(ctx context.Context, onErr func(error)) {
	delay := 500 * time.Millisecond
	for {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := c.Discover(dctx)
		cancel()
		if err == nil {
			return
		}
		if onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

func (c *Client) provider(step string) (*provider, error) {
	p := c.state.Load()
	if p == nil {
		return nil, &Error{Kind: Unavailable, Step: step, Err: errors.New("identity provider not discovered yet")}
	}
	return p, nil
}

// oauthConfig returns the oauth2 config with the current client secret.
func (p *provider) oauthConfig(secret string) *oauth2.Config {
	cfg := p.oauth
	cfg.ClientSecret = secret
	return &cfg
}

// EndSessionURL is the IdP's RP-initiated logout URL for this session, or "" when the IdP has none.
func (c *Client) EndSessionURL(idTokenHint, postLogoutRedirect string) string {
	p := c.state.Load()
	if p == nil || p.endSession == "" {
		return ""
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	q.Set("client_id", c.cfg.ClientID)
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Endpoints reports which optional IdP endpoints discovery announced (for config check and logs).
func (c *Client) Endpoints() map[string]bool {
	p := c.state.Load()
	if p == nil {
		return nil
	}
	return map[string]bool{
		"userinfo":      p.userinfo != "",
		"introspection": p.introspect != "",
		"end_session":   p.endSession != "",
		"revocation":    p.revocation != "",
	}
}

func bearerRequest(ctx context.Context, method, endpoint, token string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, endpoint, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	return req, nil
}
