package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/tokens"
)

// The fleet tests run real zdgate processes (the binary `go build` makes) against one oidctest IdP
// and one Redis deployment, log visitors in, keep them busy with a steady load, and kill things
// with SIGKILL: a Redis primary (Sentinel, Cluster) or a zdgate replica. Everything is on loopback
// with ephemeral ports, and every wait is bounded.

const (
	fleetMessagingKey    = "app_fleet"
	fleetMessagingSecret = "fleet-messaging-secret"
	fleetCookieSecret    = "0123456789abcdef0123456789abcdef"
	fleetClientSecret    = "zdgate-secret"
	// loadPeriod is how often each visitor asks for a token: 20 visitors make 400 requests a second.
	loadPeriod = 50 * time.Millisecond
)

// fleet is an IdP, an app and zdgate replicas sharing one Redis.
type fleet struct {
	t        *testing.T
	idp      *oidctest.Server
	app      *httptest.Server
	redisURL string
	recheck  time.Duration
	replicas []*replica
}

// replica is one zdgate process.
type replica struct {
	name, url string
	metrics   string // the /metrics URL on --metrics-listen
	cmd       *exec.Cmd
	logs      *syncBuffer
	exited    chan struct{}
	mu        sync.Mutex
	killed    bool
}

// fleetUser is visitor i's account at the IdP.
func fleetUser(i int) oidctest.User {
	return oidctest.User{
		Subject: fmt.Sprintf("user-%02d", i), Email: fmt.Sprintf("user%02d@example.com", i), EmailVerified: true,
		Name: fmt.Sprintf("Visitor %02d", i), PreferredUsername: fmt.Sprintf("user%02d", i), Password: "password",
	}
}

// startFleet starts n replicas with --session-store=redis on redisURL and the given
// --recheck-interval, and an IdP with users accounts, and waits until every replica is ready.
func startFleet(t *testing.T, n, users int, redisURL string, recheck time.Duration) *fleet {
	t.Helper()
	var us []oidctest.User
	for i := range users {
		us = append(us, fleetUser(i))
	}
	f := &fleet{t: t, idp: oidctest.NewT(t, oidctest.Options{Users: us}), redisURL: redisURL, recheck: recheck}
	f.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app sees "+r.Header.Get("X-Forwarded-User"))
	}))
	t.Cleanup(f.app.Close)
	for i := range n {
		f.replicas = append(f.replicas, f.startReplica(fmt.Sprintf("zdgate-%d", i+1)))
	}
	for _, r := range f.replicas {
		waitReady(t, r.url)
	}
	return f
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln := listenLoopback(t)
	defer ln.Close()
	return ln.Addr().String()
}

func (f *fleet) startReplica(name string) *replica {
	t := f.t
	t.Helper()
	addr, maddr := freeAddr(t), freeAddr(t)
	r := &replica{name: name, url: "http://" + addr, metrics: "http://" + maddr + "/metrics", logs: &syncBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(zdgateBinary(t), "serve",
		"--listen="+addr, "--metrics-listen="+maddr, "--upstream="+f.app.URL, "--public-url="+r.url,
		"--oidc-issuer="+f.idp.URL(), "--oidc-client-id=zdgate", "--cookie-secure=false",
		"--session-store=redis", "--recheck-interval="+f.recheck.String(),
		"--zendesk-messaging-key-id="+fleetMessagingKey, "--log-format=json", "--log-level=info")
	r.cmd.Env = append(os.Environ(),
		"ZDGATE_COOKIE_SECRET="+fleetCookieSecret, "ZDGATE_OIDC_CLIENT_SECRET="+fleetClientSecret,
		"ZDGATE_ZENDESK_MESSAGING_SECRET="+fleetMessagingSecret, "ZDGATE_REDIS_URL="+f.redisURL)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("%s log:\n%s", r.name, r.logs.String())
		}
	})
	return r
}

