// Package charttest checks the Helm chart in charts/zdgate with a real helm binary: every
// ci/*-values.yaml lints and renders; every rendered object decodes strictly into its Kubernetes
// API type; and the layout (standalone or native sidecar), probes, security contexts and secret
// handling are what docs/reference.md §6 and the chart's README promise. helm comes from
// scripts/install-helm.sh (.tools/bin/helm) or PATH; without it the tests skip, or fail under
// ZDGATE_E2E=required.
package charttest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/zdgate/zdgate/internal/e2e"
)

const (
	release   = "r"
	namespace = "zdgate-test"
)

// repoRoot is the repository root: this package lives in charts/charttest.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func chartDir(t testing.TB) string { return filepath.Join(repoRoot(t), "charts", "zdgate") }

// helm runs the helm binary with its caches and config in a temporary HOME, so tests neither read
// nor write the developer's helm setup, and with no kubeconfig, so nothing reaches a cluster.
type helm struct {
	bin string
	env []string
}

func newHelm(t *testing.T) *helm {
	t.Helper()
	bin := e2e.LookPath(t, "run scripts/install-helm.sh (make helm-install)",
		filepath.Join(repoRoot(t), ".tools", "bin", "helm"), "helm")
	home := t.TempDir()
	env := append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	return &helm{bin: bin, env: env}
}

// run returns helm's stdout, and an error carrying its stderr when it exits non-zero.
func (h *helm) run(args ...string) (string, error) {
	cmd := exec.Command(h.bin, args...)
	cmd.Env = h.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(strings.TrimSpace(stderr.String() + "\n" + err.Error()))
	}
	return stdout.String(), nil
}

// template renders the chart with args (-f FILE, --set K=V, ...).
func (h *helm) template(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	return h.run(append([]string{"template", release, dir, "--namespace", namespace}, args...)...)
}

// rendered holds every object of one `helm template`, decoded into API types.
type rendered struct {
	deployments     []appsv1.Deployment
	services        []corev1.Service
	secrets         []corev1.Secret
	serviceAccounts []corev1.ServiceAccount
	pdbs            []policyv1.PodDisruptionBudget
	hpas            []autoscalingv2.HorizontalPodAutoscaler
	netpols         []networkingv1.NetworkPolicy
	ingresses       []networkingv1.Ingress
	serviceMonitors []map[string]any
	configMaps      []corev1.ConfigMap
	prometheusRules []map[string]any
	// nonSecretText is every rendered document except the Secrets, for leak checks.
	nonSecretText []string
}

// wantAPIVersion is the API version the chart must use for each kind it renders.
var wantAPIVersion = map[string]string{
	"Deployment":              "apps/v1",
	"Service":                 "v1",
	"Secret":                  "v1",
	"ServiceAccount":          "v1",
	"PodDisruptionBudget":     "policy/v1",
	"HorizontalPodAutoscaler": "autoscaling/v2",
	"NetworkPolicy":           "networking.k8s.io/v1",
	"Ingress":                 "networking.k8s.io/v1",
	"ServiceMonitor":          "monitoring.coreos.com/v1",
	"PrometheusRule":          "monitoring.coreos.com/v1",
	"ConfigMap":               "v1",
}

