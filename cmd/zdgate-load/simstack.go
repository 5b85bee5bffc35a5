package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

// simVisitor is simulated visitor i's account: typical claims (see claimFlavors).
func simVisitor(i int) oidctest.User {
	u := claimFlavors[1].user
	u.Subject = fmt.Sprintf("visitor-%05d", i)
	u.Email = fmt.Sprintf("visitor%05d@example.com", i)
	u.PreferredUsername = fmt.Sprintf("visitor%05d", i)
	return u
}

// claimFlavors are the claim sets whose session sizes docs/scaling.md gives: an IdP that sends the
// bare minimum, a typical workforce/customer IdP, and an IdP with many groups and custom claims.
var claimFlavors = []struct {
	name string
	user oidctest.User
}{
	{"small", oidctest.User{Subject: "flavor-small", Email: "sam@example.com", EmailVerified: true, Name: "Sam Small"}},
	{"typical", oidctest.User{
		Subject: "flavor-typical", Email: "taylor.typical@example.com", EmailVerified: true, Name: "Taylor Typical",
		PreferredUsername: "ttypical", Groups: []string{"customers", "emea", "premium-support", "beta-program", "newsletter"},
		Extra: map[string]any{"locale": "en-GB", "organization": "Example Trading Ltd", "employee_id": "E-104233"},
	}},
	{"large", oidctest.User{
		Subject: "flavor-large-6f1c2a9e-8d44-4b3e-9a51-0c7d2e1f3b8a", Email: "lee.large-claims@subsidiary.example.com", EmailVerified: true,
		Name: "Lee Large-Claims", PreferredUsername: "llarge", Groups: largeGroups(40), Extra: largeExtra(20),
	}},
}

func largeGroups(n int) []string {
	g := make([]string, n)
	for i := range g {
		g[i] = fmt.Sprintf("org-unit-engineering-platform-%02d", i)
	}
	return g
}

func largeExtra(n int) map[string]any {
	m := map[string]any{"department": "Platform Engineering", "cost_center": "CC-4410-PLAT", "manager": "manager-7c1e@subsidiary.example.com"}
	for i := range n {
		m[fmt.Sprintf("custom_attribute_%02d", i)] = fmt.Sprintf("value of custom attribute %02d for this user", i)
	}
	return m
}

// startSimStack brings up what the simulation needs: the upstream, an IdP with every visitor, Redis
// (addr, or a redis-server of its own), and zdgate instances: name -> extra flags.
func (st *stack) startSimStack(ctx context.Context, users []oidctest.User, redisAddr string, gates [][2]string) error {
	if err := st.startBase(ctx, "zdgate-sim-"); err != nil {
		return err
	}
	var err error
	if st.idp, err = oidctest.Start(oidctest.Options{Users: users}); err != nil {
		return fmt.Errorf("test IdP: %w", err)
	}
	if st.redisAddr = redisAddr; st.redisAddr == "" {
		server, err := exec.LookPath("redis-server")
		if err != nil {
			return errors.New("the simulation needs redis-server (Debian's redis-server package; make test-deps), or -redis ADDR")
		}
		if err := st.startRedis(ctx, server); err != nil {
			return fmt.Errorf("redis-server: %w", err)
		}
	}
	for _, g := range gates {
		extra := strings.Fields(g[1])
		if strings.Contains(g[1], "--session-store=redis") {
			extra = append(extra, "--redis-url=redis://"+st.redisAddr+"/0")
		}
		if _, err := st.startGate(ctx, g[0], extra); err != nil {
			return fmt.Errorf("zdgate %s: %w", g[0], err)
		}
	}
	return nil
}

