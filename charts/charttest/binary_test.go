package charttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// dummySecrets are file contents zdgate accepts for each secret.
var dummySecrets = map[string]string{
	"cookie-secret":            "0123456789abcdef0123456789abcdef", // 32 raw bytes
	"oidc-client-secret":       "test-client-secret",
	"zendesk-messaging-secret": "app_test:test-messaging-secret",
	"zendesk-chat-secret":      "test-chat-secret",
	"zendesk-sso-secret":       "test-sso-secret",
	"zendesk-sdk-secret":       "test-sdk-secret",
	"redis-url":                "redis://:test-password@127.0.0.1:1/0",
}

// TestBinaryAcceptsArgs runs the zdgate built from this repository as `zdgate config check` with
// the arguments each ci values file renders (secret files replaced by local ones, the IdP and
// Redis by closed local ports), so the chart can only pass flags zdgate knows, in a form it
// parses. It also checks that `config` offers exactly zdgate's flags, except those the chart
// derives and the secrets, which each need a --<name>-file form.
func TestBinaryAcceptsArgs(t *testing.T) {
	h := newHelm(t)
	bin := buildZdgate(t)
	files, _ := filepath.Glob(filepath.Join(chartDir(t), "ci", "*-values.yaml"))
	var flagsSeen []string
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), "-values.yaml"), func(t *testing.T) {
			out, err := h.template(t, chartDir(t), "-f", f)
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			r := decode(t, out)
			if len(r.deployments) != 1 {
				t.Fatalf("rendered %d Deployments; want 1", len(r.deployments))
			}
			pod := r.deployments[0].Spec.Template.Spec
			zd := findContainer(append(slices.Clone(pod.InitContainers), pod.Containers...), "zdgate")
			if zd == nil {
				t.Fatal("no zdgate container")
			}
			args := checkArgs(t, zd.Args, loadValues(t, readYAMLFile(t, f)).str("secrets.mountPath"))

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, args...)
			// Nothing from the developer's environment: ZDGATE_* variables would change the result.
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatalf("running zdgate: %v", err)
			}
			if err != nil && exit.ExitCode() != 1 {
				// 1 = a problem with the configuration (here: the IdP is unreachable, or a value
				// the ci file leaves out); 2 = a usage error: a flag or value zdgate rejects.
				t.Fatalf("zdgate config check %q exited %d; the chart renders arguments zdgate does not accept:\n%s",
					args, exit.ExitCode(), stderr.String())
			}
			// Each problem is one line "zdgate: --flag: what". Problems with flags the chart does
			// not render (a ci file may leave out required IdP settings) are the ci file's
			// business; a rendered flag may only fail for the IdP this test made unreachable.
			rendered := parseFlags(t, zd.Args)
			for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
				rest, ok := strings.CutPrefix(line, "zdgate: --")
				name, _, _ := strings.Cut(rest, ":")
				if _, isRendered := rendered[name]; ok && isRendered && name != "oidc-issuer" {
					t.Errorf("zdgate rejects the chart's --%s: %s", name, line)
				}
			}
			if stdout.Len() == 0 {
				return // start-up problems, checked above; no configuration to compare
			}
			var effective map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &effective); err != nil {
				t.Fatalf("zdgate config check printed no JSON configuration (%v):\n%s", err, stdout.String())
			}
			if flagsSeen == nil {
				flagsSeen = slices.Collect(maps.Keys(effective))
			}
		})
	}
	if flagsSeen == nil {
		t.Fatal("no run of zdgate config check printed its configuration")
	}
	checkConfigMatchesFlags(t, flagsSeen)
}

// checkConfigMatchesFlags: config's keys are exactly zdgate's flags, minus the derived ones and
// the secrets; every secret has its -file flag.
func checkConfigMatchesFlags(t *testing.T, flags []string) {
	config := readSchema(t)["properties"].(map[string]any)["config"].(map[string]any)["properties"].(map[string]any)
	secrets := slices.Collect(maps.Values(secretFlags))
	for _, s := range secrets {
		if !slices.Contains(flags, s+"-file") {
			t.Errorf("zdgate has no --%s-file flag, so the chart cannot pass that secret as a file (docs/reference.md §1: every secret has a --…-file form)", s)
		}
	}
	for _, f := range flags {
		base, isFile := strings.CutSuffix(f, "-file")
		switch {
		case f == "config" || slices.Contains(derivedFlags, f):
		case isFile && slices.Contains(secrets, base):
		case slices.Contains(secrets, f) && f != "redis-url":
		default:
			if _, ok := config[f]; !ok {
				t.Errorf("zdgate has --%s but the chart's config (values.yaml, values.schema.json, README) does not", f)
			}
		}
	}
	for k := range config {
		if !slices.Contains(flags, k) {
			t.Errorf("config.%s is not a zdgate flag", k)
		}
	}
}

// checkArgs turns the rendered `serve ...` into `config check ...` that needs no network and no
// mounted Secret: secret files are written to a temp dir, the IdP and Redis are closed ports.
func checkArgs(t *testing.T, args []string, mountPath string) []string {
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("zdgate args %q do not start with serve", args)
	}
	dir := t.TempDir()
	out := []string{"config", "check"}
	for _, a := range args[1:] {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch {
		case name == "oidc-issuer":
			a = "--oidc-issuer=http://127.0.0.1:1"
		case name == "redis-url":
			a = "--redis-url=redis://127.0.0.1:1/0"
		case strings.HasSuffix(name, "-file") && strings.HasPrefix(value, strings.TrimSuffix(mountPath, "/")+"/"):
			secret := strings.TrimSuffix(name, "-file")
			content, ok := dummySecrets[secret]
			if !ok {
				t.Fatalf("no dummy content for %s", name)
			}
			p := filepath.Join(dir, secret)
			if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			a = "--" + name + "=" + p
		}
		out = append(out, a)
	}
	return out
}

// buildZdgate builds ./cmd/zdgate once per test run.
func buildZdgate(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "zdgate")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/zdgate")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/zdgate: %v\n%s", err, out)
	}
	return bin
}
