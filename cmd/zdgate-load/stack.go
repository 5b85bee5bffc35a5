package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

// messagingKeyID is the Messaging key id every zdgate instance signs with.
const messagingKeyID = "app_load"

// stack is everything the harness runs: upstream, IdP, bare proxy, the zdgate instances, Redis.
type stack struct {
	out     io.Writer
	opts    *options
	recheck time.Duration

	tmp, bin, version string
	upstream          string
	servers           []*http.Server
	idp               *oidctest.Server
	bare              string
	bareProc          *proc
	redisAddr         string
	redisSkip         string // why the Redis instance is not measured: the short reason ...
	redisDetail       string // ... and what showed it
	redisProc         *proc
	gates             map[string]*gate
	cookieSecret      string
	messagingSecret   string
}

// gate is one running zdgate instance with a logged-in session.
type gate struct {
	name, url, metricsURL string
	args                  []string
	p                     *proc
	cookie                string // Cookie header of the logged-in session
	err                   error  // setup failed: scenarios on this instance report it
}

func (st *stack) needs(keys ...string) bool {
	for _, k := range keys {
		if slices.Contains(st.opts.scenarios, k) {
			return true
		}
	}
	return false
}

// start brings everything up; on error, close still tears down whatever did start.
func (st *stack) start(ctx context.Context) error {
	if err := st.startBase(ctx, "zdgate-load-"); err != nil {
		return err
	}
	var err error
	if st.idp, err = oidctest.Start(oidctest.Options{}); err != nil { // auto-login, client zdgate/zdgate-secret
		return fmt.Errorf("test IdP: %w", err)
	}
	if st.needs("bare") {
		if err := st.startBare(ctx); err != nil {
			return fmt.Errorf("bare proxy: %w", err)
		}
	}

	type want struct {
		name string
		need bool
		args []string
	}
	for _, w := range []want{
		{"cookie", st.needs("cookie", "token", "auth"), []string{"--inject=false"}},
		{"quiet", st.needs("quiet"), []string{"--inject=false", "--log-level=error"}},
		{"inject", st.needs("inject") || st.opts.soak > 0, []string{"--inject=true"}},
	} {
		if !w.need {
			continue
		}
		g, err := st.startGate(ctx, w.name, w.args)
		if err == nil {
			err = st.login(ctx, g)
		}
		if err != nil {
			return fmt.Errorf("zdgate %s: %w", w.name, err)
		}
	}
	if st.needs("redis") {
		st.startRedisGate(ctx)
		if st.redisSkip != "" {
			fmt.Fprintf(st.out, "redis: skipped (%s)\n", st.redisSkip)
			if st.redisDetail != "" {
				fmt.Fprintf(st.out, "  %s\n", st.redisDetail)
			}
		}
	}
	return ctx.Err()
}

// startBase makes what every run shares: a temporary directory, the secrets, the zdgate binary
// (built unless -zdgate names one) and the upstream app.
func (st *stack) startBase(ctx context.Context, tmpPrefix string) error {
	var err error
	st.gates = map[string]*gate{}
	if st.tmp, err = os.MkdirTemp("", tmpPrefix); err != nil {
		return err
	}
	st.cookieSecret = randomSecret(32)
	st.messagingSecret = randomSecret(24)
	if st.bin = st.opts.zdgateBin; st.bin == "" {
		fmt.Fprintln(st.out, "building zdgate (go build -trimpath ./cmd/zdgate) ...")
		if st.bin, err = buildZdgate(ctx, st.tmp); err != nil {
			return err
		}
	}
	st.version = zdgateVersion(ctx, st.bin)
	up := newServer(upstreamHandler())
	st.servers = append(st.servers, up)
	if st.upstream, err = serveOn(up); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	return nil
}

// buildZdgate builds ./cmd/zdgate of the module the harness is run in, as `make build` does.
func buildZdgate(ctx context.Context, tmp string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(gomod))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("build: run from inside the zdgate module, or pass -zdgate BINARY (go env GOMOD: %q, %v)", mod, err)
	}
	root := filepath.Dir(mod)
	if _, err := os.Stat(filepath.Join(root, "cmd", "zdgate")); err != nil {
		return "", fmt.Errorf("build: %s has no cmd/zdgate; run from inside the zdgate module, or pass -zdgate BINARY", root)
	}
	bin := filepath.Join(tmp, "zdgate")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/zdgate")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: go build ./cmd/zdgate: %v\n%s", err, out)
	}
	return bin, nil
}

func zdgateVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

func (st *stack) startBare(ctx context.Context) error {
	if st.opts.bare == "inproc" {
		u, _ := url.Parse(st.upstream)
		srv := newServer(bareProxy(u))
		st.servers = append(st.servers, srv)
		var err error
		st.bare, err = serveOn(srv)
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	env := append(childEnviron(), childEnv+"=bare-proxy", childUpstreamEnv+"="+st.upstream, childListenEnv+"="+addr)
	if st.bareProc, err = startProc("bare proxy", self, nil, env); err != nil {
		return err
	}
	st.bare = "http://" + addr
	return waitHTTP(ctx, st.bareProc, st.bare+"/api", 10*time.Second)
}

// childEnviron is the harness's environment without ZDGATE_* variables, so that a developer's
// shell settings cannot change what is measured.
func childEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ZDGATE_") {
			env = append(env, kv)
		}
	}
	return env
}

