package proxy

import (
	"strings"
	"sync"
	"testing"

	"github.com/zdgate/zdgate/oidc"
)

// TestSharedSessionClaimsAreNeverWritten: the opened-session cache hands every request with the
// same cookie the same *Session, so building an identity from its claims must never write into
// them. It matters when an identity differs from what was sealed: here a session sealed under the
// default email verification claim is used by a replica restarted with
// --email-verified-claim=xms_edov, which reads the email as unverified. Many requests at once;
// the race detector reports a write to the shared map (and the runtime may crash on one).
func TestSharedSessionClaimsAreNeverWritten(t *testing.T) {
	a := newStack(t, stackOpts{})
	b := newStack(t, stackOpts{sharedIdP: a.idp, clock: a.clock, oidc: func(c *oidc.Config) { c.EmailVerifiedClaim = "xms_edov" }})
	c := newClient() // cookies are per host, not per port: the browser takes its cookie from a to b
	a.login(c, "/")
	// Open the cookie on b once, without building an identity: every request below then gets the
	// same cached *Session, and all of them would disagree with its flag at once.
	if _, err := b.sessionOf(c); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	bodies := make(chan string, 64)
	for range 8 {
		wg.Go(func() {
			for range 8 {
				_, body := b.do(c, "GET", "/oauth2/userinfo", nil)
				bodies <- body
			}
		})
	}
	wg.Wait()
	close(bodies)
	for body := range bodies {
		if !strings.Contains(body, `"email_verified":false`) || strings.Contains(body, "alice@") {
			t.Fatalf("userinfo on the replica that reads xms_edov = %s; want the email unverified and not shown", body)
		}
	}
	// The session itself still says what the IdP said when it was sealed.
	s, err := b.sessionOf(c)
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Claims["email_verified"]; v != true {
		t.Errorf("cached session's email_verified = %v; want true, untouched by building identities", v)
	}
}
