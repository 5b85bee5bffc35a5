package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zdgate/zdgate/internal/e2e"
)

// SentinelOptions shape a Sentinel deployment; the zero value is the one the fleet tests use.
type SentinelOptions struct {
	// DownAfter is the sentinels' down-after-milliseconds: how long the primary may be silent
	// before they start a failover. Default 1s (Redis' own default, 30s, is too slow for a test).
	DownAfter time.Duration
}

// SentinelMaster is the name the sentinels monitor the primary under.
const SentinelMaster = "zdgate-test"

// sentinelCount is three sentinels with a quorum of two: the smallest set that survives losing one.
const sentinelCount, sentinelQuorum = 3, 2

// Sentinel is a primary, one replica and three redis-sentinel processes on loopback, as a Redis
// deployment with automatic failover runs in production. Kill the primary with Primary.Stop.
type Sentinel struct {
	t testing.TB
	// Primary and Replica are the servers as started; after a failover the replica is the master.
	Primary, Replica *Server
	// Sentinels watch the primary under SentinelMaster, with a quorum of two.
	Sentinels []*Server
}

// StartSentinel starts the primary, the replica (replicating from it) and three sentinels, and
// waits (bounded) until the replica is in sync and every sentinel knows the replica and the other
// two sentinels, so that a failover can be authorised. Everything is stopped when the test ends.
func StartSentinel(t testing.TB, o SentinelOptions) *Sentinel {
	t.Helper()
	if o.DownAfter <= 0 {
		o.DownAfter = time.Second
	}
	serverBin := e2e.LookPath(t, howToInstall, "redis-server")
	sentinelBin := e2e.LookPath(t, howToInstall, "redis-sentinel")
	d := &Sentinel{t: t}
	var err error
	if d.Primary, err = launch(t, serverBin, "primary redis-server", nil, nil); err != nil {
		t.Fatalf("redistest.StartSentinel: primary: %v", err)
	}
	replicaOf := func(s *Server) []string {
		return serverArgs(s, "--replicaof", "127.0.0.1", strconv.Itoa(d.Primary.port))
	}
	if d.Replica, err = launch(t, serverBin, "replica redis-server", replicaOf, nil); err != nil {
		t.Fatalf("redistest.StartSentinel: replica: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := waitFor(ctx, func() error { return linkUp(ctx, d.Replica.Addr()) }); err != nil {
		t.Fatalf("redistest.StartSentinel: replica never synced with the primary: %v", err)
	}
	for i := range sentinelCount {
		conf := func(s *Server) error { return writeSentinelConf(s, d.Primary.port, o.DownAfter) }
		args := func(s *Server) []string { return []string{filepath.Join(s.dir, "sentinel.conf")} }
		s, err := launch(t, sentinelBin, fmt.Sprintf("redis-sentinel %d", i+1), args, conf)
		if err != nil {
			t.Fatalf("redistest.StartSentinel: sentinel %d: %v", i+1, err)
		}
		d.Sentinels = append(d.Sentinels, s)
	}
	// Sentinels find each other through hello messages on the primary, every two seconds.
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range d.Sentinels {
		if err := waitFor(ctx, func() error { return sentinelSees(ctx, s.Addr(), 1, sentinelCount-1) }); err != nil {
			t.Fatalf("redistest.StartSentinel: sentinel %s: %v", s.Addr(), err)
		}
	}
	return d
}

func writeSentinelConf(s *Server, primaryPort int, downAfter time.Duration) error {
	ms := strconv.FormatInt(downAfter.Milliseconds(), 10)
	conf := strings.Join([]string{
		"bind 127.0.0.1",
		"port " + strconv.Itoa(s.port),
		"daemonize no",
		`logfile ""`,
		"dir " + s.dir,
		fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d", SentinelMaster, primaryPort, sentinelQuorum),
		fmt.Sprintf("sentinel down-after-milliseconds %s %s", SentinelMaster, ms),
		fmt.Sprintf("sentinel failover-timeout %s 10000", SentinelMaster),
		fmt.Sprintf("sentinel parallel-syncs %s 1", SentinelMaster),
		"",
	}, "\n")
	// The sentinel rewrites its file with what it learns, so it must be writable.
	return os.WriteFile(filepath.Join(s.dir, "sentinel.conf"), []byte(conf), 0o600)
}

// Sync waits (bounded) until the replica, if it still replicates, has applied all the master's
// writes.
func (d *Sentinel) Sync() {
	d.t.Helper()
	syncReplicas(d.t, []*Server{d.Primary, d.Replica}, 10*time.Second)
}

// URL is the deployment as zdgate's --redis-url: every sentinel, the master's name, database 0.
func (d *Sentinel) URL() string {
	q := url.Values{"master": {SentinelMaster}}
	for _, s := range d.Sentinels[1:] {
		q.Add("addr", s.Addr())
	}
	return (&url.URL{Scheme: "redis-sentinel", Host: d.Sentinels[0].Addr(), Path: "/0", RawQuery: q.Encode()}).String()
}

// MasterAddr is the master's host:port as the running sentinels agree on it, or an error when
// they do not (yet) agree.
func (d *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var addrs []string
	for _, s := range d.Sentinels {
		if !s.Running() {
			continue
		}
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: probeTimeout, ReadTimeout: probeTimeout})
		hp, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		c.Close()
		if err != nil {
			return "", fmt.Errorf("sentinel %s: %w", s.Addr(), err)
		}
		if len(hp) != 2 {
			return "", fmt.Errorf("sentinel %s: get-master-addr-by-name = %q", s.Addr(), hp)
		}
		addrs = append(addrs, net.JoinHostPort(hp[0], hp[1]))
	}
	if len(addrs) == 0 {
		return "", errors.New("no sentinel is running")
	}
	for _, a := range addrs[1:] {
		if a != addrs[0] {
			return "", fmt.Errorf("sentinels disagree on the master: %q", addrs)
		}
	}
	return addrs[0], nil
}

// WaitMaster waits (bounded by within) until every running sentinel names want as the master and
// want itself reports the master role, and returns how long that took. It fails the test if not.
func (d *Sentinel) WaitMaster(want *Server, within time.Duration) time.Duration {
	d.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	err := waitFor(ctx, func() error {
		got, err := d.MasterAddr(ctx)
		if err != nil {
			return err
		}
		if got != want.Addr() {
			return fmt.Errorf("sentinels name %s as master; want %s", got, want.Addr())
		}
		return roleIs(ctx, want.Addr(), "master")
	})
	if err != nil {
		d.t.Fatalf("redistest: %s never became the master within %v: %v", want.Addr(), within, err)
	}
	return time.Since(start)
}

// sentinelSees checks that the sentinel at addr monitors the master with at least replicas
// replicas and others other sentinels.
func sentinelSees(ctx context.Context, addr string, replicas, others int) error {
	c := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: probeTimeout, ReadTimeout: probeTimeout})
	defer c.Close()
	m, err := c.Master(ctx, SentinelMaster).Result()
	if err != nil {
		return err
	}
	if n, _ := strconv.Atoi(m["num-slaves"]); n < replicas {
		return fmt.Errorf("knows %d replicas; want %d", n, replicas)
	}
	if n, _ := strconv.Atoi(m["num-other-sentinels"]); n < others {
		return fmt.Errorf("knows %d other sentinels; want %d", n, others)
	}
	return nil
}
