package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"time"
)

// DefaultCookieName is the session cookie's name unless configured (docs/reference.md §1
// --cookie-name).
const DefaultCookieName = "_zdgate"

const (
	// maxChunks bounds how many cookies one session may take. Browsers keep
	// about 50 cookies per domain and proxies limit header sizes, so a
	// session that needs more is an error to fix (fewer claims), not
	// something to truncate.
	maxChunks = 8
	// maxChunkValue keeps each chunk well under the 4096 bytes that browsers
	// allow for a cookie's name, value and attributes.
	maxChunkValue = 3800
	// setCookieBudget is what a whole "Set-Cookie: ..." line may take.
	setCookieBudget = 4000
	// maxSingles bounds how many same-named session cookies Load tries (a
	// host-only and a domain cookie can both be sent after a configuration
	// change).
	maxSingles = 4
	// maxClearNames bounds the Set-Cookie lines one Clear or Save writes,
	// whatever the request carries.
	maxClearNames = 32

	maxNameLen   = 64
	maxPathLen   = 256
	maxDomainLen = 253
)

// CookieConfig configures the sealed-cookie session store. The zero values of
// Name, Path and Now are replaced by defaults; everything else is validated by
// NewCookieStore.
type CookieConfig struct {
	// Name of the session cookie, default "_zdgate"; large sessions use
	// Name_0, Name_1, ... and every cookie under Name+"_" counts as ours (see
	// OwnCookie). A "__Host-" name stops sibling subdomains from planting a
	// session cookie (it needs Secure, Path "/" and no Domain).
	Name string
	// Domain, if set, shares the session with subdomains; empty means a
	// host-only cookie.
	Domain string
	// Path scopes the cookie, default "/".
	Path string
	// Secure keeps the cookie off plain HTTP (docs/reference.md default: true; false only
	// for local development). The cookie is always HttpOnly and
	// SameSite=Lax: scripts never see it, and cross-site subrequests never
	// carry it while top-level navigation from the IdP still does.
	Secure bool
	// TTL is the absolute session lifetime, counted from Session.CreatedAt;
	// refreshes never extend it (docs/reference.md default: 12h).
	TTL time.Duration
	// Secrets seal and open the cookies (see Secrets).
	Secrets Secrets
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Revoked, if set, is consulted on every Load so that a back-channel
	// logout ends the session at once.
	Revoked Revocations
}

// CookieStore keeps the whole session in sealed cookies, so replicas share
// nothing. It implements Store and is safe for concurrent use.
type CookieStore struct {
	name, prefix string
	domain, path string
	secure       bool
	ttl          time.Duration
	now          func() time.Time
	revoked      Revocations
	sealer       *Sealer
	aad          []byte
	chunkSize    int
	chunkNames   [maxChunks]string
	opened       *openedCache
}

var _ Store = (*CookieStore)(nil)

