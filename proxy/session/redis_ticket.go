package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"time"
)

// Ticket format, version 2, sealed by the cookie Sealer (so it cannot be read,
// forged or edited, and expires with the session):
//
//	version(2) | key(32) | flags(1) | SHA-256(sid)(32) | SHA-256(sub)(32) | session ID
//
// flags bit 0: the session has an IdP sid, bit 1: a subject. The hashes name the
// revocation markers, so Load fetches the session and its markers in one round
// trip; Load checks they match the session the key opens.
//
// Stored session format, version 1:
//
//	version(1) | nonce(12) | AES-256-GCM_key( session as in encode.go ) | tag(16)
//
// with additional data version | "zdgate session " | session ID, so that a
// value copied to another session's key does not open. Tombstone: the bytes
// of redisTombstone, which no sealed value starts with.
const (
	ticketV2       byte = 2
	valueV1        byte = 1
	sessionKeySize      = 32
	maxIDLen            = 128
	maxTicketLen        = 512 // encoded; a ticket with the longest ID is about 250
	redisTombstone      = "\x00revoked"
)

type ticket struct {
	id             string
	key            [sessionKeySize]byte
	hasSID, hasSub bool
	sid, sub       [sha256.Size]byte
}

const ticketFixed = 1 + sessionKeySize + 1 + 2*sha256.Size

// newTicket makes a ticket with a fresh key for sess.
func newTicket(sess *Session) ticket {
	t := ticket{id: sess.ID}
	// crypto/rand.Read never returns an error.
	_, _ = rand.Read(t.key[:])
	t.setOwner(sess)
	return t
}

// setOwner names sess's revocation markers: the hashes of its sid and subject, scoped to its
// provider (scopedName; unchanged for a single-IdP session).
func (t *ticket) setOwner(sess *Session) {
	t.hasSID, t.hasSub = sess.SID != "", sess.Subject != ""
	t.sid, t.sub = ownerSums(sess)
}

func ownerSums(sess *Session) (sid, sub [sha256.Size]byte) {
	return sha256.Sum256([]byte(scopedName(sess.Provider, sess.SID))), sha256.Sum256([]byte(scopedName(sess.Provider, sess.Subject)))
}

// owns reports whether sess is the session the ticket was issued for.
func (t *ticket) owns(sess *Session) bool {
	sid, sub := ownerSums(sess)
	return t.hasSID == (sess.SID != "") && t.hasSub == (sess.Subject != "") && t.sid == sid && t.sub == sub
}

func (s *RedisStore) sealTicket(t ticket, expires time.Time) (string, error) {
	b := t.marshal()
	v, err := s.cookies.sealer.seal(s.ticketAAD, b, expires)
	clear(b)
	return v, err
}

// marshal is the ticket's plaintext (it holds the session key: clear it after use).
func (t *ticket) marshal() []byte {
	b := make([]byte, 0, ticketFixed+len(t.id))
	b = append(b, ticketV2)
	b = append(b, t.key[:]...)
	var flags byte
	if t.hasSID {
		flags |= 1
	}
	if t.hasSub {
		flags |= 2
	}
	b = append(b, flags)
	b = append(b, t.sid[:]...)
	b = append(b, t.sub[:]...)
	return append(b, t.id...)
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
	if len(b) <= ticketFixed || len(b) > ticketFixed+maxIDLen || b[0] != ticketV2 || b[1+sessionKeySize]&^3 != 0 {
		return ticket{}, fmt.Errorf("%w: malformed ticket", ErrInvalid)
	}
	t := ticket{id: string(b[ticketFixed:])}
	copy(t.key[:], b[1:])
	flags := b[1+sessionKeySize]
	t.hasSID, t.hasSub = flags&1 != 0, flags&2 != 0
	copy(t.sid[:], b[2+sessionKeySize:])
	copy(t.sub[:], b[2+sessionKeySize+sha256.Size:])
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
