package tokens

import (
	"errors"
	"testing"
)

func TestMessagingEmailPolicy(t *testing.T) {
	u := User{ExternalID: "u1", Name: "Ada", Email: "ada@example.com", EmailVerified: true}
	for _, tt := range []struct {
		policy    MessagingEmail
		wantEmail bool
	}{{"", true}, {EmailVerified, true}, {EmailOmit, false}} {
		tok, _, err := newTestSigner(t, Config{Flavor: Messaging, MessagingEmail: tt.policy}).Sign(u)
		if err != nil {
			t.Fatal(err)
		}
		_, c := segments(t, tok)
		_, hasEmail := c["email"]
		_, hasEV := c["email_verified"]
		if hasEmail != tt.wantEmail || hasEV != tt.wantEmail {
			t.Errorf("policy %q: claims %v; want email present = %v", tt.policy, c, tt.wantEmail)
		}
		if c["external_id"] != "u1" || c["name"] != "Ada" {
			t.Errorf("policy %q: claims %v; want external_id and name kept", tt.policy, c)
		}
	}
	// omit exists for messaging only: Chat, SSO and SDK cannot be minted without the email.
	for _, f := range []Flavor{Chat, SSO, SDK} {
		if _, err := NewSigner(Config{Flavor: f, Keys: StaticKey{Secret: []byte(testSecret)}, MessagingEmail: EmailOmit}); err == nil {
			t.Errorf("NewSigner(%s, omit) = nil error; want a refusal", f)
		}
	}
	if _, err := NewSigner(Config{Flavor: Messaging, Keys: StaticKey{ID: testKID, Secret: []byte(testSecret)}, MessagingEmail: "never"}); err == nil {
		t.Error("NewSigner(messaging, never) = nil error; want a refusal")
	}
	if p, err := ParseMessagingEmail("omit"); err != nil || p != EmailOmit {
		t.Errorf("ParseMessagingEmail(omit) = %q, %v", p, err)
	}
	if _, err := ParseMessagingEmail("Omit"); err == nil {
		t.Error("ParseMessagingEmail(Omit) = nil error; want exact values only")
	}
}

func TestChatEmailCharacters(t *testing.T) {
	s := newTestSigner(t, Config{Flavor: Chat})
	u := User{ExternalID: "u1", Name: "Zoë", Email: "zoë@example.com", EmailVerified: true}
	_, _, err := s.Sign(u)
	var ce *ClaimError
	if !errors.As(err, &ce) || ce.Claim != "email" {
		t.Fatalf("Sign(accented email) error = %v; want a *ClaimError for email", err)
	}
	u.Email = "zoe.o'neil+chat@example.com"
	if _, _, err := s.Sign(u); err != nil {
		t.Errorf("Sign(ASCII email) = %v; want a token (an accented name is fine)", err)
	}
	// Messaging has no such rule.
	u.Email = "zoë@example.com"
	if _, _, err := newTestSigner(t, Config{Flavor: Messaging}).Sign(u); err != nil {
		t.Errorf("messaging Sign(accented email) = %v; want a token", err)
	}
}
