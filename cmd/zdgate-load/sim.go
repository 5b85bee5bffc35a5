package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

// The simulation mode (-simulate) checks docs/scaling.md's model against a real run: N visitors
// log in through the test IdP to a zdgate with --session-store=redis, then each sends requests at
// random (exponential gaps, mean -sim-gap) for -sim-duration, the routes in turn. A short
// --recheck-interval (-sim-interval) compresses minutes of a real deployment into seconds: what
// scales is requests and re-checks per session per interval, not wall time. The model's
// predictions (model.go) are compared with what the IdP and Redis (INFO commandstats) counted.

// simOptions are the simulation's knobs.
type simOptions struct {
	sessions            int
	interval, gap, dur  time.Duration
	redis               string // use this redis-server; empty starts one
	tolerance           float64
	loginConns, reqConn int
	maxRequests         int
	timeout             time.Duration
	zdgateBin           string
}

// simReport is what a simulation found.
type simReport struct {
	exact        [][]string // cost per event, measured on one session
	mismatches   []string   // events whose counted cost differs from the model
	flavors      [][]string // session size by claim flavor
	logins       []comparison
	steady       []comparison
	requests     map[string]int
	rechecks     int // predicted by applying the rule to the requests as sent
	errors       int
	firstError   string
	redisPerSess float64       // INFO used_memory growth per logged-in session
	zdgateCPU    time.Duration // the simulated zdgate's CPU during the requests
	redisCPU     time.Duration // redis-server's, when the harness started it (else 0)
	loginTime    time.Duration
	steadyTime   time.Duration
	tolerance    float64
	sessions     int
	interval     time.Duration
	gap          time.Duration
}

func (r *simReport) failed() bool {
	if len(r.mismatches) > 0 || r.errors > 0 {
		return true
	}
	for _, c := range append(r.logins, r.steady...) {
		if !c.within(r.tolerance) {
			return true
		}
	}
	return false
}

func (r *simReport) format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nCost per event, counted on one session (test IdP counters; Redis INFO commandstats):\n%s", formatTable(r.exact))
	for _, m := range r.mismatches {
		fmt.Fprintf(&b, "MODEL MISMATCH: %s\n", m)
	}
	fmt.Fprintf(&b, "\nSession size by claim flavor:\n%s", formatTable(r.flavors))
	fmt.Fprintf(&b, "Redis memory per session over the %d simulated sessions (INFO used_memory growth / sessions): %.0f B\n", r.sessions, r.redisPerSess)
	total := 0
	for _, n := range r.requests {
		total += n
	}
	intervals := r.steadyTime.Seconds() / r.interval.Seconds()
	fmt.Fprintf(&b, "\nSimulation: %d sessions, --recheck-interval=%v, mean gap between a session's requests %v; logins took %v, then %v of requests (%.1f intervals)\n",
		r.sessions, r.interval, r.gap, r.loginTime.Round(time.Millisecond), r.steadyTime.Round(time.Millisecond), intervals)
	fmt.Fprintf(&b, "requests: %d (%s), %.0f/s; re-checks due by the rule: %d = %.3f per session per interval (renewal estimate for exponential gaps: interval/(interval+gap) = %.3f)\n",
		total, fmtRequests(r.requests), float64(total)/r.steadyTime.Seconds(), r.rechecks,
		float64(r.rechecks)/float64(r.sessions)/intervals, r.interval.Seconds()/(r.interval.Seconds()+r.gap.Seconds()))
	if r.zdgateCPU > 0 && total > 0 {
		fmt.Fprintf(&b, "CPU: zdgate %v per request (re-checks included: %.2f per request)", (r.zdgateCPU / time.Duration(total)).Round(time.Microsecond), float64(r.rechecks)/float64(total))
		if cmds := r.steady[len(r.steady)-1].counted; r.redisCPU > 0 && cmds > 0 {
			fmt.Fprintf(&b, "; redis-server %.2f µs per command (%.0f commands per CPU second)", r.redisCPU.Seconds()*1e6/cmds, cmds/r.redisCPU.Seconds())
		}
		b.WriteString("\n")
	}
	if r.errors > 0 {
		fmt.Fprintf(&b, "ERROR: %d requests failed, first: %s\n", r.errors, r.firstError)
	}
	fmt.Fprintf(&b, "\nPredicted vs counted, logins:\n%s", formatComparisons(r.logins, r.tolerance))
	fmt.Fprintf(&b, "\nPredicted vs counted, %v of requests:\n%s", r.steadyTime.Round(time.Millisecond), formatComparisons(r.steady, r.tolerance))
	return b.String()
}

