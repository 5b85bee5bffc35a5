package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/zdgate/zdgate/oidc/oidctest"
)

// runBin runs the built zdgate binary.
func runBin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(zdgateBinary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func hs256(t *testing.T, secret string, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCLITokenVerify(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "messaging")
	os.WriteFile(secretFile, []byte("messaging-secret\n"), 0o600)
	now := time.Now().Unix()
	good := jwt.MapClaims{"scope": "user", "external_id": "u-1", "name": "Ann", "iat": now, "exp": now + 600}
	with := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range good {
			c[k] = v
		}
		mut(c)
		return c
	}
	kid := map[string]any{"kid": "app_1"}

	// Minted by the CLI itself, verified by the CLI, from a file and from stdin.
	code, minted, errOut := runBin(t, "", "token", "mint", "--flavor", "messaging", "--secret-file", secretFile, "--key-id", "app_1",
		"--claims", `{"external_id":"u-1","name":"Ann","email":"ann@example.com","email_verified":true}`)
	if code != 0 {
		t.Fatalf("mint: exit %d %s", code, errOut)
	}
	minted = strings.TrimSpace(minted)
	if code, out, errOut := runBin(t, "", "token", "verify", "--flavor", "messaging", "--secret-file", secretFile, "--key-id", "app_1", minted); code != 0 || !strings.Contains(out, `"external_id": "u-1"`) {
		t.Fatalf("verify minted: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := runBin(t, "messaging-secret", "token", "verify", "--flavor", "messaging", "--secret-file", "-", minted); code != 0 {
		t.Fatalf("verify with the secret on stdin: exit %d %s", code, errOut)
	}

	cases := []struct {
		name, token, want string
		args              []string
	}{
		{"expired", hs256(t, "messaging-secret", kid, with(func(c jwt.MapClaims) { c["iat"] = now - 3600; c["exp"] = now - 60 })), "expired", nil},
		{"wrong secret", hs256(t, "another-secret", kid, good), "signature", nil},
		{"wrong kid", hs256(t, "messaging-secret", map[string]any{"kid": "app_other"}, good), "kid", nil},
		{"missing scope", hs256(t, "messaging-secret", kid, with(func(c jwt.MapClaims) { delete(c, "scope") })), "scope", nil},
		{"chat exp too long", hs256(t, "messaging-secret", nil, jwt.MapClaims{"name": "Ann", "email": "a@x.io", "external_id": "u", "iat": now, "exp": now + 3600}), "420", []string{"--flavor", "chat"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"token", "verify", "--flavor", "messaging", "--secret-file", secretFile, "--key-id", "app_1"}
			if c.args != nil {
				args = []string{"token", "verify", "--secret-file", secretFile}
				args = append(args, c.args...)
			}
			code, _, errOut := runBin(t, "", append(args, c.token)...)
			if code != 1 || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and a line about %q", code, errOut, c.want)
			}
		})
	}
	// Usage errors exit 2.
	if code, _, _ := runBin(t, "", "token", "verify", "--flavor", "bogus", "--secret-file", secretFile, minted); code != 2 {
		t.Errorf("bad flavor: exit %d; want 2", code)
	}
	if code, _, _ := runBin(t, "", "token", "verify", "--flavor", "messaging", minted); code != 2 {
		t.Errorf("no secret: exit %d; want 2", code)
	}
}

func TestCLIConfigCheck(t *testing.T) {
	idp := oidctest.NewT(t, oidctest.Options{})
	base := []string{"config", "check", "--upstream=http://127.0.0.1:1", "--public-url=https://help.example.com",
		"--oidc-client-id=zdgate", "--cookie-secret=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"--zendesk-messaging-secret=very-secret-value", "--zendesk-messaging-key-id=app_x"}
	code, out, errOut := runBin(t, "", append(base, "--oidc-issuer="+idp.URL())...)
	if code != 0 {
		t.Fatalf("config check: exit %d\n%s", code, errOut)
	}
	var eff map[string]any
	if err := json.Unmarshal([]byte(out), &eff); err != nil {
		t.Fatalf("not JSON: %s", out)
	}
	if eff["zendesk-messaging-secret"] != "[redacted]" || eff["cookie-secret"] != "[redacted]" || eff["oidc-issuer"] != idp.URL() {
		t.Errorf("effective config = %v", eff)
	}
	if strings.Contains(out+errOut, "very-secret-value") {
		t.Error("config check printed a secret")
	}
	// Without a client secret, introspection cannot be called: say what that means for bearers.
	if !strings.Contains(errOut, "opaque bearer access tokens cannot be checked") || !strings.Contains(errOut, "invalid_audience") {
		t.Errorf("config check without a client secret: stderr %q; want the bearer warning", errOut)
	}
	withSecret := append(base, "--oidc-issuer="+idp.URL(), "--oidc-client-secret="+idp.Client().Secret)
	if code, _, errOut := runBin(t, "", withSecret...); code != 0 || strings.Contains(errOut, "warning:") {
		t.Errorf("config check with introspection and a secret: exit %d, stderr %q; want no warning", code, errOut)
	}
	hydra := oidctest.NewT(t, oidctest.Options{Disable: []string{"introspection"}})
	noIntro := append(base, "--oidc-issuer="+hydra.URL(), "--oidc-client-secret=zdgate-secret")
	if code, _, errOut := runBin(t, "", noIntro...); code != 0 || !strings.Contains(errOut, "advertises no introspection_endpoint: opaque bearer access tokens cannot be checked") {
		t.Errorf("config check against an IdP without introspection: exit %d, stderr %q; want the warning", code, errOut)
	}
	if _, _, errOut := runBin(t, "", append(noIntro, "--insecure-bearer-userinfo")...); !strings.Contains(errOut, "ANY of its clients") {
		t.Errorf("config check with --insecure-bearer-userinfo: stderr %q; want the stronger warning", errOut)
	}
	// An unreachable IdP and a missing value: exit 1, one line per problem.
	code, _, errOut = runBin(t, "", "config", "check", "--upstream=http://127.0.0.1:1", "--oidc-issuer=http://127.0.0.1:1", "--oidc-client-id=x",
		"--cookie-secret=0123456789abcdef0123456789abcdef")
	if code != 1 || !strings.Contains(errOut, "--public-url: required") {
		t.Fatalf("missing value: exit %d %q", code, errOut)
	}
	code, _, errOut = runBin(t, "", append(base, "--oidc-issuer=http://127.0.0.1:1")...)
	if code != 1 || !strings.Contains(errOut, "--oidc-issuer:") {
		t.Fatalf("unreachable IdP: exit %d %q", code, errOut)
	}
	if code, _, _ := runBin(t, "", "config", "check", "--nope"); code != 2 {
		t.Fatalf("usage error: exit %d; want 2", code)
	}
}
