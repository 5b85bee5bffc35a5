package session

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/zdgate/zdgate/internal/redistest"
)

// replicas are two stores sharing one Redis and one cookie secret, as two
// zdgate pods behind a load balancer.
func replicas(t *testing.T) (a, b *RedisStore, clk *clock, srv *redistest.Server) {
	t.Helper()
	srv = redistest.Start(t)
	clk = &clock{t: t0}
	return newRedisStore(t, srv.URL(), clk, nil), newRedisStore(t, srv.URL(), clk, nil), clk, srv
}

func TestRedisReplicasShareSessions(t *testing.T) {
	a, b, _, _ := replicas(t)
	s := typicalSession(t0)
	j := newJar()
	saveTo(t, a, j, s)
	got, err := b.Load(context.Background(), j.request())
	if err != nil {
		t.Fatalf("Load() on replica B of a session saved on A: error = %v", err)
	}
	assertSameSession(t, got, s)

	// A refresh saved on B is what A loads next.
	got.AccessToken = "refreshed-on-b"
	if err := b.Save(context.Background(), httptest.NewRecorder(), j.request(), got); err != nil {
		t.Fatalf("Save() on B error = %v", err)
	}
	if again, err := a.Load(context.Background(), j.request()); err != nil || again.AccessToken != "refreshed-on-b" {
		t.Errorf("Load() on A after a refresh on B = %v, %v; want the refreshed session", again, err)
	}
}

func TestRedisRevokeSessionAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	a, b, _, _ := replicas(t)
	ended, kept := smallSession(t0), smallSession(t0)
	ended.ID, kept.ID = NewID(), NewID()
	endedJar, keptJar := newJar(), newJar()
	saveTo(t, a, endedJar, ended)
	saveTo(t, a, keptJar, kept)
	if err := b.Revocations().RevokeSession(ctx, ended.ID); err != nil {
		t.Fatalf("RevokeSession() on B error = %v", err)
	}
	if got, err := a.Load(context.Background(), endedJar.request()); !errors.Is(err, ErrRevoked) {
		t.Errorf("Load() on A after RevokeSession on B = %v, %v; want ErrRevoked", got, err)
	}
	if _, err := a.Load(context.Background(), keptJar.request()); err != nil {
		t.Errorf("Load() of another session of the same user = %v; want it kept", err)
	}
	// A refresh finishing after the sign-out does not bring the session back.
	if err := a.Save(context.Background(), httptest.NewRecorder(), endedJar.request(), ended); !errors.Is(err, ErrRevoked) {
		t.Errorf("Save() of a signed-out session = %v; want ErrRevoked", err)
	}
	if _, err := b.Load(context.Background(), endedJar.request()); !errors.Is(err, ErrRevoked) {
		t.Errorf("Load() after a late Save of a signed-out session = %v; want ErrRevoked", err)
	}
}

func TestRedisRevokeSIDAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	a, b, clk, srv := replicas(t)
	rdb := rawRedis(t, srv)
	ended, kept := smallSession(t0), smallSession(t0)
	ended.ID, kept.ID = NewID(), NewID()
	kept.SID = "another-idp-session"
	endedJar, keptJar := newJar(), newJar()
	saveTo(t, a, endedJar, ended)
	saveTo(t, a, keptJar, kept)

	clk.Advance(time.Minute)
	if err := b.Revocations().RevokeSID(ctx, ended.SID); err != nil {
		t.Fatalf("RevokeSID() on B error = %v", err)
	}
	if got, err := a.Load(context.Background(), endedJar.request()); !errors.Is(err, ErrRevoked) {
		t.Errorf("Load() on A after RevokeSID on B = %v, %v; want ErrRevoked", got, err)
	}
	// The index ended it at once: no sealed session is left to open.
	if v := rdb.Get(ctx, a.keys.session(ended.ID)).Val(); v != redisTombstone {
		t.Errorf("stored value after RevokeSID = %q; want the tombstone", v)
	}
	if _, err := a.Load(context.Background(), keptJar.request()); err != nil {
		t.Errorf("Load() of a session with another sid: error = %v", err)
	}
	if err := b.Revocations().RevokeSID(ctx, ""); err == nil {
		t.Errorf("RevokeSID(\"\") error = nil")
	}
}

func TestRedisRevokeSubjectAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	a, b, clk, srv := replicas(t)
	rdb := rawRedis(t, srv)
	laptop, phone, other := smallSession(t0), smallSession(t0), smallSession(t0)
	laptop.ID, phone.ID, other.ID = NewID(), NewID(), NewID()
	phone.SID = "phone-idp-session"
	other.Subject, other.SID = "user-43", "other-idp-session"
	jars := map[*Session]*jar{laptop: newJar(), phone: newJar(), other: newJar()}
	for s, j := range jars {
		saveTo(t, a, j, s)
	}

	clk.Advance(time.Minute)
	if err := b.Revocations().RevokeSubject(ctx, laptop.Subject); err != nil {
		t.Fatalf("RevokeSubject() on B error = %v", err)
	}
	for _, s := range []*Session{laptop, phone} {
		if got, err := a.Load(context.Background(), jars[s].request()); !errors.Is(err, ErrRevoked) {
			t.Errorf("Load() on A of %v after RevokeSubject on B = %v, %v; want ErrRevoked", s, got, err)
		}
		if v := rdb.Get(ctx, a.keys.session(s.ID)).Val(); v != redisTombstone {
			t.Errorf("stored value of %v after RevokeSubject = %q; want the tombstone", s, v)
		}
	}
	if _, err := a.Load(context.Background(), jars[other].request()); err != nil {
		t.Errorf("Load() of another subject's session: error = %v", err)
	}

	// A login after the logout is unaffected.
	clk.Advance(time.Second)
	fresh := smallSession(clk.Now())
	fresh.ID = NewID()
	j := newJar()
	saveTo(t, a, j, fresh)
	if _, err := b.Load(context.Background(), j.request()); err != nil {
		t.Errorf("Load() of a login after RevokeSubject: error = %v", err)
	}
}

// TestRedisRevocationMarkers covers the sessions the index cannot name: one
// saved while its logout was processed, one whose index Redis evicted.
func TestRedisRevocationMarkers(t *testing.T) {
	ctx := context.Background()
	a, b, clk, srv := replicas(t)
	rdb := rawRedis(t, srv)

	t.Run("saved after the logout", func(t *testing.T) {
		s := smallSession(clk.Now())
		s.ID, s.SID = NewID(), "racing-idp-session"
		if err := b.Revocations().RevokeSID(ctx, s.SID); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		if err := a.Save(context.Background(), w, newJar().request(), s); !errors.Is(err, ErrRevoked) {
			t.Errorf("Save() of a session whose sid was revoked: error = %v; want ErrRevoked", err)
		}
		if v := rdb.Get(ctx, a.keys.session(s.ID)).Val(); v != redisTombstone {
			t.Errorf("stored value = %q; want the tombstone", v)
		}
		if lines := w.Header().Values("Set-Cookie"); len(lines) != 0 {
			t.Errorf("Save() of a revoked session wrote %q", lines)
		}
	})

	t.Run("index evicted", func(t *testing.T) {
		s := smallSession(clk.Now())
		s.ID, s.SID, s.Subject = NewID(), "evicted-idp-session", "evicted-user"
		j := newJar()
		saveTo(t, a, j, s)
		rdb.Del(ctx, a.keys.sidIndex(s.SID), a.keys.subIndex(s.Subject))
		if err := b.Revocations().RevokeSID(ctx, s.SID); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Load(context.Background(), j.request()); !errors.Is(err, ErrRevoked) {
			t.Errorf("Load() after RevokeSID with the index gone = %v, %v; want ErrRevoked", got, err)
		}
	})

	t.Run("subject, by creation time", func(t *testing.T) {
		before := smallSession(clk.Now())
		before.Subject = "marker-user"
		clk.Advance(time.Minute)
		if err := b.Revocations().RevokeSubject(ctx, before.Subject); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Millisecond)
		after := smallSession(clk.Now())
		after.Subject = before.Subject
		rev := a.Revocations()
		if got, err := rev.Revoked(ctx, before); !got || err != nil {
			t.Errorf("Revoked() of a session created before RevokeSubject = %v, %v; want true", got, err)
		}
		if got, err := rev.Revoked(ctx, after); got || err != nil {
			t.Errorf("Revoked() of a session created after RevokeSubject = %v, %v; want false", got, err)
		}
		// A replica whose clock runs behind does not pull the marker back.
		clk.Advance(-time.Hour)
		if err := b.Revocations().RevokeSubject(ctx, before.Subject); err != nil {
			t.Fatal(err)
		}
		if got, _ := rev.Revoked(ctx, before); !got {
			t.Errorf("Revoked() after a RevokeSubject with an earlier clock = false; want true")
		}
		clk.Advance(time.Hour)
		if ttl := rdb.PTTL(ctx, a.keys.subMark(before.Subject)).Val(); ttl <= 0 || ttl > 12*time.Hour {
			t.Errorf("PTTL of the subject marker = %v; want the session TTL", ttl)
		}
	})

	t.Run("cookie store with shared revocations", func(t *testing.T) {
		cookies, _ := newStore(t, func(c *CookieConfig) { c.Revoked = a.Revocations() })
		s := smallSession(t0)
		s.SID = "cookie-idp-session"
		j := newJar()
		save(t, cookies, j, s)
		if err := b.Revocations().RevokeSID(ctx, s.SID); err != nil {
			t.Fatal(err)
		}
		if got, err := cookies.Load(context.Background(), j.request()); !errors.Is(err, ErrRevoked) {
			t.Errorf("CookieStore.Load() after RevokeSID on a Redis list = %v, %v; want ErrRevoked", got, err)
		}
	})
}
