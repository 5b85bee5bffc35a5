package main

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/zdgate/zdgate/tokens"
)

//go:embed demoapp/page.html demoapp/standin.js
var demoAssets embed.FS

var demoPage = template.Must(template.ParseFS(demoAssets, "demoapp/page.html"))

// demoApp is the sample web app of `zdgate demo`: plain pages that know nothing of Zendesk, the
// offline widget stand-in, and a verify endpoint the stand-in uses to show the token checks out.
type demoApp struct {
	url   string
	srv   *http.Server
	close func()
}

func startDemoApp(messagingSecret, chatSecret string) (*demoApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the demo app: %v", err)
	}
	mux := http.NewServeMux()
	page := func(title string, extra template.HTML) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			demoPage.Execute(w, map[string]any{
				"Title": title, "Extra": extra,
				"User": r.Header.Get("X-Forwarded-User"), "Email": r.Header.Get("X-Forwarded-Email"),
				"Groups": r.Header.Get("X-Forwarded-Groups"), "Username": r.Header.Get("X-Forwarded-Preferred-Username"),
				"Cookies": cookieNames(r),
			})
		}
	}
	mux.HandleFunc("GET /{$}", page("Welcome back", ""))
	mux.HandleFunc("GET /public/help", page("Help (public page)",
		`<p>This page is public (<code>--skip-auth-path=^/public/</code>): it loads without a login. The loader still asks <code>/zendesk/token</code>; without a session the answer is 401, so it calls <code>zE('messenger','logoutUser')</code>.</p>`))
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
	return &demoApp{url: "http://" + ln.Addr().String(), srv: srv, close: func() { srv.Close() }}, nil
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