// NewCookieStore validates cfg, reporting every problem at once, so that a
// cookie the browser would silently drop or a session that could never be
// opened stops start-up instead.
func NewCookieStore(cfg CookieConfig) (*CookieStore, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultCookieName
	}
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var errs []error
	if err := checkCookieName(cfg.Name); err != nil {
		errs = append(errs, err)
	}
	if len(cfg.Path) > maxPathLen || cfg.Path[0] != '/' ||
		(&http.Cookie{Name: "x", Path: cfg.Path}).Valid() != nil {
		errs = append(errs, fmt.Errorf("session: cookie path %q: must start with / and hold no ';' or control characters", cfg.Path))
	}
	if cfg.Domain != "" && (len(cfg.Domain) > maxDomainLen ||
		(&http.Cookie{Name: "x", Domain: cfg.Domain}).Valid() != nil) {
		errs = append(errs, fmt.Errorf("session: cookie domain %q: not a valid cookie domain", cfg.Domain))
	}
	if hasPrefixFold(cfg.Name, "__Secure-") && !cfg.Secure {
		errs = append(errs, fmt.Errorf("session: cookie name %q: a __Secure- cookie needs Secure", cfg.Name))
	}
	if hasPrefixFold(cfg.Name, "__Host-") && (!cfg.Secure || cfg.Path != "/" || cfg.Domain != "") {
		errs = append(errs, fmt.Errorf("session: cookie name %q: a __Host- cookie needs Secure, path / and no domain", cfg.Name))
	}
	if cfg.TTL <= 0 {
		errs = append(errs, fmt.Errorf("session: session TTL must be positive, got %v", cfg.TTL))
	}
	sealer, err := NewSealer(cfg.Secrets)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sealer.Now = cfg.Now

	c := &CookieStore{
		opened:  newOpenedCache(maxOpened),
		name:    cfg.Name,
		prefix:  cfg.Name + "_",
		domain:  cfg.Domain,
		path:    cfg.Path,
		secure:  cfg.Secure,
		ttl:     cfg.TTL,
		now:     cfg.Now,
		revoked: cfg.Revoked,
		sealer:  sealer,
		aad:     additionalData(cfg.Name),
	}
	for i := range c.chunkNames {
		c.chunkNames[i] = c.prefix + string(rune('0'+i))
	}
	// The longest line we write is the last chunk with the largest Max-Age.
	probe := c.cookie(c.chunkNames[maxChunks-1], "", int(cfg.TTL/time.Second)+1, c.domain)
	overhead := len("Set-Cookie: ") + len(probe.String())
	c.chunkSize = min(maxChunkValue, setCookieBudget-overhead) &^ 3 // whole base64 quanta
	if c.chunkSize < 1024 {
		return nil, fmt.Errorf("session: cookie attributes take %d bytes, too little room for a session", overhead)
	}
	return c, nil
}

func checkCookieName(name string) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("session: cookie name: at most %d characters, got %d", maxNameLen, len(name))
	}
	if !validName(name) {
		return fmt.Errorf("session: cookie name %q: only letters, digits, '-' and '_'", name)
	}
	return nil
}

// validName is stricter than RFC 6265 tokens: names that every browser,
// framework and proxy passes through unchanged.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// OwnCookie reports whether the cookie called name belongs to zdgate when the
// session cookie is called base: base itself, its chunks, and anything else
// under base+"_" (such as the login state cookie). The proxy strips these
// before a request goes upstream, so the app never sees sealed tokens.
func OwnCookie(base, name string) bool {
	if base == "" || !strings.HasPrefix(name, base) {
		return false
	}
	return len(name) == len(base) || name[len(base)] == '_'
}

// IsOwnCookie is OwnCookie for this store's cookie name.
func (c *CookieStore) IsOwnCookie(name string) bool { return OwnCookie(c.name, name) }

// chunkIndex reports which chunk the cookie called name holds.
func (c *CookieStore) chunkIndex(name string) (int, bool) {
	if len(name) != len(c.prefix)+1 || !strings.HasPrefix(name, c.prefix) {
		return 0, false
	}
	i := int(name[len(name)-1]) - '0'
	return i, 0 <= i && i < maxChunks
}

func (c *CookieStore) isSessionCookie(name string) bool {
	_, ok := c.chunkIndex(name)
	return ok || name == c.name
}

// requestCookies yields the request's cookies as name, value pairs. It reads
// the Cookie headers the way net/http does, without allocating a Cookie for
// each of the app's cookies on every request.
func requestCookies(r *http.Request) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		if r == nil {
			return
		}
		for _, line := range r.Header["Cookie"] {
			for part := range strings.SplitSeq(line, ";") {
				part = textproto.TrimString(part)
				if part == "" {
					continue
				}
				name, value, _ := strings.Cut(part, "=")
				name = textproto.TrimString(name)
				if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
					value = value[1 : len(value)-1]
				}
				if !yield(name, value) {
					return
				}
			}
		}
	}
}