// loginAs runs the browser's code flow on g for the IdP user sub (login_hint makes the test IdP log
// them in at once) and returns the session's Cookie header and when the login was answered.
func loginAs(ctx context.Context, c *http.Client, g *gate, sub string) (string, time.Time, error) {
	jar, _ := cookiejar.New(nil)
	lc := &http.Client{Transport: c.Transport, Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next := g.url + "/oauth2/start?rd=/"
	for step := range 3 { // start -> IdP authorize -> callback
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return "", time.Time{}, err
		}
		req.Header.Set("Accept", "text/html")
		res, err := lc.Do(req)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("login %s: step %d: %w", sub, step+1, err)
		}
		io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		if res.StatusCode != http.StatusFound {
			return "", time.Time{}, fmt.Errorf("login %s: step %d answered %s, want 302", sub, step+1, res.Status)
		}
		next = res.Header.Get("Location")
		if step == 0 { // the IdP's authorize URL: name the user
			u, err := url.Parse(next)
			if err != nil {
				return "", time.Time{}, err
			}
			q := u.Query()
			q.Set("login_hint", sub)
			u.RawQuery = q.Encode()
			next = u.String()
		}
	}
	done := time.Now()
	u, _ := url.Parse(g.url)
	var parts []string
	for _, ck := range jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	if len(parts) == 0 {
		return "", done, fmt.Errorf("login %s: no session cookie", sub)
	}
	return strings.Join(parts, "; "), done, nil
}

// redisStats reads what a redis-server has done: INFO commandstats, memory, keys.
type redisStats struct{ c *redis.Client }

func newRedisStats(addr string) redisStats {
	return redisStats{redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, MaxRetries: -1, PoolSize: 1})}
}

// notModelled are the commands of connection set-up, health checks and this harness's own
// questions: they do not grow with sessions or requests.
func notModelled(cmd string) bool {
	switch cmd {
	case "info", "hello", "ping", "select", "auth", "scan", "dbsize", "memory|usage", "command", "readonly":
		return true
	}
	return strings.HasPrefix(cmd, "client|") || strings.HasPrefix(cmd, "command|") || strings.HasPrefix(cmd, "config|")
}

// commands is INFO commandstats as command -> calls, without the commands notModelled.
func (r redisStats) commands(ctx context.Context) (cost, error) {
	raw, err := r.c.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("redis INFO commandstats: %w", err)
	}
	out := cost{}
	for _, line := range strings.Split(raw, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") || notModelled(name) {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, _ := strconv.Atoi(v)
				out[name] = n
			}
		}
	}
	return out, nil
}

func (r redisStats) usedMemory(ctx context.Context) (int64, error) {
	raw, err := r.c.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(raw, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("redis INFO memory: no used_memory")
}

// keys is every key zdgate wrote (its default prefix).
func (r redisStats) keys(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	iter := r.c.Scan(ctx, 0, "zdgate:*", 1000).Iterator()
	for iter.Next(ctx) {
		out[iter.Val()] = true
	}
	return out, iter.Err()
}

func diff(after, before cost) cost {
	d := cost{}
	for k, v := range after {
		if v-before[k] != 0 {
			d[k] = v - before[k]
		}
	}
	return d
}

// idpCounts are the test IdP's counters of zdgate's calls (authorize is the browser's).
func idpCounts(s *oidctest.Server) cost {
	c := cost{}
	for _, k := range []string{"token.code", "token.refresh", "token", "userinfo", "introspect", "jwks", "discovery"} {
		if n := s.Count(k); n != 0 {
			c[k] = n
		}
	}
	return c
}

// counter snapshots the IdP and Redis counters around an action.
type counter struct {
	st    *stack
	redis redisStats
}

func (c counter) around(ctx context.Context, f func() error) (idp, rd cost, err error) {
	idp0 := idpCounts(c.st.idp)
	rd0, err := c.redis.commands(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := f(); err != nil {
		return nil, nil, err
	}
	rd1, err := c.redis.commands(ctx)
	if err != nil {
		return nil, nil, err
	}
	return diff(idpCounts(c.st.idp), idp0), diff(rd1, rd0), nil
}

// simGet sends one request of route on g with the session cookie and checks its status.
func simGet(ctx context.Context, c *http.Client, g *gate, rt simRoute, cookie string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+rt.path, nil)
	if err != nil {
		return err
	}
	for k, v := range rt.header {
		req.Header.Set(k, v)
	}
	req.Header.Set("Cookie", cookie)
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if res.StatusCode != rt.status {
		return fmt.Errorf("GET %s: %s, want %d", rt.path, res.Status, rt.status)
	}
	return nil
}
