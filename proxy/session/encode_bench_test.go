package session

import (
	"encoding/json"
	"testing"
)

// BenchmarkEncoding weighs the binary session layout (encode.go) against the standard encoder,
// encoding/json of the same Session, for a typical session: the sealed cookie's size (what every
// request carries) and the time to decode one (paid once per new cookie value: a cached Load does
// not decode).
func BenchmarkEncoding(b *testing.B) {
	store, _ := newStore(b, nil)
	s := typicalSession(t0)
	for _, enc := range []struct {
		name      string
		marshal   func(*Session) ([]byte, error)
		unmarshal func([]byte) error
	}{
		{"binary", marshalSession, func(p []byte) error { _, err := unmarshalSession(p); return err }},
		{"json", func(s *Session) ([]byte, error) { return json.Marshal(s) },
			func(p []byte) error { var s Session; return json.Unmarshal(p, &s) }},
	} {
		b.Run(enc.name, func(b *testing.B) {
			plain, err := enc.marshal(s)
			if err != nil {
				b.Fatal(err)
			}
			sealed, err := store.sealer.seal(store.aad, plain, s.ExpiresAt(store.ttl))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := enc.unmarshal(plain); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(plain)), "plain-bytes")
			b.ReportMetric(float64(len(sealed)), "cookie-bytes")
			b.ReportMetric(float64((len(sealed)+store.chunkSize-1)/store.chunkSize), "cookies")
		})
	}
}
