package tokens

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// fixedNow is the clock of every test: 2023-11-14T22:13:20Z.
var fixedNow = time.Unix(1700000000, 0)

func clock() time.Time { return fixedNow }

const (
	testKID    = "app_64b9a2f0c1d2e3f4a5b6c7d8"
	testSecret = "Zk3-not-a-real-secret-but-long-enough"
)

func testKey() StaticKey { return StaticKey{ID: testKID, Secret: []byte(testSecret)} }

// fullUser has every field set, so tests can see which ones a flavor drops.
func fullUser() User {
	return User{
		ExternalID:     "user-42",
		Name:           "Ada Lovelace",
		Email:          "ada@example.com",
		EmailVerified:  true,
		Organization:   "Analytical Engines",
		OrganizationID: "org-7",
		Role:           "agent",
		CustomRoleID:   "360001",
		Locale:         8,
		Phone:          "+441234567890",
		RemotePhotoURL: "https://example.com/ada.png",
		Tags:           []string{"vip", "beta"},
		UserFields:     map[string]any{"plan": "gold", "seats": 3},
	}
}

// countingReader yields 0x00, 0x01, 0x02, ... so jti values are fixed.
type countingReader struct{ next byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

func newTestSigner(t testing.TB, cfg Config) *Signer {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys = testKey()
	}
	if cfg.Now == nil {
		cfg.Now = clock
	}
	s, err := NewSigner(cfg)
	if err != nil {
		t.Fatalf("NewSigner(%s) error: %v", cfg.Flavor, err)
	}
	return s
}

// craft builds a token from raw header and claims JSON, HMAC-SHA256 signed
// with secret, so tests can make tokens no Signer would.
func craft(header, claims string, secret []byte) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(in))
	return in + "." + enc.EncodeToString(mac.Sum(nil))
}

// mustJSON marshals v or fails the test.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return string(b)
}

// segments decodes a token's header and claims into maps (numbers as
// json.Number), failing the test if it cannot.
func segments(t testing.TB, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts; want 3", len(parts))
	}
	decode := func(seg string) map[string]any {
		raw, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatalf("segment %q: %v", seg, err)
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatalf("segment %s: %v", raw, err)
		}
		return m
	}
	return decode(parts[0]), decode(parts[1])
}
