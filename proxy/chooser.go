package proxy

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
)

// beginLogin starts a login through the provider chooseProvider picks, or shows the chooser page
// when the visitor must pick one. explicit is the provider the request named (?provider=ID);
// it is ignored with a single IdP, as it always was.
func (p *Proxy) beginLogin(w http.ResponseWriter, r *http.Request, rd, explicit string) error {
	pv, candidates, err := p.chooseProvider(r, explicit)
	if err != nil {
		return err
	}
	if pv != nil {
		return p.loginWith(w, r, pv, rd)
	}
	return p.chooserPage(w, rd, candidates)
}

// chooseProvider decides who logs the visitor in, in this order: the provider the request named;
// the provider whose hosts contain the request's host; the only provider not bound to other
// hosts. Else it returns the candidates for the chooser: the providers bound to no host, or all
// of them when every one is bound to a host.
func (p *Proxy) chooseProvider(r *http.Request, explicit string) (*provider, []*provider, error) {
	ps := p.providers
	if !ps.multi {
		return ps.list[0], nil, nil
	}
	if explicit != "" {
		if pv := ps.byID[explicit]; pv != nil {
			return pv, nil, nil
		}
		return nil, nil, errBadRequest("unknown_provider", errors.New("no provider "+truncate(explicit, 64)))
	}
	if pv := p.providerOfHost(r); pv != nil {
		return pv, nil, nil
	}
	var free []*provider
	for _, pv := range ps.list {
		if len(pv.hosts) == 0 {
			free = append(free, pv)
		}
	}
	switch len(free) {
	case 1:
		return free[0], nil, nil
	case 0:
		return nil, ps.list, nil
	}
	return nil, free, nil
}

// callbackFor is the callback of a login through pv that starts on r: the request's own host
// when it is one of pv's hosts (same scheme as the public URL), so the session cookie is set on
// the host the visitor is on; else "" (the public URL's callback).
func (p *Proxy) callbackFor(r *http.Request, pv *provider) string {
	h := p.requestHost(r)
	if len(pv.hosts) == 0 || !hostMatch(h, pv.hosts) || canonicalHost(h) == canonicalHost(p.cfg.PublicURL.Host) {
		return ""
	}
	return (&url.URL{Scheme: p.cfg.PublicURL.Scheme, Host: h, Path: "/oauth2/callback"}).String()
}

// chooserPage lists the candidates as links to /oauth2/start?provider=ID&rd=RD. It is plain
// HTML: no script at all (its CSP allows none), a list of links that work with a keyboard, a
// screen reader and without JavaScript.
func (p *Proxy) chooserPage(w http.ResponseWriter, rd string, candidates []*provider) error {
	type choice struct{ Name, Href string }
	var choices []choice
	for _, pv := range candidates {
		q := url.Values{"provider": {pv.ID}}
		if rd != "/" && rd != "" {
			q.Set("rd", rd)
		}
		choices = append(choices, choice{Name: pv.DisplayName, Href: "/oauth2/start?" + q.Encode()})
	}
	privatePage(w.Header(), "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	return chooserTmpl.Execute(w, choices)
}

var chooserTmpl = template.Must(template.New("chooser").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Choose how to sign in</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}
ul{list-style:none;padding:0}li{margin:.6rem 0}a{display:block;padding:.8rem 1rem;border:1px solid #678;border-radius:6px;color:#124;text-decoration:none}
a:hover,a:focus{background:#eef3f8;outline:3px solid #36a;outline-offset:2px}</style></head>
<body><main><h1 id="zdgate-choose">Choose how to sign in</h1>
<nav aria-labelledby="zdgate-choose"><ul id="zdgate-providers">
{{range .}}<li><a href="{{.Href}}">{{.Name}}</a></li>
{{end}}</ul></nav></main></body></html>
`))
