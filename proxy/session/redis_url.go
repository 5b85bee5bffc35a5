package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisEndpoint is a parsed Redis URL: exactly one of the options is set.
type redisEndpoint struct {
	simple   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// ValidateRedisURL reports what is wrong with a Redis URL (--redis-url),
// without connecting, so that configuration checks can name the problem up
// front. Errors never contain the URL, which may hold a password.
//
// The user info always authenticates to the nodes that hold the data; the
// query takes go-redis's options (dial_timeout, pool_size, protocol, ...),
// and an unknown one is an error. The port defaults to 6379. With TLS, each
// node's certificate is checked against the host it is dialled at.
//
//	redis://[user:password@]host[:port][/db][?option=value...]
//	rediss://...                      the same over TLS
//
//	redis-sentinel://[user:password@]host:port[/db]?master=NAME[&addr=host:port...]
//	rediss-sentinel://...             the same over TLS
//	    host and each addr are sentinels; master names the monitored master.
//	    Sentinels that need a password of their own take sentinel_username
//	    and sentinel_password.
//
//	redis-cluster://[user:password@]host:port[?addr=host:port...]
//	rediss-cluster://...              the same over TLS
//	    host and each addr are seed nodes; a cluster has database 0 only.
//
// Options that would read sessions from replicas (which lag behind) are
// refused.
func ValidateRedisURL(raw string) error {
	_, err := parseRedisURL(raw)
	return err
}

const redisSchemes = "redis://, rediss://, redis-sentinel://, rediss-sentinel://, redis-cluster:// or rediss-cluster://"

func parseRedisURL(raw string) (*redisEndpoint, error) {
	bad := func(format string, args ...any) (*redisEndpoint, error) {
		return nil, fmt.Errorf("session: redis URL: "+format, args...)
	}
	if strings.TrimSpace(raw) == "" {
		return bad("required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bad("%v", err)
	}
	base, kind, _ := strings.Cut(u.Scheme, "-")
	if base != "redis" && base != "rediss" || kind != "" && kind != "sentinel" && kind != "cluster" {
		return bad("scheme %q: want %s", u.Scheme, redisSchemes)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return bad("no host: want %s://host:port", u.Scheme)
	}
	switch kind {
	case "sentinel":
		return parseSentinelURL(u, base)
	case "cluster":
		return parseClusterURL(u, base)
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return bad("%w", err)
	}
	return &redisEndpoint{simple: o}, nil
}

func parseSentinelURL(u *url.URL, base string) (*redisEndpoint, error) {
	q := u.Query()
	master := q.Get("master")
	if alias := q.Get("master_name"); master == "" {
		master = alias
	} else if alias != "" && alias != master {
		return nil, errors.New("session: redis URL: master and master_name disagree")
	}
	if master == "" {
		return nil, fmt.Errorf("session: redis URL: %s:// needs ?master=<name of the monitored master>", u.Scheme)
	}
	for _, name := range []string{"username", "password"} {
		if q.Has(name) {
			return nil, fmt.Errorf("session: redis URL: %s: give the Redis credentials as user info (%s://user:password@host), the sentinels' as sentinel_username and sentinel_password", name, u.Scheme)
		}
	}
	sentinelUser, sentinelPassword := q.Get("sentinel_username"), q.Get("sentinel_password")
	for _, name := range []string{"master", "master_name", "sentinel_username", "sentinel_password"} {
		q.Del(name)
	}
	q.Set("master_name", master)
	plain := *u
	plain.Scheme, plain.User, plain.RawQuery = base, nil, q.Encode()
	o, err := redis.ParseFailoverURL(plain.String())
	if err != nil {
		return nil, fmt.Errorf("session: redis URL: %w", err)
	}
	if o.RouteByLatency || o.RouteRandomly || o.ReplicaOnly {
		return nil, errors.New("session: redis URL: route_by_latency, route_randomly and replica_only would read sessions from replicas, which lag behind the master")
	}
	o.Username = u.User.Username()
	o.Password, _ = u.User.Password()
	o.SentinelUsername, o.SentinelPassword = sentinelUser, sentinelPassword
	o.TLSConfig = perHostTLS(o.TLSConfig)
	return &redisEndpoint{failover: o}, nil
}

func parseClusterURL(u *url.URL, base string) (*redisEndpoint, error) {
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return nil, fmt.Errorf("session: redis URL: database %q: a Redis Cluster has database 0 only", p)
	}
	plain := *u
	plain.Scheme, plain.Path, plain.RawPath = base, "", ""
	o, err := redis.ParseClusterURL(plain.String())
	if err != nil {
		return nil, fmt.Errorf("session: redis URL: %w", err)
	}
	if o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
		return nil, errors.New("session: redis URL: read_only, route_by_latency and route_randomly would read sessions from replicas, which lag behind the masters")
	}
	o.TLSConfig = perHostTLS(o.TLSConfig)
	return &redisEndpoint{cluster: o}, nil
}

