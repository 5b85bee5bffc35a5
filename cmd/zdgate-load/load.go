package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target is one kind of request and a cheap check of its answer, run on every response.
type target struct {
	url    string
	header http.Header
	check  func(status int, body []byte) error
}

// loadSpec is one closed-loop run: conns workers, each with its own keep-alive connection and one
// request in flight, cycling through targets until warm-up plus duration have passed or the
// request cap is reached.
type loadSpec struct {
	targets          []target
	conns            int
	warmup, duration time.Duration
	maxRequests      int
	timeout          time.Duration
	// mark, if set, is called (from another goroutine) when measuring starts and when it ends, for
	// samples that must bracket the measured window (CPU time, memory).
	mark func(phase string)
}

// load is what a run measured. Latencies count only requests that started and finished inside the
// measured window and passed their check; errors and attempts count every phase.
type load struct {
	hist             histogram
	ok               uint64
	attempts, errors uint64
	errSamples       []string
	elapsed          time.Duration
	capped           bool
}

func (l *load) rps() float64 {
	if l.elapsed <= 0 {
		return 0
	}
	return float64(l.ok) / l.elapsed.Seconds()
}

func (l *load) errRate() float64 {
	if l.attempts == 0 {
		return 0
	}
	return float64(l.errors) / float64(l.attempts)
}

// merge adds another round's counts; the windows add up.
func (l *load) merge(x *load) {
	l.hist.merge(&x.hist)
	l.ok += x.ok
	l.attempts += x.attempts
	l.errors += x.errors
	l.elapsed += x.elapsed
	l.capped = l.capped || x.capped
	l.addSamples(x.errSamples)
}

// addSamples keeps up to three different error messages.
func (l *load) addSamples(msgs []string) {
	for _, m := range msgs {
		if len(l.errSamples) < 3 && !slices.Contains(l.errSamples, m) {
			l.errSamples = append(l.errSamples, m)
		}
	}
}

// maxErrRate is the share of failed requests above which a run is an error, not a measurement.
const maxErrRate = 0.001

func (l *load) failed() bool { return l.errRate() > maxErrRate || l.ok == 0 }

func (l *load) failure() string {
	if l.ok == 0 && l.errors == 0 {
		return "no request completed in the measured window"
	}
	s := fmt.Sprintf("%d of %d requests failed (%.2f%%, limit %.1f%%)", l.errors, l.attempts, 100*l.errRate(), 100*maxErrRate)
	for _, e := range l.errSamples {
		s += "\n    e.g. " + e
	}
	return s
}

// worker is one connection's loop state; nothing in it is shared while the run lasts.
type worker struct {
	hist             histogram
	ok               uint64
	attempts, errors uint64
	samples          []string
}

func runLoad(ctx context.Context, sp loadSpec) *load {
	start := time.Now()
	measure := start.Add(sp.warmup)
	end := measure.Add(sp.duration)
	// Bounds every request, including a body that stalls at the end of the window.
	wctx, cancel := context.WithDeadline(ctx, end.Add(sp.timeout))
	defer cancel()

	var total atomic.Int64
	var capOnce sync.Once
	var capAt time.Time
	hitCap := func() { capOnce.Do(func() { capAt = time.Now() }) }

	workers := make([]*worker, sp.conns)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{}
		workers[i] = w
		wg.Go(func() { w.run(wctx, sp, i, measure, end, &total, hitCap) })
	}
	var marks sync.WaitGroup
	if sp.mark != nil {
		marks.Go(func() {
			if sleepUntil(wctx, measure) {
				sp.mark("start")
			}
			if sleepUntil(wctx, end) {
				sp.mark("end")
			}
		})
	}
	wg.Wait()
	cancel() // ends the marker if the run stopped early (cap, Ctrl-C)
	marks.Wait()

	l := &load{elapsed: sp.duration}
	for _, w := range workers {
		l.hist.merge(&w.hist)
		l.ok += w.ok
		l.attempts += w.attempts
		l.errors += w.errors
		l.addSamples(w.samples)
	}
	if !capAt.IsZero() {
		l.capped = true
		l.elapsed = max(capAt.Sub(measure), 0)
	}
	return l
}

// sleepUntil waits for t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *worker) run(ctx context.Context, sp loadSpec, id int, measure, end time.Time, total *atomic.Int64, hitCap func()) {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxConnsPerHost:       1,
		MaxIdleConnsPerHost:   1,
		DisableCompression:    true, // the same bytes on every path; nothing here compresses anyway
		ResponseHeaderTimeout: sp.timeout,
		IdleConnTimeout:       time.Minute,
	}
	defer tr.CloseIdleConnections()
	reqs := make([]*http.Request, len(sp.targets))
	for i, t := range sp.targets {
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
		if err != nil {
			w.fail(err)
			return
		}
		r.Header = t.header.Clone()
		reqs[i] = r
	}
	buf := make([]byte, 0, 64<<10)
	for k := id; ; k++ { // start each worker at another target, so a mix is mixed at every instant
		t0 := time.Now()
		if !t0.Before(end) || ctx.Err() != nil {
			return
		}
		if total.Add(1) > int64(sp.maxRequests) {
			hitCap()
			return
		}
		i := k % len(reqs)
		res, err := tr.RoundTrip(reqs[i])
		status := 0
		if err == nil {
			status = res.StatusCode
			buf, err = readBody(res.Body, buf[:0], 4<<20)
			res.Body.Close()
		}
		t1 := time.Now()
		if err == nil {
			err = sp.targets[i].check(status, buf)
		}
		if err != nil && errors.Is(ctx.Err(), context.Canceled) {
			return // Ctrl-C: a request cut off now is not the proxy's failure
		}
		w.attempts++
		if err != nil {
			w.fail(err)
			if status == 0 {
				time.Sleep(10 * time.Millisecond) // connection refused or reset: do not spin
			}
			continue
		}
		if !t0.Before(measure) && !t1.After(end) {
			w.hist.record(t1.Sub(t0))
			w.ok++
		}
	}
}

func (w *worker) fail(err error) {
	w.errors++
	if msg := err.Error(); len(w.samples) < 3 && !slices.Contains(w.samples, msg) {
		w.samples = append(w.samples, msg)
	}
}

var errBodyTooLarge = errors.New("response body over the limit")

// readBody reads r into buf, growing it only when a body is larger than any before.
func readBody(r io.Reader, buf []byte, limit int) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= limit {
				return buf, errBodyTooLarge
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
