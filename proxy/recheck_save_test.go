package proxy

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zdgate/zdgate/internal/redistest"
	"github.com/zdgate/zdgate/oidc/oidctest"
)

// TestRotatedTokenSurvivesAStoreHiccup: the IdP answers a refresh (rotating the refresh token) while
// the store cannot take writes for a moment, as in a Redis failover (here Redis refuses SET to
// zdgate's user, a real Redis error). The rotated token must not be dropped: the re-check keeps
// trying to save it while it holds the session's lock, so once the store takes writes again the
// new token is what Redis holds, and the next re-check never presents the spent one (which an IdP
// with reuse detection answers by revoking the whole grant: a logout).
func TestRotatedTokenSurvivesAStoreHiccup(t *testing.T) {
	rs := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: -1})
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	acl := func(rules ...any) {
		t.Helper()
		if err := admin.Do(ctx, append([]any{"ACL", "SETUSER", "zdgate"}, rules...)...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	acl("on", ">zdgate-pw", "~*", "&*", "+@all")
	st := newStack(t, stackOpts{redisURL: "redis://zdgate:zdgate-pw@" + rs.Addr() + "/0", idp: oidctest.Options{RefreshReuseRevokesGrant: true}})
	st.login(st.client, "/")
	before, err := st.sessionOf(st.client)
	if err != nil {
		t.Fatal(err)
	}
	st.idp.ResetCounts()
	st.clock.Advance(2 * time.Minute) // due for a re-check
	arrived, release := st.idp.HoldRefreshes()
	defer release()
	type answer struct {
		code int
		body string
	}
	done := make(chan answer, 1)
	go func() {
		res, body := st.do(st.client, "GET", "/zendesk/token", nil)
		done <- answer{res.StatusCode, body}
	}()
	<-arrived                          // the refresh is at the IdP, the lock is held
	acl("-set")                        // the store stops taking writes...
	release()                          // ...as the IdP rotates the refresh token
	time.Sleep(300 * time.Millisecond) // real time: the re-check's save retries run on the wall clock
	acl("+set")                        // and takes them again, well within the re-check's budget
	a := <-done
	if a.code != http.StatusOK {
		t.Errorf("the request whose refresh met the hiccup = %d %s; want its token once the store is back", a.code, a.body)
	}
	after, err := st.sessionOf(st.client)
	if err != nil {
		t.Fatalf("session after the hiccup: %v", err)
	}
	if after.RefreshToken == before.RefreshToken {
		t.Fatal("Redis still holds the spent refresh token; the rotated one was dropped")
	}
	st.clock.Advance(2 * time.Minute) // the next re-check spends the rotated token
	if res, body := st.do(st.client, "GET", "/zendesk/token", nil); res.StatusCode != http.StatusOK {
		t.Errorf("request at the next re-check = %d %s; want a token (the grant lives on)", res.StatusCode, body)
	}
	if asked, honoured := st.idp.Count("token.refresh"), len(st.idp.Refreshes()); asked != honoured {
		t.Errorf("IdP refresh requests = %d, honoured = %d; want every one honoured (no spent token presented)", asked, honoured)
	}
	if n := counterValue(t, st.reg, "zdgate_sessions_ended_total", "reason", "revoked"); n != 0 {
		t.Errorf("sessions_ended{revoked} = %v; want 0", n)
	}
}
