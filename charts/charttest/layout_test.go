package charttest

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// TestCIValues lints and renders the chart with every ci/*-values.yaml and checks the result.
func TestCIValues(t *testing.T) {
	h := newHelm(t)
	files, err := filepath.Glob(filepath.Join(chartDir(t), "ci", "*-values.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("ci values files: %v, %v; want at least 5", files, err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), "-values.yaml"), func(t *testing.T) {
			t.Parallel()
			if out, err := h.run("lint", "--strict", chartDir(t), "--namespace", namespace, "-f", f); err != nil {
				t.Fatalf("helm lint --strict -f %s: %v\n%s", filepath.Base(f), err, out)
			}
			out, err := h.template(t, chartDir(t), "-f", f)
			if err != nil {
				t.Fatalf("helm template -f %s: %v", filepath.Base(f), err)
			}
			checkRender(t, decode(t, out), loadValues(t, readYAMLFile(t, f)))
		})
	}
}

// TestMinimalSet renders both modes with only the values docs/reference.md §6 names, given with --set.
func TestMinimalSet(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name    string
		set     []string
		overlay map[string]any
	}{
		{
			name:    "standalone",
			set:     []string{"upstream=http://web.shop.svc:8080"},
			overlay: map[string]any{"upstream": "http://web.shop.svc:8080"},
		},
		{
			name: "sidecar",
			set:  []string{"mode=sidecar", "app.image.repository=ghcr.io/example/web", "app.image.tag=1.0.0", "app.port=3000"},
			overlay: map[string]any{"mode": "sidecar", "app": map[string]any{
				"image": map[string]any{"repository": "ghcr.io/example/web", "tag": "1.0.0"},
				"port":  float64(3000),
			}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := h.template(t, chartDir(t), args...)
			if err != nil {
				t.Fatalf("helm template %v: %v", args, err)
			}
			checkRender(t, decode(t, out), loadValues(t, tc.overlay))
		})
	}
}

// checkRender asserts everything the chart promises about one render with effective values v.
func checkRender(t *testing.T, r *rendered, v values) {
	full := v.fullname()
	sidecar := v.str("mode") == "sidecar"
	httpPort, metricsPort := v.num("containerPorts.http"), v.num("containerPorts.metrics")

	if len(r.deployments) != 1 {
		t.Fatalf("rendered %d Deployments; want 1", len(r.deployments))
	}
	d := r.deployments[0]
	if d.Name != full {
		t.Errorf("Deployment name = %q; want %q", d.Name, full)
	}
	pod := d.Spec.Template.Spec
	podLabels := d.Spec.Template.Labels
	if d.Spec.Selector == nil || !subset(d.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment selector %v does not match pod labels %v", d.Spec.Selector, podLabels)
	}
	if _, ok := d.Spec.Template.Annotations["checksum/secrets"]; !ok {
		t.Errorf("pod annotations %v lack checksum/secrets", d.Spec.Template.Annotations)
	}

	// Layout: where zdgate runs, and what it proxies to.
	zd, app := checkLayout(t, pod, v, sidecar)
	if zd == nil {
		return
	}
	wantUpstream := v.str("upstream")
	if sidecar {
		wantUpstream = fmt.Sprintf("http://127.0.0.1:%d", v.num("app.port"))
	}
	flags := parseFlags(t, zd.Args)
	wantFlag(t, flags, "upstream", wantUpstream)
	wantFlag(t, flags, "listen", fmt.Sprintf(":%d", httpPort))
	wantFlag(t, flags, "metrics-listen", fmt.Sprintf(":%d", metricsPort))
	checkConfigFlags(t, flags, v)
	for _, a := range anySlice(v.get("extraArgs")) {
		if !slices.Contains(zd.Args, a.(string)) {
			t.Errorf("extraArgs %q missing from zdgate args %q", a, zd.Args)
		}
	}

	// Ports and probes.
	if got := containerPort(zd, "http"); got != httpPort {
		t.Errorf("zdgate port http = %d; want %d", got, httpPort)
	}
	if got := containerPort(zd, "metrics"); got != metricsPort {
		t.Errorf("zdgate port metrics = %d; want %d", got, metricsPort)
	}
	for _, p := range zd.Ports {
		for _, msg := range validation.IsValidPortName(p.Name) {
			t.Errorf("port name %q: %s", p.Name, msg)
		}
	}
	checkProbe(t, "liveness", zd, zd.LivenessProbe, "/healthz", httpPort)
	checkProbe(t, "readiness", zd, zd.ReadinessProbe, "/readyz", httpPort)
	if v.flag("startupProbe.enabled") {
		checkProbe(t, "startup", zd, zd.StartupProbe, "/healthz", httpPort)
	} else if zd.StartupProbe != nil {
		t.Errorf("startupProbe rendered although startupProbe.enabled is false")
	}

	// Security contexts: the pod and every container.
	checkPodSecurity(t, pod.SecurityContext)
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		checkContainerSecurity(t, c)
	}

	checkSecrets(t, r, v, pod, zd, app, flags)
	checkServices(t, r, v, podLabels)
	checkScaling(t, r, v, d.Spec.Replicas, podLabels)
	checkNetworkPolicy(t, r, v, podLabels, sidecar)
	checkIngress(t, r, v)

	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks != v.flag("enableServiceLinks") {
		t.Errorf("enableServiceLinks = %v; want %v (service links put ZDGATE_* variables into zdgate's environment)",
			pod.EnableServiceLinks, v.flag("enableServiceLinks"))
	}

	// ServiceAccount.
	if v.flag("serviceAccount.create") {
		if len(r.serviceAccounts) != 1 || r.serviceAccounts[0].Name != pod.ServiceAccountName {
			t.Errorf("ServiceAccounts %v; want one named %q (the pod's)", names(r.serviceAccounts), pod.ServiceAccountName)
		}
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken != v.flag("serviceAccount.automountToken") {
		t.Errorf("automountServiceAccountToken = %v; want %v", pod.AutomountServiceAccountToken, v.flag("serviceAccount.automountToken"))
	}
}

