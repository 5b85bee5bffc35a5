package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/zdgate/zdgate/tokens"
)

// scenarioKeys are the -scenarios names, in the order they run and are printed.
var scenarioKeys = []string{"direct", "bare", "cookie", "quiet", "redis", "inject", "token", "auth"}

// scenario is one row of the table: what to request, from which process, and how to tell a right
// answer. skip or err set means it is not measured.
type scenario struct {
	key, name string
	targets   []target
	proc      *proc // the proxy's process, for CPU per request; nil when it is not a child
	// preflight checks one answer thoroughly (headers, token signature) before the load starts.
	preflight func(res *http.Response, body []byte) error
	skip      string
	err       error
}

// result is a scenario's outcome.
type result struct {
	key, name string
	skip      string
	err       error
	load      *load
	cpu       time.Duration // the proxy's CPU time in the measured window
	hasCPU    bool
	// other is the CPU time processes outside the test took in the measured window, of capacity.
	other, capacity time.Duration
	hasOther        bool
}

// add merges another round of the same scenario into r.
func (r *result) add(x *result) {
	if r.err == nil {
		r.err = x.err
	}
	switch {
	case x.load == nil:
	case r.load == nil:
		r.load = x.load
	default:
		r.load.merge(x.load)
	}
	r.cpu += x.cpu
	r.hasCPU = r.hasCPU && x.hasCPU
	r.other += x.other
	r.capacity += x.capacity
	r.hasOther = r.hasOther && x.hasOther
}

// otherShare is the share of the machine's CPU that processes outside the test took.
func (r *result) otherShare() (float64, bool) {
	if !r.hasOther || r.capacity <= 0 {
		return 0, false
	}
	return float64(r.other) / float64(r.capacity), true
}

func (r *result) failed() bool {
	return r.skip == "" && (r.err != nil || r.load == nil || r.load.failed())
}

func (r *result) failure() string {
	if r.err != nil {
		return r.err.Error()
	}
	if r.load == nil {
		return "not run"
	}
	return r.load.failure()
}

// measured reports whether r has numbers to compare.
func (r *result) measured() bool {
	return r != nil && r.skip == "" && r.err == nil && r.load != nil && r.load.ok > 0
}

// cpuPerReq is the proxy's CPU time per measured request.
func (r *result) cpuPerReq() (time.Duration, bool) {
	if !r.hasCPU || !r.measured() {
		return 0, false
	}
	return r.cpu / time.Duration(r.load.ok), true
}

// injectedTag starts the loader tag zdgate adds to pages (docs/reference.md §5).
const injectedTag = `<script src="/zendesk/auth.js`

