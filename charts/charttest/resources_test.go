package charttest

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// checkServices: the main Service reaches zdgate's proxy port (never the app's, never metrics);
// the metrics Service and ServiceMonitor reach the metrics port.
func checkServices(t *testing.T, r *rendered, v values, podLabels map[string]string) {
	full := v.fullname()
	var main, metrics *corev1.Service
	for i := range r.services {
		switch r.services[i].Name {
		case full:
			main = &r.services[i]
		case full + "-metrics":
			metrics = &r.services[i]
		default:
			t.Errorf("unexpected Service %q", r.services[i].Name)
		}
	}
	if main == nil {
		t.Fatalf("no Service %q", full)
	}
	if !subset(main.Spec.Selector, podLabels) {
		t.Errorf("Service %s selector %v does not select the pod labels %v", full, main.Spec.Selector, podLabels)
	}
	if len(main.Spec.Ports) != 1 {
		t.Fatalf("Service %s ports %+v; want one", full, main.Spec.Ports)
	}
	p := main.Spec.Ports[0]
	want := intstr.FromInt32(int32(v.num("containerPorts.http")))
	if p.Name != "http" || int(p.Port) != v.num("service.port") || p.TargetPort != want {
		t.Errorf("Service %s port %+v; want http %d -> zdgate's %s", full, p, v.num("service.port"), want.String())
	}

	if !v.flag("metrics.enabled") {
		if metrics != nil {
			t.Errorf("metrics Service rendered although metrics.enabled is false")
		}
		return
	}
	if metrics == nil {
		t.Fatalf("no Service %s-metrics", full)
	}
	if !subset(metrics.Spec.Selector, podLabels) {
		t.Errorf("metrics Service selector %v does not select the pod", metrics.Spec.Selector)
	}
	want = intstr.FromInt32(int32(v.num("containerPorts.metrics")))
	if len(metrics.Spec.Ports) != 1 || metrics.Spec.Ports[0].Name != "metrics" || metrics.Spec.Ports[0].TargetPort != want ||
		int(metrics.Spec.Ports[0].Port) != v.num("metrics.service.port") {
		t.Errorf("metrics Service ports %+v; want metrics %d -> %s", metrics.Spec.Ports, v.num("metrics.service.port"), want.String())
	}

	if !v.flag("metrics.serviceMonitor.enabled") {
		if len(r.serviceMonitors) != 0 {
			t.Errorf("ServiceMonitor rendered although metrics.serviceMonitor.enabled is false")
		}
		return
	}
	if len(r.serviceMonitors) != 1 {
		t.Fatalf("rendered %d ServiceMonitors; want 1", len(r.serviceMonitors))
	}
	sm := values(r.serviceMonitors[0])
	endpoints := anySlice(sm.get("spec.endpoints"))
	if len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints %v; want one", endpoints)
	}
	ep := values(endpoints[0].(map[string]any))
	if ep.str("port") != "metrics" || ep.str("path") != "/metrics" {
		t.Errorf("ServiceMonitor endpoint %v; want port metrics, path /metrics", ep)
	}
	sel := map[string]string{}
	for k, x := range sm.get("spec.selector.matchLabels").(map[string]any) {
		sel[k], _ = x.(string)
	}
	if !subset(sel, metrics.Labels) || subset(sel, main.Labels) {
		t.Errorf("ServiceMonitor selector %v must pick the metrics Service %v, not the proxy Service %v", sel, metrics.Labels, main.Labels)
	}
}