// checkLayout finds zdgate (and the app in sidecar mode) where each mode puts it.
func checkLayout(t *testing.T, pod corev1.PodSpec, v values, sidecar bool) (zd, app *corev1.Container) {
	main, init := findContainer(pod.Containers, "zdgate"), findContainer(pod.InitContainers, "zdgate")
	if !sidecar {
		if main == nil || init != nil {
			t.Fatalf("standalone: want zdgate in containers only; containers %v, initContainers %v",
				containerNames(pod.Containers), containerNames(pod.InitContainers))
		}
		if main.RestartPolicy != nil {
			t.Errorf("standalone: zdgate has restartPolicy %v; want none", *main.RestartPolicy)
		}
		if len(pod.Containers) != 1+len(anySlice(v.get("extraContainers"))) {
			t.Errorf("standalone: containers %v; want zdgate plus extraContainers", containerNames(pod.Containers))
		}
		return main, nil
	}
	if init == nil || main != nil {
		t.Fatalf("sidecar: want zdgate in initContainers only; containers %v, initContainers %v",
			containerNames(pod.Containers), containerNames(pod.InitContainers))
	}
	if init.RestartPolicy == nil || *init.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("sidecar: zdgate restartPolicy = %v; want Always (native sidecar)", init.RestartPolicy)
	}
	app = findContainer(pod.Containers, v.str("app.name"))
	if app == nil {
		t.Fatalf("sidecar: app container %q not in containers %v", v.str("app.name"), containerNames(pod.Containers))
	}
	if want := v.str("app.image.repository") + ":" + v.str("app.image.tag"); app.Image != want {
		t.Errorf("sidecar: app image = %q; want %q", app.Image, want)
	}
	if want := v.get("app.env"); len(anySlice(want)) != len(app.Env) {
		t.Errorf("sidecar: app env %v; want app.env %v", app.Env, want)
	}
	return init, app
}

