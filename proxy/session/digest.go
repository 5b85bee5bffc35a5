package session

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"sync"
)

// Digest returns an opaque, keyed hash of msg: HMAC-SHA256 under a key
// derived (HKDF) from the current cookie secret and purpose, base64url, 128
// bits. It lets the browser hold a value that tells two inputs apart without
// revealing either (the proxy uses it for "which user the widget is logged
// in as"). Rotating the cookie secret changes every digest.
func (s *Sealer) Digest(purpose string, msg []byte) (string, error) {
	secrets := s.keys.secrets()
	if len(secrets) == 0 || len(secrets[0]) != SecretSize {
		return "", errNoSecret
	}
	if purpose == "" {
		return "", errors.New("session: digest: empty purpose")
	}
	macs, err := s.digests.macs(secrets[0], purpose)
	if err != nil {
		return "", err
	}
	mac := macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(msg)
	var sum [sha256.Size]byte
	out := base64.RawURLEncoding.EncodeToString(mac.Sum(sum[:0])[:16])
	macs.Put(mac)
	return out, nil
}

// digestKeys caches, per secret and purpose, a pool of keyed HMACs: deriving
// the key (HKDF) and its HMAC pads on every token request would cost a few
// dozen allocations. Like the keyring, it is cleared when secrets keep
// changing.
type digestKeys struct {
	mu    sync.Mutex
	pools map[string]*sync.Pool
}

func (d *digestKeys) macs(secret []byte, purpose string) (*sync.Pool, error) {
	id := string(secret) + "\x00" + purpose
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.pools[id]; p != nil {
		return p, nil
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "zdgate digest v1 "+purpose, 32)
	if err != nil {
		return nil, err
	}
	if d.pools == nil || len(d.pools) >= maxCachedKeys {
		d.pools = map[string]*sync.Pool{}
	}
	p := &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}
	d.pools[id] = p
	return p, nil
}
