package session

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
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
	key, err := hkdf.Key(sha256.New, secrets[0], nil, "zdgate digest v1 "+purpose, 32)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(msg)
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(mac.Sum(sum[:0])[:16]), nil
}
