package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"
)

// maxRSSGrowth is the soak target: resident memory may grow less than this from the first sample
// (after warm-up) to the last (still under the same load).
const maxRSSGrowth = 0.10

// sample is the zdgate process's memory and goroutines at one moment.
type sample struct {
	label      string
	at         time.Duration // since the measured window started
	rss        int64
	heap       float64 // go_memstats_heap_inuse_bytes
	goroutines float64 // go_goroutines
	err        error
}

type soakReport struct {
	name     string
	pid      int
	d        time.Duration
	conns    int
	load     *load
	samples  []sample // the first after warm-up, the last at the end, still under load
	idle     sample   // after the load stopped and its connections closed
	interval time.Duration
	cpu0     cpuSnap // the machine's CPU at the start and end of the measured window
	cpu1     cpuSnap
}

func takeSample(ctx context.Context, g *gate, label string, at time.Duration) sample {
	s := sample{label: label, at: at}
	var err1, err2, err3 error
	s.rss, err1 = rssBytes(g.p.pid())
	s.goroutines, err2 = scrapeMetric(ctx, g.metricsURL, "go_goroutines")
	s.heap, err3 = scrapeMetric(ctx, g.metricsURL, "go_memstats_heap_inuse_bytes")
	s.err = errors.Join(err1, err2, err3)
	return s
}

// runSoak drives the injecting cookie-store instance with a mix of pages and token requests, and
// samples its RSS (from /proc) and goroutines (from its /metrics) along the way.
func runSoak(ctx context.Context, st *stack, o *options, out io.Writer) (*soakReport, error) {
	g := st.gates["inject"]
	if g == nil || g.err != nil {
		return nil, errors.New("the injecting zdgate instance is not running")
	}
	h := func(extra ...string) http.Header {
		hd := http.Header{"Cookie": {g.cookie}}
		for i := 0; i+1 < len(extra); i += 2 {
			hd.Set(extra[i], extra[i+1])
		}
		return hd
	}
	sc := &scenario{name: "soak", targets: []target{
		{url: g.url + "/page", header: h("Accept", "text/html"), check: checkInjected},
		{url: g.url + "/zendesk/token", header: h("Sec-Fetch-Site", "same-origin"), check: checkToken},
	}}
	if err := preflight(ctx, sc); err != nil {
		return nil, err
	}
	rep := &soakReport{name: g.name, pid: g.p.pid(), d: o.soak, conns: o.conns,
		interval: max(10*time.Second, (o.soak / 6).Round(time.Second))}
	fmt.Fprintf(out, "Soak: zdgate %s (pid %d) for %v after %v warm-up, %d connections, GET /page and /zendesk/token alternating\n",
		g.name, rep.pid, o.soak, o.soakWarmup, o.conns)

	var mu sync.Mutex
	var started time.Time
	stopTicks := make(chan struct{})
	var ticks sync.WaitGroup
	record := func(label string) {
		mu.Lock()
		at := time.Since(started)
		if label == "start" {
			at = 0
		}
		mu.Unlock()
		s := takeSample(ctx, g, label, at)
		mu.Lock()
		rep.samples = append(rep.samples, s)
		mu.Unlock()
		fmt.Fprintf(out, "  %-6s t=%-5v %s\n", label, at.Round(time.Second), s.describe())
	}
	sp := loadSpec{
		targets: sc.targets, conns: o.conns, warmup: o.soakWarmup, duration: o.soak,
		maxRequests: max(o.maxRequests, int(o.soak.Seconds())*200_000), timeout: o.timeout,
		mark: func(phase string) {
			if phase == "start" {
				rep.cpu0 = takeCPU(st.pids())
				mu.Lock()
				started = time.Now()
				mu.Unlock()
				record("start")
				ticks.Go(func() {
					t := time.NewTicker(rep.interval)
					defer t.Stop()
					for {
						select {
						case <-t.C:
							if time.Until(started.Add(o.soak)) > rep.interval/2 {
								record("")
							}
						case <-stopTicks:
							return
						}
					}
				})
				return
			}
			rep.cpu1 = takeCPU(st.pids())
			close(stopTicks)
			ticks.Wait()
			record("end")
		},
	}
	rep.load = runLoad(ctx, sp)
	select {
	case <-stopTicks:
	default:
		close(stopTicks) // the run ended before its end mark (Ctrl-C, cap)
		ticks.Wait()
	}
	if len(rep.samples) < 2 || rep.samples[len(rep.samples)-1].label != "end" {
		return nil, fmt.Errorf("the soak ended early (%v)", context.Cause(ctx))
	}
	// The workers have closed their connections: zdgate's per-connection goroutines should be gone.
	time.Sleep(2 * time.Second)
	rep.idle = takeSample(ctx, g, "idle", 0)
	return rep, ctx.Err()
}

func (s sample) describe() string {
	if s.err != nil {
		return "sample failed: " + s.err.Error()
	}
	return fmt.Sprintf("RSS %s  heap in use %s  goroutines %.0f", fmtBytes(float64(s.rss)), fmtBytes(s.heap), s.goroutines)
}

func fmtBytes(b float64) string {
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}

func (r *soakReport) first() sample { return r.samples[0] }
func (r *soakReport) last() sample  { return r.samples[len(r.samples)-1] }

func (r *soakReport) growth() float64 {
	a, b := r.first(), r.last()
	if a.rss == 0 {
		return 0
	}
	return float64(b.rss-a.rss) / float64(a.rss)
}

func (r *soakReport) met() bool {
	return r.first().err == nil && r.last().err == nil && r.growth() < maxRSSGrowth
}

func (r *soakReport) format() string {
	var b strings.Builder
	l := r.load
	fmt.Fprintf(&b, "  load   %d requests, %.0f req/s, p50 %s, p99 %s, errors %d/%d\n", l.ok, l.rps(),
		fmtDur(l.hist.quantile(0.5)), fmtDur(l.hist.quantile(0.99)), l.errors, l.attempts)
	if other, capacity, ok := otherCPU(r.cpu0, r.cpu1, runtime.NumCPU()); ok && capacity > 0 {
		fmt.Fprintf(&b, "  other CPU: processes outside the test took %.0f%% of the machine during the soak\n", 100*float64(other)/float64(capacity))
	}
	a, z := r.first(), r.last()
	if a.err != nil || z.err != nil {
		fmt.Fprintf(&b, "  MISSED  RSS growth < %.0f%%: a sample failed\n", 100*maxRSSGrowth)
		return b.String()
	}
	fmt.Fprintf(&b, "  growth start→end under load: RSS %s → %s (%+.1f%%), heap in use %s → %s, goroutines %.0f → %.0f (%+.0f)\n",
		fmtBytes(float64(a.rss)), fmtBytes(float64(z.rss)), 100*r.growth(), fmtBytes(a.heap), fmtBytes(z.heap),
		a.goroutines, z.goroutines, z.goroutines-a.goroutines)
	if r.idle.err == nil {
		fmt.Fprintf(&b, "  idle 2s after the load stopped: goroutines %.0f (the upstream keep-alive pool stays until its idle timeout), RSS %s\n",
			r.idle.goroutines, fmtBytes(float64(r.idle.rss)))
	}
	mark := "met   "
	if !r.met() {
		mark = "MISSED"
	}
	fmt.Fprintf(&b, "Targets:\n  %s  %-54s %+.1f%%\n", mark, fmt.Sprintf("soak: RSS growth < %.0f%% over %v", 100*maxRSSGrowth, r.d), 100*r.growth())
	return b.String()
}
