package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSignVerifies signs a user with every field set and checks the token
// passes Verify and carries exactly the flavor's claims: no Help Center
// profile claim leaks into messaging or chat.
func TestSignVerifies(t *testing.T) {
	tests := []struct {
		flavor     Flavor
		wantHeader []string
		wantClaims []string
	}{
		{Messaging, []string{"alg", "kid", "typ"}, []string{"email", "email_verified", "exp", "external_id", "iat", "name", "scope"}},
		{Chat, []string{"alg", "typ"}, []string{"email", "exp", "external_id", "iat", "name"}},
		{SSO, []string{"alg", "typ"}, []string{"custom_role_id", "email", "external_id", "iat", "jti", "locale", "name",
			"organization", "organization_id", "phone", "remote_photo_url", "role", "tags", "user_fields"}},
		{SDK, []string{"alg", "typ"}, []string{"custom_role_id", "email", "external_id", "iat", "jti", "locale", "name",
			"organization", "organization_id", "phone", "remote_photo_url", "role", "tags", "user_fields"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.flavor), func(t *testing.T) {
			s := newTestSigner(t, Config{Flavor: tt.flavor})
			if s.Flavor() != tt.flavor {
				t.Errorf("Flavor() = %q; want %q", s.Flavor(), tt.flavor)
			}
			tok, _, err := s.Sign(fullUser())
			if err != nil {
				t.Fatalf("Sign() error: %v", err)
			}
			r := Verify(tok, VerifyOptions{Flavor: tt.flavor, Secret: []byte(testSecret), KeyID: testKID, Now: clock})
			if !r.Valid() {
				t.Errorf("Verify(Sign()) problems = %q; want none", r.Problems)
			}
			h, c := segments(t, tok)
			if got := slices.Sorted(maps.Keys(h)); !slices.Equal(got, tt.wantHeader) {
				t.Errorf("Sign() header keys = %q; want %q", got, tt.wantHeader)
			}
			if got := slices.Sorted(maps.Keys(c)); !slices.Equal(got, tt.wantClaims) {
				t.Errorf("Sign() claim keys = %q; want %q", got, tt.wantClaims)
			}
			if h["alg"] != "HS256" || h["typ"] != "JWT" {
				t.Errorf("Sign() header = %v; want alg HS256, typ JWT", h)
			}
			if tt.flavor == Messaging && h["kid"] != testKID {
				t.Errorf("Sign() kid = %v; want %q", h["kid"], testKID)
			}
			if c["external_id"] != "user-42" || c["email"] != "ada@example.com" || c["iat"] != json.Number("1700000000") {
				t.Errorf("Sign() claims = %v; want the user's external_id, email and iat in seconds", c)
			}
			if tt.flavor == Messaging && (c["scope"] != "user" || c["email_verified"] != true) {
				t.Errorf("Sign() claims = %v; want scope user and email_verified true", c)
			}
		})
	}
}

func TestSignEmail(t *testing.T) {
	unverified := fullUser()
	unverified.EmailVerified = false
	noEmail := fullUser()
	noEmail.Email, noEmail.EmailVerified = "", false
	verifiedButEmpty := fullUser()
	verifiedButEmpty.Email = ""

	t.Run("messaging drops an unverified email", func(t *testing.T) {
		s := newTestSigner(t, Config{Flavor: Messaging})
		for _, u := range []User{unverified, noEmail, verifiedButEmpty} {
			tok, _, err := s.Sign(u)
			if err != nil {
				t.Fatalf("Sign() error: %v", err)
			}
			_, c := segments(t, tok)
			if _, ok := c["email"]; ok {
				t.Errorf("Sign(%+v) claims have email %v; want none", u.Email, c["email"])
			}
			if _, ok := c["email_verified"]; ok {
				t.Errorf("Sign() claims have email_verified %v; want none", c["email_verified"])
			}
		}
	})
	for _, f := range []Flavor{Chat, SSO, SDK} {
		t.Run(string(f)+" needs a verified email", func(t *testing.T) {
			if !f.RequiresEmail() {
				t.Errorf("RequiresEmail() = false; want true")
			}
			s := newTestSigner(t, Config{Flavor: f})
			for _, u := range []User{unverified, noEmail, verifiedButEmpty} {
				tok, _, err := s.Sign(u)
				if !errors.Is(err, ErrEmailRequired) {
					t.Errorf("Sign(email %q verified %v) = %q, %v; want ErrEmailRequired", u.Email, u.EmailVerified, tok, err)
				}
			}
		})
	}
	if Messaging.RequiresEmail() {
		t.Errorf("Messaging.RequiresEmail() = true; want false")
	}
}

