package proxy

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// TestMultiChooseByQuery: /oauth2/start?provider=ID logs in at that IdP and no other, the login
// state carries the provider to the callback, the session belongs to it, and rd survives.
func TestMultiChooseByQuery(t *testing.T) {
	ms := newMultiStack(t, multiOpts{})
	c := ms.newClient()
	res, _ := ms.do(c, "GET", "/oauth2/start?provider=staff&rd=/after?x=1", nil)
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), ms.a.URL()+"/") {
		t.Fatalf("start?provider=staff = %d to %q; want a redirect to IdP A %s", res.StatusCode, res.Header.Get("Location"), ms.a.URL())
	}
	if got := ms.finishLogin(c, res.Header.Get("Location")); got != "/after?x=1" {
		t.Fatalf("callback sent the browser to %q; want rd /after?x=1", got)
	}
	s, err := ms.sessionAt(c, ms.front)
	if err != nil || s.Provider != "staff" {
		t.Fatalf("session = %v (provider %q); want one of provider staff", err, s.Provider)
	}
	if code, claims := ms.token(c, "", "messaging"); code != 200 || claims["external_id"] != "emp-u-1" || claims["email"] != staffUser.Email {
		t.Fatalf("token = %d %v; want staff's user with external_id emp-u-1", code, claims)
	}

	c2 := ms.newClient()
	if got := ms.loginVia(c2, "customers", "/c"); got != "/c" {
		t.Fatalf("customers login went to %q", got)
	}
	if code, claims := ms.token(c2, "", "messaging"); code != 200 || claims["external_id"] != "cust-u-1" || claims["email"] != customerUser.Email {
		t.Fatalf("customers token = %d %v; want external_id cust-u-1", code, claims)
	}
}

// TestMultiUnknownProvider: a provider id that does not exist is a clear 400, never a fallback to
// another provider.
func TestMultiUnknownProvider(t *testing.T) {
	ms := newMultiStack(t, multiOpts{})
	res, body := ms.do(ms.client, "GET", "/oauth2/start?provider=nobody", nil)
	if res.StatusCode != http.StatusBadRequest || jsonBody(t, body)["error"] != "unknown_provider" {
		t.Fatalf("start?provider=nobody = %d %s; want 400 unknown_provider", res.StatusCode, body)
	}
	res, body = ms.do(ms.client, "GET", "/oauth2/start?provider=%3Cscript%3E", map[string]string{"Accept": "text/html"})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "This sign-in option does not exist") || strings.Contains(body, "<script>") {
		t.Fatalf("start?provider=<script> for a browser = %d %s", res.StatusCode, body)
	}
	if n := ms.a.Count("authorize") + ms.b.Count("authorize"); n != 0 {
		t.Fatalf("an unknown provider led to %d authorize calls", n)
	}
}

// TestMultiChooseByHost: a request on a host of the staff provider logs in there, with that host's
// own callback, so the session cookie lands on the host the visitor is on; on the main host the
// only provider bound to no host (customers) is chosen.
func TestMultiChooseByHost(t *testing.T) {
	ms := newMultiStack(t, multiOpts{})
	c := ms.newClient()
	res, _ := ms.do(c, "GET", ms.staffURL+"/oauth2/start?rd=/desk", nil)
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), ms.a.URL()+"/") {
		t.Fatalf("start on %s = %d to %q; want IdP A", staffHost, res.StatusCode, loc)
	}
	if cb := loc.Query().Get("redirect_uri"); cb != ms.staffURL+"/oauth2/callback" {
		t.Fatalf("redirect_uri = %q; want the staff host's callback %s/oauth2/callback", cb, ms.staffURL)
	}
	if got := ms.finishLogin(c, loc.String()); got != "/desk" {
		t.Fatalf("callback sent the browser to %q; want /desk", got)
	}
	if code, claims := ms.token(c, ms.staffURL, "messaging"); code != 200 || claims["external_id"] != "emp-u-1" {
		t.Fatalf("token on the staff host = %d %v", code, claims)
	}
	if s, err := ms.sessionAt(c, ms.front); err == nil {
		t.Fatalf("the staff login left a session on the main host too: %v", s)
	}
	// An unauthenticated page on the staff host goes straight to A, the page as rd.
	c2 := ms.newClient()
	res, _ = ms.do(c2, "GET", ms.staffURL+"/tickets?id=7", map[string]string{"Accept": "text/html"})
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), ms.a.URL()+"/") {
		t.Fatalf("page on the staff host = %d to %q; want IdP A", res.StatusCode, res.Header.Get("Location"))
	}
	if got := ms.finishLogin(c2, res.Header.Get("Location")); got != "/tickets?id=7" {
		t.Fatalf("rd after a page-triggered login = %q", got)
	}
	// On the main host: the only provider not bound to a host.
	res, _ = ms.do(ms.newClient(), "GET", "/oauth2/start", nil)
	if !strings.HasPrefix(res.Header.Get("Location"), ms.b.URL()+"/") {
		t.Fatalf("start on the main host went to %q; want IdP B (the only unbound provider)", res.Header.Get("Location"))
	}
	// An Origin on the staff host is this site's own: same-origin for the token route.
	res, _ = ms.do(c, "GET", ms.staffURL+"/zendesk/token", map[string]string{"Origin": ms.staffURL})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("token with Origin %s = %d; want 200", ms.staffURL, res.StatusCode)
	}
}

