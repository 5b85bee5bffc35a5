package main

import "testing"

// TestSkipAuthAnchorWarning: an unanchored --skip-auth-path opens every path that merely contains
// it ("/public/" opens "/admin/public/x"); config check says so, and stays quiet for anchored rules.
func TestSkipAuthAnchorWarning(t *testing.T) {
	for expr, warn := range map[string]bool{
		"/public/":           true,
		"healthz":            true,
		"^/public/|/static/": true,
		"(?i)/assets/":       true,
		"^/public/":          false,
		`\.css$`:             false,
		"(?i)^/Assets/":      false,
		"^/a/|^/b/":          false,
		"^(/a/|/b/)":         false,
		`(\.png|\.svg)$`:     false,
	} {
		if got := len(skipAuthWarnings([]string{expr})) == 1; got != warn {
			t.Errorf("skipAuthWarnings(%q) warns = %v; want %v", expr, got, warn)
		}
	}
}
