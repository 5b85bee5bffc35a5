package proxy

import (
	"time"

	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/proxy/session"
	"github.com/zdgate/zdgate/tokens"
)

// Provider is one identity provider of several (Config.Providers): its client, who of its users
// may enter, how their claims map to Zendesk's, and which Zendesk identities they may get. Every
// session and login carries its provider's ID, and only that provider is ever asked about them.
type Provider struct {
	// ID names the provider in sessions, logins, metrics and /oauth2/start?provider=ID:
	// [a-z0-9-], at most 32 characters.
	ID string
	// DisplayName is what the chooser page shows; default the ID.
	DisplayName string
	// Hosts are request hosts (host or host:port) whose logins go to this provider, each with its
	// own callback https://<host>/oauth2/callback (the scheme of PublicURL).
	Hosts []string
	OIDC  *oidc.Client

	AllowedEmailDomains []string
	AllowedGroups       []string
	Mapping             tokens.Mapping
	// Flavors are the Zendesk flavors its users may get; nil means every flavor with a signer.
	Flavors []tokens.Flavor
	// SSO is the Zendesk JWT SSO configuration its users reach the help center through: end users
	// (default) with Signers[tokens.SSO], or staff with StaffSSO.
	SSO tokens.SSOUsers
	// BearerJWT accepts JWT bearer access tokens whose iss (and aud) name this provider.
	BearerJWT bool
	// BearerOpaque sends opaque bearer access tokens to this provider; at most one provider may.
	BearerOpaque bool
}

// provider is a Provider as the handler uses it.
type provider struct {
	Provider
	hosts   []string // canonical
	flavors map[tokens.Flavor]bool
	m       providerMetrics
}

// providerMetrics are the series a provider's events count in: in a single-IdP configuration the
// metrics themselves, with several providers the same names with a provider label.
type providerMetrics struct {
	idpChecks, sessionsEnded, minted *prometheus.CounterVec
}

// providerSet is every configured provider. multi is false for a single-IdP configuration: then
// its one provider has the ID "" (the provider of sessions from before providers existed), and
// nothing the IdP, the app or Prometheus sees changes.
type providerSet struct {
	list   []*provider
	byID   map[string]*provider
	multi  bool
	opaque *provider // takes opaque bearer tokens, or nil
}

// errUnknownProvider: a session or login names a provider that is not (or no longer) configured.
var errUnknownProvider = errors.New("the session's identity provider is not configured")

// newProviders checks the providers of cfg, or builds the single one from cfg's OIDC client and
// rules when cfg.Providers is empty.
func newProviders(cfg *Config, m *metrics) (*providerSet, error) {
	ps := &providerSet{byID: map[string]*provider{}, multi: len(cfg.Providers) > 0}
	list := cfg.Providers
	if !ps.multi {
		list = []Provider{{
			OIDC: cfg.OIDC, AllowedEmailDomains: cfg.AllowedEmailDomains, AllowedGroups: cfg.AllowedGroups,
			Mapping: cfg.Mapping, SSO: tokens.EndUsers, BearerJWT: true, BearerOpaque: true,
		}}
	}
	var errs []error
	hostOwner := map[string]string{}
	for i, pc := range list {
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("proxy: provider %d (%q): %s", i, pc.ID, fmt.Sprintf(format, a...)))
		}
		if ps.multi && !ValidProviderID(pc.ID) {
			bad("id must be 1 to 32 of a-z, 0-9 and -")
		}
		if _, dup := ps.byID[pc.ID]; dup {
			bad("id used twice")
		}
		if pc.OIDC == nil {
			bad("no OIDC client")
		}
		if pc.SSO == "" {
			pc.SSO = tokens.EndUsers
		}
		if pc.DisplayName == "" {
			pc.DisplayName = pc.ID
		}
		pv := &provider{Provider: pc, m: m.forProvider(pc.ID, ps.multi)}
		for _, h := range pc.Hosts {
			ch := canonicalHost(h)
			if other, taken := hostOwner[ch]; taken {
				bad("host %q is also %q's", h, other)
			}
			hostOwner[ch] = pc.ID
			pv.hosts = append(pv.hosts, ch)
		}
		if pc.Flavors != nil {
			pv.flavors = map[tokens.Flavor]bool{}
			for _, f := range pc.Flavors {
				pv.flavors[f] = true
			}
		}
		if pc.BearerOpaque {
			if ps.opaque != nil {
				bad("only one provider may take opaque bearer tokens, and %q does", ps.opaque.ID)
			}
			ps.opaque = pv
		}
		ps.list = append(ps.list, pv)
		ps.byID[pc.ID] = pv
	}
	return ps, errors.Join(errs...)
}

