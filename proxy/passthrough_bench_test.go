package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// page2k is the load harness's page size: small, so per-request work (not copying) dominates.
var page2k = func() string {
	var b strings.Builder
	b.WriteString("<!doctype html><html><head><title>bench</title></head><body>")
	for b.Len() < 2<<10-20 {
		b.WriteString("<p>lorem ipsum dolor sit amet</p>\n")
	}
	b.WriteString("</body></html>")
	return b.String()
}()

// BenchmarkPassThrough is an authenticated, non-injected pass-through of a 2 KiB page with zdgate's
// defaults — an info-level JSON access line per request, written to a real file (/dev/null, one
// write per flush like a container's log pipe) — beside a bare httputil.ReverseProxy and zdgate
// with the access log off, in one run. allocs/op is per request, client side included (the same
// for all three). Profile the hot path with:
//
//	go test -run '^$' -bench 'PassThrough/zdgate$' -cpuprofile cpu.out ./proxy && go tool pprof -top cpu.out
func BenchmarkPassThrough(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(page2k)))
		io.WriteString(w, page2k)
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)
	wantLen := func(n int) bool { return n == len(page2k) }

	b.Run("bare", func(b *testing.B) {
		rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() }, Transport: NewUpstreamTransport()}
		front := httptest.NewServer(rp)
		defer front.Close()
		benchGetSized(b, front.URL+"/page", nil, len(page2k), wantLen)
	})
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	// zdgate-traced samples every request into the OpenTelemetry SDK (batching, exporter that
	// drops), with the upstream transport wrapped as cmd/zdgate does: the cost of tracing when on.
	for _, name := range []string{"zdgate", "zdgate-log-off", "zdgate-traced"} {
		b.Run(name, func(b *testing.B) {
			st := newStack(b, stackOpts{mutate: func(c *Config) {
				c.Inject = false
				c.Upstream = target
				if name != "zdgate-log-off" {
					c.Logger = slog.New(slog.NewJSONHandler(devnull, &slog.HandlerOptions{Level: slog.LevelInfo}))
				}
				if name == "zdgate-traced" {
					tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
					b.Cleanup(func() { tp.Shutdown(context.Background()) })
					c.TracerProvider = tp
					c.UpstreamTransport = otelhttp.NewTransport(NewUpstreamTransport(), otelhttp.WithTracerProvider(tp))
				}
			}})
			st.login(st.client, "/")
			cookies := st.client.Jar.Cookies(mustURL(st.front.URL))
			benchGetSized(b, st.front.URL+"/page", cookies, len(page2k), wantLen)
		})
	}
}
