package session

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable means the session store's backend (Redis) could not answer
// in time. It wraps the cause and is none of ErrNotFound, ErrInvalid,
// ErrExpired or ErrRevoked: the session may be fine, so the proxy answers 503
// and leaves the cookie alone.
var ErrUnavailable = errors.New("session: store unavailable")

// Defaults of RedisConfig.
const (
	DefaultRedisTimeout   = time.Second
	DefaultRedisKeyPrefix = "zdgate:"
)

// RedisConfig configures the Redis session store (--session-store=redis).
type RedisConfig struct {
	// URL names the Redis deployment: a single server, a Sentinel-managed
	// master or a Cluster (see ValidateRedisURL for the schemes).
	URL string
	// Cookie configures the cookie that carries the ticket, the absolute
	// session lifetime (TTL), the secrets that seal the ticket and the clock,
	// as for the cookie store. Revoked must be nil: the store keeps its
	// revocations in Redis (see Revocations).
	Cookie CookieConfig
	// Timeout bounds each store operation as a whole, retries included, and
	// each dial, read and write the URL sets no timeout for; default 1s. A
	// Redis that is down or hangs fails requests fast instead of piling them
	// up.
	Timeout time.Duration
	// KeyPrefix starts every key the store writes, default "zdgate:", so that
	// one Redis can serve several deployments. A Cluster hash tag such as
	// "{zdgate}:" keeps every key on one node.
	KeyPrefix string
}

// RedisStore keeps sessions in Redis, so that every replica sees a logout at
// once and a session can be ended on the server. The browser holds only a
// ticket: the session ID and a per-session 256-bit key, sealed with the cookie
// secrets. Redis holds the session encrypted with that key, so a copy of
// Redis alone reveals no token or claim.
//
// Load always reads Redis, so loading again after taking Lock sees what
// another replica saved meanwhile. RedisStore implements Store and is safe for
// concurrent use.
type RedisStore struct {
	cookies   *CookieStore // cookie attributes, the ticket sealer, TTL and clock
	client    redis.UniversalClient
	keys      redisKeys
	timeout   time.Duration
	ticketAAD []byte
	revoked   *RedisRevocations
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore validates cfg, reporting every problem at once, and sets up a
// client. It does not connect: a Redis that is down at start-up shows in Ready
// and in 503s, and the store recovers when Redis comes back.
func NewRedisStore(cfg RedisConfig) (*RedisStore, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultRedisTimeout
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultRedisKeyPrefix
	}
	var errs []error
	endpoint, err := parseRedisURL(cfg.URL)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("session: redis timeout must be positive, got %v", cfg.Timeout))
	}
	if err := checkKeyPrefix(cfg.KeyPrefix); err != nil {
		errs = append(errs, err)
	}
	if cfg.Cookie.Revoked != nil {
		errs = append(errs, errors.New("session: redis store: Cookie.Revoked must be nil: revocations are kept in Redis (RedisStore.Revocations)"))
	}
	cookies, err := NewCookieStore(cfg.Cookie)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s := &RedisStore{
		cookies: cookies,
		client:  endpoint.newClient(cfg.Timeout),
		keys:    redisKeys{cfg.KeyPrefix},
		timeout: cfg.Timeout,
		// NUL cannot occur in a cookie name, so this differs from the
		// additional data of every cookie sealed under a name: a ticket is
		// not a sealed session or login state, nor the other way round.
		ticketAAD: additionalData(cookies.name + "\x00redis ticket"),
	}
	s.revoked = &RedisRevocations{
		client:  s.client,
		keys:    s.keys,
		ttl:     cookies.ttl,
		timeout: cfg.Timeout,
		now:     cookies.now,
	}
	return s, nil
}

const maxKeyPrefixLen = 64

