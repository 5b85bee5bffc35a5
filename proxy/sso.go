package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"html/template"
	"mime"
	"net/http"
	"net/url"

	"github.com/zdgate/zdgate/tokens"
)

// sso is Zendesk's "remote login URL": log the visitor in through the IdP if needed (re-checked like
// every session), then POST a Help Center SSO JWT to https://<subdomain>.zendesk.com/access/jwt
// with an auto-submitting form. return_to survives only if it points at the configured Zendesk
// host, a --zendesk-host or this site. With several providers the token is signed for the
// session's provider's SSO configuration (staff or end users), and ?provider=ID (the remote login
// URL of one Zendesk SSO configuration) makes a visitor not logged in through that provider log in
// there.
func (p *Proxy) sso(w http.ResponseWriter, r *http.Request) error {
	if (p.cfg.Signers[tokens.SSO] == nil && p.cfg.StaffSSO == nil) || p.cfg.ZendeskSubdomain == "" {
		return errNotFound
	}
	q := r.URL.Query()
	returnTo := p.zendeskReturnTo(q.Get("return_to"))
	want := ""
	if p.providers.multi {
		want = q.Get("provider")
	}
	s, id, err := p.authenticate(w, r)
	if err == nil && want != "" && s.Provider != want {
		err = errNoSession // signed in elsewhere: Zendesk asked for this provider's users
	}
	if err != nil {
		if isAnonymous(err) {
			rd := "/zendesk/sso"
			back := url.Values{}
			if returnTo != "" {
				back.Set("return_to", returnTo)
			}
			if want != "" {
				back.Set("provider", want)
			}
			if len(back) > 0 {
				rd += "?" + back.Encode()
			}
			return p.beginLogin(w, r, rd, want)
		}
		return err
	}
	pv, err := p.providers.of(s)
	if err != nil {
		return err
	}
	signer := p.ssoSigner(pv)
	if signer == nil || !pv.allows(tokens.SSO) {
		return errFlavorNotAllowed(pv, tokens.SSO)
	}
	u, err := pv.Mapping.User(id.Claims)
	if err != nil {
		return claimsError(err)
	}
	jwt, _, err := signer.Sign(u)
	if err != nil {
		return claimsError(err)
	}
	pv.m.minted.WithLabelValues(string(tokens.SSO)).Inc()
	action := "https://" + p.cfg.ZendeskSubdomain + ".zendesk.com/access/jwt"
	if returnTo != "" {
		// As Zendesk's own examples do: return_to is a query parameter of /access/jwt, the JWT
		// the body of the POST (github.com/zendesk/zendesk_jwt_sso_examples).
		action += "?" + url.Values{"return_to": {returnTo}}.Encode()
	}
	nonce := randomNonce()
	privatePage(w.Header(), "default-src 'none'; script-src 'nonce-"+nonce+"'; form-action https://"+p.cfg.ZendeskSubdomain+".zendesk.com; base-uri 'none'; frame-ancestors 'none'")
	return ssoForm.Execute(w, map[string]string{"Action": action, "JWT": jwt, "Nonce": nonce})
}

var ssoForm = template.Must(template.New("sso").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing you in…</title></head>
<body><form method="post" action="{{.Action}}" id="zdgate-sso">
<input type="hidden" name="jwt" value="{{.JWT}}">
<noscript><button type="submit">Continue to the help center</button></noscript>
</form><script nonce="{{.Nonce}}">document.getElementById("zdgate-sso").submit();</script></body></html>
`))

func randomNonce() string {
	var b [18]byte
	rand.Read(b[:])
	return base64.RawStdEncoding.EncodeToString(b[:])
}

// zendeskReturnTo keeps return_to only when it is an https URL on the Zendesk host, a configured
// host-mapped help center, or this site; anything else is dropped (Zendesk then uses its default).
func (p *Proxy) zendeskReturnTo(raw string) string {
	if raw == "" || len(raw) > 2048 {
		return ""
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= 0x20 || c == 0x7f || c == '\\' {
			return ""
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil || !plainHost(u.Host) || u.Opaque != "" {
		return ""
	}
	host := canonicalHost(u.Hostname())
	allowed := append([]string{p.cfg.ZendeskSubdomain + ".zendesk.com", p.cfg.PublicURL.Hostname()}, p.cfg.ZendeskHosts...)
	for _, a := range allowed {
		if host == canonicalHost(a) {
			return u.String()
		}
	}
	if p.ownHost(u.Host) { // a provider's host (providers:) is this site too
		return u.String()
	}
	return ""
}

// ssoLogout is Zendesk's "remote logout URL": it ends the session and shows a signed-out page. It
// never starts a login, so a help center that requires sign-in cannot bounce the visitor straight
// back in. Zendesk's kind/message/email/return_to/brand_id parameters are accepted; only a
// validated return_to is used, as a link.
func (p *Proxy) ssoLogout(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	returnTo := p.zendeskReturnTo(q.Get("return_to"))
	s, err := p.endSession(w, r)
	if err != nil {
		return err // never "signed out" while the session lives on
	}
	if pv, _ := p.providers.of(s); s != nil && pv != nil {
		// Optionally end the IdP session too; the IdP sends the browser back here with done=1,
		// which only shows the page — never another round trip, never a login.
		if p.cfg.SSOLogoutIdP && q.Get("done") == "" && s.IDToken != "" {
			back := url.Values{"done": {"1"}}
			if returnTo != "" {
				back.Set("return_to", returnTo)
			}
			if end := pv.OIDC.EndSessionURL(s.IDToken, p.cfg.PublicURL.String()+"/zendesk/sso/logout?"+back.Encode()); end != "" {
				return p.signedOutPage(w, r, signedOutView{Next: end})
			}
		}
	}
	msg := ""
	if q.Get("kind") == "error" {
		msg = q.Get("message")
		if len(msg) > 300 {
			msg = msg[:300]
		}
	}
	return p.signedOutPage(w, r, signedOutView{Next: returnTo, Link: true, Message: msg})
}

// sdk is the Support SDK's JWT endpoint: Zendesk's servers POST the app's user_token (an IdP access
// token) form-encoded; the answer is {"jwt": "..."} for a confirmed user, 401 otherwise.
func (p *Proxy) sdk(w http.ResponseWriter, r *http.Request) error {
	signer := p.cfg.Signers[tokens.SDK]
	if signer == nil {
		return errNotFound
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return errBadRequest("form_encoding_expected", errors.New("Content-Type "+truncate(mt, 64)))
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	tok := r.PostFormValue("user_token")
	if tok == "" {
		return errUnauthorized("invalid_token", errors.New("no user_token"))
	}
	pv, id, err := p.bearerUser(r, tok)
	if err != nil {
		return err
	}
	if !pv.allows(tokens.SDK) {
		return errFlavorNotAllowed(pv, tokens.SDK)
	}
	return p.mint(w, pv, signer, id, false)
}
