package proxy

import (
	"errors"
	"testing"
	"time"

	"github.com/zdgate/zdgate/proxy/session"
)

// TestDecide is the freshness rule and the use of a replica's recent re-checks, as a table.
func TestDecide(t *testing.T) {
	const interval = time.Minute
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *session.Session { return &session.Session{ID: "s1", ConfirmedAt: t0.Add(d)} }
	cookie := at(0)
	for _, tc := range []struct {
		name    string
		now     time.Duration // since the cookie's confirmation
		recent  *checkResult  // what this replica re-checked last, stored at the cookie's time + now
		want    verdict
		base    *session.Session // recheckNow: the state re-checked from
		wantRes bool             // useShared: the recent result is the answer
	}{
		{name: "fresh", now: interval - time.Millisecond, want: useCookie},
		{name: "due at the interval exactly", now: interval, want: recheckNow, base: cookie},
		{name: "due, nothing known", now: 2 * interval, want: recheckNow, base: cookie},
		{name: "due, a newer confirmation still fresh", now: 2 * interval,
			recent: &checkResult{outcome: confirmed, s: at(2*interval - time.Second)}, want: useShared, wantRes: true},
		{name: "due, a newer confirmation gone stale: re-check from it, not from the cookie", now: 3 * interval,
			recent: &checkResult{outcome: confirmed, s: at(interval)}, want: recheckNow, base: at(interval)},
		{name: "due, an older confirmation: re-check from the cookie", now: 2 * interval,
			recent: &checkResult{outcome: confirmed, s: at(-interval)}, want: recheckNow, base: cookie},
		{name: "due, the session ended: final", now: 2 * interval,
			recent: endedBy(errors.New("revoked")), want: useShared, wantRes: true},
		{name: "due, the last re-check failed: try again", now: 2 * interval,
			recent: failedBy(errors.New("idp down")), want: recheckNow, base: cookie},
		{name: "fresh cookie wins over an ended result", now: time.Second,
			recent: endedBy(errors.New("revoked")), want: useCookie},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Proxy{fresh: freshness(interval), recent: newRecentChecks(10, time.Hour)}
			now := t0.Add(tc.now)
			if tc.recent != nil {
				p.recent.put("s1", tc.recent, now)
			}
			d := p.decide(cookie, now)
			if d.verdict != tc.want {
				t.Fatalf("decide() verdict = %v; want %v", d.verdict, tc.want)
			}
			if tc.wantRes && d.shared != tc.recent {
				t.Errorf("decide() shared = %+v; want the recent result", d.shared)
			}
			if tc.base != nil && (d.base == nil || !d.base.ConfirmedAt.Equal(tc.base.ConfirmedAt)) {
				t.Errorf("decide() base = %v; want the state confirmed at %v", d.base, tc.base.ConfirmedAt)
			}
		})
	}
}
