package proxy

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracing is the proxy's OpenTelemetry instrumentation, present only when Config.TracerProvider is
// set: with tracing off no handler is wrapped and no span is started, so the hot path pays nothing.
//
// Spans it makes: one per incoming request (otelhttp; renamed "METHOD route" once routed, with
// http.route set to the route template of the metrics), and one per IdP re-check ("recheck", with
// its kind and result). The IdP and upstream HTTP calls are spanned by the transports the caller
// gives (cmd/zdgate wraps both with otelhttp), as children of these.
type tracing struct {
	tracer trace.Tracer
}

// Span attributes zdgate adds to otelhttp's. None of them carries a token, cookie or query string.
const (
	attrRequestID     = attribute.Key("zdgate.request_id")
	attrRecheckKind   = attribute.Key("zdgate.recheck.kind")
	attrRecheckResult = attribute.Key("zdgate.recheck.result")
	attrRoute         = attribute.Key("http.route")
	attrClientAddress = attribute.Key("client.address")
)

func newTracing(tp trace.TracerProvider) *tracing {
	if tp == nil {
		return nil
	}
	return &tracing{tracer: tp.Tracer("github.com/zdgate/zdgate/proxy")}
}

// traceRequests starts the span of each incoming request. An incoming W3C traceparent (and
// tracestate) is honoured only from a --trusted-proxy peer, like X-Forwarded-For and X-Request-Id:
// anyone else could attach their requests to a trace of their choosing, or force sampling with a
// parent-based sampler. From other peers both headers are dropped, so the request starts a new
// trace and the app never sees the visitor's trace context.
func (p *Proxy) traceRequests(next http.Handler) http.Handler {
	h := otelhttp.NewHandler(next, "zdgate",
		otelhttp.WithTracerProvider(p.cfg.TracerProvider),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), // metrics are Prometheus's job
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return spanMethod(r.Method) }),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.trust.fromTrusted(r) && (r.Header.Get("Traceparent") != "" || r.Header.Get("Tracestate") != "") {
			r2 := *r
			r2.Header = r.Header.Clone()
			r2.Header.Del("Traceparent")
			r2.Header.Del("Tracestate")
			r = &r2
		}
		h.ServeHTTP(w, r)
	})
}

// routed names the request's span once the route is known, and sets the client address the way
// the access log does (X-Forwarded-For only from trusted proxies; otelhttp believes anyone's).
func (t *tracing) routed(r *http.Request, info *reqInfo, client string) {
	span := trace.SpanFromContext(r.Context())
	span.SetName(spanMethod(r.Method) + " " + info.route)
	span.SetAttributes(attrRoute.String(info.route), attrRequestID.String(info.id), attrClientAddress.String(client))
}

// traceID is the request's trace id for the access line, or "" when it has none.
func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// traceRecheck starts the span of one IdP re-check of a session; end records its result.
func (p *Proxy) traceRecheck(ctx context.Context, kind string) (_ context.Context, end func(result string)) {
	if p.tr == nil {
		return ctx, func(string) {}
	}
	ctx, span := p.tr.tracer.Start(ctx, "recheck", trace.WithAttributes(attrRecheckKind.String(kind)))
	return ctx, func(result string) {
		span.SetAttributes(attrRecheckResult.String(result))
		if result != "ok" && result != "revoked" { // a revoked user is an answer, not a failure
			span.SetStatus(codes.Error, result)
		}
		span.End()
	}
}

// spanMethod is the method for a span name: unknown methods are "HTTP", so a client cannot
// invent span names.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "HTTP"
}
