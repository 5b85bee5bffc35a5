package session

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseSecrets(t *testing.T) {
	raw := "0123456789abcdefghijklmnopqrstuv" // 32 raw bytes
	key := keyNew
	std := base64.StdEncoding.EncodeToString(key)
	url := base64.URLEncoding.EncodeToString(key)
	if std == strings.TrimRight(url, "=") { // make sure the alphabets differ
		t.Fatal("test key encodes the same in both alphabets")
	}
	for _, tc := range []struct {
		name    string
		text    string
		want    [][]byte
		wantErr string
	}{
		{"raw 32 bytes", raw, [][]byte{[]byte(raw)}, ""},
		{"std base64", std, [][]byte{key}, ""},
		{"url base64", url, [][]byte{key}, ""},
		{"unpadded std", strings.TrimRight(std, "="), [][]byte{key}, ""},
		{"unpadded url", strings.TrimRight(url, "="), [][]byte{key}, ""},
		{"final newline", std + "\n", [][]byte{key}, ""},
		{"surrounding white space", " \t" + std + " \r\n\n", [][]byte{key}, ""},
		{"two lines", std + "\n" + raw + "\n", [][]byte{key, []byte(raw)}, ""},
		{"two lines CRLF", std + "\r\n" + raw + "\r\n", [][]byte{key, []byte(raw)}, ""},
		{"empty", " \n ", nil, "cookie secret: empty"},
		{"short raw", "secret-of-31-bytes-xxxxxxxxxxxx", nil, "must be 32 bytes or base64 of 32 bytes, got 31"},
		{"long raw", raw + "!", nil, "got 33"},
		{"base64 of 16 bytes", base64.StdEncoding.EncodeToString(key[:16]), nil, "base64 of 16"},
		{"base64 of 33 bytes", base64.StdEncoding.EncodeToString(append(key, 'x')), nil, "base64 of 33"},
		{"three lines", std + "\n" + std + "\n" + std, nil, "at most two"},
		{"blank line between", std + "\n\n" + std, nil, "at most two"},
		{"bad second line", std + "\nsecret-two-is-short", nil, "line 2: must be 32 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSecrets(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseSecrets() error = %v; want one containing %q", err, tc.wantErr)
				}
				for _, line := range strings.Split(tc.text, "\n") {
					if line = strings.TrimSpace(line); len(line) > 4 && strings.Contains(err.Error(), line) {
						t.Errorf("ParseSecrets() error %q echoes the secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecrets() error = %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("ParseSecrets() = %d secrets; want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("ParseSecrets()[%d] = %x; want %x", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func newTestSealer(t *testing.T, clk *clock, keys ...[]byte) *Sealer {
	t.Helper()
	s, err := NewSealer(fixedSecrets(keys...))
	if err != nil {
		t.Fatalf("NewSealer() error = %v", err)
	}
	s.Now = clk.Now
	return s
}

func TestSealer(t *testing.T) {
	clk := &clock{t: t0}
	s := newTestSealer(t, clk, keyNew)
	plaintext := []byte("state=abc&nonce=def&verifier=ghi")
	value, err := s.Seal("_zdgate_state", plaintext, t0.Add(10*time.Minute))
	if err != nil {
		t.Fatalf("Seal() error = %v", err)
	}
	if strings.Contains(value, "abc") || strings.ContainsAny(value, "=+/;, ") {
		t.Errorf("Seal() = %q; want opaque unpadded base64url", value)
	}
	got, err := s.Open("_zdgate_state", value)
	if err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("Open() = %q, %v; want %q", got, err, plaintext)
	}
	again, _ := s.Seal("_zdgate_state", plaintext, t0.Add(10*time.Minute))
	if again == value {
		t.Error("Seal() twice gave the same value; want a fresh nonce each time")
	}

	if _, err := s.Open("_zdgate_other", value); !errors.Is(err, ErrInvalid) {
		t.Errorf("Open() under another name: error = %v; want ErrInvalid", err)
	}
	for _, bad := range []string{"", "AAAA", value[:len(value)-2], value + "A", strings.Repeat("A", maxEncoded+4)} {
		if _, err := s.Open("_zdgate_state", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%.20q…) error = %v; want ErrInvalid", bad, err)
		}
	}
	retired := newTestSealer(t, clk, keyOld)
	if _, err := retired.Open("_zdgate_state", value); !errors.Is(err, ErrInvalid) {
		t.Errorf("Open() with a different secret: error = %v; want ErrInvalid", err)
	}
	rotated := newTestSealer(t, clk, keyOld, keyNew)
	if _, err := rotated.Open("_zdgate_state", value); err != nil {
		t.Errorf("Open() with the sealing secret second: error = %v", err)
	}

	clk.Advance(10*time.Minute - time.Millisecond)
	if _, err := s.Open("_zdgate_state", value); err != nil {
		t.Errorf("Open() 1ms before expiry: error = %v", err)
	}
	clk.Advance(time.Millisecond)
	if _, err := s.Open("_zdgate_state", value); !errors.Is(err, ErrExpired) {
		t.Errorf("Open() at expiry: error = %v; want ErrExpired", err)
	}

	if _, err := s.Seal("", plaintext, t0); err == nil {
		t.Error("Seal() with no name: want an error")
	}
	if _, err := s.Seal("n", plaintext, time.Time{}); err == nil {
		t.Error("Seal() with no expiry: want an error")
	}
	if _, err := NewSealer(nil); err == nil {
		t.Error("NewSealer(nil): want an error")
	}
}

func TestSealerDefaultClock(t *testing.T) {
	s, err := NewSealer(fixedSecrets(keyNew))
	if err != nil {
		t.Fatal(err)
	}
	past, _ := s.Seal("n", []byte("x"), time.Now().Add(-time.Second))
	if _, err := s.Open("n", past); !errors.Is(err, ErrExpired) {
		t.Errorf("Open() of a value that expired a second ago: error = %v; want ErrExpired", err)
	}
	future, _ := s.Seal("n", []byte("x"), time.Now().Add(time.Hour))
	if _, err := s.Open("n", future); err != nil {
		t.Errorf("Open() error = %v", err)
	}
}

func TestKeyringCacheBounded(t *testing.T) {
	k := newKeyring(nil)
	for i := range 3 * maxCachedKeys {
		if _, err := k.aead(testKey(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if n := len(k.aeads); n > maxCachedKeys {
			t.Fatalf("cache holds %d ciphers; want at most %d", n, maxCachedKeys)
		}
	}
	a1, _ := k.aead(keyNew)
	a2, _ := k.aead(bytes.Clone(keyNew))
	if a1 != a2 {
		t.Error("aead() derived the same secret twice; want it cached by value")
	}
}

func TestSealAllocationsCached(t *testing.T) {
	s, _ := NewSealer(fixedSecrets(keyNew, keyOld))
	value, _ := s.Seal("n", []byte("x"), time.Now().Add(time.Hour))
	before := testing.AllocsPerRun(100, func() { _, _ = s.Open("n", value) })
	if before > 6 {
		t.Errorf("Open() makes %v allocations; want the cipher cached, not derived per call", before)
	}
}
