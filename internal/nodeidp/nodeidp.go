// Package nodeidp runs a real, OpenID-certified identity provider for end-to-end tests: panva's
// oidc-provider 8.x under Node.js, from test/oidc-provider/server.mjs. oidc/oidctest is the fast,
// fully controllable fake; this is the check that zdgate also gets along with a provider it did not
// write — its PKCE enforcement, refresh-token rotation and reuse detection, back-channel logout.
//
// The provider serves one confidential client (client_secret_basic, code + refresh_token, PKCE S256
// required) and the accounts Alice and Bob. The test-only admin API (bearer-protected, under
// /__admin) deletes accounts, changes claims and counts what the provider served.
//
// Install with scripts/setup-test-deps.sh (or `cd test/oidc-provider && npm ci`). Without Node.js or
// the npm packages, Start skips the test — or fails it under ZDGATE_E2E=required.
package nodeidp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdgate/zdgate/internal/e2e"
)

// The seeded accounts. Alice: email alice@example.com (verified), name "Alice Example",
// preferred_username "alice", groups ["staff"]. Bob: email bob@example.com (NOT verified), name
// "Bob Example", preferred_username "bob", groups ["customers"].
const (
	Alice         = "alice"
	AlicePassword = "alice-password"
	Bob           = "bob"
	BobPassword   = "bob-password"
)

const (
	readyTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
	adminTimeout = 10 * time.Second
	howToInstall = "run scripts/setup-test-deps.sh, or: cd test/oidc-provider && npm ci"
)

// Options describe the provider's one client. ClientID, ClientSecret and RedirectURI are required;
// the others switch their feature off when empty.
type Options struct {
	ClientID     string
	ClientSecret string
	// RedirectURI is the registered redirect_uri (exact match); Login stops at the redirect to it.
	RedirectURI string
	// PostLogoutRedirectURI is the registered post_logout_redirect_uri.
	PostLogoutRedirectURI string
	// BackchannelLogoutURI receives the logout_token (with sid) on logout; must be a loopback URL.
	BackchannelLogoutURI string
	// ConformIDTokenClaims makes ID tokens carry only protocol claims (sub, sid, nonce, auth_time,
	// ...), so email, name and groups come only from userinfo, as OIDC Core 5.4 says for the code
	// flow. Default: ID tokens carry them too, as most IdPs do.
	ConformIDTokenClaims bool
}

// IdP is a running provider. It stops when the test that started it ends.
type IdP struct {
	issuer     string
	admin      string
	adminToken string
	http       *http.Client
}

// readyLine is what server.mjs prints on stdout once it listens.
type readyLine struct {
	Issuer string `json:"issuer"`
	Admin  string `json:"admin"`
}

// Start runs the provider on a free loopback port and waits until it answers. It skips t (or fails
// it under ZDGATE_E2E=required) when node or the npm packages are missing. The provider's stderr
// is logged if t fails.
func Start(t testing.TB, opts Options) *IdP {
	t.Helper()
	if opts.ClientID == "" || opts.ClientSecret == "" || opts.RedirectURI == "" {
		t.Fatalf("nodeidp.Start: Options.ClientID, ClientSecret and RedirectURI are required")
	}
	node := e2e.LookPath(t, "install Node.js 18+ (Debian: apt-get install nodejs npm), or "+howToInstall, "node", "nodejs")
	dir, err := harnessDir()
	if err != nil {
		t.Fatalf("nodeidp.Start: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		e2e.Missing(t, "the oidc-provider npm package", howToInstall)
	}

	adminToken := randomHex()
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"OP_PORT=0",
		"OP_CLIENT_ID="+opts.ClientID,
		"OP_CLIENT_SECRET="+opts.ClientSecret,
		"OP_REDIRECT_URI="+opts.RedirectURI,
		"OP_POST_LOGOUT_REDIRECT_URI="+opts.PostLogoutRedirectURI,
		"OP_BACKCHANNEL_LOGOUT_URI="+opts.BackchannelLogoutURI,
		"OP_ADMIN_TOKEN="+adminToken,
		fmt.Sprintf("OP_CONFORM_ID_TOKEN_CLAIMS=%t", opts.ConformIDTokenClaims),
	)
	setProcessGroup(cmd)
	logs := &logBuffer{}
	cmd.Stderr = logs
	// stdin stays open for the provider's lifetime: server.mjs exits at EOF, so it cannot outlive
	// this process even if the test binary is killed.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("nodeidp.Start: %v", err)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatalf("nodeidp.Start: %v", err)
	}
	cmd.Stdout = stdoutW
	if err := cmd.Start(); err != nil {
		stdoutR.Close()
		stdoutW.Close()
		t.Fatalf("nodeidp.Start: %s server.mjs: %v", node, err)
	}
	stdoutW.Close()

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		killProcessGroup(cmd)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			t.Errorf("nodeidp: oidc-provider (pid %d) did not exit within %v", cmd.Process.Pid, stopTimeout)
		}
		if t.Failed() {
			t.Logf("oidc-provider stderr:\n%s", logs)
		}
	})

	ready := make(chan readyLine, 1)
	go func() {
		defer stdoutR.Close()
		sc := bufio.NewScanner(stdoutR)
		announced := false
		for sc.Scan() {
			var r readyLine
			if !announced && json.Unmarshal(sc.Bytes(), &r) == nil && r.Issuer != "" {
				announced = true
				ready <- r
				continue
			}
			logs.Write(append(sc.Bytes(), '\n')) // anything else on stdout belongs in the log
		}
	}()

	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	var r readyLine
	select {
	case r = <-ready:
	case <-exited:
		t.Fatalf("nodeidp.Start: oidc-provider exited before it was ready: %v\n%s", waitErr, logs)
	case <-timer.C:
		t.Fatalf("nodeidp.Start: oidc-provider not ready within %v\n%s", readyTimeout, logs)
	}
	return &IdP{
		issuer:     r.Issuer,
		admin:      r.Admin,
		adminToken: adminToken,
		http:       &http.Client{Timeout: adminTimeout},
	}
}

