package oidc

import (
	"maps"
	"sync"
	"testing"
)

// TestIdentityOfNeverWritesItsClaims: IdentityOf reads claims kept in a session, which the
// session cache shares between requests; it must return the normalised flag without writing it
// into them.
func TestIdentityOfNeverWritesItsClaims(t *testing.T) {
	for _, tc := range []struct {
		name          string
		verifiedClaim string
		claims        map[string]any
		wantVerified  bool
	}{
		{"string true (Cognito)", "", map[string]any{"sub": "u", "email": "a@x.test", "email_verified": "true"}, true},
		{"flag without an email", "", map[string]any{"sub": "u", "email_verified": true}, false},
		{"other claim names the flag", "xms_edov", map[string]any{"sub": "u", "email": "a@x.test", "email_verified": true}, false},
		{"other claim, set", "xms_edov", map[string]any{"sub": "u", "email": "a@x.test", "xms_edov": true}, true},
		{"already normal", "", map[string]any{"sub": "u", "email": "a@x.test", "email_verified": true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{cfg: Config{EmailVerifiedClaim: tc.verifiedClaim}}
			before := maps.Clone(tc.claims)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					id := c.IdentityOf(tc.claims)
					if id.EmailVerified != tc.wantVerified {
						t.Errorf("EmailVerified = %v; want %v", id.EmailVerified, tc.wantVerified)
					}
					if v, _ := id.Claims["email_verified"].(bool); v != tc.wantVerified {
						t.Errorf("Claims[email_verified] = %v; want %v (what the token mapping reads)", id.Claims["email_verified"], tc.wantVerified)
					}
				})
			}
			wg.Wait()
			if !maps.Equal(tc.claims, before) {
				t.Errorf("IdentityOf wrote into its claims: %v; was %v", tc.claims, before)
			}
		})
	}
}
