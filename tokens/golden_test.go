package tokens

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestGolden pins each flavor's bytes for fixed inputs (clock, key, jti
// source), so any change to header, claim order, names or encoding shows,
// and then has golang-jwt, an independent implementation, accept them.
func TestGolden(t *testing.T) {
	minimal := User{ExternalID: "user-42", Name: "Ada Lovelace", Email: "ada@example.com", EmailVerified: true}
	tests := []struct {
		flavor Flavor
		ttl    time.Duration
		user   User
		want   string
		claims map[string]any // claims golang-jwt must see
	}{
		{
			flavor: Messaging, user: fullUser(),
			want: "eyJhbGciOiJIUzI1NiIsImtpZCI6ImFwcF82NGI5YTJmMGMxZDJlM2Y0YTViNmM3ZDgiLCJ0eXAiOiJKV1QifQ.eyJzY29wZSI6InVzZXIiLCJleHRlcm5hbF9pZCI6InVzZXItNDIiLCJuYW1lIjoiQWRhIExvdmVsYWNlIiwiZW1haWwiOiJhZGFAZXhhbXBsZS5jb20iLCJlbWFpbF92ZXJpZmllZCI6dHJ1ZSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDA2MDB9.vh7GWQZVEuornS3w3nhYbyvfmD6YHVlEw1HHmACj62s",
			claims: map[string]any{"scope": "user", "external_id": "user-42", "name": "Ada Lovelace",
				"email": "ada@example.com", "email_verified": true, "iat": 1700000000.0, "exp": 1700000600.0},
		},
		{
			flavor: Chat, ttl: 10 * time.Minute, user: fullUser(), // capped: exp = iat + 300
			want: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuYW1lIjoiQWRhIExvdmVsYWNlIiwiZW1haWwiOiJhZGFAZXhhbXBsZS5jb20iLCJleHRlcm5hbF9pZCI6InVzZXItNDIiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDMwMH0.Fm7Qy1I5QFBPZXeEkUzHuDkLvEB2sGHhfJf94LywoRE",
			claims: map[string]any{"name": "Ada Lovelace", "email": "ada@example.com", "external_id": "user-42",
				"iat": 1700000000.0, "exp": 1700000300.0}, // TTL 10m capped at Chat.MaxTTL() (5m)
		},
		{
			flavor: SSO, user: fullUser(),
			want: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDAsImp0aSI6IjAwMDEwMjAzLTA0MDUtNDYwNy04ODA5LTBhMGIwYzBkMGUwZiIsImVtYWlsIjoiYWRhQGV4YW1wbGUuY29tIiwibmFtZSI6IkFkYSBMb3ZlbGFjZSIsImV4dGVybmFsX2lkIjoidXNlci00MiIsIm9yZ2FuaXphdGlvbiI6IkFuYWx5dGljYWwgRW5naW5lcyIsIm9yZ2FuaXphdGlvbl9pZCI6Im9yZy03IiwidGFncyI6WyJ2aXAiLCJiZXRhIl0sInJvbGUiOiJhZ2VudCIsImN1c3RvbV9yb2xlX2lkIjoiMzYwMDAxIiwibG9jYWxlIjo4LCJwaG9uZSI6Iis0NDEyMzQ1Njc4OTAiLCJyZW1vdGVfcGhvdG9fdXJsIjoiaHR0cHM6Ly9leGFtcGxlLmNvbS9hZGEucG5nIiwidXNlcl9maWVsZHMiOnsicGxhbiI6ImdvbGQiLCJzZWF0cyI6M319.fFXU8fhVqRgUQAXh42aRz7yH_G_AOOfZ-6bEF4w8Tuk",
			claims: map[string]any{"iat": 1700000000.0, "jti": "00010203-0405-4607-8809-0a0b0c0d0e0f",
				"email": "ada@example.com", "name": "Ada Lovelace", "external_id": "user-42",
				"organization": "Analytical Engines", "organization_id": "org-7", "tags": []any{"vip", "beta"},
				"role": "agent", "custom_role_id": "360001", "locale": 8.0, "phone": "+441234567890",
				"remote_photo_url": "https://example.com/ada.png",
				"user_fields":      map[string]any{"plan": "gold", "seats": 3.0}},
		},
		{
			flavor: SDK, ttl: 3 * time.Minute, user: minimal,
			want: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDE4MCwianRpIjoiMDAwMTAyMDMtMDQwNS00NjA3LTg4MDktMGEwYjBjMGQwZTBmIiwiZW1haWwiOiJhZGFAZXhhbXBsZS5jb20iLCJuYW1lIjoiQWRhIExvdmVsYWNlIiwiZXh0ZXJuYWxfaWQiOiJ1c2VyLTQyIn0.wlom9jHFGGH8tPvzMDp0zN2FCXFXbhHTv8BmL1-hMeg",
			claims: map[string]any{"iat": 1700000000.0, "exp": 1700000180.0, "jti": "00010203-0405-4607-8809-0a0b0c0d0e0f",
				"email": "ada@example.com", "name": "Ada Lovelace", "external_id": "user-42"},
		},
	}
	for _, tt := range tests {
		t.Run(string(tt.flavor), func(t *testing.T) {
			s := newTestSigner(t, Config{Flavor: tt.flavor, TTL: tt.ttl, Rand: &countingReader{}})
			got, _, err := s.Sign(tt.user)
			if err != nil {
				t.Fatalf("Sign() error: %v", err)
			}
			if got != tt.want {
				t.Errorf("Sign() =\n%q\nwant\n%q", got, tt.want)
			}

			opts := []jwt.ParserOption{jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(clock), jwt.WithIssuedAt()}
			if _, hasExp := tt.claims["exp"]; hasExp {
				opts = append(opts, jwt.WithExpirationRequired())
			}
			tok, err := jwt.Parse(got, func(tok *jwt.Token) (any, error) { return []byte(testSecret), nil }, opts...)
			if err != nil {
				t.Fatalf("jwt.Parse(Sign()) error: %v", err)
			}
			if kid, hasKID := tok.Header["kid"]; (tt.flavor == Messaging) != hasKID || (hasKID && kid != testKID) {
				t.Errorf("jwt.Parse(Sign()) kid = %v; want %q only for messaging", kid, testKID)
			}
			if tok.Header["typ"] != "JWT" {
				t.Errorf("jwt.Parse(Sign()) typ = %v; want JWT", tok.Header["typ"])
			}
			claims := tok.Claims.(jwt.MapClaims)
			if !equalJSON(t, claims, tt.claims) {
				t.Errorf("jwt.Parse(Sign()) claims = %v; want %v", claims, tt.claims)
			}
			if _, err := jwt.Parse(got, func(*jwt.Token) (any, error) { return []byte("other"), nil },
				jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(clock)); err == nil {
				t.Errorf("jwt.Parse(Sign(), other secret) error = nil; want a signature error")
			}
		})
	}
}

// equalJSON compares two decoded JSON values by their encoding.
func equalJSON(t *testing.T, a, b map[string]any) bool {
	t.Helper()
	return mustJSON(t, a) == mustJSON(t, b)
}
