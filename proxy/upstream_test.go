package proxy

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestSpoofedIdentityHeadersStripped(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	spoofed := map[string]string{
		"X-Forwarded-User": "admin", "x-forwarded-email": "ceo@example.com", "X_Forwarded_Groups": "admins",
		"X-Forwarded-Preferred-Username": "root", "X-Auth-Request-User": "admin", "X_Auth_Request_Email": "x@y",
		"Remote-User": "admin", "REMOTE_USER": "admin", "Remote-Groups": "admins", "X-Remote-User": "admin",
	}
	// Raw request so header names keep their exact spelling (Go would canonicalise them).
	conn, err := net.Dial("tcp", strings.TrimPrefix(st.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var cookies []string
	for _, c := range st.client.Jar.Cookies(mustURL(st.front.URL)) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET /who HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\nCookie: %s\r\n", strings.TrimPrefix(st.front.URL, "http://"), strings.Join(cookies, "; "))
	for k, v := range spoofed {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("Connection: close\r\n\r\n")
	io.WriteString(conn, b.String())
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("response %v %v", res, err)
	}
	r := st.nextSeen()
	for name, vals := range r.Header {
		f := foldHeader(name)
		for _, v := range vals {
			for _, bad := range []string{"admin", "ceo@example.com", "admins", "root", "x@y"} {
				if v == bad {
					t.Errorf("upstream got spoofed %s: %s", name, v)
				}
			}
		}
		if strings.HasPrefix(f, "remote-") || strings.HasPrefix(f, "x-auth-request-") {
			t.Errorf("upstream got %s", name)
		}
	}
	if got := r.Header.Get("X-Forwarded-User"); got != "user-1" {
		t.Errorf("X-Forwarded-User = %q; want the IdP's sub", got)
	}
}

func TestTrustedProxyForwardedHeaders(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprint("trusted=", trusted), func(t *testing.T) {
			st := newStack(t, stackOpts{mutate: func(c *Config) {
				if trusted {
					c.TrustedProxies = mustPrefixes("127.0.0.0/8")
				}
			}})
			st.login(st.client, "/")
			st.do(st.client, "GET", "/x", map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "spoof.example", "X-Request-Id": "abc-123"})
			r := st.nextSeen()
			xff := r.Header.Get("X-Forwarded-For")
			if trusted != strings.Contains(xff, "203.0.113.9") {
				t.Errorf("X-Forwarded-For = %q (trusted=%v)", xff, trusted)
			}
			if got := r.Header.Get("X-Forwarded-Host"); trusted != (got == "spoof.example") {
				t.Errorf("X-Forwarded-Host = %q (trusted=%v)", got, trusted)
			}
			if got := r.Header.Get("X-Request-Id"); trusted != (got == "abc-123") {
				t.Errorf("X-Request-Id = %q (trusted=%v)", got, trusted)
			}
		})
	}
}

func TestSkipAuthPathProbes(t *testing.T) {
	st := newStack(t, stackOpts{mutate: func(c *Config) {
		c.SkipAuth = []*regexp.Regexp{regexp.MustCompile(`^/public/`), regexp.MustCompile(`\.css$`)}
	}})
	cases := []struct {
		path string
		open bool
	}{
		{"/public/a.txt", true},
		{"/style.css", true},
		{"/private?x=/public/", false},
		{"/private?x=a.css", false},
		{"/private%23/public/", false},
		{"/private%23.css", false},
		{"/public/../private", false},
		{"/public/%2e%2e/private", false},
		{"/public/..%2fprivate", false},
		{"//public/x", true}, // collapses to /public/x, which is public
		{"/PUBLIC/x", false},
		{"/private/%2e%2e/public/x", true}, // resolves to /public/x for the rule AND the upstream
	}
	for _, c := range cases {
		res, body := st.do(st.client, "GET", c.path, map[string]string{"Accept": "application/json"})
		if c.open {
			if res.StatusCode != 200 {
				t.Errorf("GET %s = %d; want 200 (skip-auth)", c.path, res.StatusCode)
				continue
			}
			if p := jsonBody(t, body)["path"].(string); !strings.HasPrefix(p, "/public/") && !strings.HasSuffix(p, ".css") {
				t.Errorf("GET %s reached the upstream as %q", c.path, p)
			}
			st.nextSeen()
		} else if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s = %d; want 401", c.path, res.StatusCode)
		}
	}
	st.noUpstream()
}

func TestLowercaseMethodsNeedAuth(t *testing.T) {
	st := newStack(t, stackOpts{})
	for _, m := range []string{"get", "PoSt", "PROPFIND", "delete"} {
		res, _ := st.do(st.client, m, "/private", map[string]string{"Accept": "text/html"})
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s /private = %d; want 401", m, res.StatusCode)
		}
	}
	st.noUpstream()
	if res, _ := st.do(st.client, "get", "/zendesk/token", nil); res.StatusCode == 200 {
		t.Error("lowercase get minted a token")
	}
}

func TestUnauthenticatedAPIGets401JSON(t *testing.T) {
	st := newStack(t, stackOpts{})
	res, body := st.do(st.client, "POST", "/api/x", map[string]string{"Accept": "application/json"})
	if res.StatusCode != 401 || jsonBody(t, body)["error"] == nil {
		t.Fatalf("POST /api/x = %d %s; want 401 JSON", res.StatusCode, body)
	}
	res, _ = st.do(st.client, "GET", "/api/x", map[string]string{"Accept": "application/json"})
	if res.StatusCode != 401 {
		t.Fatalf("GET JSON = %d; want 401, not a redirect", res.StatusCode)
	}
}