// perHostTLS lets each connection check its certificate against the host it
// dials: go-redis pins the first host's name, which is wrong for the masters
// a sentinel names and the nodes a cluster announces.
func perHostTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	c = c.Clone()
	c.ServerName = ""
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	return c
}

// newClient connects lazily: nothing is dialled until the first command. Every
// timeout the URL leaves unset becomes timeout, dialling is tried once per
// attempt (go-redis retries the command), and contexts bound each call, so a
// Redis that is down or hangs fails the request fast.
func (e *redisEndpoint) newClient(timeout time.Duration) redis.UniversalClient {
	fill := func(dial, read, write, pool *time.Duration, dialerRetries *int, ctxTimeout *bool) {
		for _, d := range []*time.Duration{dial, read, write, pool} {
			if *d == 0 {
				*d = timeout
			}
		}
		if *dialerRetries == 0 {
			*dialerRetries = 1
		}
		*ctxTimeout = true
	}
	switch {
	case e.failover != nil:
		o := e.failover
		fill(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.DialerRetries, &o.ContextTimeoutEnabled)
		return redis.NewFailoverClient(o)
	case e.cluster != nil:
		o := e.cluster
		fill(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.DialerRetries, &o.ContextTimeoutEnabled)
		c := redis.NewClusterClient(o)
		c.AddHook(reloadOnFailure{c})
		return c
	default:
		o := e.simple
		fill(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.DialerRetries, &o.ContextTimeoutEnabled)
		return redis.NewClient(o)
	}
}

// LogValue keeps passwords in the URL (user info, sentinel_password) out of
// logs.
func (c RedisConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", redactRedisURL(c.URL)),
		slog.Duration("timeout", c.Timeout),
		slog.String("key_prefix", c.KeyPrefix),
	)
}

func redactRedisURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	q := u.Query()
	for name := range q {
		if strings.Contains(strings.ToLower(name), "password") {
			q.Set(name, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// reloadOnFailure makes a cluster client look for a new slot map whenever a command fails. On its
// own, go-redis keeps dialling a master that was killed, even after its replica took over, until
// its periodic reload (ClusterStateReloadInterval, 60s by default; redis/go-redis#3979): a
// minute of 503s for a third of the sessions. The reloads run in the background and go-redis
// coalesces them (one at a time, 200ms apart), so an outage costs a few CLUSTER SLOTS a second.
type reloadOnFailure struct{ c *redis.ClusterClient }

func (h reloadOnFailure) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadOnFailure) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(err)
		return err
	}
}

func (h reloadOnFailure) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(pipelineErr(cmds, err))
		return err
	}
}

// check reloads after any failure but a missing key, which is an answer. Other replies that are
// errors do not occur in the store's commands, except CLUSTERDOWN and MOVED, which call for a
// reload too.
func (h reloadOnFailure) check(err error) {
	if err != nil && !errors.Is(err, redis.Nil) {
		h.c.ReloadState(context.Background())
	}
}