// checkConfigFlags: each set config key is rendered as its flag, lists repeated, unset ones absent
// (extraArgs, appended last, may add to them).
func checkConfigFlags(t *testing.T, flags map[string][]string, v values) {
	extra := map[string][]string{}
	for _, a := range anySlice(v.get("extraArgs")) {
		name, value, _ := strings.Cut(strings.TrimPrefix(a.(string), "--"), "=")
		extra[name] = append(extra[name], value)
	}
	cfg, _ := v.get("config").(map[string]any)
	for key, val := range cfg {
		var want []string
		switch x := val.(type) {
		case nil:
		case string:
			if x != "" {
				want = []string{x}
			}
		case bool:
			want = []string{fmt.Sprint(x)}
		case []any:
			for _, item := range x {
				want = append(want, fmt.Sprint(item))
			}
		default:
			t.Errorf("config.%s has type %T; the schema allows strings, booleans and lists", key, val)
		}
		want = append(want, extra[key]...)
		if got := flags[key]; !slices.Equal(got, want) {
			t.Errorf("--%s rendered as %q; want %q (config.%s)", key, got, want, key)
		}
	}
}

func checkProbe(t *testing.T, kind string, c *corev1.Container, p *corev1.Probe, path string, port int) {
	if p == nil || p.HTTPGet == nil {
		t.Errorf("zdgate %s probe = %+v; want GET %s", kind, p, path)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("zdgate %s probe path = %q; want %q", kind, p.HTTPGet.Path, path)
	}
	if got := resolvePort(c, p.HTTPGet.Port); got != port {
		t.Errorf("zdgate %s probe port %v = %d; want the proxy port %d", kind, p.HTTPGet.Port.String(), got, port)
	}
}

func checkPodSecurity(t *testing.T, sc *corev1.PodSecurityContext) {
	if sc == nil {
		t.Errorf("pod has no securityContext")
		return
	}
	if !isTrue(sc.RunAsNonRoot) || val(sc.RunAsUser) != 65532 {
		t.Errorf("pod securityContext runAsNonRoot=%v runAsUser=%v; want true, 65532", sc.RunAsNonRoot, sc.RunAsUser)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile = %v; want RuntimeDefault", sc.SeccompProfile)
	}
}

func checkContainerSecurity(t *testing.T, c corev1.Container) {
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("container %s has no securityContext", c.Name)
		return
	}
	var bad []string
	if !isTrue(sc.RunAsNonRoot) {
		bad = append(bad, "runAsNonRoot")
	}
	if val(sc.RunAsUser) != 65532 {
		bad = append(bad, "runAsUser")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		bad = append(bad, "readOnlyRootFilesystem")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		bad = append(bad, "allowPrivilegeEscalation")
	}
	if isTrue(sc.Privileged) {
		bad = append(bad, "privileged")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		bad = append(bad, "capabilities")
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad = append(bad, "seccompProfile")
	}
	if len(bad) > 0 {
		b, _ := yaml.Marshal(sc)
		t.Errorf("container %s securityContext wrong in %v:\n%s", c.Name, bad, b)
	}
	for _, msg := range validation.IsDNS1123Label(c.Name) {
		t.Errorf("container name %q: %s", c.Name, msg)
	}
}

// parseFlags turns zdgate's args ("serve", "--k=v", ...) into k -> values, in order.
func parseFlags(t *testing.T, args []string) map[string][]string {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Errorf("zdgate args %q; want the serve subcommand first (args replace the image's CMD)", args)
		return nil
	}
	flags := map[string][]string{}
	for _, a := range args[1:] {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !ok {
			t.Errorf("zdgate arg %q is not --name=value", a)
			continue
		}
		flags[name] = append(flags[name], value)
	}
	return flags
}

func wantFlag(t *testing.T, flags map[string][]string, name, want string) {
	t.Helper()
	if got := flags[name]; len(got) != 1 || got[0] != want {
		t.Errorf("--%s = %q; want exactly %q", name, got, want)
	}
}

func findContainer(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

func findMount(c *corev1.Container, volume string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == volume {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func containerPort(c *corev1.Container, name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return int(p.ContainerPort)
		}
	}
	return 0
}

func resolvePort(c *corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.String {
		return containerPort(c, p.StrVal)
	}
	return int(p.IntVal)
}

func containerNames(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func subset(sub, of map[string]string) bool {
	if len(sub) == 0 {
		return false
	}
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}

func anySlice(x any) []any { s, _ := x.([]any); return s }

func isTrue(b *bool) bool { return b != nil && *b }

func val(i *int64) int64 {
	if i == nil {
		return -1
	}
	return *i
}
