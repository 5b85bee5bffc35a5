package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"time"
)

// Ticket format, version 1, sealed by the cookie Sealer (so it cannot be read,
// forged or edited, and expires with the session):
//
//	version(1) | key(32) | session ID
//
// Stored session format, version 1:
//
//	version(1) | nonce(12) | AES-256-GCM_key( session as in encode.go ) | tag(16)
//
// with additional data version | "zdgate session " | session ID, so that a
// value copied to another session's key does not open. Tombstone: the bytes
// of redisTombstone, which no sealed value starts with.
const (
	ticketV1       byte = 1
	valueV1        byte = 1
	sessionKeySize      = 32
	maxIDLen            = 128
	maxTicketLen        = 512 // encoded; a ticket with the longest ID is about 250
	redisTombstone      = "\x00revoked"
)

type ticket struct {
	id  string
	key [sessionKeySize]byte
}

func newTicket(id string) ticket {
	t := ticket{id: id}
	// crypto/rand.Read never returns an error.
	_, _ = rand.Read(t.key[:])
	return t
}

func (s *RedisStore) sealTicket(t ticket, expires time.Time) (string, error) {
	b := make([]byte, 0, 1+sessionKeySize+len(t.id))
	b = append(b, ticketV1)
	b = append(b, t.key[:]...)
	b = append(b, t.id...)
	v, err := s.cookies.sealer.seal(s.ticketAAD, b, expires)
	clear(b)
	return v, err
}

func (s *RedisStore) openTicket(value string) (ticket, error) {
	if len(value) > maxTicketLen {
		return ticket{}, fmt.Errorf("%w: ticket too long", ErrInvalid)
	}
	raw, err := encoding.DecodeString(value)
	if err != nil {
		return ticket{}, fmt.Errorf("%w: bad encoding", ErrInvalid)
	}
	b, err := s.cookies.sealer.open(s.ticketAAD, raw, nil)
	if err != nil {
		return ticket{}, err
	}
	defer clear(b)
	if len(b) <= 1+sessionKeySize || len(b) > 1+sessionKeySize+maxIDLen || b[0] != ticketV1 {
		return ticket{}, fmt.Errorf("%w: malformed ticket", ErrInvalid)
	}
	t := ticket{id: string(b[1+sessionKeySize:])}
	copy(t.key[:], b[1:])
	return t, nil
}

func valueAAD(id string) []byte {
	const label = "zdgate session "
	aad := make([]byte, 0, 1+len(label)+len(id))
	aad = append(aad, valueV1)
	aad = append(aad, label...)
	return append(aad, id...)
}

func sessionAEAD(key *[sessionKeySize]byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("session: cipher: %w", err)
	}
	// Random nonces: a session key seals fewer than 2^32 values (one per Save).
	return cipher.NewGCMWithRandomNonce(block)
}

func sealValue(t ticket, sess *Session) ([]byte, error) {
	plaintext, err := marshalSession(sess)
	if err != nil {
		return nil, err
	}
	defer clear(plaintext)
	a, err := sessionAEAD(&t.key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1, 1+len(plaintext)+a.Overhead())
	out[0] = valueV1
	return a.Seal(out, nil, plaintext, valueAAD(t.id)), nil
}

func openValue(t ticket, v []byte) (*Session, error) {
	if len(v) < 1+gcmOverhead || v[0] != valueV1 {
		return nil, fmt.Errorf("%w: stored session malformed", ErrInvalid)
	}
	a, err := sessionAEAD(&t.key)
	if err != nil {
		return nil, err
	}
	plaintext, err := a.Open(nil, nil, v[1:], valueAAD(t.id))
	if err != nil {
		return nil, fmt.Errorf("%w: stored session does not open with this ticket", ErrInvalid)
	}
	defer clear(plaintext)
	return unmarshalSession(plaintext)
}
