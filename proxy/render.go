package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
)

// httpError is an error with the status and the public code to show; Err is the private cause that
// only goes to the log.
type httpError struct {
	status int
	code   string
	err    error
	warn   bool // log the refusal at WARN: something an operator must fix, not a visitor's mistake
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.code + ": " + e.err.Error()
	}
	return e.code
}
func (e *httpError) Unwrap() error { return e.err }

func errBadRequest(code string, err error) error {
	return &httpError{status: http.StatusBadRequest, code: code, err: err}
}
func errUnauthorized(code string, err error) error {
	return &httpError{status: http.StatusUnauthorized, code: code, err: err}
}
func errForbidden(code string, err error) error {
	return &httpError{status: http.StatusForbidden, code: code, err: err}
}
func errUnavailable(code string, err error) error {
	return &httpError{status: http.StatusServiceUnavailable, code: code, err: err}
}

var errNotFound = &httpError{status: http.StatusNotFound, code: "not_found"}

// render is the one place errors become responses. The client sees a status and a short public code
// (JSON, or a small HTML page for browsers); the cause is logged with the request id. An error that
// can no longer become a response (see unanswerable) is only logged.
func (p *Proxy) render(w http.ResponseWriter, r *http.Request, err error) {
	info := infoOf(r)
	if info != nil && p.unanswerable(r, info, err) {
		return
	}
	he := asHTTPError(err)
	route := "unknown"
	if info != nil {
		route = info.route
	}
	p.m.errors.WithLabelValues(route, he.code).Inc()
	level := refusalLevel(he)
	if he.err != nil || he.status >= 500 {
		attrs := []slog.Attr{slog.Int("status", he.status), slog.String("code", he.code)}
		if info != nil {
			attrs = append(attrs, slog.String("request_id", info.id), slog.String("route", info.route))
		}
		if he.err != nil {
			attrs = append(attrs, slog.String("cause", he.err.Error()))
		}
		p.log.LogAttrs(r.Context(), level, "request refused", attrs...)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if wantsHTML(r) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.WriteHeader(he.status)
		id := ""
		if info != nil {
			id = info.id
		}
		errorPage.Execute(w, map[string]any{"Status": he.status, "Text": http.StatusText(he.status), "Message": publicMessage(he), "ID": id})
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(he.status)
	json.NewEncoder(w).Encode(map[string]string{"error": he.code})
}

// asHTTPError is err's status and public code; an error without one is an internal error.
func asHTTPError(err error) *httpError {
	if he, ok := errors.AsType[*httpError](err); ok {
		return he
	}
	return &httpError{status: http.StatusInternalServerError, code: "internal_error", err: err}
}

// statusClientGone is what the access log and the request metrics record for a request whose client
// went away before its answer was complete (nginx's "499 client closed request").
const statusClientGone = 499

// unanswerable handles an error that can no longer become a response, and reports whether err was
// one. When the client has gone (its connection failed, or it gave up), the request is recorded
// as 499; an error that its leaving caused is logged at DEBUG only, since nothing is wrong here,
// while any other (Redis down while the browser gave up waiting) keeps its level. When the
// response has already started, an error answer would be appended to a body the client takes for
// the real one: it is logged at ERROR, and the connection is cut (ServeHTTP) so the client sees the
// answer broke off. Neither counts in zdgate_http_errors_total, which counts answers given.
func (p *Proxy) unanswerable(r *http.Request, info *reqInfo, err error) bool {
	rec := info.rec
	switch {
	case rec == nil:
		return false
	case clientGone(r, rec):
		info.gone = true
		level, msg := slog.LevelDebug, "client went away"
		if !errors.Is(err, context.Canceled) && (rec.writeErr == nil || !errors.Is(err, rec.writeErr)) {
			level, msg = refusalLevel(asHTTPError(err)), "request failed; its client had gone"
		}
		p.logRequest(r, level, msg, slog.String("route", info.route), slog.String("cause", err.Error()))
		return true
	case rec.wroteHeader:
		info.abort = true
		p.logRequest(r, slog.LevelError, "request failed after its response started",
			slog.Int("status", rec.code), slog.String("route", info.route), slog.String("cause", err.Error()))
		return true
	}
	return false
}

// refusalLevel is the log level of a refusal: ERROR for a failure of zdgate or what it depends on,
// WARN for something an operator must fix, INFO for a visitor's mistake.
func refusalLevel(he *httpError) slog.Level {
	switch {
	case he.status >= 500:
		return slog.LevelError
	case he.warn:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// clientGone reports whether the request's client has gone: a write to it failed, or net/http
// cancelled the request because the connection closed.
func clientGone(r *http.Request, rec *recorder) bool {
	return rec.writeErr != nil || r.Context().Err() != nil
}

// publicMessage is what a person reading the error page is told; fixed strings only.
func publicMessage(e *httpError) string {
	switch e.code {
	case "bad_gateway":
		return "The application behind this sign-in gateway is not answering. Try again in a moment."
	case "idp_unavailable":
		return "The identity provider cannot be reached right now, so your sign-in cannot be confirmed. Try again in a moment."
	case "idp_misconfigured":
		return "Your sign-in cannot be confirmed: the identity provider refuses this site's configuration. The site's operators need to fix it."
	case "login_failed":
		return "Sign-in could not be completed. Please start again."
	case "login_expired":
		return "This sign-in attempt has expired or was already used. Please start again."
	case "access_denied":
		return "Your account is not allowed to use this site."
	case "idp_error":
		return "The identity provider refused the sign-in."
	case "email_not_verified":
		return "Your email address is not verified by the identity provider."
	case "unknown_provider":
		return "This sign-in option does not exist. Go back and choose one of the options offered."
	}
	return http.StatusText(e.status)
}

var errorPage = template.Must(template.New("e").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{.Status}} {{.Text}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}small{color:#777}</style></head>
<body><h1>{{.Status}} {{.Text}}</h1><p>{{.Message}}</p><p><a href="/">Back to the start page</a></p><small>Request id: {{.ID}}</small></body></html>
`))

// wantsHTML is a browser navigation: the error page is for people, JSON for scripts and apps.
func wantsHTML(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Mode") == "navigate" {
		return true
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// Header values zdgate sets on its own answers, shared so the hot routes do not allocate them per
// request. Never append to them.
var (
	hdrJSON    = []string{"application/json"}
	hdrNoStore = []string{"no-store"}
	hdrNosniff = []string{"nosniff"}
)

func noStoreJSON(h http.Header) {
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoStore
	h["X-Content-Type-Options"] = hdrNosniff
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	noStoreJSON(w.Header())
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// reqInfo is what the access log learns while a request is handled.
type reqInfo struct {
	id, route, path, sub string
	canonical            bool             // the request's path was already in normal form
	metrics              *routeMetrics    // route's bound series, set with route
	upstream             upstreamIdentity // what the upstream is told (proxied requests)
	rec                  *recorder        // the response as written so far
	gone                 bool             // the client went away before the answer was complete
	abort                bool             // the answer failed after it started: cut the connection
}

// reqState is a request's recorder and info, allocated together once per request.
type reqState struct {
	rec  recorder
	info reqInfo
}

type infoKey struct{}

func infoOf(r *http.Request) *reqInfo {
	i, _ := r.Context().Value(infoKey{}).(*reqInfo)
	return i
}

func setSub(ctx context.Context, sub string) {
	if i, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		i.sub = sub
	}
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recorder notes status and bytes for the access log, whether the response has started (after
// that, no error can be rendered), and the first failed write (the client has gone). Unwrap lets
// http.ResponseController reach Flush and Hijack (streaming and WebSocket upgrades).
type recorder struct {
	http.ResponseWriter
	code        int
	bytes       int64
	wroteHeader bool
	writeErr    error
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= 200 {
		r.code = code
		r.wroteHeader = true
	} else if code == http.StatusSwitchingProtocols {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	if err != nil && r.writeErr == nil {
		r.writeErr = err
	}
	return n, err
}

func (r *recorder) Flush() {
	r.wroteHeader = true // flushing sends the header
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