// ValidProviderID reports whether id may name a provider: 1 to 32 of a-z, 0-9 and '-'.
func ValidProviderID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// of is the provider session s belongs to. A session of a provider that is not configured (one
// removed from providers:, a single-IdP session after a switch to several, or the reverse) has
// no IdP that could confirm it: the caller treats it as no session.
func (ps *providerSet) of(s *session.Session) (*provider, error) {
	if s == nil {
		return nil, errNoSession
	}
	if pv := ps.byID[s.Provider]; pv != nil {
		return pv, nil
	}
	return nil, fmt.Errorf("%w (%q)", errUnknownProvider, truncate(s.Provider, 64))
}

// ready: every provider has been discovered once.
func (ps *providerSet) ready() bool {
	for _, pv := range ps.list {
		if !pv.OIDC.Ready() {
			return false
		}
	}
	return true
}

// allows reports whether the provider's users may get tokens of flavor f.
func (pv *provider) allows(f tokens.Flavor) bool { return pv.flavors == nil || pv.flavors[f] }

// errFlavorNotAllowed: the provider's users may not get this flavor (zendesk-flavors).
func errFlavorNotAllowed(pv *provider, f tokens.Flavor) error {
	return errForbidden("flavor_not_allowed", fmt.Errorf("provider %q may not get %s tokens", pv.ID, f))
}

// byToken picks the provider that is to verify a JWT (a bearer or a logout token) by its
// unverified iss and aud, among the providers want admits; it is never tried at the others. The
// chosen provider's client then verifies the token in full.
func (ps *providerSet) byToken(raw string, want func(*provider) bool) (*provider, error) {
	iss, aud, ok := oidc.PeekIssuer(raw)
	if !ok {
		return nil, errors.New("not a JWT with an issuer")
	}
	var match *provider
	for _, pv := range ps.list {
		if !want(pv) || !pv.OIDC.IssuedFor(iss, aud) {
			continue
		}
		if match != nil {
			return nil, fmt.Errorf("the token's iss and aud fit providers %q and %q", match.ID, pv.ID)
		}
		match = pv
	}
	if match == nil {
		return nil, fmt.Errorf("no configured provider has issuer %q for this audience", truncate(iss, 128))
	}
	return match, nil
}

// forBearer picks the one provider a bearer access token may belong to: a JWT by iss among the
// providers that accept JWT bearer tokens, an opaque token only the provider configured for them.
func (ps *providerSet) forBearer(tok string) (*provider, error) {
	if !ps.multi {
		return ps.list[0], nil
	}
	if strings.Count(tok, ".") == 2 {
		pv, err := ps.byToken(tok, func(pv *provider) bool { return pv.BearerJWT })
		if err != nil {
			return nil, errUnauthorized("invalid_token", fmt.Errorf("bearer token: %w", err))
		}
		return pv, nil
	}
	if ps.opaque == nil {
		return nil, errUnauthorized("invalid_token", errors.New("bearer token: opaque, and no provider takes opaque bearer tokens"))
	}
	return ps.opaque, nil
}

