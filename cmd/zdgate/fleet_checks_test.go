package main

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// refreshesBySub are the refresh grants the IdP honoured in [from, to), by subject.
func (f *fleet) refreshesBySub(from, to time.Time) map[string][]time.Time {
	out := map[string][]time.Time{}
	for _, r := range f.idp.Refreshes() {
		if !r.At.Before(from) && r.At.Before(to) {
			out[r.Subject] = append(out[r.Subject], r.At)
		}
	}
	return out
}

// checkAtMostOncePerInterval fails the test if any visitor was refreshed at the IdP twice within
// one re-check interval, which only happens when two replicas (or two requests) refresh the same
// session at once, the refresh lock's job. A session is confirmed after its refresh answers, so the
// next one is due a full interval after the IdP answered the last; 10ms absorb clock reads. It also
// wants at least one refresh per visitor, so that "at most" is not met by doing nothing, and
// returns the number of refreshes and the longest gap.
func (f *fleet) checkAtMostOncePerInterval(vs []*visitor, from, to time.Time) (total int, maxGap time.Duration) {
	f.t.Helper()
	by := f.refreshesBySub(from, to)
	for _, v := range vs {
		times := by[v.sub]
		if len(times) == 0 {
			f.t.Errorf("%s: no IdP refresh between %s and %s; want one per %v", v.sub, from.Format("15:04:05.000"), to.Format("15:04:05.000"), f.recheck)
		}
		total += len(times)
		for i := 1; i < len(times); i++ {
			gap := times[i].Sub(times[i-1])
			maxGap = max(maxGap, gap)
			if gap < f.recheck-10*time.Millisecond {
				f.t.Errorf("%s refreshed twice within %v (at %s and %s); want at most once per --recheck-interval=%v across the fleet",
					v.sub, gap, times[i-1].Format("15:04:05.000"), times[i].Format("15:04:05.000"), f.recheck)
			}
		}
	}
	return total, maxGap
}

// checkNoRefusedRefresh fails the test if the IdP refused a refresh token: with rotation, a
// refresh token presented twice (two replicas refreshing at once, or a refresh lost) answers
// invalid_grant, and the user is logged out.
func (f *fleet) checkNoRefusedRefresh() {
	f.t.Helper()
	if asked, honoured := f.idp.Count("token.refresh"), len(f.idp.Refreshes()); asked != honoured {
		f.t.Errorf("the IdP refused %d of %d refresh requests; want none (a rotated refresh token presented twice)", asked-honoured, asked)
	}
}

// burst has several requests of v in flight on every running replica at once, back to back, for d:
// whenever the session turns stale, replicas race to refresh it. Every answer must be a 200.
func (f *fleet) burst(v *visitor, d time.Duration) {
	f.t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := map[int]int{}
	end := time.Now().Add(d)
	for _, r := range f.replicas {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					code, out, err := v.token(r)
					if code != http.StatusOK || out || err != nil {
						mu.Lock()
						bad[code]++
						mu.Unlock()
					}
				}
			}()
		}
	}
	wg.Wait()
	if len(bad) > 0 {
		f.t.Errorf("%s: concurrent requests on every replica got %v (status: count); want only 200s", v.sub, bad)
	}
}

// checkBackchannelLogout ends v's session with a back-channel logout delivered to one replica
// and checks that another replica refuses it at once (401, cookie expired), and that other
// visitors are unaffected.
func (f *fleet) checkBackchannelLogout(v, bystander *visitor, to, then *replica) {
	f.t.Helper()
	var sid string
	for _, r := range f.idp.Refreshes() {
		if r.Subject == v.sub {
			sid = r.SID
		}
	}
	res, err := http.PostForm(to.url+"/oauth2/backchannel_logout", url.Values{"logout_token": {f.idp.LogoutToken(v.sub, sid, nil)}})
	if err != nil {
		f.t.Fatalf("back-channel logout on %s: %v", to.name, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		f.t.Fatalf("back-channel logout on %s = %d; want 200", to.name, res.StatusCode)
	}
	if code, out, _ := v.token(then); code != http.StatusUnauthorized || !out {
		f.t.Errorf("%s on %s after a back-channel logout on %s = %d (cookie expired: %v); want 401 and the cookie expired", v.sub, then.name, to.name, code, out)
	}
	if code, _, err := bystander.token(then); code != http.StatusOK || err != nil {
		f.t.Errorf("%s on %s after another user's logout = %d, %v; want 200", bystander.sub, then.name, code, err)
	}
}

// errorsCounted sums zdgate_http_errors_total{code=code} over the running replicas' /metrics:
// what the chart's alerts see.
func (f *fleet) errorsCounted(code string) float64 {
	f.t.Helper()
	var sum float64
	for _, r := range f.replicas {
		r.mu.Lock()
		dead := r.killed
		r.mu.Unlock()
		if dead {
			continue
		}
		res, err := http.Get(r.metrics)
		if err != nil {
			f.t.Fatalf("%s /metrics: %v", r.name, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			f.t.Fatalf("%s /metrics: %v", r.name, err)
		}
		// Text exposition format: name{labels} value, one series a line.
		for _, line := range strings.Split(string(body), "\n") {
			series, value, ok := strings.Cut(line, " ")
			if ok && strings.HasPrefix(series, "zdgate_http_errors_total{") && strings.Contains(series, `code="`+code+`"`) {
				v, err := strconv.ParseFloat(value, 64)
				if err != nil {
					f.t.Fatalf("%s /metrics: %q: %v", r.name, line, err)
				}
				sum += v
			}
		}
	}
	return sum
}
