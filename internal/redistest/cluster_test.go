package redistest

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestClusterSpreadsKeysAndFailsOver(t *testing.T) {
	c := StartCluster(t, ClusterOptions{})
	if n := len(c.Nodes); n != 6 {
		t.Fatalf("len(Nodes) = %d; want 3 primaries + 3 replicas", n)
	}
	masters := c.Masters()
	if len(masters) != 3 {
		t.Fatalf("Masters() = %d nodes; want 3", len(masters))
	}
	u, err := url.Parse(c.URL())
	if err != nil || u.Scheme != "redis-cluster" || len(u.Query()["addr"]) != 5 {
		t.Fatalf("URL() = %q; want redis-cluster://first?addr=... with the 5 other nodes", c.URL())
	}
	seeds := []string{u.Host}
	seeds = append(seeds, u.Query()["addr"]...)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds})
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 60 {
		if err := client.Set(ctx, fmt.Sprintf("key-%d", i), i, 0).Err(); err != nil {
			t.Fatalf("SET key-%d = %v", i, err)
		}
	}
	for _, m := range masters {
		n, err := redis.NewClient(&redis.Options{Addr: m.Addr()}).DBSize(ctx).Result()
		if err != nil || n == 0 {
			t.Errorf("master %s holds %d keys (%v); want some of the 60", m.Addr(), n, err)
		}
	}

	victim := masters[0]
	replica := c.ReplicaOf(victim)
	if replica == nil {
		t.Fatalf("no replica of %s", victim.Addr())
	}
	c.Sync()
	victim.Stop()
	took := c.WaitHealthy(30 * time.Second)
	t.Logf("cluster healthy again %v after master %s was killed", took.Round(time.Millisecond), victim.Addr())
	if err := roleIs(ctx, replica.Addr(), "master"); err != nil {
		t.Errorf("the killed master's replica: %v", err)
	}
	// go-redis keeps dialling the dead master until its next periodic reload of the slot map
	// (redis/go-redis#3979); ask for one now. proxy/session does this on every network error.
	client.ReloadState(ctx)
	for i := range 60 {
		var got int
		var err error
		for range 20 { // the reload runs in the background
			if got, err = client.Get(ctx, fmt.Sprintf("key-%d", i)).Int(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || got != i {
			t.Errorf("GET key-%d after failover = %d, %v; want %d", i, got, err, i)
		}
	}
}
