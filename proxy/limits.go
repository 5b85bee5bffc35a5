package proxy

import (
	"net/netip"
	"time"

	"golang.org/x/time/rate"

	"github.com/zdgate/zdgate/internal/expiring"
)

// clientLimits is a token bucket per client address (trust.clientIP): --bearer-rate-limit for the
// bearer checks that reach the IdP, and the rate of widget event reports. A bucket is forgotten
// once it would have filled up again (it is then the same as a new one), so the table never grows
// without bound; beyond size, whenFull says whether the least recently seen address is forgotten
// or a new one refused until some bucket is full again.
type clientLimits struct {
	every  rate.Limit // 0: no limit
	burst  int
	refill time.Duration // from empty to full
	c      *expiring.Cache[string, *rate.Limiter]
}

func newClientLimits(every rate.Limit, burst, size int, whenFull expiring.WhenFull) *clientLimits {
	l := &clientLimits{every: every, burst: max(1, burst), c: expiring.New[string, *rate.Limiter](size, whenFull)}
	if every > 0 && every != rate.Inf {
		l.refill = time.Duration(float64(l.burst) / float64(every) * float64(time.Second))
	}
	return l
}

// allow takes a token from client's bucket, if it has one.
func (l *clientLimits) allow(client string, now time.Time) bool {
	if l.every <= 0 {
		return true
	}
	client = limitKey(client)
	lim, ok := l.c.Get(client, now)
	if !ok {
		lim = rate.NewLimiter(l.every, l.burst)
	}
	if !l.c.Add(client, lim, now.Add(l.refill), now) { // kept while in use
		return false // full of busy clients
	}
	return lim.AllowN(now, 1)
}

// limitKey is the bucket of a client address: the address itself for IPv4, its /64 for IPv6. One
// IPv6 client holds a whole /64 (privacy addresses, any host on a routed /64), so a bucket per
// address would give it 2^64 full buckets.
func limitKey(client string) string {
	a, err := netip.ParseAddr(client)
	if err != nil || !a.Is6() {
		return client
	}
	return netip.PrefixFrom(a.WithZone(""), 64).Masked().String()
}
