package proxy

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zdgate/zdgate/oidc"
	"github.com/zdgate/zdgate/proxy/session"
)

// loginTTL bounds how long a login may take at the IdP.
const loginTTL = 10 * time.Minute

// maxLoginCookies bounds the per-tab login-state cookies one browser can accumulate.
const maxLoginCookies = 6

// loginState is sealed into the per-login cookie; nothing in it is ever trusted from the query.
type loginState struct {
	oidc.Login
	RD       string `json:"rd"`
	Provider string `json:"p,omitempty"` // the provider the login went to; "" with a single IdP
}

func (p *Proxy) loginCookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	return p.cfg.CookieName + "_login_" + base64.RawURLEncoding.EncodeToString(sum[:9])
}

// start begins a login: fresh state, nonce and PKCE verifier sealed into a cookie named after the
// state (so several tabs can log in at once), then a redirect to the IdP. With several providers,
// ?provider=ID names the one to use (an unknown ID is a 400); else the choice of chooseProvider.
func (p *Proxy) start(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	return p.beginLogin(w, r, p.safeRedirect(q.Get("rd")), q.Get("provider"))
}

// startLogin starts a login for a visitor who needs one (a page, the Help Center SSO route),
// through the provider chooseProvider picks, or the chooser page.
func (p *Proxy) startLogin(w http.ResponseWriter, r *http.Request, rd string) {
	if err := p.beginLogin(w, r, rd, ""); err != nil {
		p.render(w, r, err)
	}
}

// loginWith redirects to pv's login page, its state sealed into a per-login cookie.
func (p *Proxy) loginWith(w http.ResponseWriter, r *http.Request, pv *provider, rd string) error {
	l := oidc.NewLogin()
	l.RedirectURL = p.callbackFor(r, pv)
	authURL, err := pv.OIDC.AuthCodeURL(l)
	if err != nil {
		return wrapUnavailable(err)
	}
	plain, _ := json.Marshal(loginState{Login: l, RD: rd, Provider: pv.ID})
	name := p.loginCookieName(l.State)
	val, err := p.cfg.Sealer.Seal(name, plain, p.cfg.Now().Add(loginTTL))
	if err != nil {
		return err
	}
	// Too many abandoned logins: drop them all rather than let cookies pile up.
	var pending []string
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, p.cfg.CookieName+"_login_") {
			pending = append(pending, c.Name)
		}
	}
	if len(pending) >= maxLoginCookies {
		for _, n := range pending {
			http.SetCookie(w, p.cookie(n, "", -1, "/oauth2/"))
		}
	}
	http.SetCookie(w, p.cookie(name, val, int(loginTTL/time.Second), "/oauth2/"))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
	return nil
}

func (p *Proxy) cookie(name, value string, maxAge int, path string) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: path, Domain: p.cfg.CookieDomain, MaxAge: maxAge,
		HttpOnly: true, Secure: p.cfg.CookieSecure, SameSite: http.SameSiteLaxMode,
	}
}

// callback finishes a login. Everything comes from the sealed login cookie or from the IdP: the
// state must match a cookie we set, is used once, the code is redeemed with the PKCE verifier, the
// ID token and nonce are verified and userinfo must agree. Then the access rules, and a brand-new
// session (never one the browser sent before).
func (p *Proxy) callback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 512 {
		return errBadRequest("login_failed", errors.New("callback without state"))
	}
	name := p.loginCookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		return errBadRequest("login_expired", errors.New("no login cookie for this state"))
	}
	http.SetCookie(w, p.cookie(name, "", -1, "/oauth2/")) // single use, whatever happens next
	plain, err := p.cfg.Sealer.Open(name, c.Value)
	if err != nil {
		return errBadRequest("login_expired", err)
	}
	var ls loginState
	if err := json.Unmarshal(plain, &ls); err != nil || ls.State != state {
		return errBadRequest("login_failed", errors.New("state does not match the login cookie"))
	}
	if now := p.cfg.Now(); !p.states.AddNew(state, struct{}{}, now.Add(loginTTL), now) {
		return errBadRequest("login_expired", errors.New("state replayed"))
	}
	pv := p.providers.byID[ls.Provider]
	if pv == nil {
		return errBadRequest("login_failed", errUnknownProvider)
	}
	if e := q.Get("error"); e != "" {
		return errForbidden("idp_error", errors.New("IdP answered error="+truncate(e, 64)))
	}
	code := q.Get("code")
	if code == "" {
		return errBadRequest("login_failed", errors.New("callback without code"))
	}
	id, toks, err := pv.OIDC.Exchange(r.Context(), code, ls.Login)
	pv.m.idpChecks.WithLabelValues("login", resultOf(err)).Inc()
	if err != nil {
		if oidc.KindOf(err) == oidc.Unavailable {
			return wrapUnavailable(err)
		}
		return errForbidden("login_failed", err)
	}
	if err := p.policy(pv, id); err != nil {
		return err
	}
	now := p.cfg.Now()
	s := &session.Session{
		ID: session.NewID(), Subject: id.Subject, SID: id.SID, Claims: id.Claims,
		AccessToken: toks.AccessToken, RefreshToken: toks.RefreshToken, IDToken: toks.IDToken, TokenExpiry: toks.Expiry,
		CreatedAt: now, ConfirmedAt: now, Provider: pv.ID,
	}
	if err := p.cfg.Sessions.Save(r.Context(), w, r, s); err != nil {
		return errUnavailable("session_store_unavailable", err)
	}
	setSub(r.Context(), id.Subject)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, p.safeRedirect(ls.RD), http.StatusFound)
	return nil
}