// kill ends the process with SIGKILL, as a node failure or the OOM killer would, and waits.
func (r *replica) kill() {
	r.mu.Lock()
	r.killed = true
	r.mu.Unlock()
	r.cmd.Process.Kill()
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
	}
}

// checkNoPanic fails the test if a replica's log shows a panic or the process died on its own.
func (f *fleet) checkNoPanic() {
	f.t.Helper()
	for _, r := range f.replicas {
		if strings.Contains(r.logs.String(), "panic") {
			f.t.Errorf("%s panicked:\n%s", r.name, r.logs.String())
		}
		r.mu.Lock()
		killed := r.killed
		r.mu.Unlock()
		select {
		case <-r.exited:
			if !killed {
				f.t.Errorf("%s exited on its own", r.name)
			}
		default:
		}
	}
}

// visitor is one browser: a cookie jar that reaches every replica (cookies are per host, not per
// port, and every replica is on 127.0.0.1).
type visitor struct {
	sub string
	c   *http.Client
}

// login runs the code flow through replica r for the IdP user sub.
func (f *fleet) login(r *replica, sub string) *visitor {
	t := f.t
	t.Helper()
	v := &visitor{sub: sub, c: noFollow()}
	get := func(u string) *http.Response {
		t.Helper()
		res, err := v.c.Get(u)
		if err != nil {
			t.Fatalf("login %s: GET %s: %v", sub, u, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusFound {
			t.Fatalf("login %s: GET %s = %d; want 302", sub, u, res.StatusCode)
		}
		return res
	}
	authorize, err := url.Parse(get(r.url + "/oauth2/start?rd=/").Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := authorize.Query()
	q.Set("login_hint", sub) // the auto-login IdP logs this user in
	authorize.RawQuery = q.Encode()
	callback := get(authorize.String()).Header.Get("Location")
	get(callback)
	return v
}

// token asks replica r for a Messaging token and checks that it is for this visitor. It returns
// the status and whether the answer ended the session cookie (a logout).
func (v *visitor) token(r *replica) (code int, loggedOut bool, err error) {
	res, err := v.c.Get(r.url + "/zendesk/token")
	if err != nil {
		return 0, false, err
	}
	defer res.Body.Close()
	for _, c := range res.Cookies() {
		if c.Name == "_zdgate" && (c.MaxAge < 0 || c.Value == "") {
			loggedOut = true
		}
	}
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, res.Body)
		return res.StatusCode, loggedOut, nil
	}
	var body struct{ JWT string }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return res.StatusCode, loggedOut, fmt.Errorf("token body: %w", err)
	}
	vr := tokens.Verify(body.JWT, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte(fleetMessagingSecret), KeyID: fleetMessagingKey})
	if len(vr.Problems) > 0 || vr.Claims["external_id"] != v.sub {
		return res.StatusCode, loggedOut, fmt.Errorf("token for %s: external_id %v, problems %v", v.sub, vr.Claims["external_id"], vr.Problems)
	}
	return res.StatusCode, loggedOut, nil
}

// outcome is one request of the load: when it was answered, by which replica, and how.
type outcome struct {
	at        time.Time
	replica   int
	code      int
	loggedOut bool
	err       error // a bad token, or no replica answered at all
	connErrs  int   // replicas tried first that did not answer (a dead replica)
}

// load keeps every visitor asking for tokens, spreading each visitor's requests over the
// replicas in turn. Like a load balancer that retries on connection errors, a request that finds
// a replica dead goes on to the next one.
type load struct {
	started time.Time
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	outs    []outcome
}