// forLogout picks the provider of a back-channel logout token, by iss, among all providers.
func (ps *providerSet) forLogout(raw string) (*provider, error) {
	if !ps.multi {
		return ps.list[0], nil
	}
	pv, err := ps.byToken(raw, func(*provider) bool { return true })
	if err != nil {
		return nil, &httpError{status: http.StatusBadRequest, code: "invalid_request", err: fmt.Errorf("logout token: %w", err), warn: true}
	}
	return pv, nil
}

// revocations are the back-channel revocations of pv's sessions: scoped to it, so a logout at one
// IdP never ends another's sessions whose sid or sub happens to be equal.
func (p *Proxy) revocations(pv *provider) session.Revocations {
	if pv.ID == "" {
		return p.cfg.Revocations
	}
	return session.ForProvider(p.cfg.Revocations, pv.ID)
}

// ssoSigner is the signer of pv's Zendesk SSO configuration: staff or end users.
func (p *Proxy) ssoSigner(pv *provider) *tokens.Signer {
	if pv.SSO == tokens.Staff {
		return p.cfg.StaffSSO
	}
	return p.cfg.Signers[tokens.SSO]
}

// requestHost is the host the browser asked for: X-Forwarded-Host from a --trusted-proxy, else
// Host.
func (p *Proxy) requestHost(r *http.Request) string {
	if p.trust.fromTrusted(r) {
		if h := r.Header.Get("X-Forwarded-Host"); h != "" {
			h, _, _ = strings.Cut(h, ",")
			return strings.TrimSpace(h)
		}
	}
	return r.Host
}

// hostMatch reports whether the request host h (host or host:port) is one of hosts, each given
// as host (any port) or host:port.
func hostMatch(h string, hosts []string) bool {
	h = canonicalHost(h)
	name := h
	if u, err := url.Parse("//" + h); err == nil {
		name = u.Hostname()
	}
	return slices.ContainsFunc(hosts, func(c string) bool { return c == h || c == name })
}

// providerOfHost is the provider whose hosts include the request's, or nil.
func (p *Proxy) providerOfHost(r *http.Request) *provider {
	h := p.requestHost(r)
	for _, pv := range p.providers.list {
		if hostMatch(h, pv.hosts) {
			return pv
		}
	}
	return nil
}

// ownHost reports whether host (from an Origin or a full-URL rd) is this site's: the public
// URL's host or a provider's host.
func (p *Proxy) ownHost(host string) bool {
	if canonicalHost(host) == canonicalHost(p.cfg.PublicURL.Host) {
		return true
	}
	if p.providers == nil {
		return false
	}
	for _, pv := range p.providers.list {
		if hostMatch(host, pv.hosts) {
			return true
		}
	}
	return false
}

// refusedEverywhere is /readyz's 503 text when the IdP refuses zdgate's own client, so this
// replica can confirm no one: with several providers only when every one refuses (one
// provider's problem must not take the others' users down; zdgate_idp_up shows it). "" when ready.
func (ps *providerSet) refusedEverywhere() string {
	if !ps.multi {
		if err := ps.list[0].OIDC.ConfigProblem(); err != nil {
			return fmt.Sprintf("identity provider refuses zdgate's client (check --oidc-client-id and --oidc-client-secret): %v\n", err)
		}
		return ""
	}
	var causes []string
	for _, pv := range ps.list {
		err := pv.OIDC.ConfigProblem()
		if err == nil {
			return ""
		}
		causes = append(causes, pv.ID+": "+err.Error())
	}
	return "every identity provider refuses zdgate's client (check each provider's oidc-client-id and oidc-client-secret): " + strings.Join(causes, "; ") + "\n"
}

// idpTimeout is the longest one IdP call of any provider may take, for the re-check budget.
func (ps *providerSet) idpTimeout() time.Duration {
	var t time.Duration
	for _, pv := range ps.list {
		t = max(t, pv.OIDC.Timeout())
	}
	return t
}
