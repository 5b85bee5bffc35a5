// Command zdgate-load is zdgate's load harness (`make bench-load`): it builds zdgate, runs it on
// loopback in front of an in-process upstream with a real test IdP, logs in, and measures what a
// user feels — request rate and p50/p99 latency — against a bare httputil.ReverseProxy measured in
// the same run, then soaks one instance to watch its memory and goroutines. It stops by itself:
// every phase has a deadline and a request cap, and every child process is killed on exit.
//
//	go run ./cmd/zdgate-load [-duration 5s] [-warmup 1s] [-conns 32] [-soak 60s]
//	                         [-scenarios direct,bare,cookie,redis,inject,token,auth] [-strict]
//
// With -simulate it checks the scaling model of docs/scaling.md instead (sim.go):
//
//	go run ./cmd/zdgate-load -simulate [-sessions 5000] [-sim-interval 10s] [-sim-gap 10s] [-sim-duration 60s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	duration, warmup, soak, soakWarmup time.Duration
	conns, rounds                      int
	maxRequests                        int
	scenarios                          []string
	strict                             bool
	bare                               string // "process" or "inproc"
	zdgateBin                          string // prebuilt binary; empty builds one
	timeout                            time.Duration
	simulate                           bool // -simulate: check the scaling model instead (sim.go)
	sim                                simOptions
}

