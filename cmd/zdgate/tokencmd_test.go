package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestCLITokenVerifyStrict: a token Zendesk accepts (its documented rules) is valid, with zdgate's
// stricter policies as warnings; --strict turns those into exit 1. A broken Zendesk rule is exit 1
// either way.
func TestCLITokenVerifyStrict(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "messaging")
	os.WriteFile(secretFile, []byte("messaging-secret\n"), 0o600)
	kid := map[string]any{"kid": "app_1"}
	// Zendesk's minimal Messaging payload: no iat, no exp, an email without email_verified.
	lenient := hs256(t, "messaging-secret", kid, jwt.MapClaims{"scope": "user", "external_id": "u-1", "email": "a@example.com"})
	base := []string{"token", "verify", "--flavor", "messaging", "--secret-file", secretFile}

	code, _, errOut := runBin(t, "", append(base, lenient)...)
	if code != 0 {
		t.Fatalf("a token Zendesk accepts: exit %d, stderr %q; want 0", code, errOut)
	}
	for _, w := range []string{"warning: iat missing", "warning: exp missing", "warning: email present without email_verified:true"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr %q; want the line %q", errOut, w)
		}
	}
	if strings.Contains(errOut, "zendesk:") {
		t.Errorf("stderr %q names a Zendesk error for a token Zendesk accepts", errOut)
	}
	if code, _, errOut := runBin(t, "", append(append(base, "--strict"), lenient)...); code != 1 || !strings.Contains(errOut, "--strict") {
		t.Fatalf("--strict: exit %d, stderr %q; want 1", code, errOut)
	}
	broken := hs256(t, "messaging-secret", kid, jwt.MapClaims{"external_id": "u-1"}) // no scope: Zendesk answers 401
	if code, _, errOut := runBin(t, "", append(base, broken)...); code != 1 || !strings.Contains(errOut, `zendesk: scope missing`) {
		t.Fatalf("broken Zendesk rule: exit %d, stderr %q; want 1 with a zendesk: line", code, errOut)
	}
	if code, _, _ := runBin(t, "", "token", "mint", "--strict", "--flavor", "chat", "--secret", "s", "--claims", "{}"); code != 2 {
		t.Errorf("mint --strict: exit %d; want 2 (usage)", code)
	}
}

// TestCLITokenMintSSOAgreesWithServe: serve mints SSO and SDK tokens without exp (Zendesk documents
// none); mint does the same by default, and writes the locale as a Zendesk locale id.
func TestCLITokenMintSSOAgreesWithServe(t *testing.T) {
	claims := `{"external_id":"u-1","name":"Ann","email":"ann@example.com","locale":"en-US"}`
	for _, f := range []string{"sso", "sdk"} {
		code, out, errOut := runBin(t, "", "token", "mint", "--flavor", f, "--secret", "sso-secret", "--claims", claims)
		if code != 0 {
			t.Fatalf("mint %s: exit %d %s", f, code, errOut)
		}
		c := payload(t, strings.TrimSpace(out))
		if _, ok := c["exp"]; ok {
			t.Errorf("mint %s: claims %v carry exp; serve mints none", f, c)
		}
		if c["locale"] != 1.0 {
			t.Errorf("mint %s: locale = %#v; want the Zendesk locale id 1 for en-US", f, c["locale"])
		}
		code, out, _ = runBin(t, "", "token", "mint", "--flavor", f, "--secret", "sso-secret", "--ttl", "2m", "--claims", claims)
		if c := payload(t, strings.TrimSpace(out)); code != 0 || c["exp"].(float64)-c["iat"].(float64) != (2*time.Minute).Seconds() {
			t.Errorf("mint %s --ttl 2m: exit %d, claims %v; want exp = iat + 120", f, code, c)
		}
	}
	if code, _, errOut := runBin(t, "", "token", "mint", "--flavor", "sso", "--secret", "s",
		"--claims", `{"external_id":"u-1","name":"Ann","email":"ann@example.com","locale":"en-GB"}`); code != 2 || !strings.Contains(errOut, "locale") {
		t.Errorf("unknown locale tag: exit %d, %q; want 2 and a locale error", code, errOut)
	}
}

func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
