package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

const (
	traceCookieSecret    = "trace-cookie-secret-0123456789ab"
	traceClientSecret    = "trace-client-secret-5e1f"
	traceMessagingSecret = "trace-messaging-secret-77aa"
	traceCollectorToken  = "collector-token-secret-42"
	traceQuerySecret     = "reset-token-QUERY-SECRET-9c3"
	traceServiceName     = "zdgate-trace-test"
)

// seenRequest is what a server (the app or the IdP) was sent: the traceparent, and the
// credentials in the request, which must never show up in a span.
type seenRequest struct {
	what, traceparent string
}

type tracedStack struct {
	url      string
	a        *app
	recv     *otlpReceiver
	mu       sync.Mutex
	atApp    []seenRequest
	atIdP    []seenRequest
	secrets  []string // every credential the test saw on the wire
	logs     *syncBuffer
	stopOnce sync.Once
	stopFn   func()
}

func (s *tracedStack) secret(v string) {
	v = strings.TrimSpace(v)
	if len(v) >= 8 { // shorter values (a port, "ok") would match by chance
		s.mu.Lock()
		s.secrets = append(s.secrets, v)
		s.mu.Unlock()
	}
}

// startTracedStack runs zdgate in-process (wire + serve) in front of oidctest and an app, with
// the OTLP exporter pointed at a receiver through the standard OTEL_* variables only.
func startTracedStack(t *testing.T, env map[string]string, flags ...string) *tracedStack {
	t.Helper()
	st := &tracedStack{recv: startOTLPReceiver(t), logs: &syncBuffer{}}
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"} {
		t.Setenv(k, "") // a developer's shell must not change what is tested
	}
	for k, v := range env {
		t.Setenv(k, strings.ReplaceAll(v, "RECEIVER", st.recv.srv.URL))
	}
	st.secret(traceCookieSecret)
	st.secret(traceClientSecret)
	st.secret(traceMessagingSecret)
	st.secret(traceCollectorToken)
	st.secret(traceQuerySecret)

	idp := oidctest.NewT(t, oidctest.Options{OnRequest: func(what string, r *http.Request) {
		st.mu.Lock()
		st.atIdP = append(st.atIdP, seenRequest{what: what, traceparent: r.Header.Get("Traceparent")})
		st.mu.Unlock()
		for _, k := range []string{"code", "refresh_token", "token", "code_verifier", "client_secret"} {
			st.secret(r.PostForm.Get(k))
		}
		if _, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok {
			st.secret(cred) // Bearer access token, or Basic client credentials
		}
	}, Clients: []oidctest.Client{{ID: "zdgate", Secret: traceClientSecret}}})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		st.atApp = append(st.atApp, seenRequest{what: r.URL.Path, traceparent: r.Header.Get("Traceparent")})
		st.mu.Unlock()
		io.WriteString(w, "app sees "+r.Header.Get("X-Forwarded-User"))
	}))
	t.Cleanup(app.Close)

	ln := listenLoopback(t)
	st.url = "http://" + ln.Addr().String()
	cfg := &Config{}
	args := append([]string{
		"--upstream=" + app.URL, "--public-url=" + st.url,
		"--oidc-issuer=" + idp.URL(), "--oidc-client-id=zdgate", "--oidc-client-secret=" + traceClientSecret,
		"--cookie-secret=" + traceCookieSecret, "--cookie-secure=false",
		"--recheck-interval=1ns", // every request re-checks at the IdP, without sleeping
		"--zendesk-messaging-key-id=app_trace", "--zendesk-messaging-secret=" + traceMessagingSecret,
		"--metrics-listen=127.0.0.1:0",
	}, flags...)
	if _, err := cfg.options().parse(args, envOf(nil)); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := wire(cfg, slog.New(slog.NewJSONHandler(st.logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.ln, st.a = ln, a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx) }()
	st.stopFn = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(st.stop)
	waitReady(t, st.url)
	return st
}

// stop shuts zdgate down, which flushes every queued span to the receiver.
func (s *tracedStack) stop() { s.stopOnce.Do(s.stopFn) }

