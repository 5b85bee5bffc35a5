package proxy

import (
	"html"
	"html/template"
	"net/http"
)

// signedOutView is what the signed-out page shows and where it goes next.
type signedOutView struct {
	// Next is where the page continues once the widget is logged out: the IdP's end_session URL
	// or rd. Empty: stay.
	Next string
	// Link shows Next as a link instead of going there (Zendesk's remote logout: going back to a
	// help center that requires sign-in would log the visitor straight back in).
	Link bool
	// Message is Zendesk's kind=error message, shown escaped.
	Message string
}

// signedOutWaitMS bounds how long the page waits for the widget (window.zE) before it continues
// anyway, when zdgate put a widget snippet on it (--zendesk-snippet-key); without one the page
// looks once and moves on. The meta refresh is the fallback for a browser that runs no script.
const (
	signedOutWaitMS      = 4000
	signedOutRefreshSecs = "8"
)

// signedOutPage is the last answer of a successful sign-out (/oauth2/sign_out and
// /zendesk/sso/logout): the session is already gone. The page loads the loader and the widget
// snippet, the loader runs the widget's logout (zE('messenger','logoutUser') or
// zE('webWidget','logout')) and forgets the remembered user, then continues to v.Next. The widget
// state of the last user therefore never survives a sign-out on a shared device.
//
// The page runs under a strict CSP: scripts only by nonce ('strict-dynamic' lets the widget load
// its own parts), no inline handlers. Clear-Site-Data: "cache" drops cached pages of the user who
// just left; "cookies" and "storage" are not sent (see README, "Widget lifecycle").
func (p *Proxy) signedOutPage(w http.ResponseWriter, r *http.Request, v signedOutView) error {
	nonce := randomNonce()
	privatePage(w.Header(), "script-src 'nonce-"+nonce+"' 'strict-dynamic'; style-src 'nonce-"+nonce+"'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
	w.Header().Set("Clear-Site-Data", `"cache"`)
	var scripts, refresh template.HTML
	wait := 0 // no widget snippet on the page: nothing to wait for
	if inj := p.cfg.Injector; inj != nil {
		widget := inj.WidgetTag(nonce)
		if widget != nil {
			wait = signedOutWaitMS
		}
		scripts = template.HTML(string(inj.Tag(nonce)) + string(widget))
	}
	if v.Next != "" && !v.Link {
		wait := signedOutRefreshSecs
		if scripts == "" {
			wait = "0" // nothing to wait for
		}
		refresh = template.HTML(`<meta http-equiv="refresh" content="` + wait + `;url=` + html.EscapeString(v.Next) + `">`)
	}
	return signedOutTmpl.Execute(w, map[string]any{
		"Nonce": nonce, "Scripts": scripts, "Refresh": refresh, "Next": v.Next, "Link": v.Link,
		"Message": v.Message, "Wait": wait,
	})
}

// privatePage sets the headers of zdgate's own HTML pages that concern one person (the SSO form,
// the signed-out page): never cached, never a referrer, no sniffing, and their CSP.
func privatePage(h http.Header, csp string) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", csp)
}

var signedOutTmpl = template.Must(template.New("signed-out").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Signed out</title>{{.Refresh}}
<style nonce="{{.Nonce}}">body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}</style>
{{.Scripts}}</head>
<body><main id="zdgate-signed-out" data-next="{{.Next}}" data-link="{{.Link}}" data-wait="{{.Wait}}">
<h1>You are signed out</h1>{{if .Message}}<p>The help center said: {{.Message}}</p>{{end}}
{{if .Next}}<p><a id="zdgate-continue" href="{{.Next}}">{{if .Link}}Back to the help center{{else}}Continue{{end}}</a></p>{{end}}
</main></body></html>
`))
