package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// SecretSize is the size of a cookie secret in bytes (an AES-256 key's worth
// of entropy).
const SecretSize = 32

// Secrets returns the cookie secrets, current first; a second one only opens
// old cookies, so a secret can be rotated without logging everyone out. It is
// called on every Seal and Open so that a re-read secret file takes effect
// without a restart; it must be cheap and safe for concurrent use.
type Secrets func() [][]byte

// ParseSecrets reads the cookie secret setting (docs/reference.md §1): one value, or two
// on two lines (current, then previous). A value that base64-decodes (standard
// or URL alphabet, padded or not) to 32 bytes is taken decoded; otherwise it
// must be exactly 32 raw bytes. Surrounding white space is ignored, so a raw
// secret cannot begin or end with white space or contain a line break. Errors
// give sizes, never the secret.
func ParseSecrets(text string) ([][]byte, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, errors.New("cookie secret: empty")
	}
	lines := strings.Split(text, "\n")
	if len(lines) > 2 {
		return nil, fmt.Errorf("cookie secret: at most two lines (current, previous), got %d", len(lines))
	}
	var (
		out  [][]byte
		errs []error
	)
	for i, line := range lines {
		key, err := parseSecret(strings.TrimSpace(line))
		if err != nil {
			if len(lines) > 1 {
				err = fmt.Errorf("cookie secret: line %d: %w", i+1, err)
			} else {
				err = fmt.Errorf("cookie secret: %w", err)
			}
			errs = append(errs, err)
			continue
		}
		out = append(out, key)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

var secretEncodings = []*base64.Encoding{
	base64.StdEncoding, base64.RawStdEncoding,
	base64.URLEncoding, base64.RawURLEncoding,
}

func parseSecret(s string) ([]byte, error) {
	decodedLen := -1
	for _, enc := range secretEncodings {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) == SecretSize {
			return b, nil
		}
		decodedLen = len(b)
	}
	if len(s) == SecretSize {
		return []byte(s), nil
	}
	if decodedLen >= 0 {
		return nil, fmt.Errorf("must be %d bytes or base64 of %d bytes, got %d bytes (base64 of %d)",
			SecretSize, SecretSize, len(s), decodedLen)
	}
	return nil, fmt.Errorf("must be %d bytes or base64 of %d bytes, got %d", SecretSize, SecretSize, len(s))
}

// keyring turns secrets into ciphers. Deriving a cipher costs an HKDF and an
// AES key schedule, so ciphers are cached by secret value; the cache is
// cleared when it grows past maxCachedKeys, which only happens when secrets
// keep changing.
type keyring struct {
	secrets Secrets

	mu    sync.RWMutex
	aeads map[string]cipher.AEAD
}

const maxCachedKeys = 8

// hkdfInfo separates the key used for cookies from any other use of the same
// secret, and gives the format a place to move to new keys.
const hkdfInfo = "zdgate cookie seal v1"

var errNoSecret = errors.New("session: no cookie secret configured")

func newKeyring(secrets Secrets) *keyring {
	return &keyring{secrets: secrets, aeads: make(map[string]cipher.AEAD)}
}

// check reports a missing or wrongly sized secret up front, so that a bad
// configuration stops start-up instead of failing every request.
func (k *keyring) check() error {
	if k.secrets == nil {
		return errNoSecret
	}
	secrets := k.secrets()
	if len(secrets) == 0 {
		return errNoSecret
	}
	for _, s := range secrets {
		if _, err := k.aead(s); err != nil {
			return err
		}
	}
	return nil
}

func (k *keyring) aead(secret []byte) (cipher.AEAD, error) {
	if len(secret) != SecretSize {
		return nil, fmt.Errorf("session: cookie secret must be %d bytes, got %d", SecretSize, len(secret))
	}
	k.mu.RLock()
	a := k.aeads[string(secret)]
	k.mu.RUnlock()
	if a != nil {
		return a, nil
	}
	key, err := hkdf.Key(sha256.New, secret, nil, hkdfInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("session: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("session: cipher: %w", err)
	}
	// Random 96-bit nonces, prepended to the ciphertext. A key must seal
	// fewer than 2^32 values; rotating the secret starts a new count.
	a, err = cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("session: cipher: %w", err)
	}
	k.mu.Lock()
	if len(k.aeads) >= maxCachedKeys {
		clear(k.aeads)
	}
	k.aeads[string(secret)] = a
	k.mu.Unlock()
	return a, nil
}

// Sealed format, version 1:
//
//	base64url-nopad( version | nonce(12) | GCM( expiry(8, Unix ms) | payload ) | tag(16) )
//
// with additional data version | cookie name, so a value cannot be moved to
// another cookie nor read under another format.
const (
	formatV1    byte = 1
	expirySize       = 8
	gcmOverhead      = 12 + 16
	minSealed        = 1 + gcmOverhead + expirySize
	// maxEncoded bounds the work an attacker can ask of Open.
	maxEncoded = 64 << 10
)