func main() {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once; children die with us (Pdeathsig)
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("zdgate-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per scenario")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each scenario")
	fs.IntVar(&o.conns, "conns", 32, "concurrent keep-alive connections (closed loop: one request in flight each)")
	fs.IntVar(&o.rounds, "rounds", 1, "run the scenario list this many times, interleaved, and merge each scenario's rounds (evens out a noisy machine)")
	fs.DurationVar(&o.soak, "soak", 60*time.Second, "soak time on the injecting cookie-store instance (0 skips the soak)")
	fs.DurationVar(&o.soakWarmup, "soak-warmup", 5*time.Second, "load before the soak's first memory sample, so the heap has reached its working size")
	fs.IntVar(&o.maxRequests, "max-requests", 2_000_000, "hard cap on requests per scenario (warm-up included)")
	list := fs.String("scenarios", strings.Join(scenarioKeys, ","), "comma-separated scenarios to run: "+strings.Join(scenarioKeys, ", "))
	fs.BoolVar(&o.strict, "strict", false, "exit non-zero when a target is missed (errors always do)")
	fs.StringVar(&o.bare, "bare", "process", "where the bare httputil.ReverseProxy baseline runs: process (its own process, like zdgate) or inproc (inside the harness, sharing its Go scheduler with the load generator)")
	fs.StringVar(&o.zdgateBin, "zdgate", "", "use this zdgate binary instead of building ./cmd/zdgate")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout (response headers and body)")
	fs.BoolVar(&o.simulate, "simulate", false, "check docs/scaling.md's model instead of measuring speed: cost per event, session sizes, then -sessions visitors against a Redis-store zdgate, predicted vs counted IdP calls and Redis commands")
	fs.IntVar(&o.sim.sessions, "sessions", 5000, "-simulate: simulated visitors, each logged in once")
	fs.DurationVar(&o.sim.interval, "sim-interval", 10*time.Second, "-simulate: --recheck-interval of the simulated zdgate (a short one compresses time)")
	fs.DurationVar(&o.sim.gap, "sim-gap", 10*time.Second, "-simulate: mean gap between one visitor's requests (exponential)")
	fs.DurationVar(&o.sim.dur, "sim-duration", 60*time.Second, "-simulate: how long the visitors send requests, after logging in")
	fs.StringVar(&o.sim.redis, "redis", "", "-simulate: host:port of a redis-server to use (its INFO commandstats must count only zdgate); default: start one")
	fs.Float64Var(&o.sim.tolerance, "sim-tolerance", 0.10, "-simulate: how far a count may be from its prediction (0.10 = 10%)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./cmd/zdgate-load [flags]\n\nLoad-tests zdgate on 127.0.0.1 against a bare httputil.ReverseProxy in one run; with -simulate,\nchecks the scaling model of docs/scaling.md (IdP calls, Redis commands) on many sessions instead.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []error
	if o.duration <= 0 {
		errs = append(errs, errors.New("-duration: must be positive"))
	}
	if o.warmup < 0 || o.soak < 0 || o.soakWarmup < 0 {
		errs = append(errs, errors.New("-warmup, -soak, -soak-warmup: must not be negative"))
	}
	if o.conns < 1 || o.conns > 4096 {
		errs = append(errs, errors.New("-conns: must be 1..4096"))
	}
	if o.rounds < 1 || o.rounds > 100 {
		errs = append(errs, errors.New("-rounds: must be 1..100"))
	}
	if o.maxRequests < 1 {
		errs = append(errs, errors.New("-max-requests: must be positive"))
	}
	if o.timeout <= 0 {
		errs = append(errs, errors.New("-timeout: must be positive"))
	}
	if o.bare != "process" && o.bare != "inproc" {
		errs = append(errs, fmt.Errorf("-bare: want process or inproc, got %q", o.bare))
	}
	for _, k := range strings.Split(*list, ",") {
		k = strings.TrimSpace(k)
		switch {
		case k == "":
		case !slices.Contains(scenarioKeys, k):
			errs = append(errs, fmt.Errorf("-scenarios: unknown scenario %q (want some of %s)", k, strings.Join(scenarioKeys, ",")))
		case !slices.Contains(o.scenarios, k):
			o.scenarios = append(o.scenarios, k)
		}
	}
	o.sim.loginConns, o.sim.reqConn, o.sim.maxRequests, o.sim.timeout, o.sim.zdgateBin = 32, o.conns, o.maxRequests, o.timeout, o.zdgateBin
	if o.simulate {
		if o.sim.sessions < 1 || o.sim.sessions > 100_000 {
			errs = append(errs, errors.New("-sessions: must be 1..100000"))
		}
		if o.sim.interval <= 0 || o.sim.gap <= 0 || o.sim.dur <= 0 {
			errs = append(errs, errors.New("-sim-interval, -sim-gap, -sim-duration: must be positive"))
		}
		if o.sim.tolerance <= 0 || o.sim.tolerance >= 1 {
			errs = append(errs, errors.New("-sim-tolerance: must be between 0 and 1"))
		}
	}
	if len(o.scenarios) == 0 && o.soak == 0 && !o.simulate {
		errs = append(errs, errors.New("-scenarios: nothing to run (and -soak 0)"))
	}
	return o, errors.Join(errs...)
}

// run is main without the process, so that a mistake in one phase still cleans up every other.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		for _, l := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "zdgate-load: "+l)
		}
		return 2
	}
	if o.simulate {
		// Logins run at some hundreds a second even on a busy machine; the rest is bounded by
		// -sim-duration and the per-request timeout.
		ctx, cancel := context.WithTimeout(ctx, 10*time.Minute+time.Duration(o.sim.sessions)*20*time.Millisecond+o.sim.dur+2*o.timeout)
		defer cancel()
		return runSimulation(ctx, o.sim, stdout, stderr)
	}
	// Every phase has its own deadline; this one bounds the whole run whatever happens.
	perScenario := o.warmup + o.duration + 2*o.timeout
	budget := 10*time.Minute + time.Duration(len(o.scenarios)*o.rounds)*perScenario + o.soak + o.soakWarmup
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	began := time.Now()
	st := &stack{out: stdout, opts: o, recheck: max(10*time.Minute, 2*budget)}
	defer st.close()
	if err := st.start(ctx); err != nil {
		if ctx.Err() != nil {
			return stopped(ctx, stderr)
		}
		fmt.Fprintf(stderr, "zdgate-load: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, st.banner())
	fmt.Fprintf(stdout, "set up in %v; machine load average before the run: %s\n\n", time.Since(began).Round(100*time.Millisecond), loadAvg())

	failed := false
	results := map[string]*result{}
	var order []*result
	scenarios := map[string]*scenario{}
	for _, key := range o.scenarios {
		scenarios[key] = st.scenario(key)
	}
	for round := range o.rounds {
		for _, key := range o.scenarios {
			if prev := results[key]; prev != nil && (prev.skip != "" || prev.err != nil) {
				continue // said once is enough
			}
			r := runScenario(ctx, scenarios[key], o, stdout, st.pids(), round)
			if ctx.Err() != nil {
				return stopped(ctx, stderr)
			}
			if prev := results[key]; prev != nil {
				prev.add(r)
				continue
			}
			results[key] = r
			order = append(order, r)
		}
	}
	if len(order) > 0 {
		fmt.Fprintln(stdout)
		fmt.Fprint(stdout, formatTable(tableRows(order, results["bare"])))
		fmt.Fprintln(stdout)
		fmt.Fprint(stdout, noteCPU(o))
		if w := noiseWarning(order, o.rounds); w != "" {
			fmt.Fprint(stdout, w)
		}
		fmt.Fprintln(stdout)
		checks := targets(results, o.conns)
		fmt.Fprint(stdout, formatTargets(checks))
		for _, r := range order {
			if r.failed() {
				failed = true
				fmt.Fprintf(stdout, "ERROR: %s: %s\n", r.name, r.failure())
			}
		}
		if o.strict && missed(checks) {
			fmt.Fprintln(stdout, "-strict: a target was missed")
			failed = true
		}
	}

	if o.soak > 0 {
		fmt.Fprintln(stdout)
		rep, err := runSoak(ctx, st, o, stdout)
		if err != nil {
			fmt.Fprintf(stdout, "ERROR: soak: %v\n", err)
			failed = true
		} else {
			fmt.Fprint(stdout, rep.format())
			if rep.load.failed() {
				fmt.Fprintf(stdout, "ERROR: soak: %s\n", rep.load.failure())
				failed = true
			}
			if o.strict && !rep.met() {
				fmt.Fprintln(stdout, "-strict: the soak target was missed")
				failed = true
			}
		}
	}
	if ctx.Err() != nil {
		return stopped(ctx, stderr)
	}
	fmt.Fprintf(stdout, "\ndone in %v\n", time.Since(began).Round(100*time.Millisecond))
	if failed {
		return 1
	}
	return 0
}

// stopped reports an interrupted run: 130 for Ctrl-C (as a shell would), 1 for the overall deadline.
func stopped(ctx context.Context, stderr io.Writer) int {
	fmt.Fprintf(stderr, "zdgate-load: stopped: %v\n", context.Cause(ctx))
	if errors.Is(ctx.Err(), context.Canceled) {
		return 130
	}
	return 1
}

// noteCPU says why absolute numbers are low and what still compares.
func noteCPU(o *options) string {
	where := "its own process (a re-exec of this harness), like zdgate."
	if o.bare == "inproc" {
		where = "the harness, sharing the load generator's scheduler (-bare=process isolates it)."
	}
	return fmt.Sprintf(`Note: %d CPU(s), GOMAXPROCS=%d. The load generator, the upstream and the proxy under test
share these cores, so absolute req/s understate a real deployment; the ratios compare scenarios
of one run on one machine, and are what the targets use.
The bare proxy runs in %s
CPU/req: the proxy process's user+system CPU per measured request (/proc/<pid>/stat), which
contention inflates less than latency. Bare's CPU/req over zdgate's is the req/s ratio to expect
where the proxy alone is the bottleneck (here the harness's own share dilutes the difference).
other CPU: the machine's CPU taken by processes outside this test (and by the hypervisor) while
the scenario was measured.
`, runtime.NumCPU(), runtime.GOMAXPROCS(0), where)
}

// noiseLimit is the share of the machine's CPU that others may take before the numbers are suspect.
const noiseLimit = 0.05

// noiseWarning names the scenarios that ran while other processes took a noticeable share of the CPU.
func noiseWarning(rs []*result, rounds int) string {
	var noisy []string
	for _, r := range rs {
		if share, ok := r.otherShare(); ok && share > noiseLimit {
			noisy = append(noisy, fmt.Sprintf("%s %.0f%%", r.name, 100*share))
		}
	}
	if len(noisy) == 0 {
		return ""
	}
	advice := "rerun on a quiet machine, or with -rounds 3 to interleave"
	if rounds > 1 {
		advice = "rerun on a quiet machine"
	}
	return fmt.Sprintf("WARNING: other processes took more than %.0f%% of the CPU while measuring:\n  %s.\n"+
		"  Ratios from these rows are unreliable: %s.\n", 100*noiseLimit, strings.Join(noisy, ", "), advice)
}

// loadAvg is /proc/loadavg's 1-, 5- and 15-minute averages, or "unknown".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
