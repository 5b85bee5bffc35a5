package inject

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestCSP(t *testing.T) {
	cases := []struct {
		name      string
		csp       []string // enforced headers
		reportRO  string   // Content-Security-Policy-Report-Only
		host      string   // X-Forwarded-Host ("" = Host app.test)
		wantNonce string
		wantOK    bool
	}{
		{"no policy", nil, "", "", "", true},
		{"no script restriction", []string{"img-src 'none'; frame-ancestors 'none'"}, "", "", "", true},
		{"self", []string{"script-src 'self'"}, "", "", "", true},
		{"nonce", []string{"script-src 'nonce-abc123'"}, "", "", "abc123", true},
		{"nonce and self prefers nonce", []string{"script-src 'self' 'nonce-abc'"}, "", "", "abc", true},
		{"nonce keyword case", []string{"script-src 'NONCE-abc'"}, "", "", "abc", true},
		{"base64 nonce", []string{"script-src 'nonce-a+b/c=='"}, "", "", "a+b/c==", true},
		{"malformed nonce", []string{`script-src 'nonce-a"b'`}, "", "", "", false},
		{"default-src fallback", []string{"default-src 'nonce-d1'; img-src *"}, "", "", "d1", true},
		{"default-src self", []string{"default-src 'self'"}, "", "", "", true},
		{"script-src over default-src", []string{"default-src 'none'; script-src 'self'"}, "", "", "", true},
		{"script-src-elem over script-src", []string{"script-src 'none'; script-src-elem 'nonce-e'"}, "", "", "e", true},
		{"script-src-elem blocks", []string{"script-src 'self'; script-src-elem 'none'"}, "", "", "", false},
		{"first directive wins", []string{"script-src 'none'; script-src 'self'"}, "", "", "", false},
		{"directive name case", []string{"SCRIPT-SRC 'Self'"}, "", "", "", true},
		{"none", []string{"script-src 'none'"}, "", "", "", false},
		{"empty list", []string{"script-src"}, "", "", "", false},
		{"hashes only", []string{"script-src 'sha256-AAAA' 'unsafe-inline'"}, "", "", "", false},
		{"strict-dynamic without nonce", []string{"script-src 'strict-dynamic' 'self' https:"}, "", "", "", false},
		{"strict-dynamic with nonce", []string{"script-src 'strict-dynamic' 'nonce-n' 'self'"}, "", "", "n", true},
		{"star", []string{"script-src *"}, "", "", "", true},
		{"https scheme", []string{"script-src https:"}, "", "", "", true},
		{"other scheme", []string{"script-src data: blob:"}, "", "", "", false},
		{"foreign host", []string{"script-src https://cdn.example.com"}, "", "", "", false},
		{"own host", []string{"script-src cdn.example.com app.test"}, "", "", "", true},
		{"own host with scheme and path", []string{"script-src https://app.test/zendesk/"}, "", "", "", true},
		{"own host, other path", []string{"script-src https://app.test/static/"}, "", "", "", false},
		{"own host, exact path", []string{"script-src app.test/zendesk/auth.js"}, "", "", "", true},
		{"wildcard host", []string{"script-src *.example.com"}, "", "help.example.com", "", true},
		{"wildcard does not match apex", []string{"script-src *.example.com"}, "", "example.com", "", false},
		{"port must match", []string{"script-src app.test:8443"}, "", "app.test:8443", "", true},
		{"default port", []string{"script-src app.test"}, "", "app.test:8443", "", false},
		{"forwarded host", []string{"script-src help.example.com"}, "", "help.example.com", "", true},
		{"report-only ignored", nil, "script-src 'none'", "", "", true},
		{"report-only nonce not used", []string{"script-src 'self'"}, "script-src 'nonce-ro'", "", "", true},
		{"two headers, nonce and self", []string{"script-src 'nonce-a'", "default-src 'self'"}, "", "", "a", true},
		{"two headers, nonce and no restriction", []string{"script-src 'nonce-a'", "img-src 'none'"}, "", "", "a", true},
		{"two headers, one blocks", []string{"script-src 'self'", "script-src 'none'"}, "", "", "", false},
		{"two headers, different nonces", []string{"script-src 'nonce-a'", "script-src 'nonce-b'"}, "", "", "", false},
		{"same nonce in two headers", []string{"script-src 'nonce-a'", "default-src 'nonce-a' 'strict-dynamic'"}, "", "", "a", true},
		{"second nonce works for both", []string{"script-src 'nonce-a' 'nonce-b'", "script-src 'nonce-b'"}, "", "", "b", true},
		{"comma-joined policies", []string{"script-src 'self', script-src 'none'"}, "", "", "", false},
		{"comma-joined with nonce", []string{"img-src *, script-src 'nonce-c'"}, "", "", "c", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inj, _ := newTestInjector(t, Config{})
			res := response(http.MethodGet, 200, nil, hdr("Content-Type", "text/html"), []byte(testPage))
			for _, v := range tc.csp {
				res.Header.Add("Content-Security-Policy", v)
			}
			if tc.reportRO != "" {
				res.Header.Set("Content-Security-Policy-Report-Only", tc.reportRO)
			}
			if tc.host != "" {
				res.Request.Header.Set("X-Forwarded-Host", tc.host)
			}
			nonce, ok := inj.checkCSP(res)
			if nonce != tc.wantNonce || ok != tc.wantOK {
				t.Fatalf("checkCSP(%q) = %q, %v; want %q, %v", tc.csp, nonce, ok, tc.wantNonce, tc.wantOK)
			}
		})
	}
}