func checkKeyPrefix(p string) error {
	if len(p) > maxKeyPrefixLen {
		return fmt.Errorf("session: redis key prefix: at most %d bytes, got %d", maxKeyPrefixLen, len(p))
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] >= 0x7f {
			return fmt.Errorf("session: redis key prefix %q: printable ASCII without spaces only", p)
		}
	}
	return nil
}

// Revocations is the store's back-channel logout list, shared by every
// replica through Redis. Give it to the proxy: its RevokeSID and
// RevokeSubject end this store's sessions at once, on every replica.
func (s *RedisStore) Revocations() *RedisRevocations { return s.revoked }

// IsOwnCookie is OwnCookie for this store's cookie name.
func (s *RedisStore) IsOwnCookie(name string) bool { return s.cookies.IsOwnCookie(name) }

// Timeout bounds each of the store's round trips to Redis, so a caller can size the work around
// them (a re-check under the refresh lock).
func (s *RedisStore) Timeout() time.Duration { return s.timeout }

// Ready reports whether Redis answers PING within the timeout, for /readyz.
func (s *RedisStore) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Close closes the connections to Redis.
func (s *RedisStore) Close() error { return s.client.Close() }

func unavailable(op string, err error) error {
	return fmt.Errorf("%w: redis %s: %w", ErrUnavailable, op, err)
}

// redisKeys names what the store keeps. IdP session ids and subjects (which
// may be email addresses) appear only hashed.
//
//	PREFIX s:ID           the sealed session, or a revocation tombstone; expires with the session
//	PREFIX sid:H(sid)     set of session IDs with this IdP session id; expires after the session TTL
//	PREFIX sub:H(sub)     set of session IDs of this subject; expires after the session TTL
//	PREFIX rev:sid:H(sid) revocation marker "1"; expires after the session TTL
//	PREFIX rev:sub:H(sub) revocation marker: Unix ms of the latest RevokeSubject
//	PREFIX rev:id:ID      revocation marker "1" of a signed-out session; expires after the session TTL
//	PREFIX lock:ID        refresh lock: a random token; expires after the lock TTL
type redisKeys struct{ prefix string }

func (k redisKeys) session(id string) string   { return k.prefix + "s:" + id }
func (k redisKeys) sidIndex(sid string) string { return k.prefix + "sid:" + hashName(sid) }
func (k redisKeys) subIndex(sub string) string { return k.prefix + "sub:" + hashName(sub) }
func (k redisKeys) sidMark(sid string) string  { return k.sidMarkSum(sha256.Sum256([]byte(sid))) }
func (k redisKeys) subMark(sub string) string  { return k.subMarkSum(sha256.Sum256([]byte(sub))) }
func (k redisKeys) sidMarkSum(sum [sha256.Size]byte) string {
	return k.prefix + "rev:sid:" + base64.RawURLEncoding.EncodeToString(sum[:])
}
func (k redisKeys) subMarkSum(sum [sha256.Size]byte) string {
	return k.prefix + "rev:sub:" + base64.RawURLEncoding.EncodeToString(sum[:])
}
func (k redisKeys) idMark(id string) string { return k.prefix + "rev:id:" + id }
func (k redisKeys) lock(id string) string   { return k.prefix + "lock:" + id }