func pageHeader(cookie string) http.Header {
	h := http.Header{"Accept": {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	return h
}

// checkPage: 200 and exactly the upstream's page, byte for byte.
func checkPage(status int, body []byte) error {
	if status != http.StatusOK {
		return fmt.Errorf("GET /page: status %d, want 200", status)
	}
	if !bytes.Equal(body, page) {
		if bytes.Contains(body, []byte(injectedTag)) {
			return errors.New("GET /page: the loader was injected, but this instance runs --inject=false")
		}
		return fmt.Errorf("GET /page: %d bytes that differ from the upstream's %d", len(body), len(page))
	}
	return nil
}

// checkInjected: 200, and the upstream's page with exactly one loader tag added (and nothing else).
func checkInjected(status int, body []byte) error {
	if status != http.StatusOK {
		return fmt.Errorf("GET /page (inject): status %d, want 200", status)
	}
	i := bytes.Index(body, []byte(injectedTag))
	if i < 0 {
		return fmt.Errorf("GET /page (inject): no %s…> tag in %d bytes", injectedTag, len(body))
	}
	j := bytes.Index(body[i:], []byte("</script>"))
	if j < 0 || j > 512 {
		return errors.New("GET /page (inject): the loader tag is not closed")
	}
	j += i + len("</script>")
	if len(body)-(j-i) != len(page) || !bytes.Equal(body[:i], page[:i]) || !bytes.Equal(body[j:], page[i:]) {
		return fmt.Errorf("GET /page (inject): %d bytes are not the upstream page plus one tag", len(body))
	}
	return nil
}

// checkToken is the per-request check of /zendesk/token; the preflight verifies the JWT itself.
func checkToken(status int, body []byte) error {
	if status != http.StatusOK {
		return fmt.Errorf("GET /zendesk/token: status %d, want 200", status)
	}
	if !bytes.HasPrefix(body, []byte("{")) || !bytes.Contains(body, []byte(`"jwt":"ey`)) {
		return fmt.Errorf("GET /zendesk/token: %d bytes without a jwt", len(body))
	}
	return nil
}

func checkAuth(status int, body []byte) error {
	if status != http.StatusAccepted {
		return fmt.Errorf("GET /oauth2/auth: status %d, want 202", status)
	}
	return nil
}

// scenario builds the scenario key on the running stack.
func (st *stack) scenario(key string) *scenario {
	sc := &scenario{key: key}
	onGate := func(name string, path string, h http.Header, check func(int, []byte) error) {
		g := st.gates[name]
		if g == nil {
			sc.err = fmt.Errorf("zdgate %s instance is not running", name)
			return
		}
		if g.err != nil {
			sc.err = g.err
			return
		}
		h.Set("Cookie", g.cookie)
		sc.targets = []target{{url: g.url + path, header: h, check: check}}
		sc.proc = g.p
	}
	switch key {
	case "direct":
		sc.name = "direct upstream"
		sc.targets = []target{{url: st.upstream + "/page", header: pageHeader(""), check: checkPage}}
		sc.preflight = preflightHTML
	case "bare":
		sc.name = "bare ReverseProxy"
		sc.targets = []target{{url: st.bare + "/page", header: pageHeader(""), check: checkPage}}
		sc.proc = st.bareProc
		sc.preflight = preflightHTML
	case "cookie":
		sc.name = "zdgate cookie"
		onGate("cookie", "/page", pageHeader(""), checkPage)
		sc.preflight = preflightHTML
	case "quiet":
		// Beside the defaults' figure: the same instance type with the access log off.
		sc.name = "zdgate cookie, log off"
		onGate("quiet", "/page", pageHeader(""), checkPage)
		sc.preflight = preflightHTML
	case "redis":
		sc.name = "zdgate redis"
		if st.redisSkip != "" {
			sc.skip = st.redisSkip
			return sc
		}
		onGate("redis", "/page", pageHeader(""), checkPage)
		sc.preflight = preflightHTML
	case "inject":
		sc.name = "zdgate inject"
		onGate("inject", "/page", pageHeader(""), checkInjected)
		sc.preflight = preflightHTML
	case "token":
		sc.name = "zdgate /zendesk/token"
		onGate("cookie", "/zendesk/token", http.Header{"Sec-Fetch-Site": {"same-origin"}, "Accept": {"application/json"}}, checkToken)
		sc.preflight = st.preflightToken
	case "auth":
		sc.name = "zdgate /oauth2/auth"
		onGate("cookie", "/oauth2/auth", http.Header{}, checkAuth)
		sc.preflight = preflightAuth
	}
	return sc
}

func preflightHTML(res *http.Response, _ []byte) error {
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		return fmt.Errorf("Content-Type %q, want text/html", ct)
	}
	return nil
}

// preflightToken verifies one minted token completely: signature, kid, every Messaging rule.
func (st *stack) preflightToken(res *http.Response, body []byte) error {
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		return fmt.Errorf("Cache-Control %q, want no-store", cc)
	}
	var v struct {
		JWT       string `json:"jwt"`
		ExpiresAt int64  `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("token answer is not JSON: %v", err)
	}
	r := tokens.Verify(v.JWT, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte(st.messagingSecret), KeyID: messagingKeyID})
	if len(r.Problems) > 0 {
		return fmt.Errorf("minted token does not verify: %s", strings.Join(r.Problems, "; "))
	}
	if v.ExpiresAt <= time.Now().Unix() {
		return fmt.Errorf("expires_at %d is not in the future", v.ExpiresAt)
	}
	return nil
}

func preflightAuth(res *http.Response, _ []byte) error {
	if u := res.Header.Get("X-Auth-Request-User"); u != "user-1" {
		return fmt.Errorf("X-Auth-Request-User %q, want user-1", u)
	}
	return nil
}

// preflight sends each target once with a plain client and checks it fully.
func preflight(ctx context.Context, sc *scenario) error {
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()
	for _, t := range sc.targets {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
		if err != nil {
			return err
		}
		req.Header = t.header.Clone()
		res, err := c.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
		res.Body.Close()
		if err != nil {
			return err
		}
		if err := t.check(res.StatusCode, body); err != nil {
			return err
		}
		if sc.preflight != nil {
			if err := sc.preflight(res, body); err != nil {
				return fmt.Errorf("%s: %w", req.URL.Path, err)
			}
		}
	}
	return nil
}

// runScenario checks, loads and measures one round of a scenario, printing a progress line. pids
// are the test's own processes, to tell their CPU use from everyone else's.
func runScenario(ctx context.Context, sc *scenario, o *options, out io.Writer, pids []int, round int) *result {
	r := &result{key: sc.key, name: sc.name, skip: sc.skip, err: sc.err}
	label := sc.name
	if o.rounds > 1 {
		label = fmt.Sprintf("[%d/%d] %s", round+1, o.rounds, sc.name)
	}
	if r.skip != "" {
		if round == 0 {
			fmt.Fprintf(out, "%-28s skipped (%s)\n", label, sc.skip)
		}
		return r
	}
	if r.err == nil && round == 0 {
		r.err = preflight(ctx, sc)
	}
	if r.err != nil {
		fmt.Fprintf(out, "%-28s ERROR: %v\n", label, r.err)
		return r
	}
	var cpu0 time.Duration
	var cpuErr error
	var snap0 cpuSnap
	sp := loadSpec{
		targets: sc.targets, conns: o.conns, warmup: o.warmup, duration: o.duration,
		maxRequests: o.maxRequests, timeout: o.timeout,
		mark: func(phase string) {
			snap := takeCPU(pids)
			var c time.Duration
			var err error = errNoProc
			if sc.proc != nil {
				c, err = cpuTime(sc.proc.pid())
			}
			if phase == "start" {
				cpu0, cpuErr, snap0 = c, err, snap
				return
			}
			if err == nil && cpuErr == nil {
				r.cpu, r.hasCPU = c-cpu0, true
			}
			r.other, r.capacity, r.hasOther = otherCPU(snap0, snap, runtime.NumCPU())
		},
	}
	r.load = runLoad(ctx, sp)
	l := r.load
	fmt.Fprintf(out, "%-28s %8d req  %7.0f req/s  p50 %-7s p99 %-7s errors %d/%d", label, l.ok, l.rps(),
		fmtDur(l.hist.quantile(0.50)), fmtDur(l.hist.quantile(0.99)), l.errors, l.attempts)
	if share, ok := r.otherShare(); ok {
		fmt.Fprintf(out, "  other CPU %.0f%%", 100*share)
	}
	if l.capped {
		fmt.Fprintf(out, "  (stopped at -max-requests after %v)", l.elapsed.Round(time.Millisecond))
	}
	fmt.Fprintln(out)
	return r
}

var errNoProc = errors.New("the proxy is not a child process")
