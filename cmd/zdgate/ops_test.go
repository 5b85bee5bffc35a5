package main

import (
	"bytes"
	"context"
	"fmt"
	stdhtml "html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/html"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

// signedOutNext is where zdgate's signed-out page continues (its data-next), "" if body is not
// that page.
func signedOutNext(body string) string {
	m := regexp.MustCompile(`id="zdgate-signed-out" data-next="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return stdhtml.UnescapeString(m[1])
}

// browserless is an HTTP client that logs in through the demo IdP's form like a person would.
type browserless struct {
	t *testing.T
	c *http.Client
}

func newBrowserless(t *testing.T) *browserless {
	jar, _ := cookiejar.New(nil)
	return &browserless{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (b *browserless) get(u string, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// login opens page, fills the IdP's form and returns the page finally shown.
func (b *browserless) login(page, user, password string) (*http.Response, string) {
	b.t.Helper()
	res, body := b.get(page, "Accept", "text/html")
	action, fields := parseForm(b.t, body)
	fields.Set("username", user)
	fields.Set("password", password)
	target := res.Request.URL.ResolveReference(mustParse(action))
	res, err := b.c.PostForm(target.String(), fields)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res, string(out)
}

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// parseForm reads the first form of a page: its action and every input's name and value.
func parseForm(t *testing.T, page string) (string, url.Values) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(page))
	vals := url.Values{}
	action := ""
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		attr := func(k string) string {
			for _, a := range tok.Attr {
				if a.Key == k {
					return a.Val
				}
			}
			return ""
		}
		switch tok.Data {
		case "form":
			if action == "" {
				action = attr("action")
			}
		case "input":
			if n := attr("name"); n != "" {
				vals.Set(n, attr("value"))
			}
		}
	}
	if action == "" {
		t.Fatalf("no form in page:\n%s", page)
	}
	return action, vals
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestMetricsAndLogsOfAScriptedSession(t *testing.T) {
	logs := &syncBuffer{}
	st := startDemoStack(t, demoOptions{inject: true, logLevel: "debug"}, logs)
	b := newBrowserless(t)
	res, page := b.login(st.url+"/", demoUser.PreferredUsername, demoUser.Password)
	if res.StatusCode != 200 || !strings.Contains(page, `/zendesk/auth.js?v=`) {
		t.Fatalf("page after login = %d; injected loader missing:\n%s", res.StatusCode, page)
	}
	res, tokBody := b.get(st.url+"/zendesk/token", "Sec-Fetch-Site", "same-origin")
	if res.StatusCode != 200 {
		t.Fatalf("token = %d", res.StatusCode)
	}
	// Sign out: the signed-out page continues to the IdP's end_session, which POSTs a back-channel
	// logout.
	_, outPage := b.get(st.url + "/oauth2/sign_out")
	next := signedOutNext(outPage)
	if next == "" {
		t.Fatalf("sign-out answered no signed-out page:\n%s", outPage)
	}
	b.get(next)

	// /metrics is only on --metrics-listen.
	if res, body := b.get(st.url+"/metrics", "Accept", "text/plain"); strings.Contains(body, "zdgate_http_requests_total") {
		t.Fatalf("/metrics answered on --listen (%d)", res.StatusCode)
	}
	metricsURL := "http://" + st.zdgate.metricsLn.Addr().String() + "/metrics"
	golden := `
# HELP zdgate_tokens_minted_total Zendesk JWTs minted, by flavor.
# TYPE zdgate_tokens_minted_total counter
zdgate_tokens_minted_total{flavor="messaging"} 1
# HELP zdgate_injections_total HTML pages considered for loader injection, by result.
# TYPE zdgate_injections_total counter
zdgate_injections_total{result="injected"} 1
# HELP zdgate_idp_checks_total Confirmations of a user at the IdP (and token revocations at sign-out), by kind (login, refresh, userinfo, introspect, none, bearer, revoke) and result (ok, revoked, unavailable, invalid).
# TYPE zdgate_idp_checks_total counter
zdgate_idp_checks_total{kind="login",result="ok"} 1
zdgate_idp_checks_total{kind="revoke",result="ok"} 1
# HELP zdgate_sessions_ended_total Sessions ended, by reason (sign_out, revoked, backchannel, expired).
# TYPE zdgate_sessions_ended_total counter
zdgate_sessions_ended_total{reason="backchannel"} 1
zdgate_sessions_ended_total{reason="sign_out"} 1
`
	if err := testutil.ScrapeAndCompare(metricsURL, strings.NewReader(golden),
		"zdgate_tokens_minted_total", "zdgate_injections_total", "zdgate_idp_checks_total", "zdgate_sessions_ended_total"); err != nil {
		t.Fatalf("metrics differ from golden:\n%v", err)
	}
	_, text := b.get(metricsURL)
	for _, want := range []string{
		`zdgate_http_requests_total{code="200",route="/zendesk/token"} 1`,
		`zdgate_http_requests_total{code="302",route="/oauth2/callback"} 1`,
		`zdgate_http_requests_total{code="200",route="upstream"}`,
		`zdgate_http_request_duration_seconds_bucket{route="/zendesk/token"`,
		`zdgate_idp_check_duration_seconds_count{kind="exchange"}`,
		`zdgate_idp_check_duration_seconds_count{kind="userinfo"}`,
		`go_goroutines`, `process_resident_memory_bytes`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "zdgate_http_requests_total") && (strings.Contains(line, "demo-user") || strings.Contains(line, `route="/public`)) {
			t.Errorf("high-cardinality label: %s", line)
		}
	}

	// The log of the whole session holds none of the secrets or tokens it used.
	jwt := tokBody[strings.Index(tokBody, `"jwt":"`)+7:]
	jwt = jwt[:strings.IndexByte(jwt, '"')]
	secrets := map[string]string{"minted JWT": jwt, "demo password": demoUser.Password}
	for k, v := range st.secrets {
		if k != "messaging_key_id" {
			secrets[k+" secret"] = v
		}
	}
	for _, c := range b.c.Jar.Cookies(mustParse(st.url)) {
		secrets["cookie "+c.Name] = c.Value
	}
	log := logs.String()
	if !strings.Contains(log, `"request"`) && !strings.Contains(log, "msg=request") {
		t.Fatalf("no access log lines:\n%s", log)
	}
	for name, v := range secrets {
		if len(v) >= 8 && strings.Contains(log, v) {
			t.Errorf("the log contains the %s", name)
		}
	}
	for _, part := range strings.Split(jwt, ".") {
		if len(part) > 16 && strings.Contains(log, part) {
			t.Error("the log contains part of a minted JWT")
		}
	}
	if strings.Contains(strings.ToLower(log), "authorization: bearer") {
		t.Error("the log contains an authorization header")
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "msg=request") && !strings.Contains(line, "request_id=") {
			t.Errorf("access line without request id: %s", line)
		}
	}
}