var encoding = base64.RawURLEncoding.Strict()

func additionalData(name string) []byte {
	aad := make([]byte, 0, 1+len(name))
	aad = append(aad, formatV1)
	return append(aad, name...)
}

// Sealer protects short-lived values that the browser must carry but never
// read or change, such as the login state cookie (state, nonce, PKCE
// verifier). It shares the cookie secrets and their rotation with the
// session store.
type Sealer struct {
	// Now is the clock that expiry is checked against; nil means time.Now.
	// Set it before first use (tests, or to share the proxy's clock).
	Now func() time.Time

	keys    *keyring
	digests digestKeys // for Digest
}

// NewSealer checks the secrets once so that a missing or malformed secret
// stops start-up rather than failing each request.
func NewSealer(secrets Secrets) (*Sealer, error) {
	k := newKeyring(secrets)
	if err := k.check(); err != nil {
		return nil, err
	}
	return &Sealer{keys: k}, nil
}

func (s *Sealer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Seal encrypts plaintext with the current secret. The cookie name is bound
// in as additional data so the value cannot be replayed under another cookie
// name, and expires is sealed inside so that an old value cannot be replayed
// after it.
func (s *Sealer) Seal(name string, plaintext []byte, expires time.Time) (string, error) {
	if name == "" {
		return "", errors.New("session: seal: empty cookie name")
	}
	return s.seal(additionalData(name), plaintext, expires)
}

// Open returns the plaintext of a value from Seal under the same name, trying
// each secret in turn. Anything not sealed by us for this name, or sealed with
// a retired secret, is ErrInvalid; a genuine value past its expiry is
// ErrExpired.
func (s *Sealer) Open(name, value string) ([]byte, error) {
	if len(value) > maxEncoded {
		return nil, fmt.Errorf("%w: too long", ErrInvalid)
	}
	raw, err := encoding.DecodeString(value)
	if err != nil {
		return nil, fmt.Errorf("%w: bad encoding", ErrInvalid)
	}
	return s.open(additionalData(name), raw, nil)
}

func (s *Sealer) seal(aad, plaintext []byte, expires time.Time) (string, error) {
	if expires.IsZero() {
		return "", errors.New("session: seal: no expiry")
	}
	secrets := s.keys.secrets()
	if len(secrets) == 0 {
		return "", errNoSecret
	}
	a, err := s.keys.aead(secrets[0])
	if err != nil {
		return "", err
	}
	msg := make([]byte, expirySize, expirySize+len(plaintext))
	binary.BigEndian.PutUint64(msg, uint64(expires.UnixMilli()))
	msg = append(msg, plaintext...)
	out := make([]byte, 1, 1+len(msg)+a.Overhead())
	out[0] = formatV1
	out = a.Seal(out, nil, msg, aad)
	clear(msg)
	return encoding.EncodeToString(out), nil
}

// open authenticates and decrypts raw (decoded bytes). scratch, if it has
// the capacity, receives the plaintext; raw is left intact so that every
// secret sees the same ciphertext.
func (s *Sealer) open(aad, raw, scratch []byte) ([]byte, error) {
	plaintext, _, err := s.openUntil(aad, raw, scratch)
	return plaintext, err
}

// openUntil is open that also returns the sealed expiry, for callers that remember the plaintext.
func (s *Sealer) openUntil(aad, raw, scratch []byte) ([]byte, time.Time, error) {
	if len(raw) < minSealed {
		return nil, time.Time{}, fmt.Errorf("%w: too short", ErrInvalid)
	}
	if raw[0] != formatV1 {
		return nil, time.Time{}, fmt.Errorf("%w: unknown format", ErrInvalid)
	}
	body := raw[1:]
	secrets := s.keys.secrets()
	if len(secrets) == 0 {
		return nil, time.Time{}, errNoSecret
	}
	if cap(scratch) < len(body) {
		scratch = make([]byte, 0, len(body))
	}
	for _, secret := range secrets {
		a, err := s.keys.aead(secret)
		if err != nil {
			return nil, time.Time{}, err
		}
		msg, err := a.Open(scratch[:0], nil, body, aad)
		if err != nil {
			continue
		}
		expires := int64(binary.BigEndian.Uint64(msg))
		if s.now().UnixMilli() >= expires {
			return nil, time.Time{}, ErrExpired
		}
		return msg[expirySize:], time.UnixMilli(expires), nil
	}
	return nil, time.Time{}, fmt.Errorf("%w: authentication failed", ErrInvalid)
}