// gateArgs are the serve flags every instance shares; secrets go in the environment, not argv.
func (st *stack) gateArgs(listen, metrics string, extra []string) ([]string, []string) {
	args := []string{
		"--listen=" + listen,
		"--metrics-listen=" + metrics,
		"--upstream=" + st.upstream,
		"--public-url=http://" + listen,
		"--oidc-issuer=" + st.idp.URL(),
		"--oidc-client-id=zdgate",
		"--cookie-secure=false",
		"--zendesk-messaging-key-id=" + messagingKeyID,
		// Logging and metrics stay at zdgate's defaults (an info-level JSON access line per
		// request): users run the defaults, so that is what is measured.
	}
	if !slices.ContainsFunc(extra, func(a string) bool { return strings.HasPrefix(a, "--recheck-interval=") }) {
		args = append(args, "--recheck-interval="+st.recheck.String())
	}
	env := append(childEnviron(),
		"ZDGATE_OIDC_CLIENT_SECRET=zdgate-secret",
		"ZDGATE_COOKIE_SECRET="+st.cookieSecret,
		"ZDGATE_ZENDESK_MESSAGING_SECRET="+st.messagingSecret,
	)
	return append(args, extra...), env
}

// startGate runs `zdgate serve` and waits for /readyz (IdP discovered). A port taken between
// picking and binding is retried.
func (st *stack) startGate(ctx context.Context, name string, extra []string) (*gate, error) {
	var last error
	for range 3 {
		listen, err1 := freeAddr()
		metrics, err2 := freeAddr()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		args, env := st.gateArgs(listen, metrics, extra)
		p, err := startProc("zdgate "+name, st.bin, append([]string{"serve"}, args...), env)
		if err != nil {
			return nil, err
		}
		g := &gate{name: name, url: "http://" + listen, metricsURL: "http://" + metrics + "/metrics", args: args, p: p}
		st.gates[name] = g
		last = waitHTTP(ctx, p, g.url+"/readyz", 20*time.Second)
		if last == nil {
			return g, nil
		}
		p.stop(2 * time.Second)
		delete(st.gates, name)
		if !strings.Contains(p.out.String(), "address already in use") {
			break
		}
	}
	return nil, last
}

// login runs the browser's login flow with a cookie jar — /oauth2/start, the IdP's automatic login,
// the callback — and keeps the session cookie(s), checked with /oauth2/userinfo.
func (st *stack) login(ctx context.Context, g *gate) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/oauth2/start?rd=/", nil)
	req.Header.Set("Accept", "text/html")
	res, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.Host != strings.TrimPrefix(g.url, "http://") || res.Request.URL.Path != "/" {
		// Only the host and path: a callback URL carries the authorization code.
		return fmt.Errorf("login: ended at %s%s with %s, want 200 at %s/", res.Request.URL.Host, res.Request.URL.Path, res.Status, g.url)
	}
	u, _ := url.Parse(g.url)
	var parts []string
	for _, ck := range jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	if len(parts) == 0 {
		return errors.New("login: no session cookie was set")
	}
	g.cookie = strings.Join(parts, "; ")

	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/oauth2/userinfo", nil)
	req.Header.Set("Cookie", g.cookie)
	res, err = (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("login: userinfo: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "user-1") {
		return fmt.Errorf("login: /oauth2/userinfo with the new session: %s", res.Status)
	}
	return nil
}

// startRedisGate sets up the Redis-store instance, or records in st.redisSkip why it cannot be
// measured with this machine or this build.
func (st *stack) startRedisGate(ctx context.Context) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		st.redisSkip = "redis-server not installed"
		return
	}
	help, _ := exec.CommandContext(ctx, st.bin, "serve", "--help").Output()
	if !strings.Contains(string(help), "--session-store") || !strings.Contains(string(help), "redis") {
		st.redisSkip = "not supported by this build"
		return
	}
	if err := st.startRedis(ctx, server); err != nil {
		st.redisSkip, st.redisDetail = "redis-server did not start", err.Error()
		return
	}
	extra := []string{"--inject=false", "--session-store=redis", "--redis-url=redis://" + st.redisAddr + "/0"}

	// config check takes the same flags as serve: a build without the Redis store says so here.
	listen, _ := freeAddr()
	args, env := st.gateArgs(listen, "127.0.0.1:0", extra)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cmd := exec.CommandContext(cctx, st.bin, append([]string{"config", "check"}, args...)...)
	cmd.Env = env
	var stderr tail
	stderr.max = 4 << 10
	cmd.Stderr = &stderr
	err = cmd.Run()
	cancel()
	if err != nil {
		st.redisSkip, st.redisDetail = "not supported by this build", "zdgate config check: "+firstLine(stderr.String(), err)
		return
	}
	g, err := st.startGate(ctx, "redis", extra)
	if err != nil {
		st.redisSkip, st.redisDetail = "not supported by this build", "zdgate serve: "+firstLine(err.Error(), nil)
		return
	}
	if err := st.login(ctx, g); err != nil {
		g.err = err
		return
	}
	// A build may accept the flag yet keep sessions in the cookie: then nothing is in Redis, and
	// measuring it would report the cookie store's numbers under the Redis label.
	n, err := redisCall(ctx, st.redisAddr, "DBSIZE")
	if err != nil {
		g.err = fmt.Errorf("redis DBSIZE: %w", err)
		return
	}
	if n == ":0" {
		st.redisSkip = "not supported by this build"
		st.redisDetail = fmt.Sprintf("--session-store=redis is accepted, but the login wrote nothing to Redis (DBSIZE 0) and the session came back as a %d-byte sealed cookie", len(g.cookie))
		g.p.stop(2 * time.Second)
		delete(st.gates, "redis")
	}
}

