package main

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace receiver (POST /v1/traces, binary protobuf) that decodes the
// real OTLP messages with the official generated types, as a Collector's otlpreceiver does. No
// Collector or Jaeger build installs from the registries CI reaches (no Debian package; the
// Collector's distributions are not `go install`-able modules), so the test brings its own.
type otlpReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	spans   []receivedSpan
	headers []http.Header
}

// receivedSpan is one span with the resource it was exported under.
type receivedSpan struct {
	*tracepb.Span
	resource []*commonpb.KeyValue
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	o := &otlpReceiver{}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *otlpReceiver) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST /v1/traces with application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(io.LimitReader(body, 16<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		http.Error(w, "not an ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.headers = append(o.headers, r.Header.Clone())
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				o.spans = append(o.spans, receivedSpan{Span: s, resource: rs.GetResource().GetAttributes()})
			}
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (o *otlpReceiver) received() ([]receivedSpan, []http.Header) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]receivedSpan(nil), o.spans...), append([]http.Header(nil), o.headers...)
}

func hexID(b []byte) string { return hex.EncodeToString(b) }

// attr returns the string form of a span attribute, or "".
func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return anyString(kv.GetValue())
		}
	}
	return ""
}

// anyString renders any OTLP value as text (arrays and maps included), for printing and scanning.
func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		return string(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, anyString(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *commonpb.AnyValue_KvlistValue:
		var parts []string
		for _, kv := range x.KvlistValue.GetValues() {
			parts = append(parts, kv.GetKey()+"="+anyString(kv.GetValue()))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return ""
}

// everyValue is every attribute value a span carries (its own, its events', its links' and its
// resource's), with where it came from, and the span's name.
func everyValue(s receivedSpan) map[string]string {
	out := map[string]string{"name": s.GetName()}
	add := func(where string, kvs []*commonpb.KeyValue) {
		for _, kv := range kvs {
			out[where+kv.GetKey()] = anyString(kv.GetValue())
		}
	}
	add("", s.GetAttributes())
	add("resource.", s.resource)
	for _, e := range s.GetEvents() {
		out["event."+e.GetName()] = e.GetName()
		add("event."+e.GetName()+".", e.GetAttributes())
	}
	for _, l := range s.GetLinks() {
		add("link.", l.GetAttributes())
	}
	out["status.message"] = s.GetStatus().GetMessage()
	return out
}

// traceTree prints the spans of one trace as an indented tree, children in start order, with
// the attributes that say what each span was.
func traceTree(spans []receivedSpan, traceID string) string {
	byID := map[string]receivedSpan{}
	children := map[string][]receivedSpan{}
	for _, s := range spans {
		if hexID(s.GetTraceId()) == traceID {
			byID[hexID(s.GetSpanId())] = s
		}
	}
	var roots []receivedSpan
	for _, s := range byID {
		if _, ok := byID[hexID(s.GetParentSpanId())]; ok {
			children[hexID(s.GetParentSpanId())] = append(children[hexID(s.GetParentSpanId())], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(list []receivedSpan) {
		sort.Slice(list, func(i, j int) bool { return list[i].GetStartTimeUnixNano() < list[j].GetStartTimeUnixNano() })
	}
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s\n", traceID)
	var walk func(s receivedSpan, depth int)
	walk = func(s receivedSpan, depth int) {
		kind := strings.ToLower(strings.TrimPrefix(s.GetKind().String(), "SPAN_KIND_"))
		var shown []string
		for _, k := range []string{"http.route", "http.request.method", "http.response.status_code", "zdgate.recheck.kind", "zdgate.recheck.result", "url.full", "server.address"} {
			if v := attr(s.GetAttributes(), k); v != "" {
				shown = append(shown, k+"="+v)
			}
		}
		dur := float64(s.GetEndTimeUnixNano()-s.GetStartTimeUnixNano()) / 1e6
		fmt.Fprintf(&b, "%s%s [%s, %.1f ms] span %s  %s\n", strings.Repeat("  ", depth+1), s.GetName(), kind, dur, hexID(s.GetSpanId()), strings.Join(shown, " "))
		kids := children[hexID(s.GetSpanId())]
		byStart(kids)
		for _, c := range kids {
			walk(c, depth+1)
		}
	}
	byStart(roots)
	for _, r := range roots {
		walk(r, 0)
	}
	return b.String()
}
