package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/tokens"
)

// TestBrowserChooserToPrefixedWidget is the two-IdP demo in a real browser: the first page is
// the sign-in chooser (no script, plain links); choosing "Acme customers" leads through that IdP's
// login form back to the page, whose widget stand-in got a JWT for the customers' user with the
// cust- prefix, and says so. Signing out and choosing "Acme employees" gives the other identity,
// emp- prefixed.
func TestBrowserChooserToPrefixedWidget(t *testing.T) {
	st := startDemoForTest(t, demoOptions{inject: true, multi: true})
	ctx := newBrowser(t)
	for i, want := range []struct {
		id, name, prefix string
		user             oidctest.User
	}{
		{"customers", "Acme customers", "cust-", demoUser2},
		{"employees", "Acme employees", "emp-", demoUser},
	} {
		err := chromedp.Do(ctx,
			chromedp.Navigate(st.url+"/strict-csp?from=chooser"),
			chromedp.WaitVisible(chromedp.CSS(`#zdgate-providers`)),
		)
		if err != nil {
			t.Fatalf("%s: the chooser: %v", want.name, err)
		}
		screenshot(t, ctx, "chooser")
		if n := eval[int](t, ctx, `document.scripts.length`); n != 0 {
			t.Fatalf("the chooser page runs %d scripts; want none", n)
		}
		names := eval[string](t, ctx, `Array.from(document.querySelectorAll('#zdgate-providers a')).map(a => a.textContent).join('|')`)
		if names != "Acme employees|Acme customers" {
			t.Fatalf("chooser lists %q", names)
		}
		err = chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(`#zdgate-providers a[href^="/oauth2/start?provider=`+want.id+`&"]`)),
			loginAs(want.user),
			waitJS(`location.pathname === '/strict-csp' && location.search === '?from=chooser'`),
			waitJS(`window.__zdDemo && window.__zdDemo.jwts.length > 0 && document.getElementById('zd-identity')`),
		)
		if err != nil {
			t.Fatalf("%s: chooser → login → page: %v", want.name, err)
		}
		screenshot(t, ctx, "widget-"+want.prefix)
		jwt := eval[string](t, ctx, `window.__zdDemo.jwts[0]`)
		res := tokens.Verify(jwt, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte(st.secrets["messaging"]), KeyID: st.secrets["messaging_key_id"]})
		if len(res.Problems) > 0 {
			t.Fatalf("%s: the widget's JWT does not verify: %v", want.name, res.Problems)
		}
		if res.Claims["external_id"] != want.prefix+want.user.Subject || res.Claims["email"] != want.user.Email {
			t.Fatalf("%s: claims %v; want external_id %s%s", want.name, res.Claims, want.prefix, want.user.Subject)
		}
		shown := eval[string](t, ctx, `document.getElementById('zd-identity').textContent`)
		if !strings.Contains(shown, want.name) || !strings.Contains(shown, "carries its prefix "+want.prefix) {
			t.Fatalf("%s: the stand-in shows %q", want.name, shown)
		}
		if got := eval[string](t, ctx, `document.getElementById('hdr-provider').textContent`); got != want.id {
			t.Fatalf("%s: the app was told X-Forwarded-Provider %q", want.name, got)
		}
		if i == 0 {
			err = chromedp.Do(ctx,
				chromedp.Navigate(st.url+"/oauth2/sign_out?rd=/public/help"),
				waitJS(`location.pathname === '/public/help'`),
			)
			if err != nil {
				t.Fatalf("sign out: %v", err)
			}
		}
	}
}
