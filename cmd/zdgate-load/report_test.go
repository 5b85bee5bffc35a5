package main

import (
	"strings"
	"testing"
	"time"
)

func TestFmtDur(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.0µs"},
		{8500, "8.5µs"},
		{412 * time.Microsecond, "412µs"},
		{1234 * time.Microsecond, "1.23ms"},
		{18_440 * time.Microsecond, "18.4ms"},
		{1200 * time.Millisecond, "1.20s"},
		{-42 * time.Microsecond, "-42µs"},
	}
	for _, tt := range tests {
		if got := fmtDur(tt.d); got != tt.want {
			t.Errorf("fmtDur(%v) = %q; want %q", tt.d, got, tt.want)
		}
	}
	if got := fmtAdded(310 * time.Microsecond); got != "+310µs" {
		t.Errorf("fmtAdded(310µs) = %q; want +310µs", got)
	}
}

func TestFormatTable(t *testing.T) {
	got := formatTable([][]string{
		{"scenario", "req/s", "p99"},
		{"bare ReverseProxy", "10000", "1.20ms"},
		{"zdgate cookie", "9000", "1.45ms"},
		{"zdgate redis", "skipped: redis-server not installed"},
	})
	want := "" +
		"scenario           req/s     p99\n" +
		"bare ReverseProxy  10000  1.20ms\n" +
		"zdgate cookie       9000  1.45ms\n" +
		"zdgate redis       skipped: redis-server not installed\n"
	if got != want {
		t.Errorf("formatTable() =\n%s\nwant\n%s", got, want)
	}
}

// measuredResult is a result of n requests over one second, each taking d.
func measuredResult(key string, n int, d time.Duration) *result {
	l := &load{elapsed: time.Second, ok: uint64(n), attempts: uint64(n)}
	for range n {
		l.hist.record(d)
	}
	return &result{key: key, name: key, load: l, hasCPU: true, cpu: time.Duration(n) * 100 * time.Microsecond}
}

func TestTableRowsAndTargets(t *testing.T) {
	bare := measuredResult("bare", 1000, 2*time.Millisecond)
	cookie := measuredResult("cookie", 900, 2500*time.Microsecond)
	inject := measuredResult("inject", 800, 3*time.Millisecond)
	token := measuredResult("token", 600, time.Millisecond)
	redis := &result{key: "redis", name: "redis", skip: "redis-server not installed"}
	rows := tableRows([]*result{bare, cookie, redis, inject, token}, bare)

	if got, want := strings.Join(rows[2], "|"), "cookie|900|900|2.50ms|2.50ms|0.90|+500µs|100µs|—|0 (0.00%)"; got != want {
		t.Errorf("cookie row = %q; want %q", got, want)
	}
	if got, want := strings.Join(rows[1][5:7], "|"), "—|—"; got != want {
		t.Errorf("bare row ratio cells = %q; want %q (no ratio to itself)", got, want)
	}
	if got, want := strings.Join(rows[3], "|"), "redis|skipped: redis-server not installed"; got != want {
		t.Errorf("redis row = %q; want %q", got, want)
	}

	checks := targets(map[string]*result{"bare": bare, "cookie": cookie, "inject": inject, "token": token, "redis": redis}, 32)
	want := []struct {
		got string
		met bool
		na  bool
	}{
		{"0.90×", true, false},                    // cookie ≥ 0.90× bare
		{"", false, true},                         // redis skipped
		{"0.89×", false, false},                   // inject ≥ 0.95× cookie
		{"0.60×", false, false},                   // token ≥ 1.0× bare
		{"1.25× (2.50ms vs 2.00ms)", true, false}, // p99 ≤ 1.3× bare's
	}
	for i, w := range want {
		c := checks[i]
		if c.got != w.got || c.met != w.met || (c.na != "") != w.na {
			t.Errorf("target %q = got %q met %v n/a %q; want %q met %v n/a %v", c.what, c.got, c.met, c.na, w.got, w.met, w.na)
		}
	}
	if !missed(checks) {
		t.Error("missed() = false; want true")
	}
	out := formatTargets(checks)
	for _, line := range []string{"MISSED  /zendesk/token", "n/a     pass-through, Redis store", "met     pass-through, cookie store: req/s"} {
		if !strings.Contains(out, line) {
			t.Errorf("formatTargets() lacks %q:\n%s", line, out)
		}
	}
}