var errChunkMissing = fmt.Errorf("%w: session cookie chunk missing", ErrInvalid)

// found is what a request carries of the session: each same-named single
// cookie, and the first cookie of each chunk index.
type found struct {
	singles  [maxSingles]string
	nSingles int
	chunks   [maxChunks]string
	have     uint32 // bit i: chunk i present
}

func (c *CookieStore) scan(r *http.Request, f *found) {
	for name, value := range requestCookies(r) {
		if value == "" { // what a failed deletion leaves behind
			continue
		}
		if name == c.name {
			if f.nSingles < maxSingles {
				f.singles[f.nSingles] = value
				f.nSingles++
			}
			continue
		}
		if i, ok := c.chunkIndex(name); ok && f.have&(1<<i) == 0 {
			f.chunks[i] = value
			f.have |= 1 << i
		}
	}
}

// Load opens the request's session. If several candidates are present (a
// stale cookie next to a fresh one after a configuration change), the first
// that opens wins; otherwise the first one's error is returned.
func (c *CookieStore) Load(ctx context.Context, r *http.Request) (*Session, error) {
	var f found
	c.scan(r, &f)
	if f.nSingles == 0 && f.have == 0 {
		return nil, ErrNotFound
	}
	var firstErr error
	for i := range f.nSingles {
		s, err := c.openParts(f.singles[i : i+1])
		if err == nil {
			return c.checkRevoked(ctx, s)
		}
		firstErr = cmp.Or(firstErr, err)
	}
	if f.have != 0 {
		n := bits.TrailingZeros32(^f.have) // chunks 0..n-1 are present
		var s *Session
		err := errChunkMissing
		if f.have == 1<<n-1 {
			s, err = c.openParts(f.chunks[:n])
		}
		if err == nil {
			return c.checkRevoked(ctx, s)
		}
		firstErr = cmp.Or(firstErr, err)
	}
	return nil, firstErr
}

// openParts joins, decodes, opens and checks the lifetime of one candidate.
func (c *CookieStore) openParts(parts []string) (*Session, error) {
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	if total > maxEncoded {
		return nil, fmt.Errorf("%w: too long", ErrInvalid)
	}
	key := parts[0]
	if len(parts) > 1 {
		key = strings.Join(parts, "")
	}
	var current []byte
	if secrets := c.sealer.keys.secrets(); len(secrets) > 0 {
		current = secrets[0]
	}
	now := c.now()
	if s, ok := c.opened.get(key, current, now); ok {
		if !now.Before(s.ExpiresAt(c.ttl)) {
			return nil, ErrExpired
		}
		return s, nil
	}
	joined := make([]byte, 0, total)
	for _, p := range parts {
		joined = append(joined, p...)
	}
	raw := make([]byte, encoding.DecodedLen(total))
	n, err := encoding.Decode(raw, joined)
	if err != nil {
		return nil, fmt.Errorf("%w: bad encoding", ErrInvalid)
	}
	// joined is no longer needed: it has room for the plaintext.
	plaintext, until, err := c.sealer.openUntil(c.aad, raw[:n], joined)
	if err != nil {
		return nil, err
	}
	s, err := unmarshalSession(plaintext)
	clear(plaintext)
	if err != nil {
		return nil, err
	}
	// The sealed expiry is the TTL when the cookie was written; this is the
	// TTL configured now, which may have been shortened since.
	if !now.Before(s.ExpiresAt(c.ttl)) {
		return nil, ErrExpired
	}
	c.opened.put(key, current, s, until, now)
	return s, nil
}

func (c *CookieStore) checkRevoked(ctx context.Context, s *Session) (*Session, error) {
	if c.revoked == nil {
		return s, nil
	}
	revoked, err := c.revoked.Revoked(ctx, s)
	if err != nil {
		// Fail closed: a session that may have been logged out is not used.
		return nil, fmt.Errorf("session: revocation check: %w", err)
	}
	if revoked {
		return nil, ErrRevoked
	}
	return s, nil
}

