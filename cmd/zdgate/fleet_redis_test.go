package main

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zdgate/zdgate/internal/redistest"
)

// Bounds for the failover tests: loose, so that a loaded machine never fails them, yet far below
// what a client stuck on a dead node would take (go-redis's cluster reload interval is 60s).
const (
	failoverBound  = 20 * time.Second // from the kill to the last 503
	recoveredSpan  = 2 * time.Second  // only 200s for this long counts as recovered
	fleetRecheck   = time.Second      // --recheck-interval: every session refreshes about once a second
	fleetVisitors  = 12
	beforeKillSpan = 1500 * time.Millisecond
)

// redisFailover is one Redis deployment under test: how to kill its primary and how to tell it
// has recovered (returning how long that took from the kill).
type redisFailover struct {
	name      string
	kill      func()
	recovered func() time.Duration
}

// runRedisFailover logs visitors in on two replicas, keeps them busy, kills the Redis primary
// under that load, and checks the promises of issue 14: only 503s while the failover runs, for a
// bounded and printed time; no panic; recovery; the sessions made before the kill still open;
// and, after the failover, the refresh lock and back-channel logout still working.
func runRedisFailover(t *testing.T, f *fleet, d redisFailover) {
	var vs []*visitor
	for i := range fleetVisitors {
		vs = append(vs, f.login(f.replicas[i%len(f.replicas)], fleetUser(i).Subject))
	}
	f.idp.ResetCounts()
	l := f.startLoad(vs)
	// Sessions are more than a second old, and replicated, before the kill: SPEC promises nothing
	// for a login that the primary took and died with before its replica had it.
	l.waitAllOK(t, beforeKillSpan, 15*time.Second)
	// The kill lands between two rounds of refreshes. A refresh in flight when the primary dies can
	// be lost with it: the IdP has already rotated the refresh token, but the rotated one was never
	// replicated, so the promoted replica holds a spent token and the next refresh is refused (a
	// logout, unless the IdP grants a reuse grace period; docs/operations.md). Redis's asynchronous
	// replication makes that window inherent; what this test holds zdgate to is everything else.
	f.betweenRefreshRounds(vs, 15*time.Second)
	before := count(l.since(time.Time{}))

	killedAt := time.Now()
	d.kill()
	promoted := d.recovered()
	calm := l.waitAllOK(t, recoveredSpan, 30*time.Second)
	outs := l.finish()
	loadEnd := time.Now()
	var after []outcome
	for _, o := range outs {
		if !o.at.Before(killedAt) {
			after = append(after, o)
		}
	}
	c := count(after)
	window := time.Duration(0)
	if !c.lastBad.IsZero() {
		window = c.lastBad.Sub(killedAt)
	}
	t.Logf("%s: before the kill %v", d.name, before)
	t.Logf("%s: primary killed (SIGKILL); replica serving %v later; 503s until %v after the kill (first %v after); %v",
		d.name, promoted.Round(time.Millisecond), window.Round(time.Millisecond), firstBadAfter(c, killedAt), c)
	checkOnlyUnavailable(t, d.name+" failover", c, after)
	if before.ok != before.total {
		t.Errorf("%s: before the kill: %v; want only 200s", d.name, before)
	}
	if window > failoverBound {
		t.Errorf("%s: 503s for %v after the kill; want under %v", d.name, window, failoverBound)
	}
	f.checkNoPanic()
	f.checkEveryoneIn(vs)
	// The 503s carry the code the chart's ZdgateRedisUnavailable alert counts.
	if n := f.errorsCounted("session_store_unavailable"); n == 0 && c.unavailable > 0 {
		t.Errorf("%s: %d 503s, but zdgate_http_errors_total{code=session_store_unavailable} is 0", d.name, c.unavailable)
	} else {
		t.Logf("%s: zdgate_http_errors_total{code=\"session_store_unavailable\"} = %v across the replicas", d.name, n)
	}

	// The refresh lock after the failover: sessions kept refreshing, never twice in an interval
	// across both replicas, even with requests racing on both, and no refresh token was refused.
	total, maxGap := f.checkAtMostOncePerInterval(vs, calm, loadEnd)
	burstFrom := time.Now()
	for _, v := range vs[:3] {
		f.burst(v, fleetRecheck+fleetRecheck/2)
	}
	burst, _ := f.checkAtMostOncePerInterval(vs[:3], burstFrom, time.Now())
	f.checkNoRefusedRefresh()
	t.Logf("%s: after the failover, %d IdP refreshes for %d sessions in %v of load (longest gap %v, --recheck-interval=%v), "+
		"%d more under racing requests on both replicas; none refused", d.name, total, len(vs), loadEnd.Sub(calm).Round(time.Millisecond),
		maxGap.Round(time.Millisecond), f.recheck, burst)

	f.checkBackchannelLogout(vs[0], vs[1], f.replicas[1], f.replicas[0])
}

func firstBadAfter(c tally, from time.Time) time.Duration {
	if c.firstBad.IsZero() {
		return 0
	}
	return c.firstBad.Sub(from).Round(time.Millisecond)
}

func TestFleetRedisSentinelFailover(t *testing.T) {
	d := redistest.StartSentinel(t, redistest.SentinelOptions{})
	f := startFleet(t, 2, fleetVisitors, d.URL(), fleetRecheck)
	var killedAt time.Time
	runRedisFailover(t, f, redisFailover{
		name: "sentinel",
		kill: func() { killedAt = time.Now(); d.Primary.Stop() },
		recovered: func() time.Duration {
			d.WaitMaster(d.Replica, 30*time.Second)
			return time.Since(killedAt)
		},
	})
}

func TestFleetRedisClusterFailover(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterOptions{})
	f := startFleet(t, 2, fleetVisitors, cl.URL(), fleetRecheck)
	// 48 sessions: the chance that one of three primaries gets none by luck is 3·(2/3)^48, about 1e-8.
	checkSessionsSpread(t, cl, f, 48)
	var killedAt time.Time
	runRedisFailover(t, f, redisFailover{
		name: "cluster",
		kill: func() { killedAt = time.Now(); cl.Masters()[0].Stop() },
		recovered: func() time.Duration {
			cl.WaitHealthy(30 * time.Second)
			return time.Since(killedAt)
		},
	})
}

// checkSessionsSpread logs in n sessions of the fleet's users (besides those runRedisFailover logs
// in later) and counts the session keys on each primary: every primary holds some.
func checkSessionsSpread(t *testing.T, cl *redistest.Cluster, f *fleet, n int) {
	t.Helper()
	for i := range n {
		f.login(f.replicas[i%len(f.replicas)], fleetUser(i%fleetVisitors).Subject)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range cl.Masters() {
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		keys, err := c.Keys(ctx, "zdgate:s:*").Result()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("cluster: primary %s holds %d of %d session keys", m.Addr(), len(keys), n)
		if len(keys) == 0 {
			t.Errorf("primary %s holds no session key; want the sessions spread over every primary", m.Addr())
		}
	}
}