// hashName keeps names out of key names. It is not a secret: anyone can hash
// a guessed subject and look for it.
func hashName(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Load opens the request's ticket and reads its session from Redis. Errors:
//
//   - no session cookie: ErrNotFound;
//   - a ticket that is forged, edited, sealed with a retired secret, or a
//     cookie-store session left from before a switch: ErrInvalid (as is a
//     stored value that does not open with the ticket);
//   - a genuine ticket whose session is past its lifetime or no longer in
//     Redis (signed out on another replica, expired, lost with Redis's data):
//     ErrExpired;
//   - a session ended by back-channel logout: ErrRevoked;
//   - Redis down or too slow: ErrUnavailable, wrapping the cause.
//
// If the request carries several tickets, the first whose session loads wins.
func (s *RedisStore) Load(ctx context.Context, r *http.Request) (*Session, error) {
	var f found
	s.cookies.scan(r, &f)
	if f.nSingles == 0 {
		if f.have != 0 {
			return nil, fmt.Errorf("%w: chunked cookie-store session", ErrInvalid)
		}
		return nil, ErrNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var firstErr error
	for _, value := range f.singles[:f.nSingles] {
		sess, err := s.load(ctx, value)
		if err == nil {
			return sess, nil
		}
		if errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		firstErr = cmp.Or(firstErr, err)
	}
	return nil, firstErr
}

var errGone = fmt.Errorf("%w: session no longer in the store", ErrExpired)

func (s *RedisStore) load(ctx context.Context, value string) (*Session, error) {
	t, err := s.openTicket(value)
	if err != nil {
		return nil, err
	}
	// One round trip: the session and the revocation markers its ticket names. Markers catch
	// what the index could not: a session saved while its logout was being processed, or one
	// whose index entry Redis evicted.
	var (
		get   *redis.StringCmd
		bySID *redis.IntCmd
		bySub *redis.StringCmd
	)
	cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, s.keys.session(t.id))
		if t.hasSID {
			bySID = p.Exists(ctx, s.keys.sidMarkSum(t.sid))
		}
		if t.hasSub {
			bySub = p.Get(ctx, s.keys.subMarkSum(t.sub))
		}
		return nil
	})
	if err := pipelineErr(cmds, err); err != nil {
		return nil, unavailable("load", err)
	}
	v, err := get.Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, errGone
	case err != nil:
		return nil, unavailable("load", err)
	case string(v) == redisTombstone:
		return nil, ErrRevoked
	}
	sess, err := openValue(t, v)
	if err != nil {
		return nil, err
	}
	if !t.owns(sess) {
		return nil, fmt.Errorf("%w: ticket names another session", ErrInvalid)
	}
	if !s.cookies.now().Before(sess.ExpiresAt(s.cookies.ttl)) {
		return nil, ErrExpired
	}
	if markedRevoked(bySID, bySub, sess.CreatedAt) {
		return nil, ErrRevoked
	}
	return sess, nil
}

// Save stores sess in Redis for the rest of its absolute lifetime: the Redis
// TTL counts from CreatedAt, so saving after a refresh never extends it.
//
// If the request's ticket is for sess.ID, the ticket (ID and key) is kept and
// no cookie is written; the session must still be in Redis, so that a refresh
// finishing after a sign-out elsewhere does not bring it back (ErrExpired).
// Otherwise (a login) a new ticket with a new key is issued in the cookie,
// replacing any earlier session of the request, which is deleted from Redis.
//
// Save indexes the session by IdP session id and subject for RevokeSID and
// RevokeSubject, then checks for a revocation that raced with it
// (ErrRevoked). Redis failures are ErrUnavailable; no cookie is written then.
func (s *RedisStore) Save(ctx context.Context, w http.ResponseWriter, r *http.Request, sess *Session) error {
	switch {
	case sess == nil || sess.ID == "":
		return errors.New("session: save: session has no ID")
	case len(sess.ID) > maxIDLen:
		return fmt.Errorf("session: save: session ID longer than %d bytes", maxIDLen)
	case sess.CreatedAt.IsZero():
		return errors.New("session: save: session has no creation time")
	}
	expires := sess.ExpiresAt(s.cookies.ttl)
	remaining := expires.Sub(s.cookies.now()).Truncate(time.Millisecond)
	if remaining <= 0 {
		return ErrExpired
	}
	t, reuse, replaced := s.ticketFor(r, sess.ID)
	if !reuse {
		t = newTicket(sess)
	} else if !t.owns(sess) {
		return fmt.Errorf("%w: session's sid or subject changed", ErrInvalid)
	}
	value, err := sealValue(t, sess)
	if err != nil {
		return err
	}
	var cookie string
	if !reuse {
		if cookie, err = s.sealTicket(t, expires); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var set *redis.StatusCmd
	cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		// The index goes in before the session so that a revocation that
		// misses it must have set its marker early enough for the check below.
		if sess.SID != "" {
			idx := s.keys.sidIndex(scopedName(sess.Provider, sess.SID))
			p.SAdd(ctx, idx, t.id)
			p.PExpire(ctx, idx, s.cookies.ttl)
		}
		if sess.Subject != "" {
			idx := s.keys.subIndex(scopedName(sess.Provider, sess.Subject))
			p.SAdd(ctx, idx, t.id)
			p.PExpire(ctx, idx, s.cookies.ttl)
		}
		args := redis.SetArgs{TTL: remaining}
		if reuse {
			args.Mode = "XX"
		}
		set = p.SetArgs(ctx, s.keys.session(t.id), value, args)
		if !reuse {
			for _, id := range replaced {
				p.Del(ctx, s.keys.session(id))
			}
		}
		return nil
	})
	if err := pipelineErr(cmds, err); err != nil {
		return unavailable("save", err)
	}
	if errors.Is(set.Err(), redis.Nil) {
		return fmt.Errorf("%w: session ended while in use", ErrExpired)
	}
	revoked, err := s.revoked.Revoked(ctx, sess)
	if err != nil {
		return err
	}
	if revoked {
		if err := s.revoked.bury(ctx, []string{t.id}); err != nil {
			return err
		}
		return ErrRevoked
	}
	if !reuse {
		s.setTicket(w, r, cookie, max(int(remaining/time.Second), 1))
	}
	return nil
}