// login runs the code flow (the IdP logs its only user in at once) and returns the client.
func (s *tracedStack) login(t *testing.T) *http.Client {
	t.Helper()
	c := noFollow()
	next := s.url + "/oauth2/start?rd=/"
	for range 3 { // start -> IdP authorize -> callback
		res, err := c.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusFound {
			t.Fatalf("login: GET %s = %d; want 302", next, res.StatusCode)
		}
		next = res.Header.Get("Location")
		if u, err := url.Parse(next); err == nil {
			s.secret(u.Query().Get("code"))
			s.secret(u.Query().Get("state"))
		}
	}
	u, _ := url.Parse(s.url)
	for _, ck := range c.Jar.Cookies(u) {
		s.secret(ck.Value)
	}
	return c
}

func (s *tracedStack) get(t *testing.T, c *http.Client, path string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// traceparentOf splits a W3C traceparent into trace id and parent span id.
func traceparentOf(h string) (traceID, spanID string) {
	parts := strings.Split(h, "-")
	if len(parts) != 4 {
		return "", ""
	}
	return parts[1], parts[2]
}

const (
	foreignTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	foreignSpanID  = "00f067aa0ba902b7"
)

// TestTracingOTLP follows a logged-in visitor's proxied request and token request through zdgate
// to a real OTLP/HTTP receiver: span names and attributes, parent links (request -> recheck -> IdP
// calls; request -> upstream), the traceparent the app and the IdP received, an untrusted
// incoming traceparent ignored, and no secret, token or cookie in any attribute.
func TestTracingOTLP(t *testing.T) {
	st := startTracedStack(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "RECEIVER",
		"OTEL_EXPORTER_OTLP_HEADERS":  "x-collector-token=" + traceCollectorToken,
		"OTEL_SERVICE_NAME":           traceServiceName,
		"OTEL_BSP_SCHEDULE_DELAY":     "50",
	})
	if !st.a.tracing.on || st.a.tracing.protocol != "http/protobuf" {
		t.Fatalf("tracing = %v; want on, http/protobuf", st.a.tracing)
	}
	c := st.login(t)
	untrusted := "00-" + foreignTraceID + "-" + foreignSpanID + "-01"
	if code, body := st.get(t, c, "/app/page?reset="+traceQuerySecret, map[string]string{"Traceparent": untrusted, "Tracestate": "vendor=visitor"}); code != 200 || !strings.Contains(body, "user-1") {
		t.Fatalf("proxied request = %d %q; want 200 for user-1", code, body)
	}
	code, body := st.get(t, c, "/zendesk/token", nil)
	if code != 200 {
		t.Fatalf("/zendesk/token = %d %s", code, body)
	}
	var tok struct{ JWT string }
	json.Unmarshal([]byte(body), &tok)
	st.secret(tok.JWT)
	st.stop()

	spans, headers := st.recv.received()
	if len(headers) == 0 || headers[0].Get("X-Collector-Token") != traceCollectorToken {
		t.Fatalf("receiver got %d exports, first with x-collector-token %q; want OTEL_EXPORTER_OTLP_HEADERS honoured", len(headers), firstHeader(headers))
	}
	find := func(name string, parent []byte) receivedSpan {
		t.Helper()
		for _, s := range spans {
			if s.GetName() == name && (parent == nil || hexID(s.GetParentSpanId()) == hexID(parent)) {
				return s
			}
		}
		var names []string
		for _, s := range spans {
			names = append(names, s.GetName())
		}
		t.Fatalf("no span %q (parent %x) among %q", name, parent, names)
		return receivedSpan{}
	}

	// The proxied request: a new trace (the visitor's traceparent is not from a trusted proxy).
	req := find("GET upstream", nil)
	traceID := hexID(req.GetTraceId())
	t.Logf("trace tree as received:\n%s", traceTree(spans, traceID))
	if traceID == foreignTraceID || len(req.GetParentSpanId()) != 0 {
		t.Errorf("request span: trace %s parent %x; want a new root, not the untrusted traceparent", traceID, req.GetParentSpanId())
	}
	for k, want := range map[string]string{"http.route": "upstream", "http.response.status_code": "200", "http.request.method": "GET", "url.path": "/app/page", "client.address": "127.0.0.1"} {
		if got := attr(req.GetAttributes(), k); got != want {
			t.Errorf("request span %s = %q; want %q", k, got, want)
		}
	}
	if got := attr(req.resource, "service.name"); got != traceServiceName {
		t.Errorf("resource service.name = %q; want %q (OTEL_SERVICE_NAME)", got, traceServiceName)
	}
	recheck := find("recheck", req.GetSpanId())
	if k, r := attr(recheck.GetAttributes(), "zdgate.recheck.kind"), attr(recheck.GetAttributes(), "zdgate.recheck.result"); k != "refresh" || r != "ok" {
		t.Errorf("recheck span kind=%q result=%q; want refresh, ok", k, r)
	}
	refresh := find("idp refresh", recheck.GetSpanId())
	userinfo := find("idp userinfo", recheck.GetSpanId())
	upstream := find("upstream GET", req.GetSpanId())
	for _, s := range []receivedSpan{refresh, userinfo, upstream} {
		if s.GetKind().String() != "SPAN_KIND_CLIENT" || hexID(s.GetTraceId()) != traceID {
			t.Errorf("%s: kind %s trace %x; want a client span of trace %s", s.GetName(), s.GetKind(), s.GetTraceId(), traceID)
		}
	}
	if u := attr(upstream.GetAttributes(), "url.full"); u == "" || strings.ContainsAny(u, "?#") {
		t.Errorf("upstream url.full = %q; want the URL without its query", u)
	}

	// The app and the IdP were sent traceparents of this trace, each naming the client span.
	st.mu.Lock()
	atApp, atIdP := slices.Clone(st.atApp), slices.Clone(st.atIdP)
	st.mu.Unlock()
	if i := slices.IndexFunc(atApp, func(s seenRequest) bool { return s.what == "/app/page" }); i < 0 {
		t.Error("the app never saw /app/page")
	} else if tid, sid := traceparentOf(atApp[i].traceparent); tid != traceID || sid != hexID(upstream.GetSpanId()) {
		t.Errorf("app got traceparent %q; want trace %s, parent %x (the upstream span)", atApp[i].traceparent, traceID, upstream.GetSpanId())
	}
	wantIdP := map[string]string{"token.refresh": hexID(refresh.GetSpanId()), "userinfo": hexID(userinfo.GetSpanId())}
	for _, s := range atIdP {
		if tid, sid := traceparentOf(s.traceparent); tid == traceID && wantIdP[s.what] == sid {
			delete(wantIdP, s.what)
		}
	}
	if len(wantIdP) > 0 {
		t.Errorf("the IdP never got a traceparent of trace %s from these spans: %v (it saw %v)", traceID, wantIdP, atIdP)
	}

	// The access line of the proxied request names its trace, so logs and traces meet.
	var logged bool
	for _, line := range strings.Split(st.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && m["route"] == "upstream" && m["path"] == "/app/page" {
			logged = true
			if m["trace_id"] != traceID {
				t.Errorf("access line trace_id = %v; want %s", m["trace_id"], traceID)
			}
		}
	}
	if !logged {
		t.Error("no access line for /app/page")
	}
	if !strings.Contains(st.logs.String(), `"tracing":"on: OTLP http/protobuf (OTEL_EXPORTER_OTLP_ENDPOINT is set)"`) {
		t.Error("the start-up line does not say that tracing is on, and why")
	}

	// The token request: its own trace, named by its route template, with its own re-check.
	tokenSpan := find("GET /zendesk/token", nil)
	t.Logf("and the token request's:\n%s", traceTree(spans, hexID(tokenSpan.GetTraceId())))
	if got := attr(tokenSpan.GetAttributes(), "http.route"); got != "/zendesk/token" {
		t.Errorf("token span http.route = %q", got)
	}
	find("idp refresh", find("recheck", tokenSpan.GetSpanId()).GetSpanId())

	// Nothing secret anywhere: every value of every span, its events, links and resource.
	st.mu.Lock()
	secrets := slices.Clone(st.secrets)
	st.mu.Unlock()
	if len(secrets) < 10 {
		t.Fatalf("only %d secrets collected; the scan would prove little", len(secrets))
	}
	for _, s := range spans {
		for where, v := range everyValue(s) {
			for _, sec := range secrets {
				if strings.Contains(v, sec) {
					t.Errorf("span %q %s = %q contains a secret (%.6s…)", s.GetName(), where, v, sec)
				}
			}
			if strings.Contains(v, foreignTraceID) || strings.Contains(v, "vendor=visitor") {
				t.Errorf("span %q %s = %q carries the visitor's trace context", s.GetName(), where, v)
			}
		}
	}
	t.Logf("%d spans checked against %d secrets", len(spans), len(secrets))
}