func TestSignRequiredClaims(t *testing.T) {
	tests := []struct {
		name    string
		flavors []Flavor
		edit    func(*User)
		claim   string
	}{
		{"external_id missing", Flavors(), func(u *User) { u.ExternalID = "" }, "external_id"},
		{"external_id not UTF-8", Flavors(), func(u *User) { u.ExternalID = "id-\xff" }, "external_id"},
		{"name missing", []Flavor{Chat, SSO, SDK}, func(u *User) { u.Name = "" }, "name"},
		{"user field null", []Flavor{SSO, SDK}, func(u *User) { u.UserFields = map[string]any{"plan": nil} }, "user_fields"},
	}
	for _, tt := range tests {
		for _, f := range tt.flavors {
			t.Run(tt.name+"/"+string(f), func(t *testing.T) {
				u := fullUser()
				tt.edit(&u)
				_, _, err := newTestSigner(t, Config{Flavor: f}).Sign(u)
				var ce *ClaimError
				if !errors.As(err, &ce) || ce.Claim != tt.claim {
					t.Fatalf("Sign() error = %v; want a *ClaimError for %q", err, tt.claim)
				}
				if !strings.Contains(err.Error(), tt.claim) {
					t.Errorf("Sign() error %q does not name %q", err, tt.claim)
				}
			})
		}
	}
	t.Run("messaging without a name", func(t *testing.T) {
		u := fullUser()
		u.Name = ""
		tok, _, err := newTestSigner(t, Config{Flavor: Messaging}).Sign(u)
		if err != nil {
			t.Fatalf("Sign() error: %v", err)
		}
		if _, c := segments(t, tok); c["name"] != nil {
			t.Errorf("Sign() name = %v; want no name claim", c["name"])
		}
	})
}

func TestSignExternalIDLimit(t *testing.T) {
	tests := []struct {
		flavor Flavor
		id     string
		length int // 0 = must be accepted
	}{
		{Messaging, strings.Repeat("a", 255), 0},
		{Messaging, strings.Repeat("a", 256), 256},
		{Messaging, strings.Repeat("é", 255), 0}, // 510 bytes, 255 characters
		{Messaging, strings.Repeat("é", 256), 256},
		{Chat, strings.Repeat("a", 200), 0},
		{Chat, strings.Repeat("a", 201), 201},
		{Chat, strings.Repeat("日", 200), 0},
		{Chat, strings.Repeat("日", 201), 201},
		{SSO, strings.Repeat("a", 255), 0},
		{SSO, strings.Repeat("a", 256), 256},
		{SDK, strings.Repeat("🙂", 256), 256},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d bytes", tt.flavor, len(tt.id)), func(t *testing.T) {
			u := fullUser()
			u.ExternalID = tt.id
			tok, _, err := newTestSigner(t, Config{Flavor: tt.flavor}).Sign(u)
			if tt.length == 0 {
				if err != nil {
					t.Fatalf("Sign() error: %v", err)
				}
				if _, c := segments(t, tok); c["external_id"] != tt.id {
					t.Errorf("Sign() external_id = %v; want the whole id", c["external_id"])
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) {
				t.Fatalf("Sign() = %q, %v; want a *LimitError", tok, err)
			}
			want := LimitError{Flavor: tt.flavor, Claim: "external_id", Length: tt.length, Limit: tt.flavor.ExternalIDLimit()}
			if *le != want {
				t.Errorf("Sign() error = %+v; want %+v", *le, want)
			}
			if tok != "" {
				t.Errorf("Sign() token = %q; want none (no truncation)", tok)
			}
		})
	}
}