func TestOptionalAuthMode(t *testing.T) {
	st := newStack(t, stackOpts{mutate: func(c *Config) { c.AuthMode = AuthOptional }})
	res, _ := st.do(st.client, "GET", "/page", map[string]string{"Accept": "text/html"})
	if res.StatusCode != 200 {
		t.Fatalf("anonymous page in optional mode = %d; want 200", res.StatusCode)
	}
	if r := st.nextSeen(); r.Header.Get("X-Forwarded-User") != "" {
		t.Error("anonymous request carried an identity")
	}
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 401 {
		t.Fatalf("anonymous token in optional mode = %d; want 401", res.StatusCode)
	}
}

func TestTamperedSessionCookie(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	u := mustURL(st.front.URL)
	var sess *http.Cookie
	for _, c := range st.client.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "_zdgate") {
			sess = c
		}
	}
	if sess == nil {
		t.Fatal("no session cookie")
	}
	mutations := map[string]string{
		"flipped":   sess.Value[:len(sess.Value)/2] + string(rune(sess.Value[len(sess.Value)/2]^1)) + sess.Value[len(sess.Value)/2+1:],
		"truncated": sess.Value[:len(sess.Value)-5],
		"empty":     "",
	}
	for name, v := range mutations {
		c := newClient()
		c.Jar.SetCookies(u, []*http.Cookie{{Name: sess.Name, Value: v}})
		res, _ := st.do(c, "GET", "/zendesk/token", nil)
		if res.StatusCode != 401 {
			t.Errorf("%s cookie: token = %d; want 401", name, res.StatusCode)
		}
	}
	// A cookie sealed with a secret that has been retired no longer opens.
	st.secMu.Lock()
	st.secrets = [][]byte{[]byte("ffffffffffffffffffffffffffffffff")}
	st.secMu.Unlock()
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 401 {
		t.Fatalf("retired-secret cookie: token = %d; want 401", res.StatusCode)
	}
}

func TestCookieSecretRotation(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	st.secMu.Lock()
	st.secrets = [][]byte{[]byte("ffffffffffffffffffffffffffffffff"), testCookieSecret} // new first, old second
	st.secMu.Unlock()
	if res, _ := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Fatalf("old cookie during rotation: token = %d; want 200", res.StatusCode)
	}
}

func TestUpstreamDown(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.login(st.client, "/")
	st.upstream.Close()
	res, body := st.do(st.client, "GET", "/page", map[string]string{"Accept": "text/html"})
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(body, "not answering") {
		t.Fatalf("upstream down, page = %d %q; want 502 page", res.StatusCode, body)
	}
	if strings.Contains(body, "connection refused") || strings.Contains(body, "127.0.0.1") {
		t.Errorf("502 page leaks internal error text: %q", body)
	}
	res, body = st.do(st.client, "GET", "/api", map[string]string{"Accept": "application/json"})
	if res.StatusCode != http.StatusBadGateway || jsonBody(t, body)["error"] != "bad_gateway" {
		t.Fatalf("upstream down, API = %d %s", res.StatusCode, body)
	}
}

// TestWebSocketUpgradePassesThrough also runs with tracing on: otelhttp wraps the response writer
// and the upstream transport then, and the upgrade must still hijack and stream both ways.
func TestWebSocketUpgradePassesThrough(t *testing.T) {
	for _, traced := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "traced"}[traced], func(t *testing.T) { checkWebSocket(t, traced) })
	}
}

func checkWebSocket(t *testing.T, traced bool) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Forwarded-User") == "" {
			http.Error(w, "want an authenticated upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(sum[:])+"\r\n\r\n")
		line, _ := brw.ReadString('\n')
		io.WriteString(conn, "echo:"+line)
	})
	st := newStack(t, stackOpts{upstream: up, mutate: func(c *Config) {
		if traced {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
			c.TracerProvider = tp
			c.UpstreamTransport = otelhttp.NewTransport(NewUpstreamTransport(), otelhttp.WithTracerProvider(tp))
		}
	}})
	st.login(st.client, "/")
	conn, err := net.Dial("tcp", strings.TrimPrefix(st.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var cookies []string
	for _, c := range st.client.Jar.Cookies(mustURL(st.front.URL)) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: %s\r\n\r\n", strings.Join(cookies, "; "))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 101 {
		t.Fatalf("upgrade = %v %v; want 101", res, err)
	}
	io.WriteString(conn, "hello\n")
	line, _ := br.ReadString('\n')
	if line != "echo:hello\n" {
		t.Fatalf("echo = %q", line)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	st := newStack(t, stackOpts{})
	if res, _ := st.do(st.client, "GET", "/healthz", nil); res.StatusCode != 200 {
		t.Errorf("healthz = %d", res.StatusCode)
	}
	if res, _ := st.do(st.client, "GET", "/readyz", nil); res.StatusCode != 200 {
		t.Errorf("readyz = %d", res.StatusCode)
	}
	st.proxy.Drain()
	if res, _ := st.do(st.client, "GET", "/readyz", nil); res.StatusCode != 503 {
		t.Errorf("readyz while draining = %d; want 503", res.StatusCode)
	}
	st.noUpstream()
}

func TestMetricsNotOnListen(t *testing.T) {
	st := newStack(t, stackOpts{})
	res, _ := st.do(st.client, "GET", "/metrics", map[string]string{"Accept": "application/json"})
	if res.StatusCode != 401 {
		t.Fatalf("/metrics on --listen = %d; want 401 (it is the app's path, behind login)", res.StatusCode)
	}
}
