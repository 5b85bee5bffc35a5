// Package e2e decides what a test does when a tool it needs (Chromium, redis-server, node, helm) is
// missing: under plain `go test` it skips with a message saying how to get the tool; with
// ZDGATE_E2E=required (as .ci/run sets it) it fails, so CI can never go green by skipping.
package e2e

import (
	"os"
	"os/exec"
	"testing"
)

// Required reports whether missing tools must fail tests instead of skipping them.
func Required() bool { return os.Getenv("ZDGATE_E2E") == "required" }

// Missing skips t, or fails it under ZDGATE_E2E=required, explaining what is missing and how to get it.
func Missing(t testing.TB, what, how string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s is not available and ZDGATE_E2E=required: %s", what, how)
	}
	t.Skipf("skipping: %s is not available (%s; set ZDGATE_E2E=required to make this a failure)", what, how)
}

// LookPath returns the path of the first of names found on PATH (or as an absolute path), or calls
// Missing when none is.
func LookPath(t testing.TB, how string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	Missing(t, names[0], how)
	return ""
}
