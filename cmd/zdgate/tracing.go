package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/zdgate/zdgate/oidc"
)

// Tracing is configured only through the OpenTelemetry specification's environment variables, read
// from the process environment as every OpenTelemetry SDK does (docs/operations.md, "Tracing"):
//
//   - it is off by default, and on only when OTEL_TRACES_EXPORTER=otlp, or when that variable is
//     unset and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set;
//   - OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none, turns it off whatever else is set;
//   - OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL picks http/protobuf (default) or grpc; the exporter
//     itself reads the endpoint, headers, timeout, compression and TLS variables;
//   - the SDK reads OTEL_TRACES_SAMPLER[_ARG] (validated here, so a typo stops start-up instead of
//     silently sampling everything) and OTEL_BSP_*; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
//     name the service (default service.name "zdgate").

// tracingSettings is what the environment asks for.
type tracingSettings struct {
	on       bool
	protocol string // "http/protobuf" or "grpc"
	because  string // what turned it on or off, for the start-up log and config check
}

func (s tracingSettings) String() string {
	if !s.on {
		return "off (" + s.because + ")"
	}
	return "on: OTLP " + s.protocol + " (" + s.because + ")"
}

var samplers = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

// tracingFromEnv decides from the OTEL_* variables whether and how to trace. It returns every
// problem at once, each prefixed with its variable.
func tracingFromEnv(env func(string) (string, bool)) (tracingSettings, error) {
	get := func(k string) string { v, _ := env(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return tracingSettings{because: "OTEL_SDK_DISABLED=true"}, nil
	}
	var errs []error
	s := tracingSettings{because: "no OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_TRACES_EXPORTER"}
	if exp := get("OTEL_TRACES_EXPORTER"); exp != "" {
		s.because = "OTEL_TRACES_EXPORTER=" + exp
		for _, e := range strings.Split(exp, ",") {
			switch e = strings.ToLower(strings.TrimSpace(e)); e {
			case "otlp":
				s.on = true
			case "none", "":
			default:
				errs = append(errs, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported (otlp or none)", e))
			}
		}
		if strings.Contains(strings.ToLower(exp), "none") {
			s.on = false // the specification: "none" means no exporter at all
		}
	} else {
		for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
			if get(k) != "" {
				s.on, s.because = true, k+" is set"
				break
			}
		}
	}
	if !s.on {
		return s, errors.Join(errs...)
	}
	s.protocol = "http/protobuf"
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := get(k); v != "" {
			if v != "http/protobuf" && v != "grpc" {
				errs = append(errs, fmt.Errorf("%s: %q is not supported (http/protobuf or grpc)", k, v))
			}
			s.protocol = v
			break
		}
	}
	if v := strings.ToLower(get("OTEL_TRACES_SAMPLER")); v != "" && !slices.Contains(samplers, v) {
		errs = append(errs, fmt.Errorf("OTEL_TRACES_SAMPLER: %q is not supported (%s)", v, strings.Join(samplers, ", ")))
	} else if strings.HasSuffix(v, "traceidratio") {
		if a := get("OTEL_TRACES_SAMPLER_ARG"); a != "" {
			if f, err := strconv.ParseFloat(a, 64); err != nil || f < 0 || f > 1 {
				errs = append(errs, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: %q is not a ratio from 0 to 1", a))
			}
		}
	}
	return s, errors.Join(errs...)
}

// newTracerProvider builds the SDK's provider: a batching OTLP exporter behind scrubExporter, the
// sampler of OTEL_TRACES_SAMPLER, and the resource of OTEL_SERVICE_NAME/OTEL_RESOURCE_ATTRIBUTES.
// Export failures are logged at warn level; they never fail a request.
func newTracerProvider(ctx context.Context, s tracingSettings, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	if s.protocol == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	fromEnv, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("tracing: OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	res, err := resource.Merge(resource.NewSchemaless(
		attribute.String("service.name", "zdgate"), attribute.String("service.version", version),
	), fromEnv) // the environment wins
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	// The SDK reports export errors to otel's process-wide handler (there is no other hook).
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: span export failed", "cause", err.Error())
	}))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(scrubExporter{exp}), sdktrace.WithResource(res)), nil
}

// tracedTransport spans each call of next as a client span named name(r), and sends the span's
// W3C traceparent with it.
func tracedTransport(tp trace.TracerProvider, next http.RoundTripper, name func(*http.Request) string) http.RoundTripper {
	return otelhttp.NewTransport(next,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return name(r) }),
	)
}

// idpSpanName names an IdP call by its oidc call kind ("idp refresh", "idp userinfo", ...).
func idpSpanName(r *http.Request) string { return "idp " + oidc.CallKind(r) }

// upstreamSpanName names a proxied call ("upstream GET").
func upstreamSpanName(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return "upstream " + r.Method
	}
	return "upstream HTTP"
}

// shutdownTracing flushes the spans still queued, bounded, when zdgate stops.
func shutdownTracing(tp *sdktrace.TracerProvider, log *slog.Logger) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			log.Warn("tracing: flushing spans at shutdown failed", "cause", err.Error())
		}
	}
}

// scrubExporter removes query strings and fragments from URL attributes before spans leave the
// process. otelhttp's client spans record url.full with the query, and a proxied request's query
// may carry the app's own secrets (a reset link's token, say). It runs in the batch exporter's
// goroutine, never on the request path.
type scrubExporter struct{ sdktrace.SpanExporter }

func (e scrubExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	out, copied := spans, false
	for i, s := range spans {
		if attrs, changed := scrubAttributes(s.Attributes()); changed {
			if !copied {
				out, copied = slices.Clone(spans), true
			}
			out[i] = scrubbedSpan{ReadOnlySpan: s, attrs: attrs}
		}
	}
	return e.SpanExporter.ExportSpans(ctx, out)
}

// scrubbedSpan is a span with its attributes replaced.
type scrubbedSpan struct {
	sdktrace.ReadOnlySpan
	attrs []attribute.KeyValue
}

func (s scrubbedSpan) Attributes() []attribute.KeyValue { return s.attrs }

func scrubAttributes(in []attribute.KeyValue) ([]attribute.KeyValue, bool) {
	changed := false
	out := make([]attribute.KeyValue, 0, len(in))
	for _, kv := range in {
		switch kv.Key {
		case "url.full", "http.url", "http.target":
			if v := kv.Value.AsString(); strings.ContainsAny(v, "?#") {
				kv, changed = attribute.String(string(kv.Key), v[:strings.IndexAny(v, "?#")]), true
			}
		case "url.query":
			changed = true
			continue
		}
		out = append(out, kv)
	}
	if !changed {
		return in, false
	}
	return out, true
}
