package charttest

import (
	"encoding/base64"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// secretFlags maps each secrets.<key> to the flag whose -file form carries it.
var secretFlags = map[string]string{
	"cookieSecret":           "cookie-secret",
	"oidcClientSecret":       "oidc-client-secret",
	"zendeskMessagingSecret": "zendesk-messaging-secret",
	"zendeskChatSecret":      "zendesk-chat-secret",
	"zendeskSsoSecret":       "zendesk-sso-secret",
	"zendeskSdkSecret":       "zendesk-sdk-secret",
	"zendeskSsoStaffSecret":  "zendesk-sso-staff-secret",
	"redisUrl":               "redis-url",
}

// checkSecrets: every secret reaches zdgate only as a file from the read-only secret volume,
// named by a --<name>-file flag; no secret value appears anywhere but in a Secret.
func checkSecrets(t *testing.T, r *rendered, v values, pod corev1.PodSpec, zd, app *corev1.Container, flags map[string][]string) {
	full := v.fullname()
	mountPath := strings.TrimSuffix(v.str("secrets.mountPath"), "/")

	type source struct{ secret, key string }
	want := map[string]source{} // flag -> where it must come from
	var chartMade []string
	for key, flag := range secretFlags {
		value, existing := v.str("secrets."+key+".value"), v.str("secrets."+key+".existingSecret.name")
		switch {
		case existing != "":
			k := v.str("secrets." + key + ".existingSecret.key")
			if k == "" {
				k = flag
			}
			want[flag] = source{existing, k}
		case value != "" || key == "cookieSecret":
			want[flag] = source{full, flag}
			chartMade = append(chartMade, flag)
		}
	}

	// The volume: one projected volume of Secret items, mounted read-only into zdgate only.
	var vol *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == "secrets" {
			vol = &pod.Volumes[i]
		}
	}
	if vol == nil || vol.Projected == nil {
		t.Fatalf("no projected volume \"secrets\" in %v", pod.Volumes)
	}
	items := map[string]source{} // file name -> Secret and key
	for _, src := range vol.Projected.Sources {
		if src.Secret == nil {
			t.Errorf("secrets volume has a non-Secret source %+v", src)
			continue
		}
		for _, it := range src.Secret.Items {
			items[it.Path] = source{src.Secret.Name, it.Key}
		}
	}
	mount := findMount(zd, "secrets")
	if mount == nil || mount.MountPath != mountPath || !mount.ReadOnly {
		t.Errorf("zdgate mount of the secrets volume = %+v; want %s, readOnly", mount, mountPath)
	}
	if app != nil && findMount(app, "secrets") != nil {
		t.Errorf("sidecar: the app container mounts zdgate's secrets")
	}

	// The flags: --<flag>-file=<mountPath>/<flag> for exactly the configured secrets.
	got := map[string]bool{}
	for name, vals := range flags {
		base, isFile := strings.CutSuffix(name, "-file")
		if !isFile || !slices.Contains(slices.Collect(maps.Values(secretFlags)), base) {
			continue
		}
		if _, ok := want[base]; !ok {
			t.Errorf("--%s rendered for a secret that is not configured", name)
			continue
		}
		got[base] = true
		if len(vals) != 1 || vals[0] != mountPath+"/"+base {
			t.Errorf("--%s = %q; want %s/%s", name, vals, mountPath, base)
		}
		if items[base] != want[base] {
			t.Errorf("file %s comes from %+v; want %+v", base, items[base], want[base])
		}
	}
	for flag := range want {
		if !got[flag] {
			t.Errorf("secret %s configured but no --%s-file flag", flag, flag)
		}
	}
	for _, flag := range secretFlags {
		if _, ok := flags[flag]; ok && !(flag == "redis-url" && v.str("config.redis-url") != "") {
			t.Errorf("secret passed as an argument: --%s=...", flag)
		}
	}

	// No secrets in the environment.
	if len(zd.EnvFrom) != 0 {
		t.Errorf("zdgate has envFrom %v; secrets must come from files", zd.EnvFrom)
	}
	for _, e := range zd.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Errorf("zdgate env %s reads a Secret; secrets must come from files", e.Name)
		}
		for _, flag := range secretFlags {
			if e.Name == "ZDGATE_"+strings.ToUpper(strings.ReplaceAll(flag, "-", "_")) {
				t.Errorf("zdgate env %s carries a secret", e.Name)
			}
		}
	}

	// The chart's Secret holds exactly the chart-made secrets, with the given values.
	sort.Strings(chartMade)
	if len(chartMade) == 0 {
		if len(r.secrets) != 0 {
			t.Errorf("rendered Secrets %v although every secret is an existingSecret", names(r.secrets))
		}
	} else {
		if len(r.secrets) != 1 || r.secrets[0].Name != full {
			t.Fatalf("Secrets %v; want one named %s", names(r.secrets), full)
		}
		data := r.secrets[0].Data
		keys := slices.Sorted(maps.Keys(data))
		if !slices.Equal(keys, chartMade) {
			t.Errorf("Secret %s keys %v; want %v", full, keys, chartMade)
		}
		for key, flag := range secretFlags {
			if val := v.str("secrets." + key + ".value"); val != "" && string(data[flag]) != val {
				t.Errorf("Secret %s[%s] = %q; want secrets.%s.value", full, flag, data[flag], key)
			}
		}
		if v.str("secrets.cookieSecret.value") == "" && v.str("secrets.cookieSecret.existingSecret.name") == "" {
			raw, err := base64.StdEncoding.DecodeString(string(data["cookie-secret"]))
			if err != nil || len(raw) != 32 {
				t.Errorf("generated cookie secret %q is not base64 of 32 bytes (%d bytes, %v)", data["cookie-secret"], len(raw), err)
			}
		}
	}

	// Leak check: no secret value (plain or base64) in any other object.
	for key := range secretFlags {
		val := v.str("secrets." + key + ".value")
		if val == "" {
			continue
		}
		for _, doc := range r.nonSecretText {
			if strings.Contains(doc, val) || strings.Contains(doc, base64.StdEncoding.EncodeToString([]byte(val))) {
				t.Errorf("secrets.%s.value appears outside the Secret:\n%s", key, doc)
			}
		}
	}
}
