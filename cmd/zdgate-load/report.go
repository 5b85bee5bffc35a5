package main

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// fmtDur prints a latency with three significant digits: 87µs, 412µs, 1.23ms, 18.4ms, 1.20s.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDur(-d)
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// fmtAdded prints a latency difference with its sign: +0.31ms, -42µs.
func fmtAdded(d time.Duration) string {
	if d >= 0 {
		return "+" + fmtDur(d)
	}
	return fmtDur(d)
}

var tableHeader = []string{"scenario", "requests", "req/s", "p50", "p99", "×bare", "p99 +bare", "CPU/req", "other CPU", "errors"}

// tableRows turns results into table cells (header first); ratios are to bare, when it was measured.
func tableRows(results []*result, bare *result) [][]string {
	rows := [][]string{tableHeader}
	for _, r := range results {
		switch {
		case r.skip != "":
			rows = append(rows, []string{r.name, "skipped: " + r.skip})
			continue
		case r.err != nil || r.load == nil:
			rows = append(rows, []string{r.name, "ERROR (see above)"})
			continue
		}
		l := r.load
		p99 := l.hist.quantile(0.99)
		ratio, added, cpu, other := "—", "—", "—", "—"
		if bare.measured() && r.measured() && r != bare {
			ratio = fmt.Sprintf("%.2f", l.rps()/bare.load.rps())
			added = fmtAdded(p99 - bare.load.hist.quantile(0.99))
		}
		if c, ok := r.cpuPerReq(); ok {
			cpu = fmtDur(c)
		}
		if share, ok := r.otherShare(); ok {
			other = fmt.Sprintf("%.0f%%", 100*share)
		}
		rows = append(rows, []string{
			r.name, fmt.Sprint(l.ok), fmt.Sprintf("%.0f", l.rps()), fmtDur(l.hist.quantile(0.50)), fmtDur(p99),
			ratio, added, cpu, other, fmt.Sprintf("%d (%.2f%%)", l.errors, 100*l.errRate()),
		})
	}
	return rows
}

// formatTable aligns rows in columns: the first left-aligned, the others right-aligned, two spaces
// apart. A row with fewer cells (skipped, error) lets its last cell run on.
func formatTable(rows [][]string) string {
	if len(rows) == 0 {
		return ""
	}
	n := len(rows[0])
	width := make([]int, n)
	for _, row := range rows {
		for i, c := range row {
			if i < n && (i == 0 || len(row) == n) { // a short row's free-form tail sets no width
				width[i] = max(width[i], utf8.RuneCountInString(c))
			}
		}
	}
	var b strings.Builder
	for _, row := range rows {
		var line strings.Builder
		for i, c := range row {
			switch {
			case i == 0:
				line.WriteString(c + strings.Repeat(" ", width[0]-utf8.RuneCountInString(c)))
			case len(row) < n:
				line.WriteString("  " + c)
			default:
				line.WriteString("  " + strings.Repeat(" ", max(width[i]-utf8.RuneCountInString(c), 0)) + c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	return b.String()
}

// check is one target and whether this run met it.
type check struct {
	what  string
	got   string
	met   bool
	na    string // why it could not be evaluated
	about string // a remark on how it was measured
}

// targets evaluates the performance targets of issue 13 on what was measured: zdgate runs with its
// defaults (info-level JSON access log, metrics on), the bare proxy with a transport sized for the
// load and no logging.
func targets(res map[string]*result, conns int) []check {
	ratio := func(what, num, den string, want float64) check {
		c := check{what: what}
		n, d := res[num], res[den]
		switch {
		case !n.measured():
			c.na = num + " not measured"
		case !d.measured():
			c.na = den + " not measured"
		default:
			x := n.load.rps() / d.load.rps()
			c.got, c.met = fmt.Sprintf("%.2f×", x), x >= want
		}
		return c
	}
	out := []check{
		ratio("pass-through, cookie store: req/s ≥ 0.90× bare", "cookie", "bare", 0.90),
		ratio("pass-through, Redis store:  req/s ≥ 0.60× bare", "redis", "bare", 0.60),
		ratio("injection: req/s ≥ 0.95× pass-through", "inject", "cookie", 0.95),
		ratio("/zendesk/token:             req/s ≥ 1.00× bare", "token", "bare", 1.00),
	}
	p99 := check{what: "pass-through, cookie store: p99 ≤ 1.3× bare's p99"}
	if c, b := res["cookie"], res["bare"]; c.measured() && b.measured() {
		x := float64(c.load.hist.quantile(0.99)) / float64(max(b.load.hist.quantile(0.99), 1))
		p99.got, p99.met = fmt.Sprintf("%.2f× (%s vs %s)", x, fmtDur(c.load.hist.quantile(0.99)), fmtDur(b.load.hist.quantile(0.99))), x <= 1.3
		if conns != 32 {
			p99.about = fmt.Sprintf("the target is for 32 connections; measured at %d", conns)
		}
	} else {
		p99.na = "cookie or bare not measured"
	}
	out = append(out, p99)
	if q := res["quiet"]; q.measured() {
		// Not a target: what the default access log costs, beside the defaults' figure.
		c := ratio("for comparison, access log off: req/s × bare", "quiet", "bare", 0)
		c.about = "informational"
		out = append(out, c)
	}
	return out
}

func missed(cs []check) bool {
	for _, c := range cs {
		if c.na == "" && !c.met {
			return true
		}
	}
	return false
}

func formatTargets(cs []check) string {
	var b strings.Builder
	b.WriteString("Targets:\n")
	for _, c := range cs {
		mark, got := "met   ", c.got
		switch {
		case c.na != "":
			mark, got = "n/a   ", c.na
		case !c.met:
			mark = "MISSED"
		}
		fmt.Fprintf(&b, "  %s  %-54s %s", mark, c.what, got)
		if c.about != "" {
			fmt.Fprintf(&b, "  (%s)", c.about)
		}
		b.WriteString("\n")
	}
	return b.String()
}
