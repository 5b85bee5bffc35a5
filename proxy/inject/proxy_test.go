package inject

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects server and proxy error logs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// stack is an upstream server, a ReverseProxy with the injector in front of
// it, and a client, all over real sockets.
type stack struct {
	inj     *Injector
	results func() []string
	front   *httptest.Server
	client  *http.Client
	errs    *lockedBuffer
}

func newStack(t *testing.T, cfg Config, upstream http.Handler) *stack {
	t.Helper()
	var mu sync.Mutex
	var results []string
	cfg.Observe = func(s string) {
		mu.Lock()
		defer mu.Unlock()
		results = append(results, s)
	}
	inj, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	errs := &lockedBuffer{}
	up := httptest.NewUnstartedServer(upstream)
	up.Config.ErrorLog = log.New(errs, "upstream: ", 0)
	up.Start()
	t.Cleanup(up.Close)
	target, _ := url.Parse(up.URL)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			inj.PrepareRequest(pr.Out)
		},
		ModifyResponse: inj.ModifyResponse,
		ErrorLog:       log.New(errs, "proxy: ", 0),
	}
	front := httptest.NewUnstartedServer(rp)
	front.Config.ErrorLog = log.New(errs, "front: ", 0)
	front.Start()
	t.Cleanup(front.Close)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)
	t.Cleanup(func() {
		if s := errs.String(); s != "" {
			t.Errorf("server logs:\n%s", s)
		}
	})
	return &stack{
		inj: inj,
		results: func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), results...)
		},
		front:  front,
		client: client,
		errs:   errs,
	}
}

// get sends a request with a deadline, so a proxy that buffers makes the
// test fail instead of hang.
func (s *stack) do(t *testing.T, method, path string, h http.Header) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, method, s.front.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

func servePage(etag string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(testPage))
	})
}

// TestProxyContentLength sends pages with a Content-Length through the proxy
// twice on one connection: a wrong length breaks the body or the next
// request.
func TestProxyContentLength(t *testing.T) {
	s := newStack(t, Config{}, servePage(`"v1"`))
	want := strings.Replace(testPage, "</head>", string(s.inj.Tag(""))+"</head>", 1)
	for range 3 {
		res := s.do(t, http.MethodGet, "/", nil)
		if got := readBody(t, res); got != want {
			t.Fatalf("body = %q; want %q", got, want)
		}
		// The declared length must be the injected page's (or absent): never the origin's.
		if res.ContentLength != int64(len(want)) || res.Header.Get("Accept-Ranges") != "" {
			t.Fatalf("ContentLength %d, headers %v; want %d and no ranges", res.ContentLength, res.Header, len(want))
		}
	}
	if got := s.results(); len(got) != 3 || got[0] != ResultInjected {
		t.Fatalf("observed %q", got)
	}
}

func TestProxyGzip(t *testing.T) {
	sawEncoding := make(chan string, 1)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawEncoding <- r.Header.Get("Accept-Encoding")
		z := gzipped(t, testPage)
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", fmt.Sprint(len(z)))
		w.Write(z)
	})
	s := newStack(t, Config{}, up)
	res := s.do(t, http.MethodGet, "/", http.Header{"Accept-Encoding": {"gzip, deflate, br, zstd"}})
	body := readBody(t, res)
	if ae := <-sawEncoding; ae != "gzip" {
		t.Errorf("upstream saw Accept-Encoding %q; want gzip", ae)
	}
	if want := strings.Replace(testPage, "</head>", string(s.inj.Tag(""))+"</head>", 1); body != want {
		t.Fatalf("body = %q; want %q", body, want)
	}
	if res.Header.Get("Content-Encoding") != "" || res.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("headers %v; want no Content-Encoding, Vary: Accept-Encoding", res.Header)
	}
}

func TestProxyBrotliUntouched(t *testing.T) {
	fake := []byte("\x1b\x2a\x00\xf8not really brotli</head>")
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "br")
		w.Header().Set("ETag", `"b"`)
		w.Header().Set("Content-Length", fmt.Sprint(len(fake)))
		w.Write(fake)
	})
	s := newStack(t, Config{}, up)
	res := s.do(t, http.MethodGet, "/", http.Header{"Accept-Encoding": {"br"}})
	if body := readBody(t, res); body != string(fake) {
		t.Fatalf("body = %q; want the upstream bytes", body)
	}
	if res.ContentLength != int64(len(fake)) || res.Header.Get("Content-Encoding") != "br" || res.Header.Get("ETag") != `"b"` {
		t.Fatalf("ContentLength %d, headers %v; want the upstream's", res.ContentLength, res.Header)
	}
	if got := s.results(); len(got) != 1 || got[0] != ResultEncoding {
		t.Fatalf("observed %q; want [%q]", got, ResultEncoding)
	}
}

