package redistest

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStartStopRestart(t *testing.T) {
	srv := Start(t)
	if got, want := srv.URL(), "redis://"+srv.Addr()+"/0"; got != want {
		t.Errorf("URL() = %q; want %q", got, want)
	}
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") {
		t.Errorf("Addr() = %q; want a loopback address", srv.Addr())
	}
	opts, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatalf("redis.ParseURL(%q) error = %v", srv.URL(), err)
	}
	opts.MaxRetries = -1
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if err := client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET error = %v", err)
	}
	if err := client.ConfigGet(ctx, "save").Err(); err != nil {
		t.Fatalf("CONFIG GET save error = %v", err)
	}
	if got := client.ConfigGet(ctx, "save").Val()["save"]; got != "" {
		t.Errorf(`CONFIG GET save = %q; want "" (no snapshots)`, got)
	}

	srv.Stop()
	if c, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("dial %s after Stop() succeeded; want connection refused", srv.Addr())
	}
	srv.Stop() // idempotent

	srv.Restart()
	// The pool may still hold the killed server's connection; one retry-free command may fail.
	var got string
	for range 3 {
		if got, err = client.Get(ctx, "k").Result(); err == nil || errors.Is(err, redis.Nil) {
			break
		}
	}
	if !errors.Is(err, redis.Nil) {
		t.Errorf("GET k after Restart() = %q, %v; want redis.Nil (nothing survives)", got, err)
	}
	if err := client.Ping(ctx).Err(); err != nil {
		t.Errorf("PING after Restart() error = %v", err)
	}
}

func TestServersAreSeparate(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers share %s", a.Addr())
	}
	if err := probe(a.Addr(), -1); err == nil {
		t.Errorf("probe() with a foreign pid = nil; want an error")
	}
}