func (st *stack) startRedis(ctx context.Context, server string) error {
	var last error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		_, port, _ := net.SplitHostPort(addr)
		p, err := startProc("redis-server", server, []string{
			"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", st.tmp, "--daemonize", "no", "--protected-mode", "yes",
		}, childEnviron())
		if err != nil {
			return err
		}
		st.redisProc, st.redisAddr = p, addr
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && !p.exited() && ctx.Err() == nil {
			if r, err := redisCall(ctx, addr, "PING"); err == nil && r == "+PONG" {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		last = errors.New(p.why())
		p.stop(time.Second)
		st.redisProc = nil
	}
	return last
}

// redisCall sends one command and returns the first line of the reply (enough for PING, DBSIZE).
func redisCall(ctx context.Context, addr string, args ...string) (string, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}

func firstLine(s string, err error) string {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "zdgate: "))
	if s == "" && err != nil {
		s = err.Error()
	}
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// pids are the processes of this test: the harness (load generator, upstream, IdP) and its children.
func (st *stack) pids() []int {
	pids := []int{os.Getpid()}
	for _, p := range []*proc{st.bareProc, st.redisProc} {
		if p != nil && !p.exited() {
			pids = append(pids, p.pid())
		}
	}
	for _, g := range st.gates {
		if g.p != nil && !g.p.exited() {
			pids = append(pids, g.p.pid())
		}
	}
	return pids
}

// close stops every child (SIGTERM, then SIGKILL), the in-process servers, and removes the temp dir.
func (st *stack) close() {
	var wg sync.WaitGroup
	stop := func(p *proc) {
		if p != nil {
			wg.Go(func() { p.stop(5 * time.Second) })
		}
	}
	for _, g := range st.gates {
		stop(g.p)
	}
	stop(st.bareProc)
	stop(st.redisProc)
	wg.Wait()
	if st.idp != nil {
		st.idp.Close()
	}
	for _, s := range st.servers {
		s.Close()
	}
	if st.tmp != "" {
		os.RemoveAll(st.tmp)
	}
}

func (st *stack) banner() string {
	var b strings.Builder
	o := st.opts
	fmt.Fprintf(&b, "\nzdgate load test — %s, harness %s, %s/%s, %d CPU(s)\n", st.version, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintf(&b, "closed loop: %d keep-alive connections (one request in flight each), warm-up %v + %v measured per scenario, cap %d requests\n",
		o.conns, o.warmup, o.duration, o.maxRequests)
	fmt.Fprintf(&b, "upstream   %s  (/page: %d B HTML, /api: JSON)\n", st.upstream, len(page))
	fmt.Fprintf(&b, "IdP        %s  (oidctest, auto-login)\n", st.idp.URL())
	if st.bare != "" {
		where := "in-process"
		if st.bareProc != nil {
			where = fmt.Sprintf("pid %d", st.bareProc.pid())
		}
		fmt.Fprintf(&b, "bare proxy %s  (httputil.ReverseProxy, %s)\n", st.bare, where)
	}
	if st.redisAddr != "" {
		fmt.Fprintf(&b, "redis      %s  (redis-server --save \"\" --appendonly no)\n", st.redisAddr)
	}
	for _, name := range []string{"cookie", "quiet", "inject", "redis"} {
		g := st.gates[name]
		if g == nil {
			continue
		}
		fmt.Fprintf(&b, "zdgate %-6s %s  pid %d, metrics %s, session cookie %d B  [%s]\n", name, g.url, g.p.pid(),
			strings.TrimSuffix(g.metricsURL, "/metrics"), len(g.cookie), strings.Join(selectFlags(g.args), " "))
	}
	fmt.Fprintf(&b, "--recheck-interval=%v, so every measured request has a fresh IdP confirmation\n\n", st.recheck)
	return b.String()
}

// selectFlags are the flags that differ between instances, for the banner.
func selectFlags(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "--inject") || strings.HasPrefix(a, "--session-store") || strings.HasPrefix(a, "--log-level") {
			out = append(out, a)
		}
	}
	return out
}

func randomSecret(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