// TestProxyConditionalAndRanges covers HEAD, the 304 that the ETag mapping
// makes possible, and 206, all passed on as the origin sent them.
func TestProxyConditionalAndRanges(t *testing.T) {
	s := newStack(t, Config{}, servePage(`"v1"`))

	head := s.do(t, http.MethodHead, "/", nil)
	if body := readBody(t, head); body != "" || head.ContentLength != int64(len(testPage)) || head.Header.Get("ETag") != `"v1"` {
		t.Fatalf("HEAD: body %q, length %d, ETag %q; want the origin's", body, head.ContentLength, head.Header.Get("ETag"))
	}

	full := s.do(t, http.MethodGet, "/", nil)
	readBody(t, full)
	tag := full.Header.Get("ETag")
	if !strings.HasPrefix(tag, `W/"v1-zd`) {
		t.Fatalf("ETag = %q; want a weak tagged one", tag)
	}
	notModified := s.do(t, http.MethodGet, "/", http.Header{"If-None-Match": {tag}})
	if body := readBody(t, notModified); notModified.StatusCode != http.StatusNotModified || body != "" {
		t.Fatalf("revalidation: %d %q; want 304 without body", notModified.StatusCode, body)
	}

	part := s.do(t, http.MethodGet, "/", http.Header{"Range": {"bytes=0-9"}})
	if body := readBody(t, part); part.StatusCode != http.StatusPartialContent || body != testPage[:10] {
		t.Fatalf("range: %d %q; want 206 %q", part.StatusCode, body, testPage[:10])
	}
	if got := s.results(); len(got) != 1 || got[0] != ResultInjected {
		t.Fatalf("observed %q; want only the full GET", got)
	}
}

// TestProxyUpgrade runs a hand-made protocol switch through the proxy: the
// 101's body must reach ReverseProxy unwrapped, or the echo fails.
func TestProxyUpgrade(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "test" {
			http.Error(w, "want Upgrade: test", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\nContent-Type: text/html\r\n\r\n")
		brw.Flush()
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		brw.WriteString("echo: " + line)
		brw.Flush()
	})
	s := newStack(t, Config{}, up)
	conn, err := net.Dial("tcp", s.front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: test\r\nAccept: text/html\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d; want 101", res.StatusCode)
	}
	fmt.Fprint(conn, "</head>ping\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: </head>ping\n" {
		t.Fatalf("read %q, %v; want the echo", line, err)
	}
	if got := s.results(); len(got) != 0 {
		t.Fatalf("observed %q for an upgrade", got)
	}
}

// TestProxyEventStream checks that server-sent events are not held back: the
// upstream sends the second event only after the client has read the first.
func TestProxyEventStream(t *testing.T) {
	next := make(chan struct{})
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: two</head>\n\n")
	})
	s := newStack(t, Config{}, up)
	res := s.do(t, http.MethodGet, "/events", http.Header{"Accept": {"text/event-stream"}})
	br := bufio.NewReader(res.Body)
	readEvent := func() string {
		var ev strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("after %q: %v", ev.String(), err)
			}
			ev.WriteString(line)
			if line == "\n" {
				return ev.String()
			}
		}
	}
	if ev := readEvent(); ev != "data: one\n\n" {
		t.Fatalf("first event %q", ev)
	}
	close(next)
	if ev := readEvent(); ev != "data: two</head>\n\n" {
		t.Fatalf("second event %q", ev)
	}
}

// TestProxyStalledPage checks that a page whose upstream stalls right after
// </head> reaches the client with the snippet while the upstream waits.
func TestProxyStalledPage(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	const head = "<!DOCTYPE html><html><head><title>slow</title></head>"
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, head)
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "<body>done</body></html>")
	})
	s := newStack(t, Config{}, up)
	res := s.do(t, http.MethodGet, "/", nil)
	want := strings.Replace(head, "</head>", string(s.inj.Tag(""))+"</head>", 1)
	got := make([]byte, 0, len(want))
	buf := make([]byte, 1024)
	for len(got) < len(want) {
		n, err := res.Body.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read %q before the upstream went on: %v", got, err)
		}
	}
	if string(got) != want {
		t.Fatalf("before release: %q; want %q", got, want)
	}
	once.Do(func() { close(release) })
	if rest := readBody(t, res); rest != "<body>done</body></html>" {
		t.Fatalf("rest = %q", rest)
	}
}

// BenchmarkProxy measures what a user feels: a 20 KiB page through a
// ReverseProxy over real sockets, without and with the injector, from an
// upstream that sends a Content-Length and from one that streams (chunked).
// An injected page has no Content-Length, so ReverseProxy flushes every
// write; the streaming upstream shows that cost without the injector.
func BenchmarkProxy(b *testing.B) {
	doc := benchPage(20 << 10)
	inj, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, upstream := range []string{"length", "chunked"} {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if upstream == "length" {
				w.Header().Set("Content-Length", fmt.Sprint(len(doc)))
			} else {
				w.Header().Set("Transfer-Encoding", "chunked")
			}
			w.Write(doc)
		}))
		defer up.Close()
		target, _ := url.Parse(up.URL)
		for _, withInjector := range []bool{false, true} {
			name := "plain"
			rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
			if withInjector {
				name = "inject"
				rp.Rewrite = func(pr *httputil.ProxyRequest) {
					pr.SetURL(target)
					inj.PrepareRequest(pr.Out)
				}
				rp.ModifyResponse = inj.ModifyResponse
			}
			b.Run(upstream+"/"+name+"/20KiB", func(b *testing.B) {
				front := httptest.NewServer(rp)
				defer front.Close()
				client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
				defer client.CloseIdleConnections()
				req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
				req.Header.Set("Accept", "text/html")
				buf := make([]byte, 32<<10)
				b.SetBytes(int64(len(doc)))
				b.ReportAllocs()
				for b.Loop() {
					res, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.CopyBuffer(io.Discard, res.Body, buf)
					res.Body.Close()
					if err != nil || n < int64(len(doc)) {
						b.Fatalf("read %d bytes: %v", n, err)
					}
				}
			})
		}
	}
}
