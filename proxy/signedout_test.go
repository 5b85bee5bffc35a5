package proxy

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/proxy/inject"
)

var (
	nextAttr  = regexp.MustCompile(`data-next="([^"]*)"`)
	linkAttr  = regexp.MustCompile(`data-link="([^"]*)"`)
	scriptTag = regexp.MustCompile(`<script\b[^>]*>`)
	nonceAttr = regexp.MustCompile(`nonce="([^"]*)"`)
)

// signedOutNext checks that an answer is zdgate's signed-out page, served the way it must be
// (200, no-store, Clear-Site-Data, a strict CSP whose nonce is on every script and nothing
// inline), and returns where it continues (data-next) and whether only as a link.
func signedOutNext(t *testing.T, res *http.Response, body string) (next string, link bool) {
	t.Helper()
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="zdgate-signed-out"`) {
		t.Fatalf("answer = %d %q; want the signed-out page", res.StatusCode, body)
	}
	h := res.Header
	if !strings.Contains(h.Get("Cache-Control"), "no-store") || h.Get("Clear-Site-Data") != `"cache"` {
		t.Errorf("headers %v; want Cache-Control no-store and Clear-Site-Data \"cache\"", h)
	}
	csp := h.Get("Content-Security-Policy")
	m := regexp.MustCompile(`script-src 'nonce-([^']+)' 'strict-dynamic'`).FindStringSubmatch(csp)
	if m == nil || !strings.Contains(csp, "object-src 'none'") || !strings.Contains(csp, "base-uri 'none'") {
		t.Fatalf("CSP %q; want script-src by nonce with strict-dynamic, no objects, no base", csp)
	}
	for _, tag := range scriptTag.FindAllString(body, -1) {
		if n := nonceAttr.FindStringSubmatch(tag); n == nil || n[1] != m[1] || !strings.Contains(tag, "src=") {
			t.Errorf("script tag %s; want an external script with the CSP nonce %q", tag, m[1])
		}
	}
	if strings.Contains(body, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(body) {
		t.Errorf("the page has an inline event handler: %s", body)
	}
	if n := nextAttr.FindStringSubmatch(body); n != nil {
		next = html.UnescapeString(n[1])
	}
	if l := linkAttr.FindStringSubmatch(body); l != nil {
		link = l[1] == "true"
	}
	return next, link
}

func TestSignedOutPageRunsTheWidgetLogout(t *testing.T) {
	st := newStack(t, stackOpts{mutate: func(c *Config) {
		inj, err := inject.New(inject.Config{WidgetScriptURL: "https://static.zdassets.com/ekr/snippet.js?key=k"})
		if err != nil {
			t.Fatal(err)
		}
		c.Injector = inj
	}})
	st.login(st.client, "/")
	res, body := st.do(st.client, "GET", "/oauth2/sign_out?rd=/bye", nil)
	next, link := signedOutNext(t, res, body)
	if link || !strings.HasPrefix(next, st.idp.URL()) || !strings.Contains(next, "id_token_hint=") {
		t.Fatalf("next = %q (link %v); want the IdP's end_session URL, automatically", next, link)
	}
	// The loader (which runs the logout) and the widget snippet are on the page.
	if !strings.Contains(body, `src="/zendesk/auth.js?v=`) || !strings.Contains(body, `src="https://static.zdassets.com/ekr/snippet.js?key=k"`) {
		t.Errorf("page %s; want the loader and the widget snippet", body)
	}
	if !strings.Contains(body, `data-wait="4000"`) {
		t.Errorf("page %s; want a bounded wait for the widget", body)
	}
	// A meta refresh continues even where no script runs.
	if !strings.Contains(body, `http-equiv="refresh"`) {
		t.Errorf("page %s; want a meta refresh fallback", body)
	}
	if _, err := st.sessionOf(st.client); err == nil {
		t.Fatal("session still valid after sign out")
	}
	// The cookie was deleted in the same answer.
	if !strings.Contains(strings.Join(res.Header.Values("Set-Cookie"), "\n"), "Max-Age=0") {
		t.Errorf("Set-Cookie %q; want the session cookie deleted", res.Header.Values("Set-Cookie"))
	}
}

func TestSignedOutPageWithoutEndSessionGoesToRD(t *testing.T) {
	st := newStack(t, stackOpts{idp: oidctest.Options{Disable: []string{"end_session"}}})
	st.login(st.client, "/")
	res, body := st.do(st.client, "POST", "/oauth2/sign_out?rd=/bye", nil)
	if next, _ := signedOutNext(t, res, body); next != "/bye" {
		t.Fatalf("next = %q; want /bye", next)
	}
	// No widget snippet on this page (no --zendesk-snippet-key): nothing to wait for.
	if !strings.Contains(body, `data-wait="0"`) {
		t.Errorf("page %s; want data-wait=\"0\" without a widget snippet", body)
	}
	// A hostile rd is never where the page goes.
	res, body = st.do(st.client, "GET", "/oauth2/sign_out?rd="+url.QueryEscape("https://evil.example/"), nil)
	if next, _ := signedOutNext(t, res, body); next != "/" {
		t.Fatalf("next = %q for a foreign rd; want /", next)
	}
}

func TestSSOLogoutPageStaysWithALink(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	res, body := st.do(st.client, "GET", "/zendesk/sso/logout?kind=error&message="+url.QueryEscape("<b>bad</b>")+"&return_to="+url.QueryEscape("https://acme.zendesk.com/hc"), nil)
	next, link := signedOutNext(t, res, body)
	if next != "https://acme.zendesk.com/hc" || !link {
		t.Fatalf("next = %q, link %v; want return_to as a link only (no automatic login loop)", next, link)
	}
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("remote logout page refreshes to the help center; want a link only")
	}
	if !strings.Contains(body, "&lt;b&gt;bad&lt;/b&gt;") {
		t.Errorf("Zendesk's message not shown escaped: %s", body)
	}
	if _, err := st.sessionOf(st.client); err == nil {
		t.Fatal("session still valid after remote logout")
	}
}
