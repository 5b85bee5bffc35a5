package inject

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const testPage = "<html><head><title>t</title></head><body>hello</body></html>"

// trackedBody records whether it was read or closed.
type trackedBody struct {
	r      io.Reader
	reads  int
	closed bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.reads++
	return b.r.Read(p)
}

func (b *trackedBody) Close() error {
	b.closed = true
	return nil
}

// response builds what ReverseProxy hands to ModifyResponse.
func response(method string, status int, reqHdr, resHdr http.Header, body []byte) *http.Response {
	req, _ := http.NewRequest(method, "http://upstream.test/page", nil)
	req.Host = "app.test"
	for k, v := range reqHdr {
		req.Header[k] = v
	}
	res := &http.Response{
		StatusCode:    status,
		Header:        http.Header{},
		Body:          &trackedBody{r: bytes.NewReader(body)},
		ContentLength: -1,
		Request:       req,
	}
	for k, v := range resHdr {
		res.Header[k] = v
	}
	if res.Header.Get("Content-Length") != "" {
		res.ContentLength = int64(len(body))
	}
	return res
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func newTestInjector(t testing.TB, cfg Config) (*Injector, *[]string) {
	t.Helper()
	var results []string
	cfg.Observe = func(s string) { results = append(results, s) }
	i, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return i, &results
}

func TestGateLeavesOtherResponsesUntouched(t *testing.T) {
	html := hdr("Content-Type", "text/html; charset=utf-8")
	withHTML := func(kv ...string) http.Header {
		h := html.Clone()
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	cases := []struct {
		name    string
		method  string
		status  int
		reqHdr  http.Header
		resHdr  http.Header
		body    string
		observe string // "" when the response is not a candidate
	}{
		{"HEAD", http.MethodHead, 200, nil, withHTML("Content-Length", "60"), "", ""},
		{"POST", http.MethodPost, 200, nil, html, testPage, ""},
		{"204", http.MethodGet, 204, nil, html, "", ""},
		{"206", http.MethodGet, 206, nil, withHTML("Content-Range", "bytes 0-9/60"), testPage[:10], ""},
		{"304", http.MethodGet, 304, nil, withHTML("ETag", `"x"`), "", ""},
		{"404 page", http.MethodGet, 404, nil, html, testPage, ""},
		{"101", http.MethodGet, 101, hdr("Upgrade", "websocket", "Connection", "Upgrade"), hdr("Upgrade", "websocket"), "", ""},
		{"upgrade request answered 200", http.MethodGet, 200, hdr("Upgrade", "websocket"), html, testPage, ""},
		{"200 with Content-Range", http.MethodGet, 200, nil, withHTML("Content-Range", "bytes 0-59/60"), testPage, ""},
		{"empty page", http.MethodGet, 200, nil, html, "", ""},
		{"download", http.MethodGet, 200, nil, withHTML("Content-Disposition", `Attachment; filename="report.html"`), testPage, ""},
		{"json", http.MethodGet, 200, nil, hdr("Content-Type", "application/json"), `{"a":"</head>"}`, ""},
		{"javascript", http.MethodGet, 200, nil, hdr("Content-Type", "text/javascript"), `x="</head>"`, ""},
		{"image", http.MethodGet, 200, nil, hdr("Content-Type", "image/png"), "\x89PNG</head>", ""},
		{"event stream", http.MethodGet, 200, nil, hdr("Content-Type", "text/event-stream"), "data: </head>\n\n", ""},
		{"text/plain", http.MethodGet, 200, nil, hdr("Content-Type", "text/plain"), testPage, ""},
		{"xhtml", http.MethodGet, 200, nil, hdr("Content-Type", "application/xhtml+xml"), testPage, ""},
		{"no content type", http.MethodGet, 200, nil, nil, testPage, ""},
		{"utf-16", http.MethodGet, 200, nil, hdr("Content-Type", "text/html; charset=utf-16"), testPage, ResultCharset},
		{"UTF-16LE quoted", http.MethodGet, 200, nil, hdr("Content-Type", `text/html; charset="UTF-16LE"`), testPage, ResultCharset},
		{"utf-32", http.MethodGet, 200, nil, hdr("Content-Type", "text/html;charset=utf-32be"), testPage, ResultCharset},
		{"iso-2022-jp", http.MethodGet, 200, nil, hdr("Content-Type", "text/html; charset=ISO-2022-JP"), testPage, ResultCharset},
		{"brotli", http.MethodGet, 200, nil, withHTML("Content-Encoding", "br"), "\x1b\x00br", ResultEncoding},
		{"zstd", http.MethodGet, 200, nil, withHTML("Content-Encoding", "zstd"), "\x28\xb5\x2f\xfd", ResultEncoding},
		{"deflate", http.MethodGet, 200, nil, withHTML("Content-Encoding", "deflate"), "x\x9c", ResultEncoding},
		{"gzip then br", http.MethodGet, 200, nil, withHTML("Content-Encoding", "gzip, br"), "x", ResultEncoding},
		{"csp none", http.MethodGet, 200, nil, withHTML("Content-Security-Policy", "script-src 'none'"), testPage, ResultCSPBlocked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inj, results := newTestInjector(t, Config{})
			res := response(tc.method, tc.status, tc.reqHdr, tc.resHdr, []byte(tc.body))
			if tc.body == "" {
				res.ContentLength = 0
			}
			before := res.Header.Clone()
			body := res.Body
			cl := res.ContentLength
			if err := inj.ModifyResponse(res); err != nil {
				t.Fatalf("ModifyResponse() = %v", err)
			}
			if !reflect.DeepEqual(res.Header, before) {
				t.Errorf("headers changed:\n got  %v\n want %v", res.Header, before)
			}
			if res.Body != body || res.ContentLength != cl {
				t.Errorf("body or ContentLength replaced")
			}
			if tb := body.(*trackedBody); tb.reads != 0 || tb.closed {
				t.Errorf("body was read %d times, closed %v", tb.reads, tb.closed)
			}
			got, _ := io.ReadAll(res.Body)
			if string(got) != tc.body {
				t.Errorf("body = %q; want %q", got, tc.body)
			}
			var want []string
			if tc.observe != "" {
				want = []string{tc.observe}
			}
			if !slices.Equal(*results, want) {
				t.Errorf("observed %q; want %q", *results, want)
			}
		})
	}
}

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestInjectedHeaders(t *testing.T) {
	inj, _ := newTestInjector(t, Config{})
	tag := string(inj.Tag(""))
	injected := strings.Replace(testPage, "</head>", tag+"</head>", 1)
	cases := []struct {
		name    string
		resHdr  http.Header
		body    []byte
		want    http.Header // exact headers after ModifyResponse
		wantOut string
	}{
		{
			name: "identity",
			resHdr: hdr("Content-Type", "text/html; charset=utf-8", "Content-Length", "60", "ETag", `"abc"`,
				"Accept-Ranges", "bytes", "Cache-Control", "max-age=60", "Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT",
				"Content-MD5", "x", "Repr-Digest", "sha-256=:x:"),
			body: []byte(testPage),
			// A whole page within the scan limit: the new length is certain and declared.
			want: hdr("Content-Type", "text/html; charset=utf-8", "ETag", `W/"abc`+inj.etagStrong+`"`,
				"Cache-Control", "max-age=60", "Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT",
				"Content-Length", strconv.Itoa(len(injected))),
			wantOut: injected,
		},
		{
			name:    "weak etag",
			resHdr:  hdr("Content-Type", "text/html", "ETag", `W/"abc"`),
			body:    []byte(testPage),
			want:    hdr("Content-Type", "text/html", "ETag", `W/"abc`+inj.etagWeak+`"`),
			wantOut: injected,
		},
		{
			name:    "malformed etag dropped",
			resHdr:  hdr("Content-Type", "text/html", "ETag", `abc`),
			body:    []byte(testPage),
			want:    hdr("Content-Type", "text/html"),
			wantOut: injected,
		},
		{
			name:    "gzip",
			resHdr:  hdr("Content-Type", "text/html", "Content-Encoding", "gzip", "Content-Length", "99", "Vary", "Cookie"),
			body:    gzipped(t, testPage),
			want:    hdr("Content-Type", "text/html", "Vary", "Cookie", "Vary", "Accept-Encoding"),
			wantOut: injected,
		},
		{
			name:    "gzip, vary present",
			resHdr:  hdr("Content-Type", "text/html", "Content-Encoding", "GZIP", "Vary", "Cookie, accept-encoding"),
			body:    gzipped(t, testPage),
			want:    hdr("Content-Type", "text/html", "Vary", "Cookie, accept-encoding"),
			wantOut: injected,
		},
		{
			name:    "identity coding",
			resHdr:  hdr("Content-Type", "text/html; charset=windows-1252", "Content-Encoding", "identity"),
			body:    []byte(testPage),
			want:    hdr("Content-Type", "text/html; charset=windows-1252", "Content-Encoding", "identity"),
			wantOut: injected,
		},
		{
			name:    "malformed parameters",
			resHdr:  hdr("Content-Type", "text/html; charset=utf-8; charset=utf-8"),
			body:    []byte(testPage),
			want:    hdr("Content-Type", "text/html; charset=utf-8; charset=utf-8"),
			wantOut: injected,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := response(http.MethodGet, 200, nil, tc.resHdr, tc.body)
			if err := inj.ModifyResponse(res); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Header, tc.want) {
				t.Errorf("headers:\n got  %v\n want %v", res.Header, tc.want)
			}
			wantLen := int64(-1)
			if v := tc.want.Get("Content-Length"); v != "" {
				wantLen, _ = strconv.ParseInt(v, 10, 64)
			}
			if res.ContentLength != wantLen {
				t.Errorf("ContentLength = %d; want %d", res.ContentLength, wantLen)
			}
			out, err := io.ReadAll(res.Body)
			if err != nil || string(out) != tc.wantOut {
				t.Errorf("body = %q, %v; want %q", out, err, tc.wantOut)
			}
			if err := res.Body.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNonceOnInjectedTags(t *testing.T) {
	inj, _ := newTestInjector(t, Config{WidgetScriptURL: SnippetURL("k")})
	res := response(http.MethodGet, 200, nil,
		hdr("Content-Type", "text/html", "Content-Security-Policy", "script-src 'nonce-r4nd0m' 'strict-dynamic'"), []byte(testPage))
	if err := inj.ModifyResponse(res); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(res.Body)
	want := `<script src="/zendesk/auth.js?v=` + inj.Version() + `" defer nonce="r4nd0m"></script>` +
		`<script id="ze-snippet" src="https://static.zdassets.com/ekr/snippet.js?key=k" defer nonce="r4nd0m"></script></head>`
	if !strings.Contains(string(out), want) {
		t.Fatalf("body = %q; want it to contain %q", out, want)
	}
}

func TestPrepareRequest(t *testing.T) {
	inj, _ := newTestInjector(t, Config{})
	ours := `W/"abc` + inj.etagStrong + `"`
	oursWeak := `W/"abc` + inj.etagWeak + `"`
	page := func(kv ...string) http.Header {
		return hdr(append([]string{"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}, kv...)...)
	}
	cases := []struct {
		name   string
		method string
		in     http.Header
		want   http.Header
	}{
		{"narrow to gzip", "GET", page("Accept-Encoding", "gzip, deflate, br, zstd"), page("Accept-Encoding", "gzip")},
		{"x-gzip", "GET", page("Accept-Encoding", "x-gzip"), page("Accept-Encoding", "gzip")},
		{"star", "GET", page("Accept-Encoding", "br, *;q=0.1"), page("Accept-Encoding", "gzip")},
		{"gzip refused", "GET", page("Accept-Encoding", "gzip;q=0, *"), page("Accept-Encoding", "identity")},
		{"no gzip", "GET", page("Accept-Encoding", "br"), page("Accept-Encoding", "identity")},
		{"no header", "GET", page(), page("Accept-Encoding", "identity")},
		{"document navigation", "GET", hdr("Accept", "*/*", "Sec-Fetch-Dest", "document", "Accept-Encoding", "br"),
			hdr("Accept", "*/*", "Sec-Fetch-Dest", "document", "Accept-Encoding", "identity")},
		{"strong tag restored", "GET", page("Accept-Encoding", "gzip", "If-None-Match", ours), page("Accept-Encoding", "gzip", "If-None-Match", `"abc"`)},
		{"weak tag restored", "GET", page("Accept-Encoding", "gzip", "If-None-Match", oursWeak), page("Accept-Encoding", "gzip", "If-None-Match", `W/"abc"`)},
		{"list", "GET", page("Accept-Encoding", "gzip", "If-None-Match", `"x", `+ours, "If-None-Match", `W/"y"`),
			page("Accept-Encoding", "gzip", "If-None-Match", `"x", "abc", W/"y"`)},
		{"other injector version", "GET", page("Accept-Encoding", "gzip", "If-None-Match", `W/"abc-zd00000000"`),
			page("Accept-Encoding", "gzip", "If-None-Match", `W/"abc-zd00000000"`)},
		{"star tag", "GET", page("Accept-Encoding", "gzip", "If-None-Match", "*"), page("Accept-Encoding", "gzip", "If-None-Match", "*")},
		{"range with date", "GET", page("Accept-Encoding", "gzip", "Range", "bytes=10-", "If-Range", "Mon, 02 Jan 2006 15:04:05 GMT"),
			page("Accept-Encoding", "gzip")},
		{"range with weak tag", "GET", page("Accept-Encoding", "gzip", "Range", "bytes=10-", "If-Range", ours), page("Accept-Encoding", "gzip")},
		{"range with strong tag", "GET", page("Accept-Encoding", "gzip", "Range", "bytes=10-", "If-Range", `"abc"`),
			page("Accept-Encoding", "gzip", "Range", "bytes=10-", "If-Range", `"abc"`)},
		{"range alone", "GET", page("Accept-Encoding", "gzip", "Range", "bytes=10-"), page("Accept-Encoding", "gzip", "Range", "bytes=10-")},
		{"post", "POST", page("Accept-Encoding", "br", "If-None-Match", ours), page("Accept-Encoding", "br", "If-None-Match", ours)},
		{"upgrade", "GET", page("Accept-Encoding", "br", "Upgrade", "websocket"), page("Accept-Encoding", "br", "Upgrade", "websocket")},
		{"api", "GET", hdr("Accept", "application/json", "Accept-Encoding", "br"), hdr("Accept", "application/json", "Accept-Encoding", "br")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://upstream.test/", nil)
			req.Header = tc.in.Clone()
			inj.PrepareRequest(req)
			if !reflect.DeepEqual(req.Header, tc.want) {
				t.Errorf("headers:\n got  %v\n want %v", req.Header, tc.want)
			}
		})
	}
}

// TestETagRoundTrip feeds the ETag of an injected page back as If-None-Match
// and expects the origin's own tag at the origin.
func TestETagRoundTrip(t *testing.T) {
	for _, origin := range []string{`"v1"`, `W/"v1"`, `"a,b"`} {
		inj, _ := newTestInjector(t, Config{WidgetScriptURL: SnippetURL("k")})
		res := response(http.MethodGet, 200, nil, hdr("Content-Type", "text/html", "ETag", origin), []byte(testPage))
		if err := inj.ModifyResponse(res); err != nil {
			t.Fatal(err)
		}
		tagged := res.Header.Get("ETag")
		if !strings.HasPrefix(tagged, `W/"`) || tagged == origin {
			t.Fatalf("ETag %s became %s; want a different weak tag", origin, tagged)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://upstream.test/", nil)
		req.Header.Set("Accept", "text/html")
		req.Header.Set("If-None-Match", tagged)
		inj.PrepareRequest(req)
		if got := req.Header.Get("If-None-Match"); got != origin {
			t.Errorf("If-None-Match %s went to the origin as %s; want %s", tagged, got, origin)
		}
	}
	// A different snippet configuration must not map the tag back: the
	// cached page has other injected bytes.
	a, _ := newTestInjector(t, Config{})
	for _, cfg := range []Config{{WidgetScriptURL: SnippetURL("k")}, {ScanLimit: 1 << 20}, {Flavor: FlavorChat}} {
		if b, _ := newTestInjector(t, cfg); a.etagStrong == b.etagStrong {
			t.Errorf("%+v: ETag suffix %q unchanged", cfg, a.etagStrong)
		}
	}
}

// TestDeclaredLengthOnlyWhenCertain: a known-length page within the scan limit is declared with its
// injected length; a BOM page (never injected), a page longer than the scan limit (maybe never
// injected), a gzip page and a page with a widget snippet (tag length depends on the page) are not.
func TestDeclaredLengthOnlyWhenCertain(t *testing.T) {
	inj, _ := newTestInjector(t, Config{})
	small, _ := newTestInjector(t, Config{ScanLimit: 64})
	widget, _ := newTestInjector(t, Config{WidgetScriptURL: "https://static.zdassets.com/ekr/snippet.js?key=k"})
	bom := "\xff\xfe<\x00h\x00t\x00m\x00l\x00>\x00"
	cases := []struct {
		name     string
		inj      *Injector
		hdr      http.Header
		body     []byte
		declared bool
	}{
		{"fixed length", inj, hdr("Content-Type", "text/html", "Content-Length", "1"), []byte(testPage), true},
		{"no length (streamed)", inj, hdr("Content-Type", "text/html"), []byte(testPage), false},
		{"UTF-16 BOM", inj, hdr("Content-Type", "text/html", "Content-Length", "1"), []byte(bom), false},
		{"past the scan limit", small, hdr("Content-Type", "text/html", "Content-Length", "1"), []byte(testPage + strings.Repeat(" ", 100)), false},
		{"gzip", inj, hdr("Content-Type", "text/html", "Content-Length", "1", "Content-Encoding", "gzip"), gzipped(t, testPage), false},
		{"widget snippet", widget, hdr("Content-Type", "text/html", "Content-Length", "1"), []byte(testPage), false},
		{"one byte", inj, hdr("Content-Type", "text/html", "Content-Length", "1"), []byte("x"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := response(http.MethodGet, 200, nil, tc.hdr, tc.body)
			if err := tc.inj.ModifyResponse(res); err != nil {
				t.Fatal(err)
			}
			out, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.declared {
				if res.ContentLength != int64(len(out)) || res.Header.Get("Content-Length") != strconv.Itoa(len(out)) {
					t.Fatalf("declared %d (%q); body is %d bytes", res.ContentLength, res.Header.Get("Content-Length"), len(out))
				}
			} else if res.ContentLength != -1 || res.Header.Get("Content-Length") != "" {
				t.Fatalf("declared %d; want no length", res.ContentLength)
			}
		})
	}
}