func TestSignTTL(t *testing.T) {
	tests := []struct {
		flavor Flavor
		ttl    time.Duration
		want   time.Duration // exp - iat; 0 = no exp claim
	}{
		{Messaging, 0, 10 * time.Minute},
		{Messaging, 30 * time.Minute, 30 * time.Minute},
		{Messaging, 90*time.Second + 500*time.Millisecond, 90 * time.Second},
		{Chat, 0, 5 * time.Minute},
		{Chat, 2 * time.Minute, 2 * time.Minute},
		{Chat, 5 * time.Minute, 5 * time.Minute},
		{Chat, 10 * time.Minute, 5 * time.Minute}, // Chat.MaxTTL(): Zendesk's 7 minutes less 2 of skew
		{SSO, 0, 0},
		{SSO, 3 * time.Minute, 3 * time.Minute},
		{SDK, 0, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.flavor, tt.ttl), func(t *testing.T) {
			s := newTestSigner(t, Config{Flavor: tt.flavor, TTL: tt.ttl})
			if s.TTL() != tt.want {
				t.Errorf("TTL() = %v; want %v", s.TTL(), tt.want)
			}
			tok, exp, err := s.Sign(fullUser())
			if err != nil {
				t.Fatalf("Sign() error: %v", err)
			}
			_, c := segments(t, tok)
			if tt.want == 0 {
				if !exp.IsZero() || c["exp"] != nil {
					t.Errorf("Sign() exp = %v, claim %v; want none", exp, c["exp"])
				}
				return
			}
			wantExp := fixedNow.Add(tt.want)
			if !exp.Equal(wantExp) {
				t.Errorf("Sign() exp = %v; want %v", exp, wantExp)
			}
			if got := c["exp"]; got != json.Number(fmt.Sprint(wantExp.Unix())) {
				t.Errorf("Sign() exp claim = %v; want %d", got, wantExp.Unix())
			}
		})
	}
}

func TestNewSignerRejects(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		target error // nil: only check an error is returned
	}{
		{"unknown flavor", Config{Flavor: "zopim", Keys: testKey()}, ErrUnknownFlavor},
		{"empty flavor", Config{Keys: testKey()}, ErrUnknownFlavor},
		{"no key source", Config{Flavor: Chat}, nil},
		{"negative TTL", Config{Flavor: Messaging, Keys: testKey(), TTL: -time.Second}, nil},
		{"TTL under a second", Config{Flavor: Messaging, Keys: testKey(), TTL: time.Millisecond}, nil},
		{"messaging key without ID", Config{Flavor: Messaging, Keys: StaticKey{Secret: []byte(testSecret)}}, ErrKeyInvalid},
		{"empty secret", Config{Flavor: SSO, Keys: StaticKey{ID: "x"}}, ErrKeyInvalid},
		{"key source fails", Config{Flavor: SDK, Keys: failingKeys{}}, errKeyFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(tt.cfg)
			if err == nil {
				t.Fatalf("NewSigner() = %v, nil; want an error", s)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("NewSigner() error = %v; want %v", err, tt.target)
			}
		})
	}
	t.Run("every problem at once", func(t *testing.T) {
		_, err := NewSigner(Config{Flavor: "x", TTL: -1})
		if err == nil || strings.Count(err.Error(), "\n") != 2 {
			t.Errorf("NewSigner() error = %q; want three problems", err)
		}
	})
	t.Run("chat ignores a key ID", func(t *testing.T) {
		s := newTestSigner(t, Config{Flavor: Chat, Keys: StaticKey{Secret: []byte(testSecret)}})
		if _, _, err := s.Sign(fullUser()); err != nil {
			t.Errorf("Sign() error: %v", err)
		}
	})
}

var errKeyFile = errors.New("secret file unreadable")

type failingKeys struct{}

func (failingKeys) Key() (Key, error) { return Key{}, errKeyFile }

