package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/tokens"
)

// The widget lifecycle end to end (issue 11's Proof): headless Chromium, the demo's IdP and app,
// and the widget stand-in, which POSTs every zE call to the demo app. That log lives on the
// server, so it survives navigations and cleared cookies or storage, and the tests read it here.

// loginAs fills the demo IdP's login form as u.
func loginAs(u oidctest.User) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), u.PreferredUsername),
		chromedp.SendKeys(chromedp.CSS(`#password`), u.Password),
		chromedp.Click(chromedp.CSS(`#login`)),
	)
}

// waitFor polls cond (bounded to 20 s) and fails the test with what it was waiting for.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling an observable condition, not waiting for expiry
	}
}

// settled waits until the stand-in's log has not grown for half a second (bounded by waitFor).
func settled(t *testing.T, st *demoStack) {
	t.Helper()
	n, since := len(callsOf(st)), time.Now()
	waitFor(t, "the widget's calls to settle", func() bool {
		if m := len(callsOf(st)); m != n {
			n, since = m, time.Now()
		}
		return time.Since(since) >= 500*time.Millisecond
	})
}

// callsOf returns the stand-in's log as "call[:sub]" strings, e.g. "jwt:demo-user-0001".
func callsOf(st *demoStack) []string {
	var out []string
	for _, c := range st.app.standinCalls() {
		s := c.Call
		if c.Sub != "" {
			s += ":" + c.Sub
		}
		out = append(out, s)
	}
	return out
}

func indexOf(calls []string, want string, from int) int {
	for i := from; i < len(calls); i++ {
		if calls[i] == want {
			return i
		}
	}
	return -1
}

func countCalls(calls []string, want string) int {
	n := 0
	for _, c := range calls {
		if c == want {
			n++
		}
	}
	return n
}

// metric returns the value of one sample line of the demo's /metrics ("" when absent).
func metric(t *testing.T, st *demoStack, series string) string {
	t.Helper()
	res, err := http.Get("http://" + st.zdgate.metricsLn.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func verifyMessagingJWT(t *testing.T, st *demoStack, jwt string) map[string]any {
	t.Helper()
	res := tokens.Verify(jwt, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte(st.secrets["messaging"]), KeyID: st.secrets["messaging_key_id"]})
	if len(res.Problems) > 0 || len(res.Warnings) > 0 {
		t.Fatalf("the widget's JWT does not verify: %v %v", res.Problems, res.Warnings)
	}
	return res.Claims
}

// lastJWT is the newest token the stand-in received.
func lastJWT(st *demoStack) (jwt, sub string) {
	calls := st.app.standinCalls()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].Call == "jwt" {
			return calls[i].JWT, calls[i].Sub
		}
	}
	return "", ""
}

// pageClock makes every later page of the tab run setTimeout on a virtual clock: timers fire in
// the order they are due, at once, so a widget that appears "70 s late" takes a few real
// milliseconds, and the order of the loader's 60 s report and the widget's arrival is exact.
const pageClock = `(function () {
  var realTimeout = window.setTimeout.bind(window);
  var now = 0, seq = 0, queue = [], pumping = false;
  function pump() {
    pumping = false;
    if (!queue.length) return;
    queue.sort(function (a, b) { return a.at - b.at || a.id - b.id; });
    var t = queue.shift();
    if (t.at > now) now = t.at;
    try { t.f.apply(window, t.args); } finally { schedule(); }
  }
  function schedule() { if (!pumping && queue.length) { pumping = true; realTimeout(pump, 0); } }
  window.setTimeout = function (f, ms) {
    if (typeof f !== 'function') return 0;
    var id = ++seq;
    queue.push({ at: now + (+ms || 0), f: f, args: Array.prototype.slice.call(arguments, 2), id: id });
    schedule();
    return id;
  };
  window.clearTimeout = function (id) { queue = queue.filter(function (t) { return t.id !== id; }); };
  window.__pageClock = function () { return now; };
})();`

func addPageClock(id *string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: pageClock})
		if err == nil {
			*id = string(res.Identifier)
		}
		return err
	})
}

func removePageClock(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.RemoveScriptToEvaluateOnNewDocument, page.RemoveScriptToEvaluateOnNewDocumentParams{Identifier: page.ScriptIdentifier(id)})
		return err
	})
}

func clearCookies() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.ClearBrowserCookies, cdp.Empty{})
		return err
	})
}

