package charttest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestProviders: a providers list renders into a ConfigMap mounted as zdgate's --config file, each
// item's client secret a file of the secrets volume named by oidc-client-secret-file (never its
// value in the ConfigMap), the staff SSO secret a --zendesk-sso-staff-secret-file; and the zdgate
// built from this repository accepts the rendered configuration (config check, with the IdPs made
// unreachable: only discovery may fail).
func TestProviders(t *testing.T) {
	h := newHelm(t)
	values := filepath.Join("testdata", "providers-values.yaml")
	out, err := h.template(t, chartDir(t), "-f", values)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	r := decode(t, out)
	var cm *corev1.ConfigMap
	for i := range r.configMaps {
		if r.configMaps[i].Name == release+"-zdgate-config" {
			cm = &r.configMaps[i]
		}
	}
	if cm == nil {
		t.Fatalf("no ConfigMap %s-zdgate-config among %d", release, len(r.configMaps))
	}
	var file struct {
		Providers []map[string]any `json:"providers"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &file); err != nil {
		t.Fatalf("config.yaml: %v\n%s", err, cm.Data["config.yaml"])
	}
	if len(file.Providers) != 2 || file.Providers[0]["id"] != "staff" || file.Providers[1]["zendesk-sso"] != nil {
		t.Fatalf("providers in the ConfigMap = %v", file.Providers)
	}
	for _, p := range file.Providers {
		if want := "/etc/zdgate/secrets/oidc-client-secret-" + p["id"].(string); p["oidc-client-secret-file"] != want {
			t.Errorf("%s: oidc-client-secret-file = %v; want %s", p["id"], p["oidc-client-secret-file"], want)
		}
	}
	for _, doc := range r.nonSecretText {
		if strings.Contains(doc, "staff-client-secret-value") || strings.Contains(doc, "test-staff-sso-secret") {
			t.Fatalf("a secret value outside the Secret:\n%s", doc)
		}
	}

	pod := r.deployments[0].Spec.Template.Spec
	zd := findContainer(pod.Containers, "zdgate")
	flags := parseFlags(t, zd.Args)
	if got := flags["config"]; len(got) != 1 || got[0] != "/etc/zdgate/config/config.yaml" {
		t.Fatalf("--config = %v", got)
	}
	if got := flags["zendesk-sso-staff-secret-file"]; len(got) != 1 || got[0] != "/etc/zdgate/secrets/zendesk-sso-staff-secret" {
		t.Fatalf("--zendesk-sso-staff-secret-file = %v", got)
	}
	if _, ok := flags["oidc-client-secret-file"]; ok {
		t.Error("the single-IdP --oidc-client-secret-file is rendered with providers")
	}
	if m := findMount(zd, "config"); m == nil || m.MountPath != "/etc/zdgate/config" || !m.ReadOnly {
		t.Errorf("config mount = %+v", m)
	}
	files := map[string]string{} // file -> Secret/key
	for _, v := range pod.Volumes {
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				for _, it := range src.Secret.Items {
					files[it.Path] = src.Secret.Name + "/" + it.Key
				}
			}
		}
		if v.Name == "config" && (v.ConfigMap == nil || v.ConfigMap.Name != cm.Name) {
			t.Errorf("config volume = %+v", v)
		}
	}
	if files["oidc-client-secret-staff"] != release+"-zdgate/oidc-client-secret-staff" || files["oidc-client-secret-customers"] != "auth0-client/secret" {
		t.Errorf("provider secret files = %v", files)
	}
	if len(r.secrets) != 1 || string(r.secrets[0].Data["oidc-client-secret-staff"]) != "staff-client-secret-value" || r.secrets[0].Data["oidc-client-secret-customers"] != nil {
		t.Errorf("chart Secret keys = %v", keys(r.secrets[0].Data))
	}
	if r.deployments[0].Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation: a providers change would not restart the pods")
	}

	// zdgate accepts what the chart renders.
	bin := buildZdgate(t)
	dir := t.TempDir()
	config := cm.Data["config.yaml"]
	for _, p := range file.Providers {
		secret := filepath.Join(dir, "client-"+p["id"].(string))
		os.WriteFile(secret, []byte("x\n"), 0o600)
		config = strings.ReplaceAll(config, p["oidc-client-secret-file"].(string), secret)
		config = strings.ReplaceAll(config, p["oidc-issuer"].(string), "http://127.0.0.1:1/"+p["id"].(string))
	}
	os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o600)
	dummy := map[string]string{"zendesk-sso-staff-secret": "staff"}
	for k, v := range dummySecrets {
		dummy[k] = v
	}
	var args []string
	for _, a := range zd.Args[1:] {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch {
		case name == "config":
			a = "--config=" + filepath.Join(dir, "config.yaml")
		case strings.HasSuffix(name, "-file") && strings.HasPrefix(value, "/etc/zdgate/secrets/"):
			p := filepath.Join(dir, strings.TrimSuffix(name, "-file"))
			os.WriteFile(p, []byte(dummy[strings.TrimSuffix(name, "-file")]+"\n"), 0o600)
			a = "--" + name + "=" + p
		}
		args = append(args, a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"config", "check"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("zdgate config check = %v; want exit 1 (the IdPs are unreachable):\n%s", err, stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if !strings.Contains(line, "].oidc-issuer: ") {
			t.Errorf("zdgate rejects the chart's providers configuration: %s", line)
		}
	}
	if n := strings.Count(stderr.String(), "].oidc-issuer: "); n != 2 {
		t.Errorf("config check tried %d providers; want 2:\n%s", n, stderr.String())
	}
}

// TestProvidersConflicts: the chart refuses providers together with the single-IdP settings, and a
// client secret for an id no provider has.
func TestProvidersConflicts(t *testing.T) {
	h := newHelm(t)
	values := filepath.Join("testdata", "providers-values.yaml")
	for set, want := range map[string]string{
		"config.oidc-issuer=https://idp.example":       "providers replaces config.oidc-issuer",
		"secrets.oidcClientSecret.value=x":             "providers replaces config.oidc-issuer",
		"secrets.providerClientSecrets.nobody.value=x": "secrets.providerClientSecrets.nobody: no providers item has id nobody",
		"providers[0].oidc-client-secret=inline":       "oidc-client-secret",
		"providers[1].id=Not_An_Id":                    "id",
	} {
		_, err := h.template(t, chartDir(t), "-f", values, "--set", set)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--set %s: helm template error = %v; want one naming %q", set, err, want)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