// Issuer is the provider's issuer URL (http://127.0.0.1:PORT); discovery is below it.
func (p *IdP) Issuer() string { return p.issuer }

// AddAccount creates an account that can log in with password. claims are the userinfo claims
// (email, email_verified, name, preferred_username, groups); sub must not be taken.
func (p *IdP) AddAccount(sub, password string, claims map[string]any) error {
	if claims == nil {
		claims = map[string]any{}
	}
	body := map[string]any{"sub": sub, "password": password, "claims": claims}
	return p.call(http.MethodPost, "/accounts", body, nil)
}

// DeleteAccount removes the account and, with it, its grants, tokens and provider sessions: its
// refresh tokens then get invalid_grant, its access tokens 401 at userinfo and active:false at
// introspection, and it can no longer log in.
func (p *IdP) DeleteAccount(sub string) error {
	return p.call(http.MethodPost, "/accounts/"+url.PathEscape(sub)+"/delete", nil, nil)
}

// SetClaims changes the account's claims (a nil value removes the claim). Tokens stay valid; the
// next userinfo call, and the next ID token, show the new values.
func (p *IdP) SetClaims(sub string, claims map[string]any) error {
	return p.call(http.MethodPost, "/accounts/"+url.PathEscape(sub), claims, nil)
}

// Counts reports how often the provider served each thing since it started. Keys (absent = 0):
// "authorization_code" and "refresh_token" (successful token grants), "authorization_code_error",
// "refresh_token_error", "userinfo" (requests, any outcome), "userinfo_error", "introspection",
// "revocation" (requests), "login", "login_failed", "end_session", "backchannel_logout",
// "backchannel_logout_error", "server_error".
func (p *IdP) Counts() (map[string]int, error) {
	counts := map[string]int{}
	if err := p.call(http.MethodGet, "/counts", nil, &counts); err != nil {
		return nil, err
	}
	return counts, nil
}

// call does one admin API request; out (if not nil) receives the JSON answer.
func (p *IdP) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("nodeidp: %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, p.admin+path, body)
	if err != nil {
		return fmt.Errorf("nodeidp: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+p.adminToken)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("nodeidp: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("nodeidp: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("nodeidp: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("nodeidp: %s %s: %w", method, path, err)
		}
	}
	return nil
}

// harnessDir finds test/oidc-provider in the module root: the nearest directory at or above the
// working directory (the package under test) that holds go.mod.
func harnessDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
	harness := filepath.Join(dir, "test", "oidc-provider")
	if _, err := os.Stat(filepath.Join(harness, "server.mjs")); err != nil {
		return "", fmt.Errorf("the harness is missing: %w", err)
	}
	return harness, nil
}

func randomHex() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

// logBuffer collects the provider's output for the test log, keeping at most logLimit bytes.
type logBuffer struct {
	mu        sync.Mutex
	b         strings.Builder
	truncated bool
}

const logLimit = 256 << 10

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := logLimit - l.b.Len(); room < len(p) {
		l.b.Write(p[:max(room, 0)])
		l.truncated = true
	} else {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.truncated {
		return l.b.String() + "\n[... truncated]"
	}
	return l.b.String()
}