// TestBrowserWidgetLifecycle walks one browser through login, a jwtCallback call again, a
// LoginFailedError, a widget that appears 70 s late, sign-out, a login as the second user and a
// revocation at the IdP.
func TestBrowserWidgetLifecycle(t *testing.T) {
	// Every token request re-checks at the IdP, so a revocation shows at the next jwtCallback.
	var logs syncBuffer
	st := startDemoStack(t, demoOptions{inject: true, recheckInterval: time.Millisecond, logLevel: "info"}, &logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("zdgate log:\n%s", logs.String())
		}
	})
	ctx := newBrowser(t)
	alice, bob := demoUser.Subject, demoUser2.Subject
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\nstand-in log: %v", name, err, callsOf(st))
		}
	}

	// 1. Login: the widget gets Alice's verified JWT.
	step("login", chromedp.Navigate(st.url+"/"), loginAs(demoUser))
	waitFor(t, "Alice's JWT", func() bool { return countCalls(callsOf(st), "jwt:"+alice) == 1 })
	screenshot(t, ctx, "lifecycle-1-alice-logged-in")
	first, _ := lastJWT(st)
	verifyMessagingJWT(t, st, first)

	// 2. The stand-in calls jwtCallback again (as the widget does when a JWT expires): a second,
	// freshly minted, valid token.
	minted := metric(t, st, `zdgate_tokens_minted_total{flavor="messaging"}`)
	step("jwtCallback again", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](`window.__zdDemo.askAgain()`)(ctx, tg)
		return err
	}))
	waitFor(t, "a second JWT", func() bool { return countCalls(callsOf(st), "jwt:"+alice) == 2 })
	second, _ := lastJWT(st)
	if c := verifyMessagingJWT(t, st, second); c["external_id"] != alice {
		t.Fatalf("second JWT claims %v; want Alice", c)
	}
	if after := metric(t, st, `zdgate_tokens_minted_total{flavor="messaging"}`); after == minted {
		t.Fatalf("tokens minted stayed %s: jwtCallback was not given a fresh token", after)
	}

	// 3. Zendesk refuses a login (LoginFailedError): the loader reports it, the metric rises.
	step("login failure", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](`sessionStorage.setItem('zd-standin-fail', '1'); location.reload()`)(ctx, tg)
		return err
	}))
	waitFor(t, "the stand-in's LoginFailedError", func() bool { return indexOf(callsOf(st), "loginCallback", 0) >= 0 })
	failed := `zdgate_widget_events_total{event="login_failed",flavor="messaging",reason="conflict"}`
	waitFor(t, failed, func() bool { return metric(t, st, failed) == "1" })
	screenshot(t, ctx, "lifecycle-2-login-failed")

	// 4. A widget that appears 70 s late (page clock) still gets logged in; the loader reports
	// widget_missing at 60 s and keeps waiting.
	var clockID string
	before := countCalls(callsOf(st), "jwt:"+alice)
	step("late widget", addPageClock(&clockID), chromedp.Navigate(st.url+"/public/late"))
	waitFor(t, "a login on the late page", func() bool { return countCalls(callsOf(st), "jwt:"+alice) > before })
	missing := `zdgate_widget_events_total{event="widget_missing",flavor="messaging",reason="timeout"}`
	if v := metric(t, st, missing); v != "1" {
		t.Errorf("%s = %q; want 1 (reported before the widget came)", missing, v)
	}
	if clock := eval[float64](t, ctx, `window.__pageClock()`); clock < 70000 {
		t.Errorf("page clock at %v ms; want the widget to have come after 70 s", clock)
	}
	screenshot(t, ctx, "lifecycle-3-late-widget")
	step("page clock off", removePageClock(clockID))

	// 5. Sign-out: logoutUser is recorded before the browser reaches the IdP's end_session.
	var endSessionsAtLogout atomic.Int64
	endSessionsAtLogout.Store(-1)
	st.app.mu.Lock()
	st.app.onCall = func(c standinCall) {
		if c.Call == "messenger.logoutUser" && endSessionsAtLogout.Load() < 0 {
			endSessionsAtLogout.Store(int64(st.idp.Count("end_session")))
		}
	}
	st.app.mu.Unlock()
	ends := st.idp.Count("end_session")
	step("sign out", chromedp.Navigate(st.url+"/oauth2/sign_out?rd=/public/help"))
	waitFor(t, "the browser back at /public/help", func() bool {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		u, err := url.Parse(loc)
		return err == nil && u.Path == "/public/help"
	})
	if got := endSessionsAtLogout.Load(); got != int64(ends) {
		t.Fatalf("end_session calls when logoutUser arrived = %d; want %d (logoutUser before the IdP); log %v", got, ends, st.app.standinCalls())
	}
	if st.idp.Count("end_session") != ends+1 {
		t.Fatalf("end_session calls = %d; want %d; sessions ended %q", st.idp.Count("end_session"), ends+1, metric(t, st, `zdgate_sessions_ended_total{reason="sign_out"}`))
	}
	screenshot(t, ctx, "lifecycle-4-signed-out")

	// 6. Bob logs in on the same browser: his JWT, with his sub.
	mark := len(callsOf(st))
	step("login as Bob", chromedp.Navigate(st.url+"/"), loginAs(demoUser2))
	waitFor(t, "Bob's JWT", func() bool { return indexOf(callsOf(st), "jwt:"+bob, mark) >= 0 })
	jwt, _ := lastJWT(st)
	if c := verifyMessagingJWT(t, st, jwt); c["external_id"] != bob || c["email"] != demoUser2.Email {
		t.Fatalf("Bob's JWT claims %v", c)
	}
	screenshot(t, ctx, "lifecycle-5-bob-logged-in")

	// 7. The IdP revokes Bob: the next jwtCallback meets 401 session_revoked and logs the widget out.
	// The page's own calls settle first: a token fetched before the revocation, whose record
	// reaches the recorder late, is not one "after the revocation".
	settled(t, st)
	st.idp.DeleteUser(bob)
	mark = len(callsOf(st))
	step("jwtCallback after revocation", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](`window.__zdDemo.askAgain()`)(ctx, tg)
		return err
	}))
	waitFor(t, "logoutUser after the revocation", func() bool { return indexOf(callsOf(st), "messenger.logoutUser", mark) >= 0 })
	if calls := callsOf(st)[mark:]; indexOf(calls, "jwt:"+bob, 0) >= 0 {
		t.Fatalf("a token reached the widget after the revocation: %v", calls)
	}
	screenshot(t, ctx, "lifecycle-6-revoked")
}

