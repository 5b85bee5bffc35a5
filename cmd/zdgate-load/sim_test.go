package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zdgate/zdgate/internal/redistest"
)

// TestSimulationShort is the simulation mode in short form, so CI keeps docs/scaling.md honest: a
// real zdgate (built from this tree) with --session-store=redis on a real redis-server, the test
// IdP, 150 visitors for 4 compressed intervals. Each event's cost must equal the model exactly,
// and every IdP and Redis count of the run must be within 10% of the model's prediction.
func TestSimulationShort(t *testing.T) {
	rs := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out strings.Builder
	rep, err := simulate(ctx, simOptions{
		sessions: 150, interval: time.Second, gap: 500 * time.Millisecond, dur: 4 * time.Second,
		redis: rs.Addr(), tolerance: 0.10, loginConns: 16, reqConn: 32, maxRequests: 50_000, timeout: 10 * time.Second,
	}, &out)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out.String())
	}
	t.Log(rep.format())
	if len(rep.mismatches) > 0 {
		t.Errorf("the cost of an event differs from model.go (update it and docs/scaling.md together): %q", rep.mismatches)
	}
	if rep.errors > 0 {
		t.Errorf("%d requests failed; first: %s", rep.errors, rep.firstError)
	}
	for _, c := range append(rep.logins, rep.steady...) {
		if !c.within(rep.tolerance) {
			t.Errorf("%s: counted %.0f, predicted %.0f (ratio %.3f); want within %.0f%%", c.what, c.counted, c.predicted, c.ratio(), 100*rep.tolerance)
		}
	}
	// The run must be big enough to prove something: re-checks in every interval.
	if rep.rechecks < 150*2 {
		t.Errorf("only %d re-checks were due; the run is too short to check the model", rep.rechecks)
	}
}

func TestCompareRatios(t *testing.T) {
	rows := compare("Redis", cost{"get": 100, "set": 10}, cost{"get": 105, "set": 12, "del": 1})
	want := map[string]bool{"Redis del": false, "Redis get": true, "Redis set": false, "Redis total": true}
	for _, r := range rows {
		if got := r.within(0.10); got != want[r.what] {
			t.Errorf("%s within 10%% = %v; want %v (ratio %.3f)", r.what, got, want[r.what], r.ratio())
		}
	}
	if len(rows) != len(want) {
		t.Errorf("compare() = %d rows; want %d", len(rows), len(want))
	}
}
