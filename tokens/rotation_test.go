package tokens

import (
	"errors"
	"sync"
	"testing"
)

// rotatingKeys hands out its keys in turn, as a secret file might change.
type rotatingKeys struct {
	mu   sync.Mutex
	keys []Key
	next int
}

func (r *rotatingKeys) Key() (Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.keys[r.next%len(r.keys)]
	r.next++
	return k, nil
}

func (r *rotatingKeys) set(keys ...Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys, r.next = keys, 0
}

func TestSignUsesRotatedKey(t *testing.T) {
	old := Key{ID: "app_old", Secret: []byte("old secret")}
	newer := Key{ID: "app_new", Secret: []byte("new secret")}
	keys := &rotatingKeys{keys: []Key{old}}
	s := newTestSigner(t, Config{Flavor: Messaging, Keys: keys})

	first, _, err := s.Sign(fullUser())
	if err != nil {
		t.Fatal(err)
	}
	keys.set(newer)
	second, _, err := s.Sign(fullUser())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		key   Key
		valid bool
	}{
		{"first with old key", first, old, true},
		{"second with new key", second, newer, true},
		{"second with old secret", second, Key{ID: newer.ID, Secret: old.Secret}, false},
		{"second with old kid", second, Key{ID: old.ID, Secret: newer.Secret}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Verify(tt.token, VerifyOptions{Flavor: Messaging, Secret: tt.key.Secret, KeyID: tt.key.ID, Now: clock})
			if r.Valid() != tt.valid {
				t.Errorf("Verify() problems = %q; want valid %v", r.Problems, tt.valid)
			}
		})
	}

	t.Run("messaging key ID corrected, same secret", func(t *testing.T) {
		keys := &rotatingKeys{keys: []Key{{ID: "app_typo", Secret: []byte(testSecret)}}}
		s := newTestSigner(t, Config{Flavor: Messaging, Keys: keys})
		for _, kid := range []string{"app_typo", "app_fixed"} {
			keys.set(Key{ID: kid, Secret: []byte(testSecret)})
			tok, _, err := s.Sign(fullUser())
			if err != nil {
				t.Fatal(err)
			}
			if r := Verify(tok, VerifyOptions{Flavor: Messaging, Secret: []byte(testSecret), KeyID: kid, Now: clock}); !r.Valid() {
				t.Errorf("Verify(token after kid %q) problems = %q; want none", kid, r.Problems)
			}
		}
	})

	t.Run("chat secret rotated under the same ID", func(t *testing.T) {
		keys := &rotatingKeys{keys: []Key{{Secret: []byte("old secret")}}}
		s := newTestSigner(t, Config{Flavor: Chat, Keys: keys})
		for _, secret := range []string{"old secret", "new secret", "old secret"} {
			keys.set(Key{Secret: []byte(secret)})
			tok, _, err := s.Sign(fullUser())
			if err != nil {
				t.Fatal(err)
			}
			if r := Verify(tok, VerifyOptions{Flavor: Chat, Secret: []byte(secret), Now: clock}); !r.Valid() {
				t.Errorf("Verify(token after rotation to %q) problems = %q; want none", secret, r.Problems)
			}
		}
	})

	t.Run("a key that goes bad stops signing", func(t *testing.T) {
		keys.set(Key{ID: "app_new"})
		if tok, _, err := s.Sign(fullUser()); !errors.Is(err, ErrKeyInvalid) {
			t.Errorf("Sign() = %q, %v; want ErrKeyInvalid", tok, err)
		}
	})
}

// TestSignConcurrent signs from many goroutines while the key alternates,
// so the race detector sees the pooled HMAC state shared, and every token
// must still verify with the key its kid names.
func TestSignConcurrent(t *testing.T) {
	secrets := map[string][]byte{"app_a": []byte("secret a"), "app_b": []byte("secret b")}
	keys := &rotatingKeys{keys: []Key{{ID: "app_a", Secret: secrets["app_a"]}, {ID: "app_b", Secret: secrets["app_b"]}}}
	s := newTestSigner(t, Config{Flavor: Messaging, Keys: keys})
	const workers, each = 8, 100
	tokens := make(chan string, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				tok, _, err := s.Sign(fullUser())
				if err != nil {
					t.Error(err)
					return
				}
				tokens <- tok
			}
		})
	}
	wg.Wait()
	close(tokens)
	for tok := range tokens {
		h, _ := segments(t, tok)
		kid, _ := h["kid"].(string)
		r := Verify(tok, VerifyOptions{Flavor: Messaging, Secret: secrets[kid], KeyID: kid, Now: clock})
		if !r.Valid() {
			t.Fatalf("Verify(token with kid %q) problems = %q; want none", kid, r.Problems)
		}
	}
}