// startDemoStack is startDemoForTest with a log sink.
func startDemoStack(t *testing.T, o demoOptions, logs io.Writer) *demoStack {
	t.Helper()
	o.listen, o.metricsListen = "127.0.0.1:0", "127.0.0.1:0"
	if o.flavor == "" {
		o.flavor = "messaging"
	}
	if o.logLevel == "" {
		o.logLevel = "info"
	}
	st, err := startDemo(o, logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.close)
	runApp(t, st.zdgate, st.url)
	return st
}

// runApp serves a wired app until the test ends (then checks it stopped cleanly) and waits until
// it is ready.
func runApp(t *testing.T, a *app, public string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	waitReady(t, public)
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", base)
}

// buildBinary builds cmd/zdgate once per test run.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func zdgateBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "zdgate-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "zdgate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	idp := oidctest.NewT(t, oidctest.Options{})
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "slow answer")
	}), ReadHeaderTimeout: time.Second}
	upLn := listenLoopback(t)
	go up.Serve(upLn)
	t.Cleanup(func() { up.Close() })

	ln := listenLoopback(t)
	addr := ln.Addr().String()
	ln.Close()
	mln := listenLoopback(t)
	maddr := mln.Addr().String()
	mln.Close()
	cmd := exec.Command(zdgateBinary(t), "serve",
		"--listen="+addr, "--metrics-listen="+maddr, "--upstream=http://"+upLn.Addr().String(),
		"--public-url=http://"+addr, "--oidc-issuer="+idp.URL(), "--oidc-client-id=zdgate",
		"--skip-auth-path=^/slow$", "--shutdown-timeout=10s", "--log-format=text")
	cmd.Env = append(os.Environ(), "ZDGATE_COOKIE_SECRET=0123456789abcdef0123456789abcdef", "ZDGATE_OIDC_CLIENT_SECRET=zdgate-secret")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	waitReady(t, "http://"+addr)

	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- result{code: res.StatusCode, body: string(b)}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never reached the upstream")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	// While the slow request is still in flight, the listener closes: new connections are refused.
	refused := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
		if res, err := c.Get("http://" + addr + "/healthz"); err != nil {
			refused = true
			break
		} else {
			res.Body.Close()
		}
	}
	if !refused {
		t.Error("new connections were still accepted 10 s after SIGTERM")
	}
	select {
	case r := <-got:
		t.Fatalf("the in-flight request ended before its upstream answered: %+v", r)
	default:
	}
	close(release)
	r := <-got
	if r.err != nil || r.code != 200 || r.body != "slow answer" {
		t.Fatalf("in-flight request = %d %q %v; want it completed", r.code, r.body, r.err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("zdgate did not exit after SIGTERM")
	}
	if !strings.Contains(stderr.String(), "stopped cleanly") {
		t.Errorf("log lacks a clean stop:\n%s", stderr.String())
	}
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