func (f *fleet) startLoad(vs []*visitor) *load {
	l := &load{started: time.Now(), stop: make(chan struct{})}
	for i, v := range vs {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(loadPeriod)
			defer tick.Stop()
			for n := i; ; n++ {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				o := outcome{}
				for try := range len(f.replicas) {
					o.replica = (n + try) % len(f.replicas)
					o.code, o.loggedOut, o.err = v.token(f.replicas[o.replica])
					if o.code != 0 {
						break
					}
					o.connErrs++
				}
				o.at = time.Now()
				l.mu.Lock()
				l.outs = append(l.outs, o)
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// finish stops the load and returns every outcome in the order answered.
func (l *load) finish() []outcome {
	close(l.stop)
	l.wg.Wait()
	sort.Slice(l.outs, func(i, j int) bool { return l.outs[i].at.Before(l.outs[j].at) })
	return l.outs
}

// since is what the load saw from t on.
func (l *load) since(t time.Time) []outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []outcome
	for _, o := range l.outs {
		if !o.at.Before(t) {
			out = append(out, o)
		}
	}
	return out
}

// waitAllOK waits (bounded by within) until every answer in the last span was a 200, and returns
// when that span began. The span must lie after the call and after the load started.
func (l *load) waitAllOK(t *testing.T, span, within time.Duration) time.Time {
	t.Helper()
	called := time.Now()
	deadline := called.Add(within)
	for time.Now().Before(deadline) {
		from := time.Now().Add(-span)
		outs := l.since(from)
		ok := len(outs) > 0 && !from.Before(called) && !from.Before(l.started)
		for _, o := range outs {
			ok = ok && o.code == http.StatusOK
		}
		if ok {
			return from
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the fleet did not answer only 200s for %v within %v", span, within)
	return time.Time{}
}

// tally is what a stretch of the load came to.
type tally struct {
	total, ok, unavailable, unauthorized, other, failed, logouts, connErrs int
	firstBad, lastBad                                                      time.Time
}

func count(outs []outcome) tally {
	var c tally
	for _, o := range outs {
		c.total++
		c.connErrs += o.connErrs
		if o.loggedOut {
			c.logouts++
		}
		switch {
		case o.err != nil:
			c.failed++
		case o.code == http.StatusOK:
			c.ok++
			continue
		case o.code == http.StatusServiceUnavailable:
			c.unavailable++
		case o.code == http.StatusUnauthorized:
			c.unauthorized++
		default:
			c.other++
		}
		if c.firstBad.IsZero() {
			c.firstBad = o.at
		}
		c.lastBad = o.at
	}
	return c
}

func (c tally) String() string {
	return fmt.Sprintf("%d requests: %d ok, %d 503, %d 401, %d other status, %d failed, %d logouts, %d connection errors retried",
		c.total, c.ok, c.unavailable, c.unauthorized, c.other, c.failed, c.logouts, c.connErrs)
}

// checkOnlyUnavailable fails the test unless every answer that was not a 200 was a 503: no 401,
// no logout, no other status, no bad token, no request without any answer.
func checkOnlyUnavailable(t *testing.T, what string, c tally, outs []outcome) {
	t.Helper()
	if c.unauthorized+c.other+c.failed+c.logouts > 0 {
		for _, o := range outs {
			if o.code != http.StatusOK && o.code != http.StatusServiceUnavailable || o.err != nil || o.loggedOut {
				t.Errorf("%s: replica %d answered %d (logout %v, error %v) at %s", what, o.replica+1, o.code, o.loggedOut, o.err, o.at.Format("15:04:05.000"))
				break
			}
		}
		t.Errorf("%s: %v; want only 200s and 503s, never a 401 or a logout", what, c)
	}
}

// checkEveryoneIn asks every replica still running for a token for every visitor: no session
// was lost.
func (f *fleet) checkEveryoneIn(vs []*visitor) {
	f.t.Helper()
	for _, r := range f.replicas {
		r.mu.Lock()
		dead := r.killed
		r.mu.Unlock()
		if dead {
			continue
		}
		for _, v := range vs {
			if code, out, err := v.token(r); code != http.StatusOK || out || err != nil {
				f.t.Errorf("%s on %s afterwards = %d (logout %v, %v); want 200: the session must survive", v.sub, r.name, code, out, err)
			}
		}
	}
}