// signOut ends the session here and, when the IdP offers RP-initiated logout, there too. A
// cross-site request (Sec-Fetch-Site other than same-origin/none, or a foreign Origin) ends
// nothing: a page of another site must not be able to sign the user out (logout CSRF), so it gets
// a same-origin confirmation form instead, whose POST then signs out.
func (p *Proxy) signOut(w http.ResponseWriter, r *http.Request) error {
	rd := p.safeRedirect(r.URL.Query().Get("rd"))
	if err := p.sameOrigin(r); err != nil {
		return p.confirmSignOut(w, r, rd, err)
	}
	s, err := p.endSession(w, r)
	if err != nil {
		return err
	}
	return p.signedOutPage(w, r, signedOutView{Next: p.afterSignOut(s, rd)})
}

// afterSignOut is where the browser goes once session s has ended: the IdP's end_session endpoint
// (with id_token_hint and a post-logout redirect back to rd), or rd itself (also when there was no
// session).
func (p *Proxy) afterSignOut(s *session.Session, rd string) string {
	if s == nil {
		return rd
	}
	pv, err := p.providers.of(s)
	if err != nil {
		return rd
	}
	back := rd
	if strings.HasPrefix(rd, "/") {
		back = p.cfg.PublicURL.ResolveReference(&url.URL{Path: "/"}).String()
		if u, err := url.Parse(rd); err == nil {
			back = p.cfg.PublicURL.ResolveReference(u).String()
		}
	}
	if end := pv.OIDC.EndSessionURL(s.IDToken, back); end != "" {
		return end
	}
	return rd
}

// backchannelLogout ends the sessions named by a verified logout token from the IdP.
func (p *Proxy) backchannelLogout(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	raw := r.PostFormValue("logout_token")
	if raw == "" {
		return errBadRequest("invalid_request", errors.New("no logout_token"))
	}
	pv, err := p.providers.forLogout(raw)
	if err != nil {
		return err
	}
	lo, err := pv.OIDC.VerifyLogout(r.Context(), raw)
	if err != nil {
		if oidc.KindOf(err) == oidc.Unavailable {
			return wrapUnavailable(err)
		}
		// At WARN: a refused logout token usually means logout is broken for every user (an IdP
		// whose tokens we misread, a wrong client id), and the IdP only logs a failed delivery.
		return &httpError{status: http.StatusBadRequest, code: "invalid_request", err: err, warn: true}
	}
	if p.cfg.Revocations == nil {
		return errUnavailable("not_supported", errors.New("no revocation list configured"))
	}
	revs := p.revocations(pv)
	if lo.SID != "" {
		err = revs.RevokeSID(r.Context(), lo.SID)
	} else {
		err = revs.RevokeSubject(r.Context(), lo.Subject)
	}
	if err != nil {
		return errUnavailable("session_store_unavailable", err)
	}
	pv.m.sessionsEnded.WithLabelValues("backchannel").Inc()
	w.WriteHeader(http.StatusOK)
	return nil
}
