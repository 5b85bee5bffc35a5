//go:build unix

package proxy

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

// fakeSwitch is an app whose public /public/ws answers a WebSocket upgrade with the given raw
// status line and headers, then keeps reading HTTP on the connection, as an app that is no
// WebSocket server does, and serves every such request with its secret.
func fakeSwitch(answer string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/public/ws" {
			io.WriteString(w, "secret of "+r.Header.Get("X-Forwarded-User"))
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, answer)
		for {
			req, err := http.ReadRequest(brw.Reader)
			if err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
			req.Body.Close()
		}
	})
}

// TestWebSocketTunnelNeedsARealSwitch: WebSocket smuggling (the 0ang3el class). A WebSocket
// upgrade to a public path, answered by the app with a 101 that switches to nothing (no Upgrade
// header), to another protocol, or to "websocket" without the Sec-WebSocket-Accept only a
// WebSocket server can compute, or with a plain status, must not leave a raw tunnel to the app: the attacker's next
// request on the connection, for /admin, is a new request to zdgate and needs a login.
func TestWebSocketTunnelNeedsARealSwitch(t *testing.T) {
	for name, answer := range map[string]string{
		"101 without Upgrade":     "HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"101 to another protocol": "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
		"200 keep-alive":          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"426":                     "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n",
		// An app that says "websocket" but is none: it cannot compute Sec-WebSocket-Accept.
		"101 websocket without Accept": "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"101 websocket, wrong Accept":  "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			st := newStack(t, stackOpts{
				upstream: fakeSwitch(answer),
				mutate:   func(c *Config) { c.SkipAuth = []*regexp.Regexp{regexp.MustCompile(`^/public/`)} },
			})
			c, addr := dialBase(t, st.front.URL)
			defer c.Close()
			io.WriteString(c, "GET /public/ws HTTP/1.1\r\nHost: "+addr+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
			br := bufio.NewReader(c)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("first answer: %v", err)
			}
			if res.StatusCode == http.StatusSwitchingProtocols {
				t.Fatalf("zdgate answered 101 for an app that switched to nothing")
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			io.WriteString(c, "GET /admin HTTP/1.1\r\nHost: "+addr+"\r\nAccept: application/json\r\nX-Forwarded-User: admin\r\n\r\n")
			res, err = http.ReadResponse(br, nil)
			if err != nil {
				return // the connection was closed: nothing reached the app
			}
			b, _ := io.ReadAll(res.Body)
			if strings.Contains(string(b), "secret") || res.StatusCode != http.StatusUnauthorized {
				t.Errorf("second request on the connection = %d %q; want 401 from zdgate", res.StatusCode, b)
			}
		})
	}
}

// TestConnectionCannotDropIdentity: a client that names identity headers in Connection must not
// make the proxy remove the ones zdgate sets, nor pass the Connection list on, where a next hop
// in front of the app (its own nginx, gunicorn behind a proxy) would drop them.
func TestConnectionCannotDropIdentity(t *testing.T) {
	st := newStack(t, stackOpts{idp: oidctest.Options{Users: []oidctest.User{{Subject: "user-1", Email: "a@example.com", EmailVerified: true, Groups: []string{"staff"}}}}})
	st.login(st.client, "/")
	u, _ := url.Parse(st.front.URL)
	var cookies []string
	for _, ck := range st.client.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	c, addr := dialBase(t, st.front.URL)
	defer c.Close()
	io.WriteString(c, "GET /app HTTP/1.1\r\nHost: "+addr+"\r\nAccept: application/json\r\nCookie: "+strings.Join(cookies, "; ")+"\r\n"+
		"Connection: keep-alive, X-Forwarded-User, X-Forwarded-Email, X-Forwarded-Groups, X-Request-Id\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("proxied = %v %v", res, err)
	}
	seen := st.nextSeen().Header
	for name, want := range map[string]string{"X-Forwarded-User": "user-1", "X-Forwarded-Email": "a@example.com", "X-Forwarded-Groups": "staff"} {
		if got := seen.Get(name); got != want {
			t.Errorf("upstream %s = %q; want %q", name, got, want)
		}
	}
	if seen.Get("X-Request-Id") == "" {
		t.Error("upstream got no X-Request-Id")
	}
	if v := seen.Values("Connection"); len(v) > 0 {
		t.Errorf("upstream Connection = %q; want none passed on", v)
	}
}