func fmtRequests(m map[string]int) string {
	var parts []string
	for _, rt := range simRoutes {
		parts = append(parts, fmt.Sprintf("%s %d", rt.name, m[rt.name]))
	}
	return strings.Join(parts, ", ")
}

// runSimulation is -simulate: it prints the report and exits 1 when the model is off.
func runSimulation(ctx context.Context, so simOptions, stdout, stderr io.Writer) int {
	rep, err := simulate(ctx, so, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "zdgate-load: simulation: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, rep.format())
	if rep.failed() {
		fmt.Fprintln(stdout, "\nthe model does not hold: see the rows marked NO / MODEL MISMATCH above")
		return 1
	}
	fmt.Fprintf(stdout, "\nthe model holds: every count within %.0f%% of its prediction\n", 100*so.tolerance)
	return 0
}

// simulate runs the three phases: exact cost per event, session sizes, the simulation.
func simulate(ctx context.Context, so simOptions, out io.Writer) (*simReport, error) {
	users := []oidctest.User{{Subject: "measure-user", Email: "measure@example.com", EmailVerified: true, Name: "Measure User"}}
	for _, f := range claimFlavors {
		users = append(users, f.user)
	}
	for i := range so.sessions {
		users = append(users, simVisitor(i))
	}
	st := &stack{out: out, opts: &options{zdgateBin: so.zdgateBin, timeout: so.timeout}, recheck: time.Hour}
	defer st.close()
	redisFlags := "--inject=false --session-store=redis "
	if err := st.startSimStack(ctx, users, so.redis, [][2]string{
		{"fresh", redisFlags + "--recheck-interval=1h"},
		{"due", redisFlags + "--recheck-interval=1ns"}, // every request is due for a re-check
		{"cookie", "--inject=false --recheck-interval=1h"},
		{"sim", redisFlags + "--recheck-interval=" + so.interval.String()},
	}); err != nil {
		return nil, err
	}
	stats := newRedisStats(st.redisAddr)
	defer stats.c.Close()
	client := &http.Client{Timeout: so.timeout, Transport: &http.Transport{MaxIdleConnsPerHost: so.reqConn + so.loginConns, MaxConnsPerHost: so.reqConn + so.loginConns, IdleConnTimeout: time.Minute}}
	defer client.CloseIdleConnections()
	rep := &simReport{tolerance: so.tolerance, sessions: so.sessions, interval: so.interval, gap: so.gap}

	// Warm every instance: its first login fetches the JWKS, the first re-check loads the unlock
	// script into Redis (EVALSHA answered NOSCRIPT, then EVAL). Neither recurs per session.
	for _, name := range []string{"fresh", "due", "cookie", "sim"} {
		ck, _, err := loginAs(ctx, client, st.gates[name], "measure-user")
		if err == nil {
			err = simGet(ctx, client, st.gates[name], simRoutes[0], ck)
		}
		if err != nil {
			return nil, fmt.Errorf("warm-up on %s: %w", name, err)
		}
	}
	if err := measureEvents(ctx, st, stats, client, rep); err != nil {
		return nil, err
	}
	if err := measureFlavors(ctx, st, stats, client, rep); err != nil {
		return nil, err
	}
	return rep, runSessions(ctx, st, stats, client, so, rep)
}

// measureEvents counts, exactly, one login and one request of each route with a fresh and with a
// due confirmation, and holds each against the model.
func measureEvents(ctx context.Context, st *stack, stats redisStats, client *http.Client, rep *simReport) error {
	c := counter{st: st, redis: stats}
	rep.exact = [][]string{{"event", "IdP calls model", "counted", "Redis commands model", "counted", "Redis commands counted, by command"}}
	row := func(event string, wantIdP, wantRedis, idp, rd cost) {
		rep.exact = append(rep.exact, []string{event, fmt.Sprint(wantIdP.total()), fmt.Sprint(idp.total()), fmt.Sprint(wantRedis.total()), fmt.Sprint(rd.total()), rd.String()})
		if !maps.Equal(nonzero(idp), nonzero(wantIdP)) || !maps.Equal(nonzero(rd), nonzero(wantRedis)) {
			rep.mismatches = append(rep.mismatches, fmt.Sprintf("%s: IdP %v, Redis %v; the model says IdP %v, Redis %v", event, idp, rd, wantIdP, wantRedis))
		}
	}
	sessions := map[string]string{}
	for _, name := range []string{"fresh", "due"} {
		var ck string
		idp, rd, err := c.around(ctx, func() (err error) {
			ck, _, err = loginAs(ctx, client, st.gates[name], "measure-user")
			return err
		})
		if err != nil {
			return err
		}
		sessions[name] = ck
		if name == "fresh" {
			row("login (code exchange, userinfo, save)", model.loginIdP, model.loginRedis, idp, rd)
		}
	}
	for _, rt := range simRoutes {
		for _, name := range []string{"fresh", "due"} {
			idp, rd, err := c.around(ctx, func() error { return simGet(ctx, client, st.gates[name], rt, sessions[name]) })
			if err != nil {
				return err
			}
			wantIdP, wantRedis := cost{}, cost{}
			wantRedis.add(model.requestRedis[rt.name], 1)
			event := "GET " + rt.path + " (" + rt.name + "), confirmation fresh"
			if name == "due" {
				wantIdP.add(model.recheckIdP, 1)
				wantRedis.add(model.recheckRedis, 1)
				event = "GET " + rt.path + " (" + rt.name + "), re-check due"
			}
			row(event, wantIdP, wantRedis, idp, rd)
		}
	}
	return nil
}

func nonzero(c cost) cost {
	out := cost{}
	for k, v := range c {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// measureFlavors logs each claim flavor in on the cookie store and on Redis, and measures the
// cookie the browser carries and the keys Redis keeps.
func measureFlavors(ctx context.Context, st *stack, stats redisStats, client *http.Client, rep *simReport) error {
	rep.flavors = [][]string{{"claims", "userinfo JSON B", "cookie store: cookie B", "chunks", "Redis store: ticket cookie B", "Redis session key B", "sid index B", "sub index B"}}
	for _, f := range claimFlavors {
		ck, _, err := loginAs(ctx, client, st.gates["cookie"], f.user.Subject)
		if err != nil {
			return err
		}
		info, err := userinfoSize(ctx, client, st.gates["cookie"], ck)
		if err != nil {
			return err
		}
		before, err := stats.keys(ctx)
		if err != nil {
			return err
		}
		ticket, _, err := loginAs(ctx, client, st.gates["fresh"], f.user.Subject)
		if err != nil {
			return err
		}
		after, err := stats.keys(ctx)
		if err != nil {
			return err
		}
		sizes := map[string]int64{}
		for k := range after {
			if before[k] {
				continue
			}
			n, err := stats.c.MemoryUsage(ctx, k).Result()
			if err != nil {
				return fmt.Errorf("redis MEMORY USAGE: %w", err)
			}
			kind, _, _ := strings.Cut(strings.TrimPrefix(k, "zdgate:"), ":")
			sizes[kind] += n
		}
		rep.flavors = append(rep.flavors, []string{f.name, fmt.Sprint(info), fmt.Sprint(len(ck)), fmt.Sprint(strings.Count(ck, ";") + 1),
			fmt.Sprint(len(ticket)), fmt.Sprint(sizes["s"]), fmt.Sprint(sizes["sid"]), fmt.Sprint(sizes["sub"])})
	}
	return nil
}

func userinfoSize(ctx context.Context, c *http.Client, g *gate, cookie string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/oauth2/userinfo", nil)
	req.Header.Set("Cookie", cookie)
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/oauth2/userinfo: %s", res.Status)
	}
	return len(strings.TrimSpace(string(b))), err
}

// simSession is one simulated visitor: its cookie, when its last confirmation was (login), and
// what it sent.
type simSession struct {
	cookie    string
	confirmed time.Time
	sent      []sentRequest
}

type sentRequest struct {
	route      int
	sent, recv time.Time
}

// runSessions logs every visitor in, lets them send requests, and compares with the model.
func runSessions(ctx context.Context, st *stack, stats redisStats, client *http.Client, so simOptions, rep *simReport) error {
	g := st.gates["sim"]
	c := counter{st: st, redis: stats}
	sessions := make([]*simSession, so.sessions)
	mem0, err := stats.usedMemory(ctx)
	if err != nil {
		return err
	}
	began := time.Now()
	idp, rd, err := c.around(ctx, func() error {
		return parallel(ctx, so.sessions, so.loginConns, func(i int) error {
			ck, at, err := loginAs(ctx, client, g, simVisitor(i).Subject)
			sessions[i] = &simSession{cookie: ck, confirmed: at}
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("logins: %w", err)
	}
	rep.loginTime = time.Since(began)
	mem1, err := stats.usedMemory(ctx)
	if err != nil {
		return err
	}
	rep.redisPerSess = float64(mem1-mem0) / float64(so.sessions)
	pIdP, pRedis := model.predict(so.sessions, nil, 0)
	rep.logins = append(compare("IdP", pIdP, idp), compare("Redis", pRedis, rd)...)

	var (
		errs  atomic.Int64
		total atomic.Int64
		mu    sync.Mutex
	)
	cpu := func(p *proc) time.Duration {
		if p == nil {
			return 0
		}
		d, _ := cpuTime(p.pid())
		return d
	}
	zcpu0, rcpu0 := cpu(g.p), cpu(st.redisProc)
	began = time.Now()
	end := began.Add(so.dur)
	idp, rd, err = c.around(ctx, func() error {
		var wg sync.WaitGroup
		sem := make(chan struct{}, so.reqConn)
		for i, s := range sessions {
			rng := rand.New(rand.NewPCG(uint64(i), 0x5eed))
			wg.Go(func() {
				next := began.Add(expGap(rng, so.gap))
				for n := i; next.Before(end) && ctx.Err() == nil && total.Add(1) <= int64(so.maxRequests); n++ {
					if !sleepUntil(ctx, next) {
						return
					}
					rt := n % len(simRoutes)
					sem <- struct{}{}
					sent := time.Now()
					err := simGet(ctx, client, g, simRoutes[rt], s.cookie)
					recv := time.Now()
					<-sem
					s.sent = append(s.sent, sentRequest{route: rt, sent: sent, recv: recv})
					if err != nil && errs.Add(1) == 1 {
						mu.Lock()
						rep.firstError = err.Error()
						mu.Unlock()
					}
					next = next.Add(expGap(rng, so.gap))
				}
			})
		}
		wg.Wait()
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	rep.steadyTime = time.Since(began)
	rep.zdgateCPU, rep.redisCPU = cpu(g.p)-zcpu0, cpu(st.redisProc)-rcpu0
	rep.errors = int(errs.Load())
	rep.requests = map[string]int{}
	for _, s := range sessions {
		last := s.confirmed
		for _, r := range s.sent {
			rep.requests[simRoutes[r.route].name]++
			// The model's rule: a request re-checks when the last confirmation is at least
			// --recheck-interval old; the confirmation is then as new as its answer.
			if r.sent.Sub(last) >= so.interval {
				rep.rechecks++
				last = r.recv
			}
		}
	}
	pIdP, pRedis = model.predict(0, rep.requests, rep.rechecks)
	rep.steady = append(compare("IdP", pIdP, idp), compare("Redis", pRedis, rd)...)
	return nil
}

func expGap(rng *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration(rng.ExpFloat64() * float64(mean))
}

// parallel runs f(0..n-1) on conns goroutines and returns the first error.
func parallel(ctx context.Context, n, conns int, f func(i int) error) error {
	var (
		next  atomic.Int64
		first error
		once  sync.Once
		wg    sync.WaitGroup
	)
	for range min(conns, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}
