package tokens

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestKeyRedacts prints and logs keys every way a careless caller might,
// and checks the secret never shows while the ID does.
func TestKeyRedacts(t *testing.T) {
	k := Key{ID: testKID, Secret: []byte(testSecret)}
	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("key", "key", k, "static", StaticKey(k))
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("key", "key", k, "static", StaticKey(k))
	outputs := map[string]string{
		"slog JSON":  jsonLog.String(),
		"slog text":  textLog.String(),
		"%v":         fmt.Sprintf("%v", k),
		"%+v":        fmt.Sprintf("%+v", k),
		"%#v":        fmt.Sprintf("%#v", k),
		"%s":         fmt.Sprintf("%s", k),
		"static %v":  fmt.Sprintf("%v", StaticKey(k)),
		"static %#v": fmt.Sprintf("%#v", StaticKey(k)),
		"pointer %v": fmt.Sprintf("%v", &k),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(out, testSecret) {
				t.Errorf("output %q contains the secret", out)
			}
			if !strings.Contains(out, testKID) || !strings.Contains(out, "REDACTED") {
				t.Errorf("output %q; want the key ID and REDACTED", out)
			}
		})
	}
}

func TestStaticKey(t *testing.T) {
	var ks KeySource = StaticKey{ID: "a", Secret: []byte("b")}
	k, err := ks.Key()
	if err != nil || k.ID != "a" || string(k.Secret) != "b" {
		t.Errorf("StaticKey.Key() = %v, %v; want ID a, secret b", k, err)
	}
}