// TestBrowserUserSwitchOnOneProfile: Alice logs in, the cookies are cleared (storage is not), Bob
// logs in: logoutUser comes between Alice's and Bob's loginUser, and Bob's JWT carries Bob's sub.
func TestBrowserUserSwitchOnOneProfile(t *testing.T) {
	st := startDemoForTest(t, demoOptions{inject: true})
	ctx := newBrowser(t)
	alice, bob := demoUser.Subject, demoUser2.Subject
	if err := chromedp.Do(ctx, chromedp.Navigate(st.url+"/"), loginAs(demoUser)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Alice's JWT", func() bool { return indexOf(callsOf(st), "jwt:"+alice, 0) >= 0 })
	if err := chromedp.Do(ctx, clearCookies(), chromedp.Navigate(st.url+"/"), loginAs(demoUser2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Bob's JWT", func() bool { return indexOf(callsOf(st), "jwt:"+bob, 0) >= 0 })
	screenshot(t, ctx, "switch-bob")
	calls := callsOf(st)
	a := indexOf(calls, "jwt:"+alice, 0)
	out := indexOf(calls, "messenger.logoutUser", a)
	loginB := indexOf(calls, "messenger.loginUser", out)
	b := indexOf(calls, "jwt:"+bob, 0)
	if a < 0 || out < 0 || loginB < 0 || !(a < out && out < loginB && loginB < b) {
		t.Fatalf("stand-in log %v; want Alice's login, logoutUser, then Bob's loginUser", calls)
	}
	jwt, _ := lastJWT(st)
	if c := verifyMessagingJWT(t, st, jwt); c["external_id"] != bob {
		t.Fatalf("Bob's JWT carries %v; want sub %s", c["external_id"], bob)
	}
}

// TestBrowserAnonymousVisitorNeverLoggedOut: with --auth-mode optional a visitor who never logged in
// gets no logoutUser (which could wipe an anonymous conversation), on any page.
func TestBrowserAnonymousVisitorNeverLoggedOut(t *testing.T) {
	st := startDemoForTest(t, demoOptions{inject: true, authMode: "optional"})
	ctx := newBrowser(t)
	for _, path := range []string{"/", "/public/help", "/"} {
		err := chromedp.Do(ctx,
			chromedp.Navigate(st.url+path),
			waitJS(`window.zdgate && window.__zdDemo`),
			// refresh() settles after the loader's first check of the session on this page.
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := chromedp.Evaluate[any](`window.__settled = false; window.zdgate.refresh().then(function () { window.__settled = true; })`)(ctx, tg)
				return err
			}),
			waitJS(`window.__settled`),
		)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if n := eval[int](t, ctx, `window.__zdDemo.logouts`); n != 0 {
			t.Fatalf("%s: %d logoutUser calls for an anonymous visitor", path, n)
		}
	}
	if calls := callsOf(st); indexOf(calls, "messenger.logoutUser", 0) >= 0 || indexOf(calls, "messenger.loginUser", 0) >= 0 {
		t.Fatalf("stand-in log %v; want neither loginUser nor logoutUser for an anonymous visitor", calls)
	}
	if got := metric(t, st, `zdgate_http_requests_total{code="401",route="/zendesk/token"}`); got == "" {
		t.Fatal("the loader never asked the token route")
	}
	screenshot(t, ctx, "anonymous")
}
