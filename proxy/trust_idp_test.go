package proxy

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdgate/zdgate/oidc"
)

// TestIdPFailsFast is issue 10 item 7: a hung IdP costs one timeout, then re-checks of other
// sessions fail at once with 503 without calling the IdP, and all recover by themselves after the
// fail-fast period (one probe). The IdP client's clock moves the period along without sleeping.
func TestIdPFailsFast(t *testing.T) {
	st := newStack(t, stackOpts{})
	idpClock := st.idpClock
	users := []*http.Client{st.client, newClient(), newClient(), newClient()}
	for _, c := range users {
		st.login(c, "/")
	}
	st.idp.SetDelay(3 * time.Second) // past the stack's 2 s IdP client timeout: hung
	st.clock.Advance(2 * time.Minute)
	st.idp.ResetCounts()

	token := func(c *http.Client) (int, string) {
		res, body := st.do(c, "GET", "/zendesk/token", nil)
		code, _ := jsonBody(t, body)["error"].(string)
		return res.StatusCode, code
	}
	if code, err := token(users[0]); code != http.StatusServiceUnavailable || err != "idp_unavailable" {
		t.Fatalf("first re-check with a hung IdP = %d %q; want 503 idp_unavailable", code, err)
	}
	calls := st.idp.Count("token.refresh")
	var wg sync.WaitGroup
	for _, c := range users[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, err := token(c); code != http.StatusServiceUnavailable || err != "idp_unavailable" {
				t.Errorf("re-check while failing fast = %d %q; want 503 idp_unavailable", code, err)
			}
		}()
	}
	wg.Wait()
	if n := st.idp.Count("token.refresh"); n != calls {
		t.Fatalf("re-checks while failing fast called the IdP %d more times; want none", n-calls)
	}
	st.idp.SetDelay(0) // the IdP is back, but the period has not passed: still no calls
	if code, _ := token(users[1]); code != http.StatusServiceUnavailable || st.idp.Count("token.refresh") != calls {
		t.Fatalf("re-check within the period = %d after %d calls; want 503 without a call", code, st.idp.Count("token.refresh")-calls)
	}
	if res, _ := st.do(st.client, "GET", "/readyz", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("/readyz during an IdP outage = %d; want 200 (outages fail closed per request)", res.StatusCode)
	}
	idpClock.Advance(oidc.DefaultFailFast + time.Second)
	for i, c := range users {
		if code, err := token(c); code != http.StatusOK {
			t.Fatalf("user %d after the period = %d %q; want 200 (recovered by itself)", i, code, err)
		}
	}
}

// TestIdPMisconfiguredIsSaid: an IdP that refuses zdgate's client (invalid_client, e.g. a rotated
// secret) is reported as such in the answer, the log and /readyz, not as "IdP unavailable", and
// the session survives until the secret is fixed.
func TestIdPMisconfiguredIsSaid(t *testing.T) {
	var mu sync.Mutex
	secret := "zdgate-secret"
	logs := &logSink{}
	st := newStack(t, stackOpts{
		oidc:   func(c *oidc.Config) { c.ClientSecret = func() string { mu.Lock(); defer mu.Unlock(); return secret } },
		mutate: func(c *Config) { c.Logger = logs.logger() },
	})
	st.login(st.client, "/")
	mu.Lock()
	secret = "rotated-wrong"
	mu.Unlock()
	st.clock.Advance(2 * time.Minute)
	res, body := st.do(st.client, "GET", "/zendesk/token", nil)
	if res.StatusCode != http.StatusServiceUnavailable || jsonBody(t, body)["error"] != "idp_misconfigured" {
		t.Fatalf("re-check with a refused client = %d %s; want 503 idp_misconfigured", res.StatusCode, body)
	}
	if got := logs.find("ERROR", "code=idp_misconfigured", "misconfigured", "invalid_client"); len(got) == 0 {
		t.Errorf("no log line names the misconfiguration; got %q", logs.find("refused"))
	}
	res, body = st.do(st.client, "GET", "/readyz", nil)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "refuses zdgate's client") || !strings.Contains(body, "invalid_client") || strings.Contains(body, "rotated-wrong") {
		t.Fatalf("/readyz = %d %q; want 503 naming invalid_client (and no secret)", res.StatusCode, body)
	}
	if _, err := st.sessionOf(st.client); err != nil {
		t.Fatalf("a misconfiguration ended the session: %v", err)
	}
	mu.Lock()
	secret = "zdgate-secret"
	mu.Unlock()
	if res, _ := st.do(st.client, "GET", "/readyz", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("/readyz after the secret is fixed = %d; want 200", res.StatusCode)
	}
	if res, body := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("token after the secret is fixed = %d %s", res.StatusCode, body)
	}
}