// TestCSPBlockedLoggedOnce checks that a blocking policy is logged once, that
// per-response nonces do not make a policy new, and that memory is bounded.
func TestCSPBlockedLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	var results []string
	inj, err := New(Config{
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
		Observe: func(s string) { results = append(results, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(csp ...string) {
		t.Helper()
		res := response(http.MethodGet, 200, nil, hdr("Content-Type", "text/html"), []byte(testPage))
		for _, v := range csp {
			res.Header.Add("Content-Security-Policy", v)
		}
		body := res.Body
		if err := inj.ModifyResponse(res); err != nil || res.Body != body {
			t.Fatalf("ModifyResponse() = %v, body replaced: %v", err, res.Body != body)
		}
	}
	lines := func() int { return strings.Count(logs.String(), "\n") }

	serve("script-src 'none'")
	serve("script-src 'none'")
	if lines() != 1 {
		t.Fatalf("logged %d lines for one policy twice; want 1:\n%s", lines(), logs.String())
	}
	serve("script-src 'nonce-r1'", "script-src 'nonce-s1'")
	serve("script-src 'nonce-r2'", "script-src 'nonce-s2'")
	if lines() != 2 {
		t.Fatalf("logged %d lines; want 2 (nonces must not make a policy distinct):\n%s", lines(), logs.String())
	}
	if strings.Contains(logs.String(), "r1") || !strings.Contains(logs.String(), "nonce-...") {
		t.Fatalf("nonce not redacted in log:\n%s", logs.String())
	}
	for i := range 10 * maxLoggedPolicies {
		serve(fmt.Sprintf("script-src https://cdn%d.example.com", i))
	}
	if lines() != maxLoggedPolicies || len(inj.logged) != maxLoggedPolicies {
		t.Fatalf("%d lines, %d remembered policies; want %d each", lines(), len(inj.logged), maxLoggedPolicies)
	}
	if len(results) != 4+10*maxLoggedPolicies {
		t.Fatalf("observed %d results; want one per response", len(results))
	}
	for _, r := range results {
		if r != ResultCSPBlocked {
			t.Fatalf("observed %q; want %q", r, ResultCSPBlocked)
		}
	}
}
