package proxy

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/zdgate/zdgate/internal/redistest"
	"github.com/zdgate/zdgate/oidc/oidctest"
)

// replicas starts two zdgate instances sharing one Redis, one IdP and one clock.
func replicas(t *testing.T) (a, b *stack, rs *redistest.Server) {
	rs = redistest.Start(t)
	idp := oidctest.NewT(t, oidctest.Options{})
	clk := &clock{t: time.Now()}
	a = newStack(t, stackOpts{sharedIdP: idp, clock: clk, redisURL: rs.URL()})
	b = newStack(t, stackOpts{sharedIdP: idp, clock: clk, redisURL: rs.URL()})
	return a, b, rs
}

func TestRedisReplicasShareSessionsAndLogout(t *testing.T) {
	a, b, _ := replicas(t)
	c := newClient() // cookies are per host, not per port: the same browser reaches both replicas
	a.login(c, "/")
	if res, body := b.do(c, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Fatalf("session from A used on B = %d %s", res.StatusCode, body)
	}
	s, err := b.sessionOf(c)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.PostForm(b.front.URL+"/oauth2/backchannel_logout", url.Values{"logout_token": {a.idp.LogoutToken(s.Subject, s.SID, nil)}})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("back-channel logout on B: %v %v", res, err)
	}
	res.Body.Close()
	if res, _ := a.do(c, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("A after logout on B = %d; want 401 at the first request", res.StatusCode)
	}
}

func TestRedisConcurrentRefreshOnceAcrossReplicas(t *testing.T) {
	a, b, _ := replicas(t)
	c := newClient()
	a.login(c, "/")
	a.idp.ResetCounts()
	a.idp.SetDelay(30 * time.Millisecond)
	a.clock.Advance(2 * time.Minute)
	var wg sync.WaitGroup
	codes := make(chan int, 40)
	for i := 0; i < 20; i++ {
		for _, st := range []*stack{a, b} {
			wg.Add(1)
			go func(st *stack) {
				defer wg.Done()
				res, _ := st.do(c, "GET", "/zendesk/token", nil)
				codes <- res.StatusCode
			}(st)
		}
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 {
			t.Fatalf("a concurrent request got %d", code)
		}
	}
	if n := a.idp.Count("token.refresh"); n != 1 {
		t.Fatalf("refresh grants = %d; want exactly 1 across both replicas", n)
	}
}

func TestRedisOutageFailsClosedAndRecovers(t *testing.T) {
	a, _, rs := replicas(t)
	c := newClient()
	a.login(c, "/")
	rs.Stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, body := a.do(c, "GET", "/zendesk/token", nil)
		if res.StatusCode != http.StatusServiceUnavailable || jsonBody(t, body)["error"] != "session_store_unavailable" {
			t.Errorf("token with Redis down = %d %s; want 503", res.StatusCode, body)
		}
		if res, _ := a.do(c, "GET", "/readyz", nil); res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("readyz with Redis down = %d; want 503", res.StatusCode)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("requests hung while Redis was down")
	}
	if n := counterValue(t, a.reg, "zdgate_http_errors_total", "code", "session_store_unavailable"); n < 1 {
		t.Errorf("zdgate_http_errors_total{code=session_store_unavailable} = %v; want the 503 counted", n)
	}
	rs.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, _ := a.do(c, "GET", "/readyz", nil)
		if res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.login(c, "/") // the empty Redis lost the session; a new login works
	if res, _ := a.do(c, "GET", "/zendesk/token", nil); res.StatusCode != 200 {
		t.Fatalf("token after recovery = %d", res.StatusCode)
	}
}
