package tokens

import (
	"fmt"
	"log/slog"
)

// Key is one signing secret. Zendesk compares HMACs over the secret's bytes
// exactly as shown in its admin pages, so Secret is never base64-decoded.
// Messaging keys also have an ID (app_...), sent as the kid header.
//
// Key redacts its secret when logged or printed, so a Key can be put in a
// log line or an error by mistake without leaking.
type Key struct {
	ID     string
	Secret []byte
}

// LogValue keeps the secret out of slog output.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.String("secret", redacted(k.Secret)))
}

// String keeps the secret out of fmt's %v and %s.
func (k Key) String() string {
	return fmt.Sprintf("Key{ID:%q Secret:%s}", k.ID, redacted(k.Secret))
}

// GoString keeps the secret out of fmt's %#v.
func (k Key) GoString() string { return "tokens." + k.String() }

func redacted(secret []byte) string {
	if len(secret) == 0 {
		return "(empty)"
	}
	return "REDACTED"
}

// KeySource gives the key to sign with. [Signer.Sign] asks for it on every
// token, so a secret file that is rotated on disk takes effect without a
// restart. Implementations must be safe for concurrent use.
type KeySource interface {
	Key() (Key, error)
}

// StaticKey is a KeySource for a key that never changes: tests, the
// "token mint" command, and secrets given on the command line.
type StaticKey Key

// Key returns the key itself.
func (k StaticKey) Key() (Key, error) { return Key(k), nil }

// LogValue keeps the secret out of slog output.
func (k StaticKey) LogValue() slog.Value { return Key(k).LogValue() }

// String keeps the secret out of fmt's %v and %s.
func (k StaticKey) String() string { return Key(k).String() }

// GoString keeps the secret out of fmt's %#v.
func (k StaticKey) GoString() string { return Key(k).GoString() }
