package session

import (
	"bytes"
	"testing"
)

func TestDigest(t *testing.T) {
	secrets := [][]byte{bytes.Repeat([]byte{1}, SecretSize)}
	s, err := NewSealer(func() [][]byte { return secrets })
	if err != nil {
		t.Fatal(err)
	}
	d := func(purpose, msg string) string {
		t.Helper()
		v, err := s.Digest(purpose, []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a := d("widget user", "user-1")
	if len(a) != 22 || a != d("widget user", "user-1") {
		t.Fatalf("Digest = %q; want 22 stable base64url characters", a)
	}
	if a == d("widget user", "user-2") || a == d("other purpose", "user-1") {
		t.Error("Digest does not tell inputs or purposes apart")
	}
	if bytes.Contains([]byte(a), []byte("user")) {
		t.Errorf("Digest %q shows its input", a)
	}
	// A new current secret gives new digests (an old second secret does not matter).
	secrets = [][]byte{bytes.Repeat([]byte{2}, SecretSize), secrets[0]}
	if a == d("widget user", "user-1") {
		t.Error("Digest did not change with the cookie secret")
	}
	if _, err := s.Digest("", []byte("x")); err == nil {
		t.Error("Digest with an empty purpose = nil error")
	}
}
