package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestSentinelFailsOverToTheReplica(t *testing.T) {
	d := StartSentinel(t, SentinelOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if got, err := d.MasterAddr(ctx); err != nil || got != d.Primary.Addr() {
		t.Fatalf("MasterAddr() = %q, %v; want the primary %s", got, err, d.Primary.Addr())
	}
	opts, err := redis.ParseFailoverURL(redisURLOfSentinel(d))
	if err != nil {
		t.Fatalf("redis.ParseFailoverURL(%q) = %v", d.URL(), err)
	}
	c := redis.NewFailoverClient(opts)
	t.Cleanup(func() { c.Close() })
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the sentinels = %v", err)
	}
	// WAIT: the write reached the replica before the primary dies.
	if n, err := c.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want 1", n, err)
	}

	d.Primary.Stop()
	took := d.WaitMaster(d.Replica, 30*time.Second)
	t.Logf("sentinels promoted the replica %v after the primary was killed", took.Round(time.Millisecond))
	var got string
	for range 20 { // the client learns of the switch through the sentinels' pub/sub
		if got, err = c.Get(ctx, "k").Result(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || got != "v" {
		t.Fatalf("GET k after failover = %q, %v; want the replicated value", got, err)
	}
}

// redisURLOfSentinel is URL in go-redis's own failover URL syntax, so this package's test does not
// depend on zdgate's parser.
func redisURLOfSentinel(d *Sentinel) string {
	u := "redis://" + d.Sentinels[0].Addr() + "/0?master_name=" + SentinelMaster
	for _, s := range d.Sentinels[1:] {
		u += "&addr=" + s.Addr()
	}
	return u
}
