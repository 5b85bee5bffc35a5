package session

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRedisURL(t *testing.T) {
	type want struct {
		kind             string // simple, sentinel, cluster
		addrs            []string
		db               int
		tls              bool
		user, password   string
		master           string
		sentinelPassword string
	}
	for _, tc := range []struct {
		url  string
		want want
	}{
		{"redis://127.0.0.1:6379/2", want{kind: "simple", addrs: []string{"127.0.0.1:6379"}, db: 2}},
		{"redis://user:pw@redis.internal", want{kind: "simple", addrs: []string{"redis.internal:6379"}, user: "user", password: "pw"}},
		{"rediss://:pw@redis.internal:6380/0?dial_timeout=3s&pool_size=5", want{kind: "simple", addrs: []string{"redis.internal:6380"}, tls: true, password: "pw"}},
		{"REDIS://[::1]:6379", want{kind: "simple", addrs: []string{"[::1]:6379"}}},
		{
			"redis-sentinel://:pw@s1:26379/1?master=mymaster&addr=s2:26379&addr=s3:26379",
			want{kind: "sentinel", addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, db: 1, password: "pw", master: "mymaster"},
		},
		{
			"rediss-sentinel://s1?master_name=m&sentinel_password=spw",
			want{kind: "sentinel", addrs: []string{"s1:6379"}, tls: true, master: "m", sentinelPassword: "spw"},
		},
		{"redis-cluster://n1:7000?addr=n2:7001&addr=n3:7002", want{kind: "cluster", addrs: []string{"n1:7000", "n2:7001", "n3:7002"}}},
		{"rediss-cluster://u:p@n1:7000/0", want{kind: "cluster", addrs: []string{"n1:7000"}, tls: true, user: "u", password: "p"}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			e, err := parseRedisURL(tc.url)
			if err != nil {
				t.Fatalf("parseRedisURL() error = %v", err)
			}
			var got want
			var tlsName string
			switch {
			case e.simple != nil:
				o := e.simple
				got = want{kind: "simple", addrs: []string{o.Addr}, db: o.DB, tls: o.TLSConfig != nil, user: o.Username, password: o.Password}
			case e.failover != nil:
				o := e.failover
				got = want{kind: "sentinel", addrs: o.SentinelAddrs, db: o.DB, tls: o.TLSConfig != nil, user: o.Username,
					password: o.Password, master: o.MasterName, sentinelPassword: o.SentinelPassword}
				if o.TLSConfig != nil {
					tlsName = o.TLSConfig.ServerName
				}
			case e.cluster != nil:
				o := e.cluster
				got = want{kind: "cluster", addrs: o.Addrs, tls: o.TLSConfig != nil, user: o.Username, password: o.Password}
				if o.TLSConfig != nil {
					tlsName = o.TLSConfig.ServerName
				}
			}
			if got.kind != tc.want.kind || !slices.Equal(got.addrs, tc.want.addrs) || got.db != tc.want.db ||
				got.tls != tc.want.tls || got.user != tc.want.user || got.password != tc.want.password ||
				got.master != tc.want.master || got.sentinelPassword != tc.want.sentinelPassword {
				t.Errorf("parseRedisURL() = %+v; want %+v", got, tc.want)
			}
			if tlsName != "" {
				t.Errorf("TLS ServerName = %q; want empty (each node checked against its own host)", tlsName)
			}
			client := e.newClient(time.Second) // must not panic on any accepted URL
			if err := client.Close(); err != nil {
				t.Errorf("Close() error = %v", err)
			}
		})
	}
}

func TestParseRedisURLErrors(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"", "required"},
		{"http://redis.internal", `scheme "http"`},
		{"unix:///run/redis.sock", `scheme "unix"`},
		{"redis+sentinel://s1?master=m", "scheme"},
		{"redis-ring://s1", "scheme"},
		{"localhost:6379", "scheme"},
		{"redis://", "no host"},
		{"redis://:6379/0", "no host"},
		{"redis:redis.internal", "no host"},
		{"redis://u:hunter2@redis.internal:port", "invalid port"},
		{"redis://u:hunter2@redis internal", "invalid character"},
		{"redis://redis.internal/abc", "invalid database number"},
		{"redis://redis.internal/1/2", "invalid URL path"},
		{"redis://redis.internal?bogus=1", "unexpected option: bogus"},
		{"redis://redis.internal?dial_timeout=soon", "dial_timeout"},
		{"redis-sentinel://s1:26379", "needs ?master="},
		{"redis-sentinel://s1?master=a&master_name=b", "disagree"},
		{"redis-sentinel://s1?master=m&password=hunter2", "user info"},
		{"redis-sentinel://s1?master=m&addr=nohost", "addr"},
		{"redis-sentinel://s1?master=m&route_randomly=true", "replicas"},
		{"redis-cluster://n1:7000/3", "database 0 only"},
		{"redis-cluster://n1:7000?addr=bad", "addr"},
		{"redis-cluster://n1:7000?read_only=true", "replicas"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			err := ValidateRedisURL(tc.url)
			if err == nil {
				t.Fatalf("ValidateRedisURL() error = nil; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "session: redis URL: ") {
				t.Errorf("ValidateRedisURL() error = %q; want %q in it", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("ValidateRedisURL() error = %q shows the password", err)
			}
		})
	}
}

func TestRedisConfigLogValue(t *testing.T) {
	var buf bytes.Buffer
	cfg := RedisConfig{URL: "rediss-sentinel://u:hunter2@s1?master=m&sentinel_password=swordfish", Timeout: time.Second}
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("redis", "config", cfg)
	out := buf.String()
	for _, secret := range []string{"hunter2", "swordfish"} {
		if strings.Contains(out, secret) {
			t.Errorf("log line %q shows %q", out, secret)
		}
	}
	if !strings.Contains(out, "s1") || !strings.Contains(out, "master=m") {
		t.Errorf("log line %q lacks the host and master", out)
	}
}
