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
		"'use strict'", `{"flavor":"chat","tokenPath":"/zd/token","version":"` + i.Version() + `"}`} {
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
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
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
const tick = (ms) => new Promise((r) => setTimeout(r, ms));

// page builds a window whose fetch answers the given statuses in turn (200
// after they run out) with tokens jwt1, jwt2, ... and whose zE records calls.
function page(opts) {
  const calls = [], fetches = [], warnings = [];
  const win = { console: { warn: (m) => warnings.push(m) }, setTimeout: setTimeout, Promise: Promise };
  win.window = win;
  const statuses = (opts.statuses || []).slice();
  win.fetch = function (url, init) {
    fetches.push({ url: url, init: init });
    const status = statuses.length ? statuses.shift() : 200;
    const n = fetches.length;
    return Promise.resolve({ status: status, ok: status === 200,
      json: () => Promise.resolve({ jwt: 'jwt' + n, expires_at: 1 }) });
  };
  const zE = function () { calls.push(Array.prototype.slice.call(arguments)); };
  if (opts.zENow) win.zE = zE;
  if (opts.zELater) setTimeout(() => { win.zE = zE; }, opts.zELater);
  if (opts.settings) win.zESettings = opts.settings;
  vm.createContext(win);
  return { win, calls, fetches, warnings,
    run: (src) => vm.runInContext(src, win),
    find: (a, b) => calls.filter((c) => c[0] === a && c[1] === b) };
}

async function main() {
  { // messaging, signed in, widget already there
    const p = page({ zENow: true });
    p.run(messaging);
    const login = p.find('messenger', 'loginUser');
    check(login.length === 1, 'messaging: loginUser calls: ' + login.length);
    check(typeof login[0][3] === 'function', 'messaging: no login callback');
    check(p.fetches.length === 0, 'messaging: fetched before the widget asked');
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
    check(p.win.zdgate.flavor === 'messaging' && Object.isFrozen(p.win.zdgate), 'messaging: window.zdgate ' + JSON.stringify(p.win.zdgate));
    check(p.warnings.length === 0, 'messaging: warnings ' + p.warnings);
  }
  { // messaging, signed out (or the session ended): the token request logs out
    const p = page({ zENow: true, statuses: [200, 401] });
    p.run(messaging);
    const cb = p.find('messenger', 'loginUser')[0][2];
    const got = [];
    cb((t) => got.push(t));
    await tick(10);
    check(p.find('messenger', 'logoutUser').length === 0, 'signed in: logoutUser called');
    cb((t) => got.push(t));
    await tick(10);
    check(JSON.stringify(got) === '["jwt1"]', 'signed out: tokens ' + JSON.stringify(got));
    check(p.find('messenger', 'logoutUser').length === 1, 'signed out: logoutUser not called');
  }
  { // widget snippet after the loader; loader included twice
    const p = page({ zELater: 300 });
    p.run(messaging);
    p.run(messaging);
    await tick(1200);
    check(p.find('messenger', 'loginUser').length === 1, 'late widget: loginUser calls ' + p.find('messenger', 'loginUser').length);
  }
  { // token route broken: a warning, no logout
    const p = page({ zENow: true, statuses: [500] });
    p.run(messaging);
    p.find('messenger', 'loginUser')[0][2](() => {});
    await tick(10);
    check(p.find('messenger', 'logoutUser').length === 0 && p.warnings.length === 1, 'error: calls ' + JSON.stringify(p.calls) + ' warnings ' + p.warnings);
  }
  { // chat: jwtFn set before the widget starts, page settings kept
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
  { // chat, signed out
    const p = page({ zENow: true, statuses: [401] });
    p.run(chat);
    const got = [];
    p.win.zESettings.webWidget.authenticate.chat.jwtFn((t) => got.push(t));
    await tick(50);
    check(got.length === 0, 'chat signed out: token handed over');
    check(p.find('webWidget', 'logout').length === 1, 'chat signed out: logout not called');
    check(p.find('webWidget', 'updateSettings').length === 1, 'chat: widget already there, updateSettings not called');
  }
  console.log(failures.length ? failures.join('\n') : 'ok');
}
main().catch((e) => { console.log('harness error: ' + e.stack); });
`