// decode splits helm's output into documents and decodes each one strictly (unknown or duplicate
// fields are errors) into the API type of its kind. An unknown kind is an error too, so a new
// template cannot slip past these tests.
func decode(t *testing.T, out string) *rendered {
	r := &rendered{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading helm output: %v", err)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			t.Fatalf("document is not YAML: %v\n%s", err, doc)
		}
		if len(probe) == 0 {
			continue // only comments
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("no apiVersion/kind: %v\n%s", err, doc)
		}
		want, known := wantAPIVersion[tm.Kind]
		if !known {
			t.Errorf("unexpected kind %q rendered (add it to the tests):\n%s", tm.Kind, doc)
			continue
		}
		if tm.APIVersion != want {
			t.Errorf("%s has apiVersion %q; want %q", tm.Kind, tm.APIVersion, want)
		}
		if tm.Kind != "Secret" {
			r.nonSecretText = append(r.nonSecretText, string(doc))
		}
		var meta *metav1.ObjectMeta
		switch tm.Kind {
		case "Deployment":
			r.deployments = append(r.deployments, appsv1.Deployment{})
			strict(t, doc, &r.deployments[len(r.deployments)-1])
			meta = &r.deployments[len(r.deployments)-1].ObjectMeta
		case "Service":
			r.services = append(r.services, corev1.Service{})
			strict(t, doc, &r.services[len(r.services)-1])
			meta = &r.services[len(r.services)-1].ObjectMeta
		case "Secret":
			r.secrets = append(r.secrets, corev1.Secret{})
			strict(t, doc, &r.secrets[len(r.secrets)-1])
			meta = &r.secrets[len(r.secrets)-1].ObjectMeta
		case "ServiceAccount":
			r.serviceAccounts = append(r.serviceAccounts, corev1.ServiceAccount{})
			strict(t, doc, &r.serviceAccounts[len(r.serviceAccounts)-1])
			meta = &r.serviceAccounts[len(r.serviceAccounts)-1].ObjectMeta
		case "PodDisruptionBudget":
			r.pdbs = append(r.pdbs, policyv1.PodDisruptionBudget{})
			strict(t, doc, &r.pdbs[len(r.pdbs)-1])
			meta = &r.pdbs[len(r.pdbs)-1].ObjectMeta
		case "HorizontalPodAutoscaler":
			r.hpas = append(r.hpas, autoscalingv2.HorizontalPodAutoscaler{})
			strict(t, doc, &r.hpas[len(r.hpas)-1])
			meta = &r.hpas[len(r.hpas)-1].ObjectMeta
		case "NetworkPolicy":
			r.netpols = append(r.netpols, networkingv1.NetworkPolicy{})
			strict(t, doc, &r.netpols[len(r.netpols)-1])
			meta = &r.netpols[len(r.netpols)-1].ObjectMeta
		case "Ingress":
			r.ingresses = append(r.ingresses, networkingv1.Ingress{})
			strict(t, doc, &r.ingresses[len(r.ingresses)-1])
			meta = &r.ingresses[len(r.ingresses)-1].ObjectMeta
		case "ConfigMap":
			r.configMaps = append(r.configMaps, corev1.ConfigMap{})
			strict(t, doc, &r.configMaps[len(r.configMaps)-1])
			meta = &r.configMaps[len(r.configMaps)-1].ObjectMeta
		case "ServiceMonitor", "PrometheusRule":
			// No Go types for the Prometheus Operator here: strict YAML (no duplicate keys) only.
			var sm map[string]any
			strict(t, doc, &sm)
			if tm.Kind == "ServiceMonitor" {
				r.serviceMonitors = append(r.serviceMonitors, sm)
			} else {
				r.prometheusRules = append(r.prometheusRules, sm)
			}
			var om struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			if err := yaml.Unmarshal(doc, &om); err != nil {
				t.Errorf("%s metadata: %v", tm.Kind, err)
			}
			meta = &om.Metadata
		}
		checkMeta(t, tm.Kind, meta)
	}
	return r
}

func strict(t *testing.T, doc []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Errorf("strict decode into %T: %v\n%s", into, err, doc)
	}
}

// checkMeta applies the API server's rules for names and labels.
func checkMeta(t *testing.T, kind string, m *metav1.ObjectMeta) {
	if m == nil {
		return
	}
	for _, msg := range validation.IsDNS1123Subdomain(m.Name) {
		t.Errorf("%s name %q: %s", kind, m.Name, msg)
	}
	for _, err := range metav1validation.ValidateLabels(m.Labels, field.NewPath(kind, "metadata", "labels")) {
		t.Errorf("%s %s: %v", kind, m.Name, err)
	}
}

// values is the effective chart values: values.yaml overlaid with a test's values, merged the way
// helm merges them (maps deep, everything else replaced, null deletes).
type values map[string]any

func loadValues(t *testing.T, overlays ...map[string]any) values {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for _, o := range overlays {
		merge(v, o)
	}
	return v
}

func merge(dst, src map[string]any) {
	for k, sv := range src {
		if sv == nil {
			delete(dst, k)
			continue
		}
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = sv
	}
}

func readYAMLFile(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// get walks a dotted path ("app.image.tag"); nil when any step is missing.
func (v values) get(path string) any {
	var cur any = map[string]any(v)
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func (v values) str(path string) string {
	switch x := v.get(path).(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := yaml.Marshal(x)
		return strings.TrimSpace(string(b))
	}
}

func (v values) num(path string) int {
	switch x := v.get(path).(type) {
	case float64:
		return int(x)
	case int64:
		return int(x)
	case int:
		return x
	}
	return 0
}

func (v values) flag(path string) bool { b, _ := v.get(path).(bool); return b }

func (v values) fullname() string {
	if f := v.str("fullnameOverride"); f != "" {
		return f
	}
	return release + "-zdgate"
}
