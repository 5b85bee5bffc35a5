package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// jwksMissEvery bounds how often a token that no key of the IdP verifies (an unknown kid, or a
// known kid with a bad signature) may make zdgate fetch the JWKS again: once per interval, however
// many such tokens arrive. A genuine key rotation costs at most that long.
const jwksMissEvery = 10 * time.Second

// errNoKey is a token that none of the IdP's current keys verifies.
var errNoKey = errors.New("no key of the identity provider verifies this token")

// keySet holds the IdP's public signing keys for every token zdgate verifies: ID tokens, bearer
// access tokens and logout tokens. It stands in for go-oidc's RemoteKeySet, which fetches the JWKS
// again for every token naming a kid it does not hold: anyone who can send a token (a bearer
// header, a back-channel logout POST) could make zdgate call the IdP once per request. Here a miss
// refetches at most once per jwksMissEvery, and the tokens in between are refused at once.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	keys atomic.Pointer[[]jose.JSONWebKey]
	gen  atomic.Uint64 // bumped by every successful fetch

	mu       sync.Mutex // one fetch at a time
	lastMiss time.Time
}

// load fetches the JWKS and replaces the keys; an empty or unusable set is an error.
func (k *keySet) load(ctx context.Context) error {
	req, err := http.NewRequestWithContext(withKind(ctx, "jwks"), http.MethodGet, k.url, nil)
	if err != nil {
		return invalid("jwks", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := k.client.Do(req)
	if err != nil {
		return classify("jwks", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		return classify("jwks", &StatusError{StatusCode: res.StatusCode})
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&set); err != nil {
		return invalid("jwks", fmt.Errorf("decode: %w", err))
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		// Keys of types go-jose does not know, encryption keys and secrets are skipped, as
		// go-oidc does: one odd key must not stop the others from working.
		if json.Unmarshal(raw, &key) != nil || key.Use == "enc" {
			continue
		}
		if pub := key.Public(); pub.Valid() {
			keys = append(keys, pub)
		}
	}
	if len(keys) == 0 {
		return invalid("jwks", errors.New("key set holds no usable public signing key"))
	}
	k.keys.Store(&keys)
	k.gen.Add(1)
	return nil
}

// VerifySignature implements go-oidc's KeySet: the payload of a JWT signed with an asymmetric
// algorithm by one of the IdP's keys (the one its kid names, or any when it names none).
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	if v, ok := ctx.Value(verifiedKey{}).(verified); ok && v.raw == raw {
		return v.payload, nil // checked by Client.verify just before
	}
	jws, err := jose.ParseSigned(raw, asymmetricSigAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	gen := k.gen.Load()
	if payload, ok := k.verifyWith(jws, kid); ok {
		return payload, nil
	}
	if err := k.refetch(ctx, gen); err != nil {
		return nil, err
	}
	if payload, ok := k.verifyWith(jws, kid); ok {
		return payload, nil
	}
	return nil, errNoKey
}

func (k *keySet) verifyWith(jws *jose.JSONWebSignature, kid string) ([]byte, bool) {
	keys := k.keys.Load()
	if keys == nil {
		return nil, false
	}
	for i := range *keys {
		key := &(*keys)[i]
		if kid != "" && key.KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refetch loads the JWKS again after a miss, unless the keys changed since the caller looked
// (gen), or a miss refetched them less than jwksMissEvery ago (then errNoKey, without a call).
func (k *keySet) refetch(ctx context.Context, gen uint64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gen.Load() != gen {
		return nil // another miss fetched meanwhile: look again
	}
	now := k.now()
	if !k.lastMiss.IsZero() && now.Sub(k.lastMiss) < jwksMissEvery {
		return errNoKey
	}
	k.lastMiss = now
	return k.load(ctx)
}

// verified carries a payload whose signature Client.verify has just checked, so go-oidc's
// verifier, which runs the claim checks next, does not verify it a second time.
type verified struct {
	raw     string
	payload []byte
}

type verifiedKey struct{}

var asymmetricSigAlgs = func() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(asymmetricAlgs))
	for i, a := range asymmetricAlgs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}()