// TestMultiChooser: with two providers bound to no host, a login shows an accessible chooser:
// plain HTML without any script (CSP forbids it), one link per provider with its display name;
// following a link logs in there and rd survives.
func TestMultiChooser(t *testing.T) {
	ms := newMultiStack(t, multiOpts{mutate: func(c *Config) { c.Providers[0].Hosts = nil }})
	c := ms.newClient()
	res, body := ms.do(c, "GET", "/reports/q3?tab=2", map[string]string{"Accept": "text/html"})
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("unauthenticated page = %d %q; want the chooser (200 HTML)", res.StatusCode, res.Header.Get("Content-Type"))
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("chooser headers: CSP %q, Cache-Control %q", csp, res.Header.Get("Cache-Control"))
	}
	links := chooserLinks(t, body)
	if len(links) != 2 || links["Acme employees"] == "" || links["Acme customers"] == "" {
		t.Fatalf("chooser links = %v; want one per provider by display name", links)
	}
	if strings.Contains(strings.ToLower(body), "<script") || strings.Contains(body, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(body) {
		t.Fatal("the chooser has a script or an inline handler")
	}
	if !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, "<h1") || !strings.Contains(body, "<nav aria-labelledby=") {
		t.Fatal("the chooser lacks a language, a heading or a labelled navigation list")
	}
	href := links["Acme customers"]
	u, _ := url.Parse(href)
	if u.Path != "/oauth2/start" || u.Query().Get("provider") != "customers" || u.Query().Get("rd") != "/reports/q3?tab=2" {
		t.Fatalf("chooser link = %q; want /oauth2/start?provider=customers&rd=/reports/q3?tab=2", href)
	}
	res, _ = ms.do(c, "GET", href, nil)
	if !strings.HasPrefix(res.Header.Get("Location"), ms.b.URL()+"/") {
		t.Fatalf("the customers link went to %q; want IdP B", res.Header.Get("Location"))
	}
	if got := ms.finishLogin(c, res.Header.Get("Location")); got != "/reports/q3?tab=2" {
		t.Fatalf("after the chooser the browser went to %q; want the page it asked for", got)
	}
	// /oauth2/start without a choice shows the chooser too, keeping rd.
	_, body = ms.do(ms.newClient(), "GET", "/oauth2/start?rd=/x", nil)
	if l := chooserLinks(t, body)["Acme employees"]; l != "/oauth2/start?provider=staff&rd=%2Fx" {
		t.Fatalf("chooser link from /oauth2/start?rd=/x = %q", l)
	}
}

// chooserLinks parses the chooser page: display name -> href.
func chooserLinks(t *testing.T, page string) map[string]string {
	t.Helper()
	out := map[string]string{}
	z := html.NewTokenizer(strings.NewReader(page))
	href := ""
	for {
		switch z.Next() {
		case html.ErrorToken:
			return out
		case html.StartTagToken:
			if tok := z.Token(); tok.Data == "a" {
				for _, a := range tok.Attr {
					if a.Key == "href" {
						href = a.Val
					}
				}
			}
		case html.TextToken:
			if href != "" {
				out[strings.TrimSpace(string(z.Text()))] = href
				href = ""
			}
		}
	}
}
