package main

import (
	"cmp"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zdgate/zdgate/tokens"
)

//go:embed demoapp/page.html demoapp/standin.js
var demoAssets embed.FS

var demoPage = template.Must(template.ParseFS(demoAssets, "demoapp/page.html"))

// demoApp is the sample web app of `zdgate demo`: plain pages that know nothing of Zendesk, the
// offline widget stand-in, a verify endpoint the stand-in uses to show the token checks out, and
// the stand-in's log of widget calls (kept here, so it survives navigations and cleared storage).
type demoApp struct {
	url   string
	srv   *http.Server
	close func()

	mu     sync.Mutex
	calls  []standinCall
	onCall func(standinCall) // tests: called (with mu held) as each call arrives
}

// standinCall is one call the widget stand-in saw, in the order the app received them.
type standinCall struct {
	Seq    int     `json:"seq"`
	At     string  `json:"at"`
	T      float64 `json:"t"`                // the browser's clock when the call was made (ms), which orders the log
	Call   string  `json:"call"`             // e.g. messenger.loginUser, messenger.logoutUser, jwt, loginCallback
	Page   string  `json:"page"`             // path of the page it happened on
	Sub    string  `json:"sub,omitempty"`    // jwt: the token's external_id
	Name   string  `json:"name,omitempty"`   // jwt: the token's name
	JWT    string  `json:"jwt,omitempty"`    // jwt: the token itself (demo only: loopback, random secrets)
	Reason string  `json:"reason,omitempty"` // loginCallback: the simulated LoginFailedError's reason
}

// maxStandinCalls bounds the log.
const maxStandinCalls = 500

func (a *demoApp) record(c standinCall) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c.Seq = len(a.calls) + 1
	c.At = time.Now().Format("15:04:05.000")
	if len(a.calls) >= maxStandinCalls {
		a.calls = a.calls[1:]
	}
	a.calls = append(a.calls, c)
	if a.onCall != nil {
		a.onCall(c)
	}
}

// standinCalls returns a copy of the log in the order the calls were made: the reports are
// separate requests and may arrive out of order.
func (a *demoApp) standinCalls() []standinCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.calls)
	slices.SortStableFunc(out, func(x, y standinCall) int { return cmp.Compare(x.T, y.T) })
	return out
}

// demoProvider is what the demo app knows of one of the demo's identity providers, to show it.
type demoProvider struct{ name, prefix string }

func startDemoApp(messagingSecret, chatSecret string, providers map[string]demoProvider) (*demoApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the demo app: %v", err)
	}
	a := &demoApp{}
	mux := http.NewServeMux()
	page := func(title string, extra template.HTML) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			var head template.HTML
			if r.URL.Path == "/public/late" {
				// The page brings its own (late) widget, so zdgate injects only the loader.
				delay := 70000
				if s, err := strconv.Atoi(r.URL.Query().Get("after")); err == nil && s >= 0 && s <= 3600 {
					delay = s * 1000
				}
				head = template.HTML(`<script id="ze-snippet" src="/public/zendesk-standin.js?delay=` + strconv.Itoa(delay) + `" defer></script>`)
			}
			provider := r.Header.Get("X-Forwarded-Provider")
			demoPage.Execute(w, map[string]any{
				"Title": title, "Extra": extra, "Head": head,
				"Provider": provider, "ProviderName": providers[provider].name, "Prefix": providers[provider].prefix,
				"User": r.Header.Get("X-Forwarded-User"), "Email": r.Header.Get("X-Forwarded-Email"),
				"Groups": r.Header.Get("X-Forwarded-Groups"), "Username": r.Header.Get("X-Forwarded-Preferred-Username"),
				"Cookies": cookieNames(r),
			})
		}
	}
	mux.HandleFunc("GET /{$}", page("Welcome back", ""))
	mux.HandleFunc("GET /public/help", page("Help (public page)",
		`<p>This page is public (<code>--skip-auth-path=^/public/</code>): it loads without a login. The loader still asks <code>/zendesk/token</code>. Without a session the answer is 401: if this browser's widget was logged in, the loader calls <code>zE('messenger','logoutUser')</code>; a visitor who never logged in is left alone (no logout, so an anonymous conversation survives).</p>`))
	mux.HandleFunc("GET /public/late", page("A widget that loads late (public page)",
		`<p>This page's widget appears only after <code>?after=</code> seconds (70 by default), like a widget held back by a cookie-consent banner. The loader waits for it without a deadline, reports <code>widget_missing</code> to <code>/zendesk/events</code> after a minute, and still logs the widget in when it comes.</p>`))
	mux.HandleFunc("POST /public/standin/calls", func(w http.ResponseWriter, r *http.Request) {
		var c standinCall
		if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&c); err != nil || c.Call == "" {
			http.Error(w, "bad call", http.StatusBadRequest)
			return
		}
		a.record(c)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /public/standin/calls", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(a.standinCalls())
	})
	strict := page("A page with a strict Content-Security-Policy",
		`<p>This page sends <code>Content-Security-Policy: script-src 'nonce-…'</code>. zdgate copies the nonce onto the tags it injects, so the loader still runs.</p>`)
	mux.HandleFunc("GET /strict-csp", func(w http.ResponseWriter, r *http.Request) {
		nonce := randomString(22)
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'nonce-"+nonce+"'; style-src 'unsafe-inline'; object-src 'none'; base-uri 'none'")
		strict(w, r)
	})
	mux.HandleFunc("GET /public/zendesk-standin.js", func(w http.ResponseWriter, r *http.Request) {
		b, _ := demoAssets.ReadFile("demoapp/standin.js")
		w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
	})
	mux.HandleFunc("POST /public/verify", func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 16<<10))
		jwt := strings.TrimSpace(string(raw))
		flavor, secret := tokens.Messaging, messagingSecret
		if res := tokens.Verify(jwt, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte(messagingSecret)}); len(res.Problems) > 0 {
			if c := tokens.Verify(jwt, tokens.VerifyOptions{Flavor: tokens.Chat, Secret: []byte(chatSecret)}); len(c.Problems) == 0 {
				flavor, secret = tokens.Chat, chatSecret
			}
		}
		res := tokens.Verify(jwt, tokens.VerifyOptions{Flavor: flavor, Secret: []byte(secret)})
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"valid": len(res.Problems) == 0, "flavor": flavor, "problems": res.Problems, "claims": res.Claims})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	a.url, a.srv, a.close = "http://"+ln.Addr().String(), srv, func() { srv.Close() }
	return a, nil
}

func cookieNames(r *http.Request) string {
	var names []string
	for _, c := range r.Cookies() {
		names = append(names, c.Name)
	}
	if len(names) == 0 {
		return "(none — zdgate keeps its session cookie to itself)"
	}
	return strings.Join(names, ", ")
}
