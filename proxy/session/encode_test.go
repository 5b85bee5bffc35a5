package session

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestEncodeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *Session
	}{
		{"typical", typicalSession(t0)},
		{"large", largeSession(t0)},
		{"minimal, zero times, nil claims", &Session{ID: "x", CreatedAt: t0}},
		{"empty claims", &Session{ID: "x", CreatedAt: t0, Claims: map[string]any{}}},
		{"odd strings", &Session{ID: "ü\x00\"", Subject: "{}", AccessToken: "\xff\xfe", CreatedAt: t0.Add(123 * time.Millisecond)}},
		{"times before 1970", &Session{ID: "x", CreatedAt: t0, TokenExpiry: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := marshalSession(tc.in)
			if err != nil {
				t.Fatalf("marshalSession() error = %v", err)
			}
			out, err := unmarshalSession(b)
			if err != nil {
				t.Fatalf("unmarshalSession() error = %v", err)
			}
			assertSameSession(t, out, tc.in)
			if (out.Claims == nil) != (tc.in.Claims == nil) {
				t.Errorf("Claims nil = %v; want %v", out.Claims == nil, tc.in.Claims == nil)
			}
		})
	}
	if _, err := marshalSession(&Session{ID: "x", Claims: map[string]any{"c": make(chan int)}}); err == nil {
		t.Error("marshalSession() of unencodable claims: want an error")
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	good, err := marshalSession(smallSession(t0))
	if err != nil {
		t.Fatal(err)
	}
	// Every prefix either fails or is a complete session without claims;
	// none panics.
	for n := range len(good) {
		s, err := unmarshalSession(good[:n])
		if err == nil && (s.Claims != nil || s.IDToken != "id-token-secret") {
			t.Fatalf("unmarshalSession(first %d bytes) = %v; want an error", n, s)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("unmarshalSession(first %d bytes) error = %v; want ErrInvalid", n, err)
		}
	}
	noID, _ := marshalSession(&Session{CreatedAt: t0})
	noCreated, _ := marshalSession(&Session{ID: "x"})
	noClaims, _ := marshalSession(&Session{ID: "x", CreatedAt: t0})
	for name, b := range map[string][]byte{
		"empty":          nil,
		"huge length":    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"claims array":   append(noClaims, "[1,2]"...),
		"no ID":          noID,
		"no CreatedAt":   noCreated,
		"trailing bytes": append(append([]byte{}, good...), 'x'),
	} {
		if _, err := unmarshalSession(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("unmarshalSession(%s) error = %v; want ErrInvalid", name, err)
		}
	}
}

// FuzzDecodeSession: only sealed values reach the decoder, but a panic there
// would still take the request down.
func FuzzDecodeSession(f *testing.F) {
	for _, s := range []*Session{smallSession(t0), {ID: "x", CreatedAt: t0}} {
		b, _ := marshalSession(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := unmarshalSession(b)
		if err != nil {
			return
		}
		again, err := marshalSession(s)
		if err != nil {
			t.Fatalf("marshalSession() of a decoded session: %v", err)
		}
		s2, err := unmarshalSession(again)
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("re-encoding changed the session: %v, %v", s2, err)
		}
	})
}
