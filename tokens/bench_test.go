package tokens

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The mint benchmarks measure what a user waits for on /zendesk/token
// (target: messaging under 10 µs/op). Signer mints with golang-jwt's Token
// and typed claims structs; run them in one go with the MapClaims baseline:
//
//	go test -run '^$' -bench . -benchmem ./tokens/

func benchmarkMint(b *testing.B, f Flavor) {
	s := newTestSigner(b, Config{Flavor: f, Now: time.Now})
	u := fullUser()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Sign(u); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMintMessaging(b *testing.B) { benchmarkMint(b, Messaging) }
func BenchmarkMintChat(b *testing.B)      { benchmarkMint(b, Chat) }
func BenchmarkMintSSO(b *testing.B)       { benchmarkMint(b, SSO) }
func BenchmarkMintSDK(b *testing.B)       { benchmarkMint(b, SDK) }

// BenchmarkMintMessagingGolangJWT is the baseline: the same token built
// with jwt.MapClaims instead of a typed claims struct.
func BenchmarkMintMessagingGolangJWT(b *testing.B) {
	u := fullUser()
	key := []byte(testSecret)
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"scope": "user", "external_id": u.ExternalID, "name": u.Name, "email": u.Email,
			"email_verified": true, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		})
		tok.Header["kid"] = testKID
		if _, err := tok.SignedString(key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyMessaging(b *testing.B) {
	tok, _, err := newTestSigner(b, Config{Flavor: Messaging}).Sign(fullUser())
	if err != nil {
		b.Fatal(err)
	}
	opt := VerifyOptions{Flavor: Messaging, Secret: []byte(testSecret), KeyID: testKID, Now: clock}
	b.ReportAllocs()
	for b.Loop() {
		if r := Verify(tok, opt); !r.Valid() {
			b.Fatal(r.Problems)
		}
	}
}
