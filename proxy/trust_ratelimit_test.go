package proxy

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

// TestBearerRateLimitIPv6Prefix: one IPv6 client holds a whole /64 (SLAAC privacy addresses, any
// host on a routed /64), so a limit per address is no limit: each new address is a full bucket, and
// --bearer-rate-limit would let every junk token reach the IdP. IPv6 clients are counted per /64.
func TestBearerRateLimitIPv6Prefix(t *testing.T) {
	st := newStack(t, stackOpts{
		idp: oidctest.Options{OpaqueAccessTokens: true},
		mutate: func(c *Config) {
			c.BearerRateLimit = 5 // burst 10
			c.TrustedProxies = mustPrefixes("127.0.0.1/32")
		},
	})
	st.idp.ResetCounts()
	limited := 0
	for i := range 40 {
		res, body := st.do(newClient(), "GET", "/zendesk/token", map[string]string{
			"Authorization":   fmt.Sprintf("Bearer junk-%d", i),
			"X-Forwarded-For": fmt.Sprintf("2001:db8:1:2::%x", i+1),
		})
		switch code, _ := jsonBody(t, body)["error"].(string); {
		case res.StatusCode == http.StatusTooManyRequests && code == "rate_limited":
			limited++
		case res.StatusCode != http.StatusUnauthorized:
			t.Fatalf("junk token %d = %d %s", i, res.StatusCode, body)
		}
	}
	if calls := st.idp.Count("introspect") + st.idp.Count("userinfo"); limited < 30 || calls > 10 {
		t.Fatalf("40 junk tokens from 40 addresses of one /64: %d limited, %d IdP calls; want at most the burst through", limited, calls)
	}
	// Another /64, and an IPv4 client, have their own buckets.
	for _, xff := range []string{"2001:db8:1:3::1", "192.0.2.7"} {
		res, body := st.do(newClient(), "GET", "/zendesk/token", map[string]string{"Authorization": "Bearer junk-other", "X-Forwarded-For": xff})
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("client %s = %d %s; want 401 from its own bucket", xff, res.StatusCode, body)
		}
	}
}