// Save seals s into the response's cookies with a Max-Age of the session's
// remaining absolute lifetime, and expires the cookies of an earlier session
// on r that the new value does not overwrite (chunks of a larger one, or the
// single cookie of a smaller one). It refuses sessions that have expired or
// do not fit into maxChunks cookies, writing nothing.
func (c *CookieStore) Save(_ context.Context, w http.ResponseWriter, r *http.Request, s *Session) error {
	if s == nil || s.ID == "" {
		return errors.New("session: save: session has no ID")
	}
	if s.CreatedAt.IsZero() {
		return errors.New("session: save: session has no creation time")
	}
	expires := s.ExpiresAt(c.ttl)
	remaining := expires.Sub(c.now())
	if remaining <= 0 {
		return ErrExpired
	}
	plaintext, err := marshalSession(s)
	if err != nil {
		return err
	}
	value, err := c.sealer.seal(c.aad, plaintext, expires)
	clear(plaintext)
	if err != nil {
		return err
	}
	n := (len(value) + c.chunkSize - 1) / c.chunkSize
	if n > maxChunks {
		return fmt.Errorf("%w: sealed session is %d bytes, %d cookies hold %d",
			ErrTooLarge, len(value), maxChunks, maxChunks*c.chunkSize)
	}
	// Deletions go first: if a browser took a host-only deletion below for
	// the same cookie as a domain cookie set after it, the set still wins.
	for name := range c.presentNames(r, c.isSessionCookie) {
		i, isChunk := c.chunkIndex(name)
		overwritten := n == 1 && name == c.name || n > 1 && isChunk && i < n
		if !overwritten {
			c.expire(w, name, c.domain)
		}
		if c.domain != "" {
			c.expire(w, name, "") // a host-only one from before the domain was set
		}
	}
	maxAge := max(int(remaining/time.Second), 1) // 0 would mean a browser-session cookie
	if n == 1 {
		http.SetCookie(w, c.cookie(c.name, value, maxAge, c.domain))
		return nil
	}
	for i := range n {
		chunk := value[i*c.chunkSize : min((i+1)*c.chunkSize, len(value))]
		http.SetCookie(w, c.cookie(c.chunkNames[i], chunk, maxAge, c.domain))
	}
	return nil
}

// Clear expires the session cookie and every cookie of ours on r (chunks,
// login state), so that nothing of the session survives a sign-out. With a
// Domain configured it also expires host-only cookies of the same names,
// which a browser still holds from before the Domain was set and which would
// otherwise keep the user logged in.
func (c *CookieStore) Clear(_ context.Context, w http.ResponseWriter, r *http.Request) error {
	base := false
	for name := range c.presentNames(r, c.IsOwnCookie) {
		base = base || name == c.name
		c.expireAll(w, name)
	}
	if !base {
		c.expireAll(w, c.name)
	}
	return nil
}

func (c *CookieStore) expireAll(w http.ResponseWriter, name string) {
	c.expire(w, name, c.domain)
	if c.domain != "" {
		c.expire(w, name, "")
	}
}

// presentNames yields each distinct cookie name on r that match accepts and
// that we could have written, at most maxClearNames of them.
func (c *CookieStore) presentNames(r *http.Request, match func(string) bool) iter.Seq[string] {
	return func(yield func(string) bool) {
		var seen []string
		for name := range requestCookies(r) {
			if !match(name) || !validName(name) || slices.Contains(seen, name) {
				continue
			}
			if len(seen) == maxClearNames {
				return
			}
			seen = append(seen, name)
			if !yield(name) {
				return
			}
		}
	}
}

func (c *CookieStore) expire(w http.ResponseWriter, name, domain string) {
	http.SetCookie(w, c.cookie(name, "", -1, domain))
}

func (c *CookieStore) cookie(name, value string, maxAge int, domain string) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     c.path,
		Domain:   domain,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	}
}
