package redistest

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zdgate/zdgate/internal/e2e"
)

// ClusterOptions shape a Cluster; the zero value is three primaries with one replica each.
type ClusterOptions struct {
	// Primaries is the number of masters the 16384 slots are split over; default (and minimum) 3.
	Primaries int
	// ReplicasPerPrimary is the number of replicas of each master; default 1. -1 means none.
	ReplicasPerPrimary int
	// NodeTimeout is cluster-node-timeout: how long a master may be unreachable before its
	// replica takes over. Default 1s (Redis' own default, 15s, is too slow for a test).
	NodeTimeout time.Duration
}

// Cluster is a Redis Cluster on loopback, created by `redis-cli --cluster create` as an operator
// would. Kill a master with its Server's Stop; its replica takes over after NodeTimeout.
type Cluster struct {
	t     testing.TB
	opts  ClusterOptions
	Nodes []*Server

	mu  sync.Mutex
	bus map[*Server]int // each node's cluster bus port, chosen with its port
}

// StartCluster starts the nodes, joins them with redis-cli --cluster create, and waits (bounded)
// until every node reports cluster_state:ok. Everything is stopped when the test ends.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	o.Primaries = max(o.Primaries, 3)
	switch {
	case o.ReplicasPerPrimary == 0:
		o.ReplicasPerPrimary = 1
	case o.ReplicasPerPrimary < 0:
		o.ReplicasPerPrimary = 0
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = time.Second
	}
	serverBin := e2e.LookPath(t, howToInstall, "redis-server")
	cli := e2e.LookPath(t, howToInstall, "redis-cli")
	c := &Cluster{t: t, opts: o, bus: map[*Server]int{}}
	for i := range o.Primaries * (1 + o.ReplicasPerPrimary) {
		s, err := launch(t, serverBin, fmt.Sprintf("cluster node %d", i+1), c.nodeArgs, c.chooseBusPort)
		if err != nil {
			t.Fatalf("redistest.StartCluster: node %d: %v", i+1, err)
		}
		c.Nodes = append(c.Nodes, s)
	}
	args := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(o.ReplicasPerPrimary), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest.StartCluster: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	c.WaitHealthy(30 * time.Second)
	// A replica takes over only if it has synced with its master.
	c.Sync()
	return c
}

// chooseBusPort gives a node a free cluster bus port of its own: the default, port+10000, may
// be taken or past 65535 for an ephemeral port.
func (c *Cluster) chooseBusPort(s *Server) error {
	p, err := freePort()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bus[s] = p
	return nil
}

func (c *Cluster) nodeArgs(s *Server) []string {
	c.mu.Lock()
	bus := c.bus[s]
	c.mu.Unlock()
	return serverArgs(s,
		"--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
		"--cluster-node-timeout", strconv.FormatInt(c.opts.NodeTimeout.Milliseconds(), 10),
		"--cluster-port", strconv.Itoa(bus),
		"--cluster-announce-ip", "127.0.0.1",
	)
}

// Sync waits (bounded) until every running replica has applied all its master's writes.
func (c *Cluster) Sync() { c.t.Helper(); syncReplicas(c.t, c.Nodes, 10*time.Second) }

// URL is the cluster as zdgate's --redis-url: every node as a seed.
func (c *Cluster) URL() string {
	q := url.Values{}
	for _, s := range c.Nodes[1:] {
		q.Add("addr", s.Addr())
	}
	return (&url.URL{Scheme: "redis-cluster", Host: c.Nodes[0].Addr(), RawQuery: q.Encode()}).String()
}

// Masters are the running nodes that report the master role and own slots, in Nodes order.
func (c *Cluster) Masters() []*Server {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []*Server
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		if owned, err := ownsSlots(ctx, s.Addr()); err == nil && owned {
			out = append(out, s)
		}
	}
	return out
}

// ReplicaOf is the running node that replicates master, or nil.
func (c *Cluster) ReplicaOf(master *Server) *Server {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range c.Nodes {
		if s == master || !s.Running() {
			continue
		}
		m, err := info(ctx, s.Addr(), "replication")
		if err == nil && m["role"] == "slave" && m["master_port"] == strconv.Itoa(master.port) {
			return s
		}
	}
	return nil
}

// WaitHealthy waits (bounded by within) until every running node reports cluster_state:ok with
// all 16384 slots served and Primaries masters own them, and returns how long that took. It fails
// the test if not.
func (c *Cluster) WaitHealthy(within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	err := waitFor(ctx, func() error {
		for _, s := range c.Nodes {
			if !s.Running() {
				continue
			}
			if err := clusterOK(ctx, s.Addr()); err != nil {
				return err
			}
		}
		if n := len(c.Masters()); n != c.opts.Primaries {
			return fmt.Errorf("%d masters own slots; want %d", n, c.opts.Primaries)
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("redistest: cluster not healthy within %v: %v", within, err)
	}
	return time.Since(start)
}

func clusterOK(ctx context.Context, addr string) error {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: probeTimeout, ReadTimeout: probeTimeout})
	defer cl.Close()
	raw, err := cl.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	if !strings.Contains(raw, "cluster_state:ok\r\n") || !strings.Contains(raw, "cluster_slots_ok:16384\r\n") {
		return fmt.Errorf("%s: cluster info:\n%s", addr, raw)
	}
	return nil
}

// ownsSlots reports whether the node at addr is a master with at least one slot, by its own view.
func ownsSlots(ctx context.Context, addr string) (bool, error) {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: probeTimeout, ReadTimeout: probeTimeout})
	defer cl.Close()
	raw, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(raw, "\n") {
		f := strings.Fields(line)
		// <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
		if len(f) >= 8 && strings.Contains(f[2], "myself") {
			return strings.Contains(f[2], "master") && len(f) > 8, nil
		}
	}
	return false, fmt.Errorf("%s: no myself line in CLUSTER NODES", addr)
}
