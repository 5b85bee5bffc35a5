package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserCrossSiteSignOutIsConfirmed is logout CSRF in a real browser: a page on another site
// (localhost is another site than 127.0.0.1) sends the logged-in user to /oauth2/sign_out by a
// link it clicks itself. Chromium carries the SameSite=Lax session cookie on that top-level
// navigation and says Sec-Fetch-Site: cross-site; zdgate must answer with its confirmation form
// and end nothing. Pressing the form's button then signs out.
func TestBrowserCrossSiteSignOutIsConfirmed(t *testing.T) {
	st := startDemoForTest(t, demoOptions{inject: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	evil := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><a id="go" href="`+st.url+`/oauth2/sign_out?rd=/">win a prize</a>
<script>document.getElementById('go').click()</script>`)
	})}
	go evil.Serve(ln)
	t.Cleanup(func() { evil.Close() })
	ctx := newBrowser(t)

	err = chromedp.Do(ctx,
		chromedp.Navigate(st.url+"/"),
		loginInBrowser(),
		waitJS(`window.__zdDemo && window.__zdDemo.jwts.length > 0`),
		chromedp.Navigate("http://localhost:"+port+"/"),
		waitJS(`location.href.startsWith("`+st.url+`/oauth2/sign_out") && !!document.getElementById("zdgate-sign-out")`),
	)
	if err != nil {
		t.Fatalf("cross-site link to sign_out: %v", err)
	}
	screenshot(t, ctx, "csrf-confirm")
	if h1 := eval[string](t, ctx, `document.querySelector('h1').textContent`); !strings.Contains(h1, "Sign out?") {
		t.Fatalf("cross-site sign_out showed %q; want the confirmation", h1)
	}
	// Still signed in: a page of the app gets a token for the user again.
	err = chromedp.Do(ctx,
		chromedp.Navigate(st.url+"/"),
		waitJS(`window.__zdDemo && window.__zdDemo.jwts.length > 0`),
	)
	if err != nil {
		t.Fatalf("after the cross-site attempt the user is no longer signed in: %v", err)
	}
	// The user confirms on the form: signed out for real.
	err = chromedp.Do(ctx,
		chromedp.Navigate("http://localhost:"+port+"/"),
		waitJS(`!!document.getElementById("zdgate-sign-out")`),
		chromedp.Click(chromedp.CSS(`#zdgate-sign-out`)),
		waitJS(`!location.href.includes("/oauth2/sign_out")`),
	)
	if err != nil {
		t.Fatalf("confirmed sign-out: %v", err)
	}
	// Signed out: the app's page sends the browser to the IdP's login form again.
	if err := chromedp.Do(ctx, chromedp.Navigate(st.url+"/"), chromedp.WaitVisible(chromedp.CSS(`#username`))); err != nil {
		t.Fatalf("after the confirmed sign-out the app did not ask for a login: %v", err)
	}
}
