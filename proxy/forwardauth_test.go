package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func forwardAuthStack(t *testing.T, trusted bool) *stack {
	return newStack(t, stackOpts{mutate: func(c *Config) {
		c.SkipAuth = []*regexp.Regexp{regexp.MustCompile(`^/public/`)}
		if trusted {
			c.TrustedProxies = mustPrefixes("127.0.0.1/32")
		}
	}})
}

func TestForwardAuthSession(t *testing.T) {
	st := forwardAuthStack(t, true)
	res, _ := st.do(st.client, "GET", "/oauth2/auth", map[string]string{"Accept": "text/html"})
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Location") != "" {
		t.Fatalf("anonymous auth = %d (Location %q); want 401 and never a redirect", res.StatusCode, res.Header.Get("Location"))
	}
	st.login(st.client, "/")
	res, _ = st.do(st.client, "GET", "/oauth2/auth", map[string]string{"X-Forwarded-Uri": "/private/x"})
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("auth with session = %d; want 202", res.StatusCode)
	}
	for h, want := range map[string]string{"X-Auth-Request-User": "user-1", "X-Auth-Request-Email": "alice@example.com", "X-Auth-Request-Groups": "staff"} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q; want %q", h, got, want)
		}
	}
	st.noUpstream()
}

func TestForwardAuthForwardedURI(t *testing.T) {
	cases := []struct {
		name    string
		trusted bool
		hdr     map[string]string
		want    int
	}{
		{"skip path from trusted proxy", true, map[string]string{"X-Forwarded-Uri": "/public/a"}, 202},
		{"X-Original-URI from trusted proxy", true, map[string]string{"X-Original-URI": "/public/a?x=1"}, 202},
		{"skip path from untrusted peer is ignored", false, map[string]string{"X-Forwarded-Uri": "/public/a"}, 401},
		{"probe via query", true, map[string]string{"X-Forwarded-Uri": "/private?x=/public/a"}, 401},
		{"probe via %23", true, map[string]string{"X-Forwarded-Uri": "/private%23/public/a"}, 401},
		{"probe via dot-segments", true, map[string]string{"X-Forwarded-Uri": "/public/../private"}, 401},
		{"probe via encoded dot-segments", true, map[string]string{"X-Forwarded-Uri": "/public/%2e%2e/private"}, 401},
		// The app gets the original URI from the ingress, not our normal form: only a path already in
		// normal form may skip the login, else the app could read it differently.
		{"double slash needs a login", true, map[string]string{"X-Forwarded-Uri": "//public/a"}, 401},
		{"dot-segments into a public path need a login", true, map[string]string{"X-Forwarded-Uri": "/admin/../public/a"}, 401},
		{"backslashes need a login", true, map[string]string{"X-Forwarded-Uri": "/admin\\..\\public\\a"}, 401},
		{"needless escapes need a login", true, map[string]string{"X-Forwarded-Uri": "/public/%61"}, 401},
		{"escaped space stays public", true, map[string]string{"X-Forwarded-Uri": "/public/a%20b"}, 202},
		{"upper-case host, trailing dot", true, map[string]string{"X-Forwarded-Uri": "/public/a", "X-Forwarded-Host": "APP.Example.com."}, 202},
		{"malformed: absolute URL", true, map[string]string{"X-Forwarded-Uri": "http://evil/public/a"}, 401},
		{"malformed: no leading slash", true, map[string]string{"X-Forwarded-Uri": "public/a"}, 401},
		{"malformed: bad escape", true, map[string]string{"X-Forwarded-Uri": "/public/%zz"}, 401},
		{"malformed: NUL", true, map[string]string{"X-Forwarded-Uri": "/public/a%00"}, 401},
		{"lowercase forwarded method", true, map[string]string{"X-Forwarded-Uri": "/private", "X-Forwarded-Method": "get"}, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := forwardAuthStack(t, c.trusted)
			res, _ := st.do(st.client, "GET", "/oauth2/auth", c.hdr)
			if res.StatusCode != c.want {
				t.Fatalf("auth = %d; want %d", res.StatusCode, c.want)
			}
		})
	}
}

// TestForwardAuthHeaderVariants sends forwarding headers spelled with '_' and odd case over a raw
// connection: '_' spellings are never believed, even from a trusted proxy.
func TestForwardAuthHeaderVariants(t *testing.T) {
	st := forwardAuthStack(t, true)
	for _, h := range []string{"X_Forwarded_Uri", "x_original_uri", "X-FORWARDED-URI", "x-forwarded-uri"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(st.front.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /oauth2/auth HTTP/1.1\r\nHost: x\r\n%s: /public/a\r\nConnection: close\r\n\r\n", h)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		want := http.StatusAccepted
		if strings.Contains(h, "_") {
			want = http.StatusUnauthorized
		}
		if res.StatusCode != want {
			t.Errorf("%s: auth = %d; want %d", h, res.StatusCode, want)
		}
	}
}

func TestForwardAuthMethodsAndEnvoyPrefix(t *testing.T) {
	st := forwardAuthStack(t, true)
	// nginx keeps the original method on the subrequest: POST and HEAD are answered like GET.
	for _, m := range []string{"POST", "HEAD", "get", "DELETE"} {
		if res, _ := st.do(st.client, m, "/oauth2/auth", nil); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous %s /oauth2/auth = %d; want 401", m, res.StatusCode)
		}
	}
	// Envoy ext_authz: the original path is appended; skip-auth sees it, normalised.
	cases := map[string]int{"/oauth2/auth/public/a": 202, "/oauth2/auth/private": 401, "/oauth2/auth/public/../private": 401, "/oauth2/auth/public/%2e%2e/private": 401}
	for path, want := range cases {
		if res, _ := st.do(st.client, "GET", path, nil); res.StatusCode != want {
			t.Errorf("GET %s = %d; want %d", path, res.StatusCode, want)
		}
	}
	st.login(st.client, "/")
	if res, _ := st.do(st.client, "POST", "/oauth2/auth/private", nil); res.StatusCode != http.StatusAccepted {
		t.Errorf("Envoy check with a session = %d; want 202", res.StatusCode)
	}
	if res, _ := st.do(st.client, "GET", "/oauth2/auth", nil); res.Header.Get("X-Auth-Request-Access-Token") != "" {
		t.Error("access token passed without --pass-access-token")
	}
	st.noUpstream()
}

func TestForwardAuthPassAccessToken(t *testing.T) {
	st := newStack(t, stackOpts{mutate: func(c *Config) { c.PassAccessToken = true }})
	st.login(st.client, "/")
	s, _ := st.sessionOf(st.client)
	res, _ := st.do(st.client, "GET", "/oauth2/auth", nil)
	if got := res.Header.Get("X-Auth-Request-Access-Token"); got == "" || got != s.AccessToken {
		t.Fatalf("X-Auth-Request-Access-Token = %q; want the session's access token", got)
	}
}
