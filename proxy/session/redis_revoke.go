package session

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisRevocations is the back-channel logout list of a RedisStore, shared by
// every replica. Get it from RedisStore.Revocations.
//
// A revocation works twice over. It ends the sessions that the store has
// indexed under the sid or subject at once, replacing each stored session by
// a tombstone (so the next Load on any replica says ErrRevoked and no token
// is left in Redis). And it leaves a marker for the session TTL, which Load
// and Save consult, for sessions the index did not name: one being saved
// while the logout is processed, or one whose index Redis evicted under
// memory pressure. Revoked answers from the markers alone, so the list is
// also correct as a CookieStore's Revoked.
type RedisRevocations struct {
	client  redis.UniversalClient
	keys    redisKeys
	ttl     time.Duration // session TTL: how long a marker can matter
	timeout time.Duration
	now     func() time.Time
}

var _ Revocations = (*RedisRevocations)(nil)

// raiseScript sets KEYS[1] to ARGV[1] (Unix ms) with a TTL of ARGV[2] ms,
// unless it already holds a later time: with replicas' clocks a little apart,
// a logout processed later must not shorten an earlier one's reach.
var raiseScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur == nil or cur < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
`)

// RevokeSession ends the one session with this ID on every replica: the
// stored session is replaced by a tombstone, so RedisStore.Load says
// ErrRevoked for every copy of its ticket, and a marker for the session TTL
// lets Save and Revoked refuse a refresh that was in flight meanwhile.
func (v *RedisRevocations) RevokeSession(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("session: revoke: empty session id")
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	if err := v.client.Set(ctx, v.keys.idMark(id), "1", v.ttl).Err(); err != nil {
		return unavailable("revoke", err)
	}
	return v.bury(ctx, []string{id})
}

// RevokeSID ends every session with this IdP session id, whenever it was
// created: a logged-out IdP session must not come back.
func (v *RedisRevocations) RevokeSID(ctx context.Context, sid string) error {
	if sid == "" {
		return errors.New("session: revoke: empty sid")
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	// The marker goes first: a Save that indexes its session after the
	// lookup below finds the marker when it checks.
	if err := v.client.Set(ctx, v.keys.sidMark(sid), "1", v.ttl).Err(); err != nil {
		return unavailable("revoke", err)
	}
	return v.buryIndexed(ctx, v.keys.sidIndex(sid))
}

// RevokeSubject ends the sessions of sub created up to now. Sessions that the
// index names are ended whenever they were created, so a login in the same
// instant as the logout may be ended too; one after it is not.
func (v *RedisRevocations) RevokeSubject(ctx context.Context, sub string) error {
	if sub == "" {
		return errors.New("session: revoke: empty subject")
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	at := v.now().UnixMilli()
	if err := raiseScript.Run(ctx, v.client, []string{v.keys.subMark(sub)}, at, v.ttl.Milliseconds()).Err(); err != nil {
		return unavailable("revoke", err)
	}
	return v.buryIndexed(ctx, v.keys.subIndex(sub))
}

// Revoked reports whether s was ended by RevokeSession, RevokeSID or
// RevokeSubject, from the markers. Redis failures are ErrUnavailable: a session that may have been
// logged out is not used.
func (v *RedisRevocations) Revoked(ctx context.Context, s *Session) (bool, error) {
	if s == nil || s.ID == "" && s.SID == "" && s.Subject == "" {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	var (
		byID  *redis.IntCmd
		bySID *redis.IntCmd
		bySub *redis.StringCmd
	)
	cmds, err := v.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		if s.ID != "" {
			byID = p.Exists(ctx, v.keys.idMark(s.ID))
		}
		if s.SID != "" {
			bySID = p.Exists(ctx, v.keys.sidMark(scopedName(s.Provider, s.SID)))
		}
		if s.Subject != "" {
			bySub = p.Get(ctx, v.keys.subMark(scopedName(s.Provider, s.Subject)))
		}
		return nil
	})
	if err := pipelineErr(cmds, err); err != nil {
		return false, unavailable("revocation check", err)
	}
	return byID != nil && byID.Val() > 0 || markedRevoked(bySID, bySub, s.CreatedAt), nil
}

// markedRevoked reads the answers of the marker lookups (nil: not asked) for a session created at
// createdAt: a sid marker ends it, a subject marker ends it if it was created no later than the mark.
func markedRevoked(bySID *redis.IntCmd, bySub *redis.StringCmd, createdAt time.Time) bool {
	if bySID != nil && bySID.Val() > 0 {
		return true
	}
	if bySub == nil || errors.Is(bySub.Err(), redis.Nil) {
		return false
	}
	at, err := strconv.ParseInt(bySub.Val(), 10, 64)
	// A marker we did not write still says the subject was logged out.
	return err != nil || createdAt.UnixMilli() <= at
}

// buryIndexed ends the sessions named by an index set.
func (v *RedisRevocations) buryIndexed(ctx context.Context, index string) error {
	ids, err := v.client.SMembers(ctx, index).Result()
	if err != nil {
		return unavailable("revoke", err)
	}
	return v.bury(ctx, ids)
}

// bury replaces the stored sessions ids by tombstones that expire when the
// sessions would have; IDs whose session is gone stay gone.
func (v *RedisRevocations) bury(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	cmds, err := v.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.SetArgs(ctx, v.keys.session(id), redisTombstone, redis.SetArgs{Mode: "XX", KeepTTL: true})
		}
		return nil
	})
	if err := pipelineErr(cmds, err); err != nil {
		return unavailable("revoke", err)
	}
	return nil
}
