package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zdgate/zdgate/tokens"
)

// secret is one configured secret: a fixed value from a flag or env, or a file that is re-read when
// its content changes (Kubernetes swaps a Secret volume's files through a symlink; reading the path
// again follows the new link). A new file that does not parse keeps the old value, is logged and
// counted: zdgate is never left without a key.
type secret[T any] struct {
	flag  string
	path  string
	parse func(string) (T, error)
	val   atomic.Pointer[T]
	sum   [32]byte
}

// newSecret reads the initial value; an error names the flag and never contains the secret.
func newSecret[T any](flag, value, path string, parse func(string) (T, error)) (*secret[T], error) {
	s := &secret[T]{flag: flag, path: path, parse: parse}
	raw := value
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s-file: cannot read %s: %v", flagName(flag), path, errors.Unwrap(err))
		}
		raw = string(b)
		s.sum = sha256.Sum256(b)
	}
	v, err := parse(strings.TrimSpace(raw))
	if err != nil {
		if path != "" {
			return nil, fmt.Errorf("%s-file: %v", flagName(flag), err)
		}
		return nil, fmt.Errorf("%s: %v", flagName(flag), err)
	}
	s.val.Store(&v)
	return s, nil
}

// flagName is how errors name a secret: --flag, or providers[i].key for a provider's.
func flagName(flag string) string {
	if strings.HasPrefix(flag, "providers[") {
		return flag
	}
	return "--" + flag
}

// Get returns the current value.
func (s *secret[T]) Get() T { return *s.val.Load() }

// reload re-reads the file; changed reports a new value took effect.
func (s *secret[T]) reload() (changed bool, err error) {
	if s.path == "" {
		return false, nil
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return false, fmt.Errorf("%s-file: cannot read %s: %v", flagName(s.flag), s.path, errors.Unwrap(err))
	}
	sum := sha256.Sum256(b)
	if sum == s.sum {
		return false, nil
	}
	v, err := s.parse(strings.TrimSpace(string(b)))
	if err != nil {
		// Remember the bad content so it is reported once, not every poll.
		s.sum = sum
		return false, fmt.Errorf("%s-file: %v; keeping the previous value", flagName(s.flag), err)
	}
	s.sum = sum
	s.val.Store(&v)
	return true, nil
}

// reloader is a secret whose file may change.
type reloader interface {
	reload() (bool, error)
	name() string
}

func (s *secret[T]) name() string { return s.flag }

// watchSecrets polls every file-backed secret until ctx ends.
func watchSecrets(ctx context.Context, every time.Duration, log *slog.Logger, reloads *prometheus.CounterVec, secrets []reloader) {
	if len(secrets) == 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range secrets {
			changed, err := s.reload()
			switch {
			case err != nil:
				reloads.WithLabelValues(s.name(), "error").Inc()
				log.Error("secret file not reloaded", "secret", s.name(), "cause", err.Error())
			case changed:
				reloads.WithLabelValues(s.name(), "ok").Inc()
				log.Info("secret file reloaded", "secret", s.name())
			}
		}
	}
}

// parseKey is a plain signing secret.
func parseKey(v string) (tokens.Key, error) {
	if v == "" {
		return tokens.Key{}, errors.New("is empty")
	}
	return tokens.Key{Secret: []byte(v)}, nil
}

// messagingKey parses the Messaging secret: "KEY_ID:SECRET" (split at the first colon) or a bare
// secret that takes its id from --zendesk-messaging-key-id.
func messagingKey(keyID string) func(string) (tokens.Key, error) {
	return func(v string) (tokens.Key, error) {
		if v == "" {
			return tokens.Key{}, errors.New("is empty")
		}
		if strings.ContainsAny(v, "\r\n") {
			return tokens.Key{}, errors.New("must be one line")
		}
		if id, sec, ok := strings.Cut(v, ":"); ok {
			if id == "" || sec == "" {
				return tokens.Key{}, errors.New("want KEY_ID:SECRET with both parts")
			}
			return tokens.Key{ID: id, Secret: []byte(sec)}, nil
		}
		if keyID == "" {
			return tokens.Key{}, errors.New("no key id: set --zendesk-messaging-key-id or write KEY_ID:SECRET")
		}
		return tokens.Key{ID: keyID, Secret: []byte(v)}, nil
	}
}

// keySource adapts a watched secret to tokens.KeySource.
type keySource struct{ s *secret[tokens.Key] }

func (k keySource) Key() (tokens.Key, error) { return k.s.Get(), nil }