// ticketFor finds the request's ticket for id, and the IDs of other sessions
// whose tickets the request carries.
func (s *RedisStore) ticketFor(r *http.Request, id string) (t ticket, ok bool, others []string) {
	var f found
	s.cookies.scan(r, &f)
	for _, value := range f.singles[:f.nSingles] {
		candidate, err := s.openTicket(value)
		switch {
		case err != nil:
		case candidate.id == id && !ok:
			t, ok = candidate, true
		case candidate.id != id:
			others = append(others, candidate.id)
		}
	}
	return t, ok, others
}

// setTicket writes the ticket cookie, first expiring cookies it does not
// overwrite: the chunks of a cookie-store session, and with a Domain
// configured, a host-only cookie of the same name.
func (s *RedisStore) setTicket(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	c := s.cookies
	for name := range c.presentNames(r, c.isSessionCookie) {
		if name != c.name {
			c.expire(w, name, c.domain)
		}
		if c.domain != "" {
			c.expire(w, name, "")
		}
	}
	http.SetCookie(w, c.cookie(c.name, value, maxAge, c.domain))
}

// Clear deletes the request's sessions from Redis and expires every cookie of
// ours, as the cookie store does. The cookies are expired even when Redis
// fails; the error (ErrUnavailable) then says that the stored session lives
// on until its lifetime ends.
func (s *RedisStore) Clear(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var f found
	s.cookies.scan(r, &f)
	var keys []string
	for _, value := range f.singles[:f.nSingles] {
		if t, err := s.openTicket(value); err == nil {
			keys = append(keys, s.keys.session(t.id))
		}
	}
	var err error
	if len(keys) > 0 {
		ctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		cmds, perr := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Del(ctx, k)
			}
			return nil
		})
		if perr = pipelineErr(cmds, perr); perr != nil {
			err = unavailable("clear", perr)
		}
	}
	_ = s.cookies.Clear(ctx, w, r) // never fails
	return err
}

// pipelineErr is the first error of cmds other than redis.Nil (a missing key
// is an answer), or err if the pipeline failed as a whole.
func pipelineErr(cmds []redis.Cmder, err error) error {
	for _, c := range cmds {
		if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) {
			return e
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return nil
}
