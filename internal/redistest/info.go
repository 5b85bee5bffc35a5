package redistest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// pollEvery is how often the launchers look again while waiting for a deployment to settle.
const pollEvery = 50 * time.Millisecond

// waitFor calls check until it returns nil or ctx ends, and then returns check's last error.
func waitFor(ctx context.Context, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pollEvery):
		}
	}
}

// info is one INFO section of the server at addr, as key/value pairs.
func info(ctx context.Context, addr, section string) (map[string]string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: probeTimeout, ReadTimeout: probeTimeout})
	defer c.Close()
	raw, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(raw, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out, nil
}

// roleIs checks that the server at addr reports role (master or slave).
func roleIs(ctx context.Context, addr, role string) error {
	m, err := info(ctx, addr, "replication")
	if err != nil {
		return err
	}
	if m["role"] != role {
		return fmt.Errorf("%s has role %q; want %q", addr, m["role"], role)
	}
	return nil
}

// linkUp checks that the replica at addr is connected to its master and done syncing.
func linkUp(ctx context.Context, addr string) error {
	m, err := info(ctx, addr, "replication")
	if err != nil {
		return err
	}
	if m["role"] != "slave" || m["master_link_status"] != "up" || m["master_sync_in_progress"] != "0" {
		return fmt.Errorf("replica %s: role %q, link %q, sync in progress %q", addr, m["role"], m["master_link_status"], m["master_sync_in_progress"])
	}
	return nil
}

// caughtUp checks that the replica at addr has applied everything its master has written, by the
// replication offsets both report.
func caughtUp(ctx context.Context, addr string) error {
	r, err := info(ctx, addr, "replication")
	if err != nil {
		return err
	}
	if r["role"] != "slave" || r["master_link_status"] != "up" {
		return fmt.Errorf("replica %s: role %q, link %q", addr, r["role"], r["master_link_status"])
	}
	m, err := info(ctx, net.JoinHostPort(r["master_host"], r["master_port"]), "replication")
	if err != nil {
		return err
	}
	if r["slave_repl_offset"] != m["master_repl_offset"] {
		return fmt.Errorf("replica %s at offset %s, its master at %s", addr, r["slave_repl_offset"], m["master_repl_offset"])
	}
	return nil
}

// syncReplicas waits (bounded by within) until every running replica among servers has caught up
// with its master, so that a test can kill a master knowing what the replica holds.
func syncReplicas(t testing.TB, servers []*Server, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for _, s := range servers {
		if !s.Running() || roleIs(ctx, s.Addr(), "slave") != nil {
			continue
		}
		if err := waitFor(ctx, func() error { return caughtUp(ctx, s.Addr()) }); err != nil {
			t.Fatalf("redistest: replica never caught up within %v: %v", within, err)
		}
	}
}
