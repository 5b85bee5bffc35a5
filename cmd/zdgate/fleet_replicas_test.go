package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/zdgate/zdgate/internal/redistest"
)

// TestFleetReplicaKilledMidLoad runs three zdgate processes on one Redis while every visitor's
// requests go round the three in turn, SIGKILLs one of them mid-load, and counts at the IdP:
// no session lost, no user logged out, and exactly one refresh per session per re-check
// interval across the fleet, before and after the kill.
//
// The kill comes between two rounds of refreshes (every session refreshed recently, none due),
// when a dead replica can only take plain requests with it. A replica killed in the middle of a
// refresh is another story, told in docs/operations.md: with an IdP that rotates refresh tokens
// strictly, a refresh whose answer dies with the replica spends the session's refresh token, and
// the session ends at its next refresh; the refresh lock it held blocks the session until it
// expires.
func TestFleetReplicaKilledMidLoad(t *testing.T) {
	const (
		replicas = 3
		visitors = 18
		recheck  = 2 * time.Second
		rounds   = 3 // refresh rounds under load after the kill
	)
	rs := redistest.Start(t)
	f := startFleet(t, replicas, visitors, rs.URL(), recheck)
	var vs []*visitor
	for i := range visitors {
		vs = append(vs, f.login(f.replicas[i%replicas], fleetUser(i).Subject))
	}
	f.idp.ResetCounts()
	l := f.startLoad(vs)
	victim := f.replicas[1]
	killedAt := f.betweenRefreshRounds(vs, 30*time.Second)
	victim.kill()
	// The processes keep real time, so the load runs for real re-check intervals.
	time.Sleep(rounds * recheck)
	outs := l.finish()
	end := time.Now()

	var before, after []outcome
	for _, o := range outs {
		if o.at.Before(killedAt) {
			before = append(before, o)
		} else {
			after = append(after, o)
		}
	}
	cb, ca := count(before), count(after)
	t.Logf("3 replicas, %d visitors: before the kill %v", visitors, cb)
	t.Logf("after %s was killed (SIGKILL): %v", victim.name, ca)
	for _, c := range []tally{cb, ca} {
		if c.ok != c.total {
			checkOnlyUnavailable(t, "replica killed", c, outs)
			t.Errorf("%v; want every request answered 200 by a live replica", c)
		}
	}
	if ca.connErrs == 0 {
		t.Errorf("no request found %s dead; want the load to have reached it", victim.name)
	}
	f.checkNoPanic()
	f.checkEveryoneIn(vs)

	total, maxGap := f.checkAtMostOncePerInterval(vs, l.started, end)
	f.checkNoRefusedRefresh()
	// At least once per interval too: a session in use is refreshed as soon as it is due, so no gap
	// exceeds the interval by more than a request period and a slow answer or two.
	if slack := time.Second; maxGap > recheck+slack {
		t.Errorf("a session went %v between IdP refreshes; want about --recheck-interval=%v (at most %v more)", maxGap, recheck, slack)
	}
	ran := end.Sub(l.started)
	t.Logf("IdP refreshes across the fleet: %d for %d sessions over %v of load at --recheck-interval=%v "+
		"(one per session per interval: about %d); longest gap %v; refused %d",
		total, visitors, ran.Round(time.Millisecond), recheck, visitors*int(ran/recheck), maxGap.Round(time.Millisecond),
		f.idp.Count("token.refresh")-len(f.idp.Refreshes()))
}