func TestSignSecretIsRawBytes(t *testing.T) {
	const b64Secret = "c2VjcmV0LXRoYXQtbG9va3MtYmFzZTY0" // "secret-that-looks-base64"
	s := newTestSigner(t, Config{Flavor: Chat, Keys: StaticKey{Secret: []byte(b64Secret)}})
	tok, _, err := s.Sign(fullUser())
	if err != nil {
		t.Fatal(err)
	}
	if r := Verify(tok, VerifyOptions{Flavor: Chat, Secret: []byte(b64Secret), Now: clock}); !r.Valid() {
		t.Errorf("Verify(raw secret) problems = %q; want none", r.Problems)
	}
	r := Verify(tok, VerifyOptions{Flavor: Chat, Secret: []byte("secret-that-looks-base64"), Now: clock})
	if r.Valid() {
		t.Errorf("Verify(decoded secret) = valid; want a signature problem")
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestSignJTIUnique(t *testing.T) {
	const n = 5000
	s := newTestSigner(t, Config{Flavor: SSO}) // crypto/rand
	seen := make(map[any]bool, n)
	for range n {
		tok, _, err := s.Sign(fullUser())
		if err != nil {
			t.Fatal(err)
		}
		_, c := segments(t, tok)
		jti, _ := c["jti"].(string)
		if !uuidV4.MatchString(jti) {
			t.Fatalf("Sign() jti = %q; want a version 4 UUID", jti)
		}
		if seen[jti] {
			t.Fatalf("Sign() jti %q repeated", jti)
		}
		seen[jti] = true
	}
}

type brokenReader struct{}

func (brokenReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestSignRandFailure(t *testing.T) {
	s := newTestSigner(t, Config{Flavor: SDK, Rand: brokenReader{}})
	if tok, _, err := s.Sign(fullUser()); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Sign() = %q, %v; want the Rand error", tok, err)
	}
}

func TestSignRole(t *testing.T) {
	tests := []struct {
		flavor Flavor
		role   string
		ok     bool
	}{
		{SSO, "admin", true},
		{SSO, "owner", false},
		{SDK, "Admin", false},
		{Messaging, "owner", true}, // not a messaging claim: ignored
		{Chat, "owner", true},
	}
	for _, tt := range tests {
		t.Run(string(tt.flavor)+"/"+tt.role, func(t *testing.T) {
			u := fullUser()
			u.Role = tt.role
			tok, _, err := newTestSigner(t, Config{Flavor: tt.flavor}).Sign(u)
			if tt.ok != (err == nil) {
				t.Fatalf("Sign() = %q, %v; want ok %v", tok, err, tt.ok)
			}
			if !tt.ok && !errors.Is(err, ErrRoleNotAllowed) {
				t.Errorf("Sign() error = %v; want ErrRoleNotAllowed", err)
			}
		})
	}
}

func TestSignOptionalClaimsOmitted(t *testing.T) {
	u := User{ExternalID: "user-42", Name: "Ada", Email: "ada@example.com", EmailVerified: true, Tags: []string{}}
	tok, _, err := newTestSigner(t, Config{Flavor: SSO}).Sign(u)
	if err != nil {
		t.Fatal(err)
	}
	_, c := segments(t, tok)
	want := []string{"email", "external_id", "iat", "jti", "name"}
	if got := slices.Sorted(maps.Keys(c)); !slices.Equal(got, want) {
		t.Errorf("Sign() claim keys = %q; want %q (empty tags would wipe Zendesk's)", got, want)
	}
}

// TestErrorsKeepSecrets makes every failure path produce its error and
// checks none of them, nor a printed key, shows the secret.
func TestErrorsKeepSecrets(t *testing.T) {
	secretKeys := &rotatingKeys{keys: []Key{{ID: "", Secret: []byte(testSecret)}}}
	var errs []error
	_, err := NewSigner(Config{Flavor: Messaging, Keys: secretKeys})
	errs = append(errs, err)
	s := newTestSigner(t, Config{Flavor: Chat})
	_, _, err = s.Sign(User{ExternalID: strings.Repeat("x", 300)})
	errs = append(errs, err)
	_, _, err = newTestSigner(t, Config{Flavor: SSO, Rand: brokenReader{}}).Sign(fullUser())
	errs = append(errs, err)
	_, _, err = newTestSigner(t, Config{Flavor: SSO}).Sign(User{ExternalID: "a", Name: "b", Email: "c", EmailVerified: true,
		UserFields: map[string]any{"f": func() {}}})
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: error = nil; want one", i)
			continue
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Errorf("case %d: error %q contains the secret", i, err)
		}
	}
}