func firstHeader(hs []http.Header) string {
	if len(hs) == 0 {
		return ""
	}
	return hs[0].Get("X-Collector-Token")
}

// TestTracingTrustedParent: a traceparent from a --trusted-proxy peer is honoured (the request
// span continues that trace, under that parent).
func TestTracingTrustedParent(t *testing.T) {
	st := startTracedStack(t, map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "RECEIVER/v1/traces"},
		"--trusted-proxy=127.0.0.1/32")
	c := st.login(t)
	st.get(t, c, "/from-ingress", map[string]string{"Traceparent": "00-" + foreignTraceID + "-" + foreignSpanID + "-01"})
	st.stop()
	spans, _ := st.recv.received()
	for _, s := range spans {
		if s.GetName() == "GET upstream" {
			if hexID(s.GetTraceId()) != foreignTraceID || hexID(s.GetParentSpanId()) != foreignSpanID {
				t.Errorf("request span trace %x parent %x; want %s under %s (the trusted proxy's)", s.GetTraceId(), s.GetParentSpanId(), foreignTraceID, foreignSpanID)
			}
			return
		}
	}
	t.Fatalf("no request span among %d", len(spans))
}

// TestTracingOffByDefault: without OTEL_* variables nothing is exported and zdgate adds no
// traceparent to what it sends.
func TestTracingOffByDefault(t *testing.T) {
	st := startTracedStack(t, nil)
	if st.a.tracing.on {
		t.Fatalf("tracing = %v; want off", st.a.tracing)
	}
	c := st.login(t)
	st.get(t, c, "/plain", nil)
	st.stop()
	if spans, _ := st.recv.received(); len(spans) != 0 {
		t.Errorf("receiver got %d spans; want none", len(spans))
	}
	for _, s := range append(st.atApp, st.atIdP...) {
		if s.traceparent != "" {
			t.Errorf("%s got traceparent %q with tracing off", s.what, s.traceparent)
		}
	}
}

func TestTracingFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		on       bool
		protocol string
		err      string
	}{
		{name: "nothing set", env: nil},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, on: true, protocol: "http/protobuf"},
		{name: "traces endpoint, grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on: true, protocol: "grpc"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, on: true, protocol: "http/protobuf"},
		{name: "exporter otlp alone", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true, protocol: "http/protobuf"},
		{name: "exporter none beats endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "sdk disabled beats all", env: map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}},
		{name: "sdk disabled false", env: map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, on: true, protocol: "http/protobuf"},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: `OTEL_TRACES_EXPORTER: "zipkin" is not supported`},
		{name: "json protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, on: true, protocol: "http/json", err: `OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" is not supported`},
		{name: "bad sampler", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "alwayson"}, on: true, protocol: "http/protobuf", err: `OTEL_TRACES_SAMPLER: "alwayson"`},
		{name: "bad ratio", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"}, on: true, protocol: "http/protobuf", err: `OTEL_TRACES_SAMPLER_ARG: "1.5"`},
		{name: "ratio", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, on: true, protocol: "http/protobuf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tracingFromEnv(envOf(tc.env))
			if s.on != tc.on || s.protocol != tc.protocol {
				t.Errorf("tracingFromEnv() = %+v; want on=%v protocol=%q", s, tc.on, tc.protocol)
			}
			if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Errorf("tracingFromEnv() error = %v; want %q", err, tc.err)
			}
		})
	}
}
