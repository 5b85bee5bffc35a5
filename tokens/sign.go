package tokens

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Config is what a [Signer] needs for one flavor. Each flavor has its own
// secret in Zendesk, so each gets its own Signer.
type Config struct {
	Flavor Flavor
	// Keys gives the key at every Sign, so rotation needs no restart.
	Keys KeySource
	// TTL is how long a token lives (exp = iat + TTL, whole seconds).
	//   - messaging: 0 means 10 minutes.
	//   - chat: 0 means 5 minutes, and anything longer is lowered to 5
	//     minutes ([Flavor.MaxTTL]), so one --zendesk-token-ttl serves both.
	//   - sso, sdk: 0 means no exp claim. Zendesk documents none for these
	//     (it limits them through iat and jti); set TTL to add one.
	TTL time.Duration
	// Now is the clock; nil means time.Now. Tests inject a fixed one.
	Now func() time.Time
	// Rand is where sso/sdk jti values come from; nil means crypto/rand.
	// It must be safe for concurrent use if Sign is called concurrently.
	Rand io.Reader
	// MessagingEmail is the messaging email policy; "" means EmailVerified.
	MessagingEmail MessagingEmail
}

// Signer mints tokens of one flavor. It holds no secret of its own (it asks
// its KeySource each time) and is safe for concurrent use.
type Signer struct {
	flavor Flavor
	rules  rules
	keys   KeySource
	ttl    time.Duration // effective lifetime; 0 = no exp claim
	now    func() time.Time
	rand   io.Reader

	omitEmail bool // messaging: never send the email (EmailOmit)
}

// NewSigner checks cfg and returns a Signer for it. It reports every
// problem at once, and fetches the key once, so a missing secret stops
// start-up rather than the first login.
func NewSigner(cfg Config) (*Signer, error) {
	var errs []error
	if !cfg.Flavor.valid() {
		errs = append(errs, fmt.Errorf("%w %q", ErrUnknownFlavor, string(cfg.Flavor)))
	}
	if cfg.Keys == nil {
		errs = append(errs, errors.New("tokens: no key source"))
	}
	if cfg.TTL < 0 {
		errs = append(errs, fmt.Errorf("tokens: TTL %v is negative", cfg.TTL))
	} else if cfg.TTL > 0 && cfg.TTL < time.Second {
		errs = append(errs, fmt.Errorf("tokens: TTL %v is under the one-second resolution of exp", cfg.TTL))
	}
	if err := checkEmailPolicy(cfg.Flavor, cfg.MessagingEmail); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s := &Signer{
		flavor: cfg.Flavor,
		rules:  cfg.Flavor.rules(),
		keys:   cfg.Keys,
		ttl:    cfg.TTL.Truncate(time.Second),
		now:    cfg.Now,
		rand:   cfg.Rand,
	}
	s.omitEmail = cfg.MessagingEmail == EmailOmit
	if s.ttl == 0 {
		s.ttl = s.rules.defaultTTL
	}
	if s.rules.mintCap > 0 && s.ttl > s.rules.mintCap {
		s.ttl = s.rules.mintCap
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if _, err := s.key(); err != nil {
		return nil, err
	}
	return s, nil
}

// Flavor is the flavor this Signer mints, for routes and metrics labels.
func (s *Signer) Flavor() Flavor { return s.flavor }

// TTL is the lifetime of the tokens this Signer mints after defaults and
// Zendesk's limits are applied; 0 means its tokens carry no exp.
func (s *Signer) TTL() time.Duration { return s.ttl }

// key fetches and checks the current key. Its errors never contain the key.
func (s *Signer) key() (Key, error) {
	k, err := s.keys.Key()
	if err != nil {
		return Key{}, fmt.Errorf("tokens: %s: signing key: %w", s.flavor, err)
	}
	if len(k.Secret) == 0 {
		return Key{}, fmt.Errorf("%w: %s: no secret", ErrKeyInvalid, s.flavor)
	}
	if s.rules.kid && k.ID == "" {
		return Key{}, fmt.Errorf("%w: %s: no key ID (kid)", ErrKeyInvalid, s.flavor)
	}
	return k, nil
}

// Sign returns the compact JWT for u and its expiry, the zero time if the
// token has no exp. It refuses, rather than repairs, a user the flavor
// cannot carry: see [ErrEmailRequired], [*ClaimError], [*LimitError] and
// [ErrRoleNotAllowed]. Claims the flavor does not define are left out even
// if u has them.
func (s *Signer) Sign(u User) (token string, exp time.Time, err error) {
	if err := s.rules.check(s.flavor, u); err != nil {
		return "", time.Time{}, err
	}
	k, err := s.key()
	if err != nil {
		return "", time.Time{}, err
	}
	iat := s.now().Unix()
	var expUnix int64
	if s.ttl > 0 {
		expUnix = iat + int64(s.ttl/time.Second)
		exp = time.Unix(expUnix, 0)
	}

	var claims jwt.Claims
	stamps := stamps{IssuedAt: iat, Expiry: expUnix}
	switch s.flavor {
	case Messaging:
		c := &messagingClaims{Scope: scopeUser, ExternalID: u.ExternalID, Name: u.Name, stamps: stamps}
		if u.Email != "" && u.EmailVerified && !s.omitEmail {
			c.Email, c.EmailVerified = u.Email, true
		}
		claims = c
	case Chat:
		claims = &chatClaims{Name: u.Name, Email: u.Email, ExternalID: u.ExternalID, stamps: stamps}
	case SSO, SDK:
		jti, err := newJTI(s.rand)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("tokens: %s: jti: %w", s.flavor, err)
		}
		claims = &ssoClaims{
			stamps: stamps, JTI: jti,
			Email: u.Email, Name: u.Name, ExternalID: u.ExternalID,
			Organization: u.Organization, OrganizationID: u.OrganizationID,
			Tags: u.Tags, Role: u.Role, CustomRoleID: u.CustomRoleID,
			Locale: u.Locale, Phone: u.Phone, RemotePhotoURL: u.RemotePhotoURL,
			UserFields: u.UserFields,
		}
	}
	// golang-jwt encodes the header map with sorted keys ({"alg","kid","typ"}) and the claims
	// struct in field order, so the bytes are those TestGolden pins.
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	if s.rules.kid {
		tok.Header[headerKID] = k.ID
	}
	// The secret's bytes as they are: Zendesk never base64-decodes them.
	token, err = tok.SignedString(k.Secret)
	if err != nil {
		// Only user_fields can hold a value JSON cannot encode; the error text would describe the
		// value's type, not the value.
		return "", time.Time{}, fmt.Errorf("tokens: %s: claims: %w", s.flavor, err)
	}
	return token, exp, nil
}

// newJTI returns a random (version 4) UUID: Zendesk refuses a jti it has
// seen before, and 122 random bits never repeat in practice.
func newJTI(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:]), nil
}
