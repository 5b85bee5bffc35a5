package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zdgate/zdgate/proxy/session"
	"github.com/zdgate/zdgate/tokens"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var minimal = []string{
	"--upstream=http://127.0.0.1:8080", "--public-url=https://help.example.com",
	"--oidc-issuer=https://idp.example.com", "--oidc-client-id=zdgate",
	"--cookie-secret=0123456789abcdef0123456789abcdef",
}

func parseConfig(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	cfg := &Config{}
	if _, err := cfg.options().parse(args, envOf(env)); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "zdgate.yaml")
	os.WriteFile(file, []byte("recheck-interval: 5m\nlisten: ':7000'\ncookie-name: fromfile\nskip-auth-path:\n  - ^/public/\n  - \\.css$\nallowed-group: [a, b]\n"), 0o600)
	args := append([]string{"--config", file, "--listen=:9000"}, minimal...)
	cfg, err := parseConfig(t, args, map[string]string{"ZDGATE_COOKIE_NAME": "fromenv", "ZDGATE_LISTEN": ":8000", "ZDGATE_ALLOWED_GROUP": "x,y"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":9000" {
		t.Errorf("listen = %q; want the flag's :9000", cfg.Listen)
	}
	if cfg.CookieName != "fromenv" {
		t.Errorf("cookie-name = %q; want env over file", cfg.CookieName)
	}
	if cfg.RecheckInterval != 5*time.Minute {
		t.Errorf("recheck-interval = %v; want the file's 5m", cfg.RecheckInterval)
	}
	if strings.Join(cfg.SkipAuthPath, " ") != `^/public/ \.css$` {
		t.Errorf("skip-auth-path = %q", cfg.SkipAuthPath)
	}
	if strings.Join(cfg.AllowedGroup, ",") != "x,y" {
		t.Errorf("allowed-group = %q; want env's x,y replacing the file's list", cfg.AllowedGroup)
	}
	if cfg.SessionTTL != 12*time.Hour || cfg.MetricsListen != ":9090" || !cfg.CookieSecure {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

func TestConfigEveryProblemAtOnce(t *testing.T) {
	_, err := parseConfig(t, []string{"--auth-mode=maybe", "--skip-auth-path=(", "--trusted-proxy=10.0.0.0/99"}, nil)
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	msg := err.Error()
	for _, want := range []string{
		"--upstream: required", "--public-url: required", "--oidc-issuer: required", "--oidc-client-id: required",
		"--cookie-secret: required", "--auth-mode: must be required or optional", "--skip-auth-path: invalid regular expression",
		"--trusted-proxy: want a CIDR",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems lack %q:\n%s", want, msg)
		}
	}
}

func TestConfigMalformedValues(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("upstrem: http://typo\nrecheck-interval: often\n"), 0o600)
	_, err := parseConfig(t, append([]string{"--config", file, "--session-ttl=soon", "--no-such-flag"}, minimal...), map[string]string{"ZDGATE_INJECT": "perhaps"})
	if err == nil {
		t.Fatal("parse() = nil")
	}
	for _, want := range []string{`--config: unknown key "upstrem"`, "--recheck-interval: want a duration", "--session-ttl: want a duration",
		"--no-such-flag: unknown flag", "--inject: want true or false", "ZDGATE_INJECT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

func TestConfigSecretsNeverInErrors(t *testing.T) {
	secret := "tooshort-secret-value"
	_, err := parseConfig(t, append(minimal[:4:4], "--cookie-secret="+secret), nil)
	if err != nil {
		t.Fatal(err) // validation does not parse secrets; wiring does
	}
	cfg, _ := parseConfig(t, append(minimal[:4:4], "--cookie-secret="+secret), nil)
	_, werr := wire(cfg, discardLogger(), nil)
	if werr == nil || !strings.Contains(werr.Error(), "--cookie-secret") {
		t.Fatalf("wire() = %v; want a --cookie-secret error", werr)
	}
	if strings.Contains(werr.Error(), secret) {
		t.Fatalf("error leaks the secret: %v", werr)
	}
}

func TestServeExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"serve"}, nil, &out, &errb, envOf(nil)); code != 1 {
		t.Errorf("serve without config: exit %d; want 1", code)
	}
	if !strings.Contains(errb.String(), "zdgate: --upstream: required") {
		t.Errorf("stderr = %q", errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"serve", "--bogus"}, nil, &out, &errb, envOf(nil)); code != 2 {
		t.Errorf("unknown flag: exit %d; want 2", code)
	}
	out.Reset()
	if code := run(context.Background(), []string{"serve", "--help"}, nil, &out, &errb, envOf(nil)); code != 0 || !strings.Contains(out.String(), "--recheck-interval [1m0s]") {
		t.Errorf("--help: exit %d, %q", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"version"}, nil, &out, &errb, envOf(nil)); code != 0 || !strings.HasPrefix(out.String(), "zdgate ") {
		t.Errorf("version: %d %q", code, out.String())
	}
}

func TestSecretFileRotation(t *testing.T) {
	dir := t.TempDir()
	// Kubernetes layout: the file is a symlink into a ..data directory that is swapped atomically.
	write := func(gen, content string) {
		d := filepath.Join(dir, gen)
		os.MkdirAll(d, 0o700)
		os.WriteFile(filepath.Join(d, "secret"), []byte(content), 0o600)
		tmp := filepath.Join(dir, "..data_tmp")
		os.Remove(tmp)
		if err := os.Symlink(gen, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	write("gen1", "app_old:old-secret\n")
	link := filepath.Join(dir, "messaging")
	if err := os.Symlink(filepath.Join("..data", "secret"), link); err != nil {
		t.Fatal(err)
	}
	s, err := newSecret("zendesk-messaging-secret", "", link, messagingKey(""))
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := tokens.NewSigner(tokens.Config{Flavor: tokens.Messaging, Keys: keySource{s}, TTL: time.Minute})
	tok, _, _ := signer.Sign(tokens.User{ExternalID: "u1"})
	if r := tokens.Verify(tok, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte("old-secret"), KeyID: "app_old"}); len(r.Problems) > 0 {
		t.Fatalf("old key: %v", r.Problems)
	}
	write("gen2", "app_new:new-secret")
	if changed, err := s.reload(); !changed || err != nil {
		t.Fatalf("reload() = %v, %v; want changed", changed, err)
	}
	tok, _, _ = signer.Sign(tokens.User{ExternalID: "u1"})
	if r := tokens.Verify(tok, tokens.VerifyOptions{Flavor: tokens.Messaging, Secret: []byte("new-secret"), KeyID: "app_new"}); len(r.Problems) > 0 {
		t.Fatalf("after rotation the token is not signed with the new key and kid: %v", r.Problems)
	}
	// A half-written (empty) or broken file keeps the last good key.
	for _, bad := range []string{"", "app_x:", "two\nlines"} {
		write("gen-bad", bad)
		if changed, err := s.reload(); changed || err == nil {
			t.Fatalf("reload(%q) = %v, %v; want an error and no change", bad, changed, err)
		}
		if k := s.Get(); k.ID != "app_new" {
			t.Fatalf("after bad file %q the key is %q; want app_new kept", bad, k.ID)
		}
	}
}

func TestCookieSecretFileTwoLines(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "cookie")
	os.WriteFile(f, []byte("  ffffffffffffffffffffffffffffffff\n0123456789abcdef0123456789abcdef\n\n"), 0o600)
	s, err := newSecret("cookie-secret", "", f, session.ParseSecrets)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Get(); len(got) != 2 || string(got[0]) != "ffffffffffffffffffffffffffffffff" {
		t.Fatalf("secrets = %q", got)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
