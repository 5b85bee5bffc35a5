package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zdgate/zdgate/internal/e2e"
	"github.com/zdgate/zdgate/tokens"
)

// startDemoForTest runs the whole demo stack on random loopback ports until the test ends.
func startDemoForTest(t *testing.T, o demoOptions) *demoStack {
	t.Helper()
	o.logLevel = "error"
	return startDemoStack(t, o, io.Discard)
}

// newBrowser starts headless Chromium (Debian's package) with the flags that keep it off the network.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := e2e.LookPath(t, "run `make test-deps` (installs Debian's chromium)", "chromium", "chromium-browser", "google-chrome")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// loginInBrowser fills the demo IdP's login form.
func loginInBrowser() chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), demoUser.PreferredUsername),
		chromedp.SendKeys(chromedp.CSS(`#password`), demoUser.Password),
		chromedp.Click(chromedp.CSS(`#login`)),
	)
}

// eval runs a JavaScript expression and returns its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("ZDGATE_SCREENSHOTS")
	if dir == "" {
		return
	}
	if buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
	}
}

// waitJS polls a JavaScript expression until it is true, across page navigations (a login
// redirects a few times), bounded to 20 s.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		deadline := time.Now().Add(20 * time.Second)
		var lastErr error
		for time.Now().Before(deadline) {
			ok, err := chromedp.Evaluate[bool]("!!("+expr+")")(ctx, t)
			if err == nil && ok {
				return nil
			}
			lastErr = err
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		return fmt.Errorf("timed out waiting for %s (last error: %v)", expr, lastErr)
	})
}

func TestBrowserLoginInjectsLoaderAndWidgetGetsVerifiedJWT(t *testing.T) {
	st := startDemoForTest(t, demoOptions{inject: true})
	ctx := newBrowser(t)

	err := chromedp.Do(ctx,
		chromedp.Navigate(st.url+"/"),
		loginInBrowser(),
		waitJS(`window.__zdDemo && window.__zdDemo.jwts.length > 0`),
		waitJS(`window.__zdDemo.verified !== undefined`),
	)
	if err != nil {
		t.Fatalf("login and widget: %v", err)
	}
	screenshot(t, ctx, "1-logged-in")
	jwt := eval[string](t, ctx, `window.__zdDemo.jwts[0]`)
	if !eval[bool](t, ctx, `!!document.querySelector('script[src^="/zendesk/auth.js?v="]')`) {
		t.Error("the page has no injected /zendesk/auth.js tag")
	}
	if !eval[bool](t, ctx, `window.__zdDemo.verified.valid === true`) {
		t.Error("the demo app did not confirm the token")
	}
	res := tokens.Verify(jwt, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte(st.secrets["messaging"]), KeyID: st.secrets["messaging_key_id"]})
	if len(res.Problems) > 0 {
		t.Fatalf("the JWT the widget received does not verify: %v", res.Problems)
	}
	if res.Claims["external_id"] != demoUser.Subject || res.Claims["email"] != demoUser.Email {
		t.Fatalf("claims = %v; want external_id %q (the IdP sub)", res.Claims, demoUser.Subject)
	}

	// Sign out: the signed-out page logs the widget out, then the IdP sends the browser to the
	// public page, which loads anonymously: no token, and no second logout.
	err = chromedp.Do(ctx,
		chromedp.Navigate(st.url+"/oauth2/sign_out?rd=/public/help"),
		waitJS(`location.pathname === '/public/help' && window.__zdDemo && window.zdgate`),
		waitJS(`document.getElementById('zd-status') !== null`),
	)
	if err != nil {
		t.Fatalf("sign out: %v", err)
	}
	screenshot(t, ctx, "2-signed-out")
	waitFor(t, "logoutUser on the signed-out page", func() bool { return indexOf(callsOf(st), "messenger.logoutUser", 0) >= 0 })
	if n := eval[int](t, ctx, `window.__zdDemo.jwts.length`); n != 0 {
		t.Fatalf("after sign out the widget received %d tokens; want none", n)
	}

	// Strict CSP page: the injected tags carry the page's nonce, so the loader still runs.
	err = chromedp.Do(ctx,
		chromedp.Navigate(st.url+"/strict-csp"),
		loginInBrowser(),
		waitJS(`window.__zdDemo && window.__zdDemo.jwts.length > 0`),
	)
	if err != nil {
		t.Fatalf("strict CSP page: %v", err)
	}
	screenshot(t, ctx, "3-strict-csp")
	if !eval[bool](t, ctx, `document.querySelector('script[src^="/zendesk/auth.js?v="]').nonce !== ''`) {
		t.Error("injected tag on the CSP page has no nonce")
	}
	cspJWT := eval[string](t, ctx, `window.__zdDemo.jwts[0]`)
	if r := tokens.Verify(cspJWT, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte(st.secrets["messaging"])}); len(r.Problems) > 0 {
		t.Fatalf("CSP page JWT: %v", r.Problems)
	}
}

func TestBrowserClassicChatWidget(t *testing.T) {
	st := startDemoForTest(t, demoOptions{inject: true, flavor: "chat"})
	ctx := newBrowser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(st.url+"/"),
		loginInBrowser(),
		waitJS(`window.__zdDemo && window.__zdDemo.jwts.length > 0`),
	)
	if err != nil {
		t.Fatalf("chat widget: %v", err)
	}
	jwt := eval[string](t, ctx, `window.__zdDemo.jwts[0]`)
	res := tokens.Verify(jwt, tokens.VerifyOptions{Flavor: tokens.Chat, Secret: []byte(st.secrets["chat"])})
	if len(res.Problems) > 0 {
		t.Fatalf("chat JWT from jwtFn does not verify: %v", res.Problems)
	}
	if res.Claims["external_id"] != demoUser.Subject {
		t.Fatalf("chat claims = %v", res.Claims)
	}
}
