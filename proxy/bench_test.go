package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/zdgate/zdgate/tokens"
)

// page20k is a 20 KiB HTML page with a head, like an app's page.
var page20k = func() string {
	var b strings.Builder
	b.WriteString("<!doctype html><html><head><title>bench</title><link rel=stylesheet href=/a.css></head><body>")
	for b.Len() < 20<<10-20 {
		b.WriteString("<p>lorem ipsum dolor sit amet, consectetur adipiscing elit</p>\n")
	}
	b.WriteString("</body></html>")
	return b.String()
}()

func pageUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(page20k)))
		io.WriteString(w, page20k)
	})
}

// benchGet fetches url in parallel with keep-alive connections and checks each answer.
func benchGet(b *testing.B, target string, cookies []*http.Cookie, wantLen func(int) bool) {
	benchGetSized(b, target, cookies, len(page20k), wantLen)
}

// benchGetSized is benchGet for a page of size bytes.
func benchGetSized(b *testing.B, target string, cookies []*http.Cookie, size int, wantLen func(int) bool) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.SetParallelism(16) // 32 connections on 2 cores, like the load harness
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", target, nil)
			req.Header.Set("Accept", "text/html")
			for _, ck := range cookies {
				req.AddCookie(ck)
			}
			res, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !wantLen(int(n)) {
				b.Fatalf("status %d, %d bytes", res.StatusCode, n)
			}
		}
	})
}

// BenchmarkProxy compares an authenticated pass-through of a 20 KiB page through zdgate with a bare
// httputil.ReverseProxy in front of the same upstream, over real loopback sockets. Compare
// ns/op of /bare and /zdgate from one run; /zdgate-inject vs /zdgate is the cost of injection.
func BenchmarkProxy(b *testing.B) {
	upstream := httptest.NewServer(pageUpstream())
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)

	b.Run("bare", func(b *testing.B) {
		rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() }, Transport: NewUpstreamTransport()}
		front := httptest.NewServer(rp)
		defer front.Close()
		benchGet(b, front.URL+"/page", nil, func(n int) bool { return n == len(page20k) })
	})
	for _, inject := range []bool{false, true} {
		name := "zdgate"
		if inject {
			name = "zdgate-inject"
		}
		b.Run(name, func(b *testing.B) {
			st := newStack(b, stackOpts{upstream: pageUpstream(), mutate: func(c *Config) {
				c.Inject = inject
				c.Upstream = target
			}})
			st.login(st.client, "/")
			cookies := st.client.Jar.Cookies(mustURL(st.front.URL))
			st.idp.ResetCounts()
			benchGet(b, st.front.URL+"/page", cookies, func(n int) bool {
				return inject && n > len(page20k) || !inject && n == len(page20k)
			})
			b.StopTimer()
			if n := st.idp.Count("token.refresh") + st.idp.Count("userinfo"); n != 0 {
				b.Fatalf("fresh sessions made %d IdP calls", n)
			}
		})
	}
}

// BenchmarkTokenRoute is the /zendesk/token handler with a fresh confirmation (no IdP call),
// against its floor: a session load plus a bare mint.
func BenchmarkTokenRoute(b *testing.B) {
	st := newStack(b, stackOpts{})
	st.login(st.client, "/")
	cookies := st.client.Jar.Cookies(mustURL(st.front.URL))
	newReq := func() *http.Request {
		r := httptest.NewRequest("GET", "/zendesk/token", nil)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		for _, c := range cookies {
			r.AddCookie(c)
		}
		return r
	}
	b.Run("route", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			w := httptest.NewRecorder()
			st.proxy.ServeHTTP(w, newReq())
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
	b.Run("load+mint", func(b *testing.B) {
		signer := st.proxy.cfg.Signers[tokens.Messaging]
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			s, err := st.store.Load(context.Background(), newReq())
			if err != nil {
				b.Fatal(err)
			}
			u, _ := st.proxy.cfg.Mapping.User(s.Claims)
			if _, _, err := signer.Sign(u); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBearerCacheHit is a mobile app's repeated bearer call: hash the token, find the cached
// confirmation, apply the rules.
func BenchmarkBearerCacheHit(b *testing.B) {
	st := newStack(b, stackOpts{})
	tok := st.idp.AccessToken("user-1", nil)
	r := httptest.NewRequest("GET", "/zendesk/token", nil)
	r = r.WithContext(r.Context())
	if _, err := st.proxy.bearerIdentity(r, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := st.proxy.bearerIdentity(r, tok); err != nil {
			b.Fatal(err)
		}
	}
}