// betweenRefreshRounds waits (bounded by within) until every visitor has been refreshed at the
// IdP since the load began, none in the last 150ms, and none is due within the next 300ms, so no
// refresh can be in flight, and returns that moment.
func (f *fleet) betweenRefreshRounds(vs []*visitor, within time.Duration) time.Time {
	f.t.Helper()
	const settled, margin = 150 * time.Millisecond, 300 * time.Millisecond
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		now := time.Now()
		by := f.refreshesBySub(time.Time{}, now)
		quiet := true
		for _, v := range vs {
			times := by[v.sub]
			if len(times) == 0 {
				quiet = false
				break
			}
			if age := now.Sub(times[len(times)-1]); age < settled || age > f.recheck-margin {
				quiet = false
				break
			}
		}
		if quiet {
			return now
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("no moment between two rounds of refreshes within %v", within)
	return time.Time{}
}

// refreshLockTTL is the TTL proxy/recheck.go gives a session's refresh lock in Redis with the
// fleet's settings: the IdP client's 10 s timeout plus three Redis round trips of 1 s (take the
// lock, load, save).
const refreshLockTTL = 13 * time.Second

// TestFleetReplicaKilledDuringRefresh kills a replica while its refresh of a session waits at the
// IdP, holding the session's refresh lock. The session must survive it: no 401, no logout, and a
// token again once the orphaned lock expires. The IdP saw the refresh request but never answered,
// so the refresh token was not spent. It prints how long the session stalled: that is the lock's
// TTL, during which the session's requests on the other replicas answer 503 after a short wait
// for the lock, rather than hang.
func TestFleetReplicaKilledDuringRefresh(t *testing.T) {
	const recheck = time.Second
	rs := redistest.Start(t)
	f := startFleet(t, 2, 1, rs.URL(), recheck)
	a, b := f.replicas[0], f.replicas[1]
	v := f.login(a, fleetUser(0).Subject)
	f.idp.ResetCounts()

	// Wait (bounded) until a request on A refreshes the session, and hold that refresh at the IdP.
	f.idp.SetDelay(time.Hour)
	asked := make(chan struct{})
	go func() {
		defer close(asked)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && f.idp.Count("token.refresh") == 0; {
			v.c.Get(a.url + "/zendesk/token") // answered from the session until it is due, then it hangs
			time.Sleep(100 * time.Millisecond)
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for f.idp.Count("token.refresh") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("replica A never refreshed the session")
		}
		time.Sleep(10 * time.Millisecond)
	}
	killedAt := time.Now()
	a.kill()
	f.idp.SetDelay(0)
	<-asked

	// On B the session is due too, and its lock is held by a dead process.
	short := &http.Client{Jar: v.c.Jar, Timeout: 5 * time.Second, CheckRedirect: v.c.CheckRedirect}
	w := &visitor{sub: v.sub, c: short}
	var hung, unavailable int
	var recovered time.Duration
	for time.Since(killedAt) < refreshLockTTL+15*time.Second {
		code, out, err := w.token(b)
		switch {
		case out || code == http.StatusUnauthorized:
			t.Fatalf("%s after the kill = %d (cookie expired: %v); want the session to survive a replica dying mid-refresh", b.name, code, out)
		case err != nil && code == 0:
			hung++
		case err != nil:
			t.Fatalf("%s after the kill: %v", b.name, err)
		case code == http.StatusServiceUnavailable:
			unavailable++
		case code == http.StatusOK:
			recovered = time.Since(killedAt)
		default:
			t.Fatalf("%s after the kill = %d; want 200 or 503", b.name, code)
		}
		if recovered > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if recovered == 0 {
		t.Fatalf("no token on %s %v after A died mid-refresh (%d requests hung, %d answered 503)", b.name, time.Since(killedAt), hung, unavailable)
	}
	if hung > 0 || unavailable == 0 {
		t.Errorf("while the dead replica's lock lived: %d requests got no answer within 5s, %d a 503; want every one answered 503 at once", hung, unavailable)
	}
	if recovered > refreshLockTTL+5*time.Second {
		t.Errorf("token again %v after the kill; want about the lock TTL (%v)", recovered.Round(time.Millisecond), refreshLockTTL)
	}
	// Two refresh requests reached the IdP: A's, which it never answered, and B's, honoured with
	// the same refresh token.
	if asked, honoured := f.idp.Count("token.refresh"), len(f.idp.Refreshes()); asked != 2 || honoured != 1 {
		t.Errorf("IdP refresh requests = %d, honoured = %d; want A's unanswered one and B's honoured", asked, honoured)
	}
	f.checkNoPanic()
	t.Logf("replica killed while its refresh waited at the IdP: the session answered again on %s %v later "+
		"(refresh lock TTL %v); meanwhile %d requests got no answer within 5s and %d a 503 after the lock wait; no 401, no logout",
		b.name, recovered.Round(time.Millisecond), refreshLockTTL, hung, unavailable)
}