// checkScaling: replicas or HPA, and a PodDisruptionBudget whenever more than one pod runs.
func checkScaling(t *testing.T, r *rendered, v values, replicas *int32, podLabels map[string]string) {
	minReplicas := v.num("replicaCount")
	if v.flag("autoscaling.enabled") {
		minReplicas = v.num("autoscaling.minReplicas")
		if replicas != nil {
			t.Errorf("Deployment sets replicas %d although the HPA owns them", *replicas)
		}
		if len(r.hpas) != 1 {
			t.Fatalf("rendered %d HPAs; want 1", len(r.hpas))
		}
		h := r.hpas[0].Spec
		ref := h.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != v.fullname() {
			t.Errorf("HPA targets %+v; want Deployment %s", ref, v.fullname())
		}
		if h.MinReplicas == nil || int(*h.MinReplicas) != minReplicas || int(h.MaxReplicas) != v.num("autoscaling.maxReplicas") {
			t.Errorf("HPA replicas %v..%d; want %d..%d", h.MinReplicas, h.MaxReplicas, minReplicas, v.num("autoscaling.maxReplicas"))
		}
		if len(h.Metrics) == 0 {
			t.Errorf("HPA has no metrics")
		}
	} else {
		if len(r.hpas) != 0 {
			t.Errorf("HPA rendered although autoscaling.enabled is false")
		}
		if replicas == nil || int(*replicas) != minReplicas {
			t.Errorf("Deployment replicas = %v; want %d", replicas, minReplicas)
		}
	}

	wantPDB := v.flag("podDisruptionBudget.enabled") || minReplicas > 1
	if !wantPDB {
		if len(r.pdbs) != 0 {
			t.Errorf("PodDisruptionBudget rendered for a single replica without podDisruptionBudget.enabled")
		}
		return
	}
	if len(r.pdbs) != 1 {
		t.Fatalf("rendered %d PodDisruptionBudgets; want 1 (enabled=%v, min replicas %d)", len(r.pdbs), v.flag("podDisruptionBudget.enabled"), minReplicas)
	}
	pdb := r.pdbs[0].Spec
	if pdb.Selector == nil || !subset(pdb.Selector.MatchLabels, podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not select the pod", pdb.Selector)
	}
	if (pdb.MinAvailable == nil) == (pdb.MaxUnavailable == nil) {
		t.Errorf("PodDisruptionBudget minAvailable=%v maxUnavailable=%v; want exactly one", pdb.MinAvailable, pdb.MaxUnavailable)
	}
}

// checkNetworkPolicy: only zdgate's ports are opened; in sidecar mode never the app's.
func checkNetworkPolicy(t *testing.T, r *rendered, v values, podLabels map[string]string, sidecar bool) {
	if !v.flag("networkPolicy.enabled") {
		if len(r.netpols) != 0 {
			t.Errorf("NetworkPolicy rendered although networkPolicy.enabled is false")
		}
		return
	}
	if len(r.netpols) != 1 {
		t.Fatalf("rendered %d NetworkPolicies; want 1", len(r.netpols))
	}
	np := r.netpols[0].Spec
	if !subset(np.PodSelector.MatchLabels, podLabels) {
		t.Errorf("NetworkPolicy podSelector %v does not select the pod", np.PodSelector)
	}
	var open []int
	for _, rule := range np.Ingress {
		if len(rule.Ports) == 0 {
			t.Errorf("NetworkPolicy ingress rule %+v opens every port", rule)
		}
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.Type != intstr.Int {
				t.Errorf("NetworkPolicy port %+v; want a number", p)
				continue
			}
			open = append(open, int(p.Port.IntVal))
		}
	}
	want := []int{v.num("containerPorts.http")}
	if v.flag("metrics.enabled") {
		want = append(want, v.num("containerPorts.metrics"))
	}
	slices.Sort(open)
	slices.Sort(want)
	if !slices.Equal(open, want) {
		t.Errorf("NetworkPolicy opens ports %v; want %v", open, want)
	}
	if sidecar && slices.Contains(open, v.num("app.port")) {
		t.Errorf("NetworkPolicy opens the app's port %d around zdgate", v.num("app.port"))
	}
	hasEgress := slices.Contains(np.PolicyTypes, "Egress")
	if hasEgress != (len(anySlice(v.get("networkPolicy.egress"))) > 0) {
		t.Errorf("NetworkPolicy policyTypes %v; Egress wanted iff networkPolicy.egress is set", np.PolicyTypes)
	}
}

// checkIngress: every path leads to the main Service's http port.
func checkIngress(t *testing.T, r *rendered, v values) {
	if !v.flag("ingress.enabled") {
		if len(r.ingresses) != 0 {
			t.Errorf("Ingress rendered although ingress.enabled is false")
		}
		return
	}
	if len(r.ingresses) != 1 {
		t.Fatalf("rendered %d Ingresses; want 1", len(r.ingresses))
	}
	ing := r.ingresses[0].Spec
	if len(ing.Rules) == 0 {
		t.Errorf("Ingress has no rules")
	}
	for _, rule := range ing.Rules {
		if rule.HTTP == nil || len(rule.HTTP.Paths) == 0 {
			t.Errorf("Ingress rule %q has no paths", rule.Host)
			continue
		}
		for _, p := range rule.HTTP.Paths {
			s := p.Backend.Service
			if s == nil || s.Name != v.fullname() || s.Port.Name != "http" {
				t.Errorf("Ingress path %s%s -> %+v; want Service %s port http", rule.Host, p.Path, s, v.fullname())
			}
		}
	}
}

// named is any API object with a name.
type named interface{ GetName() string }

func names[T any, PT interface {
	*T
	named
}](objs []T) []string {
	var out []string
	for i := range objs {
		out = append(out, PT(&objs[i]).GetName())
	}
	return out
}
