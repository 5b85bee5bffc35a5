//go:build unix

package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2cSmuggle is the attack of issue 10 item 1: an HTTP/1.1 request for an allowed path asks to
// upgrade to h2c; if the proxy forwards the upgrade and the app switches, the connection is a raw
// HTTP/2 tunnel to the app, and the attacker sends a second request on it, for /admin, as user
// "admin". It returns the first answer's status and, if the tunnel opened, the tunnelled answer.
func h2cSmuggle(t *testing.T, base, path, cookie string) (status int, tunnelled string) {
	t.Helper()
	c, addr := dialBase(t, base)
	defer c.Close()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: application/json\r\n" +
		"Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
	if cookie != "" {
		req += "Cookie: " + cookie + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("first answer: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	// Either way, speak HTTP/2 next, as the attacker would.
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, br)
	fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/admin"}, {":authority", addr}, {"x-forwarded-user", "admin"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	if res.StatusCode != http.StatusSwitchingProtocols {
		// Drain what the server says to the preface (an error, or nothing), then stop.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.Copy(io.Discard, br)
		return res.StatusCode, ""
	}
	var body strings.Builder
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return res.StatusCode, body.String()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return res.StatusCode, body.String()
			}
			t.Fatalf("reading the tunnel: %v", err)
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 3 {
			body.Write(d.Data())
			if d.StreamEnded() {
				return res.StatusCode, body.String()
			}
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			fr.WriteSettingsAck()
		}
	}
}

// TestH2CUpgradeCannotTunnel proves, against Hypercorn (which accepts h2c upgrades), that no
// client gets an HTTP/2 tunnel to the app through zdgate: not anonymously on a --skip-auth-path
// path, not as a logged-in user on a protected one. The control leg shows the same bytes do open
// the tunnel through a plain httputil.ReverseProxy.
func TestH2CUpgradeCannotTunnel(t *testing.T) {
	app, served := startHypercorn(t)
	target, _ := url.Parse(app)

	t.Run("control: a bare ReverseProxy lets the tunnel through", func(t *testing.T) {
		bare := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
		defer bare.Close()
		status, body := h2cSmuggle(t, bare.URL, "/public/x", "")
		if status != http.StatusSwitchingProtocols || !strings.Contains(body, `"path": "/admin"`) || !strings.Contains(body, `"user": "admin"`) {
			t.Fatalf("control: status %d, tunnelled %q; want 101 and the app's /admin as admin (else this test proves nothing)", status, body)
		}
	})

	st := newStack(t, stackOpts{upstreamURL: app, mutate: func(c *Config) {
		c.SkipAuth = []*regexp.Regexp{regexp.MustCompile(`^/public/`)}
		c.Inject = false
	}})
	before := len(served())
	t.Run("anonymous on a skip-auth path", func(t *testing.T) {
		status, body := h2cSmuggle(t, st.front.URL, "/public/x", "")
		if status == http.StatusSwitchingProtocols || body != "" {
			t.Fatalf("status %d, tunnelled %q; want no switch", status, body)
		}
		if status != http.StatusOK {
			t.Fatalf("status %d; want the public page, served as plain HTTP/1.1", status)
		}
	})
	t.Run("logged in on a protected path", func(t *testing.T) {
		st.login(st.client, "/")
		var cookies []string
		for _, c := range st.client.Jar.Cookies(mustURL(st.front.URL)) {
			cookies = append(cookies, c.Name+"="+c.Value)
		}
		status, body := h2cSmuggle(t, st.front.URL, "/app", strings.Join(cookies, "; "))
		if status == http.StatusSwitchingProtocols || body != "" || status != http.StatusOK {
			t.Fatalf("status %d, tunnelled %q; want the page as plain HTTP/1.1, no switch", status, body)
		}
	})
	got := served()[before:]
	if len(got) != 2 {
		t.Fatalf("the app served %+v; want exactly the two upgrade requests, as plain requests", got)
	}
	for _, r := range got {
		if r.HTTPVersion != "1.1" || r.Path == "/admin" || r.User == "admin" {
			t.Errorf("the app served %+v through zdgate; want only HTTP/1.1 requests for the asked paths, as the real user", r)
		}
	}
	if got[0].Path != "/public/x" || got[0].User != "" || got[1].Path != "/app" || got[1].User != "user-1" {
		t.Errorf("the app served %+v; want /public/x anonymously and /app as user-1", got)
	}
}
