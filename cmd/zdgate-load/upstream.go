package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pageSize is the size of the upstream's /page: a small server-rendered HTML page. Small, so the
// proxy's own per-request work (not copying bytes) is what the ratios show.
const pageSize = 2 << 10

// page is /page: exactly pageSize bytes of HTML with a real <head>, so the injector has work to do.
var page = makePage(pageSize)

func makePage(size int) []byte {
	const head = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n" +
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n" +
		"<title>zdgate load test page</title>\n<link rel=\"stylesheet\" href=\"/static/site.css\">\n" +
		"<script>window.dataLayer = window.dataLayer || [];</script>\n</head>\n<body>\n<main>\n"
	const tail = "</main>\n</body>\n</html>\n"
	const para = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. <a href=\"/help\">Help</a></p>\n"
	var b strings.Builder
	b.WriteString(head)
	for b.Len()+len(para)+len(tail) <= size {
		b.WriteString(para)
	}
	b.WriteString(strings.Repeat(" ", size-b.Len()-len(tail)))
	b.WriteString(tail)
	return []byte(b.String())
}

const apiBody = `{"status":"ok","items":[1,2,3],"user":"load"}` + "\n"

// upstreamHandler is the protected app: /page (HTML), /api (JSON), / (the login's landing page).
func upstreamHandler() http.Handler {
	mux := http.NewServeMux()
	pageLen := strconv.Itoa(len(page))
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", pageLen)
		h.Set("Cache-Control", "no-cache")
		w.Write(page)
	})
	mux.HandleFunc("GET /api", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, apiBody)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!DOCTYPE html><html><head><title>home</title></head><body>logged in</body></html>\n")
	})
	return mux
}

// newServer is an http.Server with the timeouts every server needs.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
}

// serveOn starts srv on a new loopback listener and returns its base URL.
func serveOn(srv *http.Server) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// bareProxy is the baseline: what a team would write without zdgate — httputil.ReverseProxy with
// Rewrite (SetURL, SetXForwarded) and a transport tuned like a real proxy's.
func bareProxy(upstream *url.URL) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          512,
			MaxIdleConnsPerHost:   256,
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

// Child mode: the harness re-executes itself to run the bare proxy in its own process, so the
// baseline is deployed like zdgate (a separate runtime competing for the same cores).
const (
	childEnv         = "ZDGATE_LOAD_CHILD"
	childUpstreamEnv = "ZDGATE_LOAD_UPSTREAM"
	childListenEnv   = "ZDGATE_LOAD_LISTEN"
)

// childMain serves the bare proxy until SIGTERM or until its stdin (a pipe from the harness) closes.
func childMain() int {
	if os.Getenv(childEnv) != "bare-proxy" {
		fmt.Fprintf(os.Stderr, "zdgate-load: unknown %s=%q\n", childEnv, os.Getenv(childEnv))
		return 2
	}
	u, err := url.Parse(os.Getenv(childUpstreamEnv))
	if err != nil || u.Host == "" {
		fmt.Fprintf(os.Stderr, "zdgate-load: bad %s\n", childUpstreamEnv)
		return 2
	}
	ln, err := net.Listen("tcp", os.Getenv(childListenEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "zdgate-load: bare proxy: %v\n", err)
		return 1
	}
	srv := newServer(bareProxy(u))
	go srv.Serve(ln)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		io.Copy(io.Discard, os.Stdin) // EOF: the harness is gone
		stop()
	}()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return 0
}
