package inject

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zdgate/zdgate/internal/e2e"
)

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want []string // each must appear in the error
	}{
		{"negative limit", Config{ScanLimit: -1}, []string{"ScanLimit"}},
		{"flavor", Config{Flavor: "sso"}, []string{"Flavor", `"sso"`}},
		{"relative token path", Config{TokenPath: "zendesk/token"}, []string{"TokenPath"}},
		{"protocol-relative script path", Config{ScriptPath: "//evil.example/x.js"}, []string{"ScriptPath"}},
		{"quote in path", Config{ScriptPath: `/a"b.js`}, []string{"ScriptPath"}},
		{"query in path", Config{TokenPath: "/t?x=1"}, []string{"TokenPath"}},
		{"javascript widget", Config{WidgetScriptURL: "javascript:alert(1)"}, []string{"WidgetScriptURL"}},
		{"relative widget", Config{WidgetScriptURL: "/snippet.js"}, []string{"WidgetScriptURL"}},
		{"all at once", Config{ScanLimit: -5, Flavor: "x", TokenPath: "t", ScriptPath: "s"},
			[]string{"ScanLimit", "Flavor", "TokenPath", "ScriptPath"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			i, err := New(tc.cfg)
			if err == nil {
				t.Fatalf("New(%+v) = %v, nil; want an error", tc.cfg, i)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestTag(t *testing.T) {
	i, _ := newTestInjector(t, Config{})
	v := i.Version()
	if len(v) != 16 {
		t.Fatalf("Version() = %q; want 16 hex digits", v)
	}
	cases := []struct{ nonce, want string }{
		{"", `<script src="/zendesk/auth.js?v=` + v + `" defer></script>`},
		{"abc", `<script src="/zendesk/auth.js?v=` + v + `" defer nonce="abc"></script>`},
		{`a"><script>`, `<script src="/zendesk/auth.js?v=` + v + `" defer nonce="a&#34;&gt;&lt;script&gt;"></script>`},
	}
	for _, tc := range cases {
		if got := string(i.Tag(tc.nonce)); got != tc.want {
			t.Errorf("Tag(%q) = %s; want %s", tc.nonce, got, tc.want)
		}
	}
	// The returned slice is the caller's.
	b := i.Tag("")
	b[1] = 'X'
	if string(i.Tag(""))[1] != 's' {
		t.Fatal("Tag shares its bytes with the injector")
	}
	custom, _ := newTestInjector(t, Config{ScriptPath: "/auth/zd.js"})
	if got := string(custom.Tag("")); !strings.HasPrefix(got, `<script src="/auth/zd.js?v=`) {
		t.Errorf("Tag with ScriptPath = %s", got)
	}
}

func TestSnippetURL(t *testing.T) {
	if got, want := SnippetURL("a b&c"), "https://static.zdassets.com/ekr/snippet.js?key=a+b%26c"; got != want {
		t.Fatalf("SnippetURL = %q; want %q", got, want)
	}
}

func TestVersionFollowsContent(t *testing.T) {
	base, _ := newTestInjector(t, Config{})
	again, _ := newTestInjector(t, Config{Flavor: FlavorMessaging, TokenPath: "/zendesk/token"})
	if base.Version() != again.Version() {
		t.Fatalf("same configuration, versions %s and %s", base.Version(), again.Version())
	}
	for _, cfg := range []Config{{Flavor: FlavorChat}, {TokenPath: "/zd/token"}} {
		other, _ := newTestInjector(t, cfg)
		if other.Version() == base.Version() {
			t.Errorf("%+v: version %s unchanged", cfg, other.Version())
		}
	}
	// The widget snippet is not part of auth.js.
	w, _ := newTestInjector(t, Config{WidgetScriptURL: SnippetURL("k")})
	if w.Version() != base.Version() {
		t.Errorf("WidgetScriptURL changed the script version")
	}
}

func TestServeScript(t *testing.T) {
	i, _ := newTestInjector(t, Config{Flavor: FlavorChat, TokenPath: "/zd/token"})
	srv := httptest.NewServer(http.HandlerFunc(i.ServeScript))
	defer srv.Close()
	get := func(method, query string, h http.Header) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/zendesk/auth.js"+query, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		return res, readBody(t, res)
	}

	res, body := get(http.MethodGet, "?v="+i.Version(), nil)
	if res.StatusCode != 200 || body != string(i.js) {
		t.Fatalf("GET: %d, %d bytes", res.StatusCode, len(body))
	}
	wantHeaders := map[string]string{
		"Content-Type":           "application/javascript; charset=utf-8",
		"Cache-Control":          "public, max-age=31536000, immutable",
		"ETag":                   `"` + i.Version() + `"`,
		"X-Content-Type-Options": "nosniff",
	}
	for k, v := range wantHeaders {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s = %q; want %q", k, got, v)
		}
	}
	for _, s := range []string{"loginUser", "logoutUser", "jwtFn", "credentials: 'same-origin'", "'X-Requested-With': 'zdgate'",
		"'use strict'", `{"flavor":"chat","tokenPath":"/zd/token","eventsPath":"/zendesk/events","signOutPath":"/oauth2/sign_out","version":"` + i.Version() + `"}`} {
		if !strings.Contains(body, s) {
			t.Errorf("auth.js does not contain %q", s)
		}
	}
	for _, s := range []string{"eval(", "new Function", "innerHTML", "document.write"} {
		if strings.Contains(body, s) {
			t.Errorf("auth.js contains %q", s)
		}
	}

	for _, q := range []string{"", "?v=0000000000000000"} {
		if res, _ := get(http.MethodGet, q, nil); res.Header.Get("Cache-Control") != "public, max-age=300" {
			t.Errorf("GET %q: Cache-Control %q; want a short one", q, res.Header.Get("Cache-Control"))
		}
	}
	if res, body := get(http.MethodGet, "", http.Header{"If-None-Match": {`"` + i.Version() + `"`}}); res.StatusCode != 304 || body != "" {
		t.Errorf("revalidation: %d %q; want 304", res.StatusCode, body)
	}
	if res, body := get(http.MethodHead, "", nil); res.StatusCode != 200 || body != "" || res.ContentLength != int64(len(i.js)) {
		t.Errorf("HEAD: %d, body %q, length %d", res.StatusCode, body, res.ContentLength)
	}
	if res, _ := get(http.MethodPost, "", nil); res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

// TestAuthJSInNode runs auth.js against a stub widget and a stub fetch in
// Node, when Node is installed. The real widget is exercised by the browser
// test; this pins the loader's own behaviour.
func TestAuthJSInNode(t *testing.T) {
	node := e2e.LookPath(t, "run `make test-deps` (installs Debian's nodejs)", "node")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m, _ := newTestInjector(t, Config{})
	c, _ := newTestInjector(t, Config{Flavor: FlavorChat})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, write("harness.js", []byte(nodeHarness)),
		write("messaging.js", m.js), write("chat.js", c.js)).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("node: %v\n%s", err, out)
	}
}

const nodeHarness = `'use strict';
const fs = require('fs');
const vm = require('vm');
const messaging = fs.readFileSync(process.argv[2], 'utf8');
const chat = fs.readFileSync(process.argv[3], 'utf8');
const failures = [];
function check(cond, msg) { if (!cond) failures.push(msg); }
const realTick = () => new Promise((r) => setImmediate(r));
// A page clock shared by every page: timers run in the order they are due, instantly, with the
// promises they start settled in between, so a 70 s wait is exact and takes no time.
const clk = (function () {
  let now = 0, seq = 0;
  const q = [];
  return {
    setTimeout: (f, ms) => { q.push({ at: now + (ms || 0), f: f, seq: seq++ }); },
    advance: async (ms) => {
      const end = now + ms;
      for (;;) {
        for (let i = 0; i < 5; i++) await realTick();
        q.sort((a, b) => a.at - b.at || a.seq - b.seq);
        if (!q.length || q[0].at > end) break;
        const t = q.shift();
        now = t.at;
        t.f();
      }
      now = end;
    },
  };
})();
// tick(n) lets n page-clock seconds pass.
const tick = (s) => clk.advance(s * 1000);

// page builds a window. Its fetch answers the token route from answers (a list of
// {status, user, error}; after it runs out, 200 for user "U1") with tokens jwt1, jwt2, ..., and
// records reports to the events route. zE records every call in calls, in order. storage is
// localStorage, shared with later pages of the same "browser" to model navigations.
function page(opts) {
  const calls = [], fetches = [], warnings = [], events = [], moves = [], identity = [];
  const storage = opts.storage || new Map();
  const win = { console: { warn: (m) => warnings.push(m) }, Promise: Promise, JSON: JSON,
    setTimeout: clk.setTimeout };
  win.window = win;
  win.localStorage = { getItem: (k) => storage.has(k) ? storage.get(k) : null,
    setItem: (k, v) => storage.set(k, String(v)), removeItem: (k) => storage.delete(k) };
  win.CustomEvent = function (type, init) { this.type = type; this.detail = init.detail; };
  win.dispatchEvent = (e) => { identity.push(e.type + ':' + JSON.stringify(e.detail)); return true; };
  win.location = { pathname: '/app', search: '?x=1', replace: (u) => moves.push('replace ' + u), assign: (u) => moves.push('assign ' + u) };
  const el = opts.signedOut ? { getAttribute: (n) => opts.signedOut[n] === undefined ? null : String(opts.signedOut[n]) } : null;
  win.document = { getElementById: (id) => id === 'zdgate-signed-out' ? el : null };
  const answers = (opts.answers || []).slice();
  let n = 0;
  win.fetch = function (url, init) {
    if (url === '/zendesk/events') {
      events.push(JSON.parse(init.body));
      calls.push(['report', JSON.parse(init.body).event]);
      return Promise.resolve({ status: 204, ok: true });
    }
    fetches.push({ url: url, init: init });
    const a = answers.length ? answers.shift() : { status: 200, user: 'U1' };
    if (a.network) return Promise.reject(new TypeError('network'));
    n++;
    const body = a.status === 200 ? { jwt: 'jwt' + n, expires_at: 1, user: a.user } : { error: a.error || 'unauthenticated' };
    return Promise.resolve({ status: a.status, ok: a.status === 200, json: () => Promise.resolve(body) });
  };
  const zE = function () { calls.push(Array.prototype.slice.call(arguments)); };
  if (opts.zENow) win.zE = zE;
  if (opts.zELater) win.setTimeout(() => { win.zE = zE; }, opts.zELater);
  if (opts.settings) win.zESettings = opts.settings;
  vm.createContext(win);
  return { win, calls, fetches, warnings, events, moves, identity, storage, zE,
    run: (src) => vm.runInContext(src, win),
    find: (a, b) => calls.filter((c) => c[0] === a && c[1] === b),
    order: () => calls.map((c) => c[0] === 'report' ? 'report:' + c[1] : c[1]).join(',') };
}

async function main() {
  { // messaging, signed in: one probe decides the login; every later jwtCallback fetches afresh
    const p = page({ zENow: true });
    p.run(messaging);
    await tick(10);
    const login = p.find('messenger', 'loginUser');
    check(login.length === 1 && typeof login[0][3] === 'function', 'messaging: loginUser(jwtCallback, loginCallback) calls: ' + JSON.stringify(p.calls));
    const got = [];
    login[0][2]((t) => got.push(t));
    await tick(10);
    login[0][2]((t) => got.push(t));
    await tick(10);
    check(JSON.stringify(got) === '["jwt1","jwt2"]', 'messaging: tokens handed over ' + JSON.stringify(got));
    check(p.fetches.length === 2 && p.fetches[0].url === '/zendesk/token?flavor=messaging', 'messaging: fetches ' + JSON.stringify(p.fetches));
    const init = p.fetches[0].init;
    check(init.credentials === 'same-origin' && init.headers['X-Requested-With'] === 'zdgate', 'messaging: fetch init ' + JSON.stringify(init));
    check(p.find('messenger', 'logoutUser').length === 0, 'messaging: logged out while signed in');
    check(p.storage.get('zdgate:widget-user') === 'U1', 'messaging: remembered ' + JSON.stringify([...p.storage]));
    check(p.identity.length === 1 && p.identity[0] === 'zdgate:identitychange:{"signedIn":true,"user":"U1"}', 'messaging: identity events ' + p.identity);
    check(p.win.zdgate.flavor === 'messaging' && Object.isFrozen(p.win.zdgate) && p.win.zdgate.user === 'U1', 'messaging: window.zdgate');
    check(p.warnings.length === 0, 'messaging: warnings ' + p.warnings);

    // Next page, same browser, same user: no logout, a login.
    const q = page({ zENow: true, storage: p.storage });
    q.run(messaging);
    await tick(10);
    check(q.order() === 'loginUser', 'same user again: ' + q.order());
  }
  { // an anonymous visitor (optional mode): never loginUser, never logoutUser
    const p = page({ zENow: true, answers: [{ status: 401 }] });
    p.run(messaging);
    await tick(10);
    check(p.calls.length === 0, 'anonymous: widget calls ' + JSON.stringify(p.calls));
    check(p.events.length === 0, 'anonymous: reports ' + JSON.stringify(p.events));
  }
  { // user switch: remembered U1, the session is now U2: logoutUser comes first
    const storage = new Map([['zdgate:widget-user', 'U1']]);
    const p = page({ zENow: true, storage, answers: [{ status: 200, user: 'U2' }] });
    p.run(messaging);
    await tick(10);
    check(p.order() === 'logoutUser,loginUser', 'switch: ' + p.order());
    check(storage.get('zdgate:widget-user') === 'U2', 'switch: remembered ' + storage.get('zdgate:widget-user'));
  }
  { // signed out elsewhere (cookie gone, 401) on a browser that was logged in: logoutUser once
    const storage = new Map([['zdgate:widget-user', 'U1']]);
    const p = page({ zENow: true, storage, answers: [{ status: 401 }] });
    p.run(messaging);
    await tick(10);
    check(p.order() === 'logoutUser' && !storage.has('zdgate:widget-user'), 'signed out: ' + p.order());
    const q = page({ zENow: true, storage, answers: [{ status: 401 }] });
    q.run(messaging);
    await tick(10);
    check(q.calls.length === 0, 'signed out, next page: ' + q.order());
  }
  { // revocation: the widget's next jwtCallback meets 401 session_revoked: logoutUser, no token
    const p = page({ zENow: true, answers: [{ status: 200, user: 'U1' }, { status: 401, error: 'session_revoked' }] });
    p.run(messaging);
    await tick(10);
    const cb = p.find('messenger', 'loginUser')[0][2];
    const got = [];
    cb((t) => got.push(t));
    cb((t) => got.push(t));
    await tick(10);
    check(JSON.stringify(got) === '["jwt1"]' && p.order() === 'loginUser,logoutUser', 'revoked: tokens ' + JSON.stringify(got) + ' calls ' + p.order());
  }
  { // a user switch seen by jwtCallback (another tab logged in as U2): never U2's token to U1's widget
    const p = page({ zENow: true, answers: [{ status: 200, user: 'U1' }, { status: 200, user: 'U2' }] });
    p.run(messaging);
    await tick(10);
    const got = [];
    p.find('messenger', 'loginUser')[0][2]((t) => got.push(t)); // prefetched jwt1
    p.find('messenger', 'loginUser')[0][2]((t) => got.push(t)); // fetches: U2
    await tick(10);
    check(JSON.stringify(got) === '["jwt1"]' && p.order() === 'loginUser,logoutUser,loginUser', 'switch in jwtCallback: ' + JSON.stringify(got) + ' ' + p.order());
  }
  { // 503 then ok: retried with backoff, no logout
    const storage = new Map([['zdgate:widget-user', 'U1']]);
    const p = page({ zENow: true, storage, answers: [{ status: 503, error: 'idp_unavailable' }, { network: true }, { status: 200, user: 'U1' }] });
    p.run(messaging);
    await tick(30);
    check(p.fetches.length === 3 && p.order() === 'loginUser', '503: fetches ' + p.fetches.length + ' calls ' + p.order());
    // Down for good: reported, still no logout.
    const q = page({ zENow: true, storage, answers: [503, 503, 503, 503].map(() => ({ status: 503, error: 'idp_unavailable' })) });
    q.run(messaging);
    await tick(40);
    check(q.fetches.length === 4 && q.calls.length === 1 && q.events[0].event === 'token_failed' && q.events[0].reason === 'idp_unavailable',
      '503 for good: fetches ' + q.fetches.length + ' calls ' + q.order() + ' events ' + JSON.stringify(q.events));
    check(storage.get('zdgate:widget-user') === 'U1', '503: the remembered user was dropped');
  }
  { // a refusal (403 email_not_verified) on a logged-in browser: logout (fail closed) and a report
    const storage = new Map([['zdgate:widget-user', 'U1']]);
    const p = page({ zENow: true, storage, answers: [{ status: 403, error: 'claim_employee_id' }] });
    p.run(messaging);
    await tick(10);
    check(p.order() === 'report:token_failed,logoutUser' || p.order() === 'logoutUser,report:token_failed', 'refused: ' + p.order());
    check(p.events[0].reason === 'claim' && p.events[0].flavor === 'messaging', 'refused: event ' + JSON.stringify(p.events));
  }
  { // loginCallback with Zendesk's LoginFailedError: reported
    const p = page({ zENow: true });
    p.run(messaging);
    await tick(10);
    p.find('messenger', 'loginUser')[0][3]({ type: 'LoginFailedError', reason: 'conflict', message: 'x' });
    p.find('messenger', 'loginUser')[0][3](null);
    await tick(10);
    check(p.events.length === 1 && p.events[0].event === 'login_failed' && p.events[0].reason === 'conflict' && p.events[0].type === 'LoginFailedError',
      'login failed: events ' + JSON.stringify(p.events));
  }
  { // the widget appears 70 s late: reported at 60 s, still logged in; loader included twice
    const p = page({ zELater: 70000 });
    p.run(messaging);
    p.run(messaging);
    await tick(150);
    check(p.order() === 'report:widget_missing,loginUser', 'late widget: ' + p.order());
  }
  { // zdgate's signed-out page: logoutUser, then on to the IdP
    const storage = new Map([['zdgate:widget-user', 'U1']]);
    const p = page({ zENow: true, storage, signedOut: { 'data-next': 'https://idp.example/end', 'data-link': 'false', 'data-wait': 4000 } });
    p.run(messaging);
    await tick(20);
    check(p.order() === 'logoutUser' && p.fetches.length === 0, 'signed-out page: ' + p.order());
    check(JSON.stringify(p.moves) === '["replace https://idp.example/end"]', 'signed-out page: moves ' + JSON.stringify(p.moves));
    check(!storage.has('zdgate:widget-user'), 'signed-out page: still remembers the user');
    // No widget on the page: moves on after the bound, keeps the user for the next page.
    const s2 = new Map([['zdgate:widget-user', 'U1']]);
    const q = page({ storage: s2, signedOut: { 'data-next': '/bye', 'data-link': 'false', 'data-wait': 4000 } });
    q.run(messaging);
    await tick(30);
    check(JSON.stringify(q.moves) === '["replace /bye"]' && s2.get('zdgate:widget-user') === 'U1', 'signed-out page without widget: ' + JSON.stringify(q.moves));
    // zdgate put no widget snippet on the page (data-wait 0): it moves on at once.
    const q0 = page({ signedOut: { 'data-next': '/now', 'data-link': 'false', 'data-wait': 0 } });
    q0.run(messaging);
    await realTick();
    check(JSON.stringify(q0.moves) === '["replace /now"]', 'signed-out page, nothing to wait for: ' + JSON.stringify(q0.moves));
    // Zendesk's remote logout: logout, but stay (the link is the way back).
    const r = page({ zENow: true, signedOut: { 'data-next': 'https://acme.zendesk.com/hc', 'data-link': 'true' } });
    r.run(messaging);
    await tick(20);
    check(r.order() === 'logoutUser' && r.moves.length === 0, 'remote logout page: ' + r.order() + ' ' + JSON.stringify(r.moves));
  }
  { // window.zdgate.logout(): widget out, then the sign-out route
    const p = page({ zENow: true });
    p.run(messaging);
    await tick(10);
    await p.win.zdgate.logout();
    check(p.order() === 'loginUser,logoutUser' && JSON.stringify(p.moves) === '["assign /oauth2/sign_out?rd=%2Fapp%3Fx%3D1"]', 'api logout: ' + p.order() + ' ' + JSON.stringify(p.moves));
    check(p.win.zdgate.user === null && p.identity[p.identity.length - 1].indexOf('"signedIn":false') > 0, 'api logout: identity ' + p.identity);
  }
  { // window.zdgate.refresh() after an in-page login: the widget follows
    const p = page({ zENow: true, answers: [{ status: 401 }, { status: 200, user: 'U7' }] });
    p.run(messaging);
    await tick(10);
    check(p.calls.length === 0, 'refresh: anonymous first');
    const st = await p.win.zdgate.refresh();
    check(st.signedIn && st.user === 'U7' && p.order() === 'loginUser', 'refresh: ' + JSON.stringify(st) + ' ' + p.order());
  }
  { // chat: jwtFn set before the widget starts, page settings kept, fresh token per call
    const p = page({ settings: { webWidget: { color: { theme: '#000' } }, other: 1 } });
    p.run(chat);
    const s = p.win.zESettings;
    check(s.other === 1 && s.webWidget.color.theme === '#000', 'chat: settings lost ' + JSON.stringify(s));
    const fn = s.webWidget.authenticate.chat.jwtFn;
    check(typeof fn === 'function', 'chat: no jwtFn');
    check(p.fetches.length === 0, 'chat: fetched before the widget asked');
    const got = [];
    fn((t) => got.push(t));
    await tick(10);
    fn((t) => got.push(t));
    await tick(10);
    check(JSON.stringify(got) === '["jwt1","jwt2"]', 'chat: tokens ' + JSON.stringify(got));
    check(p.fetches[0].url === '/zendesk/token?flavor=chat' && p.fetches[0].init.credentials === 'same-origin', 'chat: fetch ' + JSON.stringify(p.fetches[0]));
  }
  { // chat: signed out on a browser that was logged in; and an anonymous one
    const storage = new Map([['zdgate:widget-user', 'U1']]);
    const p = page({ zENow: true, storage, answers: [{ status: 401 }] });
    p.run(chat);
    const got = [];
    p.win.zESettings.webWidget.authenticate.chat.jwtFn((t) => got.push(t));
    await tick(20);
    check(got.length === 0, 'chat signed out: token handed over');
    check(p.find('webWidget', 'logout').length === 1, 'chat signed out: logout not called');
    check(p.find('webWidget', 'updateSettings').length === 1, 'chat: widget already there, updateSettings not called');
    const q = page({ zENow: true, answers: [{ status: 401 }] });
    q.run(chat);
    q.win.zESettings.webWidget.authenticate.chat.jwtFn(() => {});
    await tick(20);
    check(q.find('webWidget', 'logout').length === 0, 'chat anonymous: logout called');
  }
  { // chat user switch: logout before the new user's token
    const storage = new Map([['zdgate:widget-user', 'U1']]);
    const p = page({ zENow: true, storage, answers: [{ status: 200, user: 'U2' }] });
    p.run(chat);
    p.win.zESettings.webWidget.authenticate.chat.jwtFn((t) => p.calls.push(['token', t]));
    await tick(20);
    check(p.order() === 'updateSettings,chat:reauthenticate,logout,jwt1', 'chat switch: ' + p.order());
  }
  console.log(failures.length ? failures.join('\n') : 'ok');
}
main().catch((e) => { console.log('harness error: ' + e.stack); });
`
