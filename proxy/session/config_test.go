package session

import (
	"strings"
	"testing"
	"time"
)

func TestNewCookieStoreValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*CookieConfig)
		want string // substring of the error; "" for success
	}{
		{"defaults", func(*CookieConfig) {}, ""},
		{"host prefix", func(c *CookieConfig) { c.Name = "__Host-zdgate" }, ""},
		{"bad name", func(c *CookieConfig) { c.Name = "zd gate" }, "cookie name"},
		{"name with semicolon", func(c *CookieConfig) { c.Name = "zd;x" }, "cookie name"},
		{"long name", func(c *CookieConfig) { c.Name = strings.Repeat("z", 65) }, "cookie name"},
		{"relative path", func(c *CookieConfig) { c.Path = "app" }, "cookie path"},
		{"path with semicolon", func(c *CookieConfig) { c.Path = "/a;b" }, "cookie path"},
		{"bad domain", func(c *CookieConfig) { c.Domain = "exa mple.com" }, "cookie domain"},
		{"domain with port", func(c *CookieConfig) { c.Domain = "example.com:443" }, "cookie domain"},
		{"secure prefix without Secure", func(c *CookieConfig) { c.Name, c.Secure = "__Secure-z", false }, "__Secure-"},
		{"host prefix with domain", func(c *CookieConfig) { c.Name, c.Domain = "__Host-z", "example.com" }, "__Host-"},
		{"host prefix with path", func(c *CookieConfig) { c.Name, c.Path = "__host-z", "/app" }, "__Host-"},
		{"zero TTL", func(c *CookieConfig) { c.TTL = 0 }, "TTL"},
		{"no secrets", func(c *CookieConfig) { c.Secrets = nil }, "no cookie secret"},
		{"empty secrets", func(c *CookieConfig) { c.Secrets = fixedSecrets() }, "no cookie secret"},
		{"short secret", func(c *CookieConfig) { c.Secrets = fixedSecrets([]byte("tooshort-secret")) }, "32 bytes, got 15"},
		{"short old secret", func(c *CookieConfig) { c.Secrets = fixedSecrets(keyNew, keyNew[:31]) }, "got 31"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := CookieConfig{Secure: true, TTL: time.Hour, Secrets: fixedSecrets(keyNew)}
			tc.mod(&cfg)
			_, err := NewCookieStore(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("NewCookieStore() error = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("NewCookieStore() error = %v; want one containing %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "tooshort"):
				t.Errorf("NewCookieStore() error %q echoes the secret", err)
			}
		})
	}
	// Every problem is reported at once.
	_, err := NewCookieStore(CookieConfig{Name: "a b", Path: "x", Secrets: fixedSecrets()})
	for _, want := range []string{"cookie name", "cookie path", "TTL", "secret"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewCookieStore() error = %v; want it to mention %q", err, want)
		}
	}
}

func TestOwnCookie(t *testing.T) {
	for _, tc := range []struct {
		base, name string
		want       bool
	}{
		{"_zdgate", "_zdgate", true},
		{"_zdgate", "_zdgate_0", true},
		{"_zdgate", "_zdgate_7", true},
		{"_zdgate", "_zdgate_state", true},
		{"_zdgate", "_zdgate_", true},
		{"_zdgate", "_zdgatex", false},
		{"_zdgate", "_zdgat", false},
		{"_zdgate", "_ZDGATE", false},
		{"_zdgate", "x_zdgate", false},
		{"_zdgate", "", false},
		{"", "", false},
		{"", "_zdgate", false},
		{"__Host-s", "__Host-s_1", true},
	} {
		if got := OwnCookie(tc.base, tc.name); got != tc.want {
			t.Errorf("OwnCookie(%q, %q) = %v; want %v", tc.base, tc.name, got, tc.want)
		}
	}
	store, _ := newStore(t, nil)
	if !store.IsOwnCookie("_zdgate_3") || store.IsOwnCookie("app") {
		t.Error("IsOwnCookie() disagrees with OwnCookie()")
	}
}
