package charttest

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// minimal is the least each mode needs, for tests that add one bad value to it.
var minimal = map[string][]string{
	"standalone": {"upstream=http://web.shop.svc:8080"},
	"sidecar":    {"mode=sidecar", "app.image.repository=ghcr.io/example/web", "app.image.tag=1.0.0", "app.port=3000"},
}

func setArgs(sets ...[]string) []string {
	var args []string
	for _, s := range sets {
		for _, kv := range s {
			args = append(args, "--set", kv)
		}
	}
	return args
}

// TestRejects: values.schema.json turns typos, bad enums and bad types into errors, and the
// templates fail with a clear message on what the schema cannot express.
func TestRejects(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name string
		mode string
		set  []string
		want []string // all must appear in helm's error
	}{
		// Typos, at every level.
		{"typo top", "standalone", []string{"typoKey=1"}, []string{"additional properties 'typoKey'"}},
		{"typo config", "standalone", []string{"config.oidc-isuer=https://x"}, []string{"/config", "'oidc-isuer'"}},
		{"typo camelCase config", "standalone", []string{"config.oidcIssuer=https://x"}, []string{"/config", "'oidcIssuer'"}},
		{"derived flag in config", "standalone", []string{"config.upstream=http://x"}, []string{"/config", "'upstream'"}},
		{"secret in config", "standalone", []string{"config.cookie-secret=x"}, []string{"/config", "'cookie-secret'"}},
		{"typo secrets", "standalone", []string{"secrets.cookieSecret.valeu=x"}, []string{"/secrets/cookieSecret", "'valeu'"}},
		{"typo existingSecret", "standalone", []string{"secrets.oidcClientSecret.existingSecret.nam=x"}, []string{"/secrets/oidcClientSecret/existingSecret", "'nam'"}},
		{"typo app", "sidecar", []string{"app.prot=1"}, []string{"/app", "'prot'"}},
		{"typo probe", "standalone", []string{"livenessProbe.path=/x"}, []string{"/livenessProbe", "'path'"}},
		{"typo metrics", "standalone", []string{"metrics.serviceMonitor.enable=true"}, []string{"/metrics/serviceMonitor", "'enable'"}},
		{"typo ingress", "standalone", []string{"ingress.hosts[0].paths[0].pathtype=Prefix"}, []string{"/ingress/hosts/0/paths/0", "'pathtype'"}},
		// Enums.
		{"mode", "standalone", []string{"mode=proxy"}, []string{"/mode", "standalone", "sidecar"}},
		{"auth-mode", "standalone", []string{"config.auth-mode=sometimes"}, []string{"/config/auth-mode", "required"}},
		{"session-store", "standalone", []string{"config.session-store=memcached"}, []string{"/config/session-store", "redis"}},
		{"zendesk-flavor", "standalone", []string{"config.zendesk-flavor=sso"}, []string{"/config/zendesk-flavor", "messaging"}},
		{"log-format", "standalone", []string{"config.log-format=xml"}, []string{"/config/log-format", "json"}},
		{"log-level", "standalone", []string{"config.log-level=verbose"}, []string{"/config/log-level", "debug"}},
		{"pullPolicy", "standalone", []string{"image.pullPolicy=Sometimes"}, []string{"/image/pullPolicy"}},
		// Types and formats.
		{"bool flag", "standalone", []string{"config.cookie-secure=yes"}, []string{"/config/cookie-secure", "boolean"}},
		{"list flag", "standalone", []string{"config.skip-auth-path=^/public"}, []string{"/config/skip-auth-path", "array"}},
		{"duration", "standalone", []string{"config.recheck-interval=5 minutes"}, []string{"/config/recheck-interval"}},
		{"port", "standalone", []string{"containerPorts.http=0"}, []string{"/containerPorts/http", "minimum"}},
		{"app port", "sidecar", []string{"app.port=70000"}, []string{"/app/port", "maximum"}},
		{"upstream URL", "standalone", []string{"upstream=my-app:8080"}, []string{"/upstream"}},
		// Secrets never as plain values outside `secrets`.
		{"redis password in config", "standalone", []string{"config.redis-url=redis://:hunter2@redis:6379"}, []string{"/config/redis-url"}},
		{"secret in extraArgs", "standalone", []string{"extraArgs[0]=--zendesk-sso-secret=x"}, []string{"/extraArgs/0"}},
		{"secret in extraEnv", "standalone", []string{"extraEnv[0].name=ZDGATE_COOKIE_SECRET", "extraEnv[0].value=x"}, []string{"/extraEnv/0/name"}},
		{"staff SSO secret in extraArgs", "standalone", []string{"extraArgs[0]=--zendesk-sso-staff-secret=x"}, []string{"/extraArgs/0"}},
		{"staff SSO secret in extraEnv", "standalone", []string{"extraEnv[0].name=ZDGATE_ZENDESK_SSO_STAFF_SECRET", "extraEnv[0].value=x"}, []string{"/extraEnv/0/name"}},
		{"secretKeyRef in extraEnv", "standalone", []string{"extraEnv[0].name=TOKEN", "extraEnv[0].valueFrom.secretKeyRef.name=s", "extraEnv[0].valueFrom.secretKeyRef.key=k"}, []string{"/extraEnv/0/valueFrom"}},
		// Cross-field rules in the templates.
		{"standalone without upstream", "", nil, []string{"upstream is required in standalone mode"}},
		{"sidecar without image", "", []string{"mode=sidecar", "app.port=3000"}, []string{"app.image.repository is required"}},
		{"sidecar without tag", "", []string{"mode=sidecar", "app.image.repository=web", "app.port=3000"}, []string{"app.image.tag is required"}},
		{"sidecar without port", "", []string{"mode=sidecar", "app.image.repository=web", "app.image.tag=1"}, []string{"app.port is required"}},
		{"sidecar with upstream", "sidecar", []string{"upstream=http://x"}, []string{"upstream must be empty in sidecar mode"}},
		{"sidecar port collision", "sidecar", []string{"app.port=4180"}, []string{"app.port 4180 collides"}},
		{"app in standalone", "standalone", []string{"app.image.repository=web"}, []string{"only used with mode=sidecar"}},
		{"redis without url", "standalone", []string{"config.session-store=redis"}, []string{"session-store=redis needs"}},
		{"redis url twice", "standalone", []string{"config.redis-url=redis://r:6379", "secrets.redisUrl.value=redis://:pw@r:6379"}, []string{"not both"}},
		{"secret value and existing", "standalone", []string{"secrets.zendeskSsoSecret.value=x", "secrets.zendeskSsoSecret.existingSecret.name=sso"}, []string{"secrets.zendeskSsoSecret", "not both"}},
		{"same ports", "standalone", []string{"containerPorts.metrics=4180"}, []string{"must differ"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := setArgs(minimal[tc.mode], tc.set)
			_, err := h.template(t, chartDir(t), args...)
			if err == nil {
				t.Fatalf("helm template %v succeeded; want an error mentioning %q", args, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("helm template %v: error %q does not mention %q", args, err, w)
				}
			}
		})
	}
}

// TestSchemaClosed: every object the schema defines properties for rejects unknown keys.
func TestSchemaClosed(t *testing.T) {
	schema := readSchema(t)
	var walk func(path string, node map[string]any)
	walk = func(path string, node map[string]any) {
		if props, ok := node["properties"].(map[string]any); ok {
			if node["additionalProperties"] != false {
				t.Errorf("schema %s: properties without additionalProperties: false", path)
			}
			for k, p := range props {
				if m, ok := p.(map[string]any); ok {
					walk(path+"/"+k, m)
				}
			}
		}
		if items, ok := node["items"].(map[string]any); ok {
			walk(path+"/[]", items)
		}
	}
	walk("", schema)
}

// specFlags are docs/reference.md §1's flags (without their -file forms).
var specFlags = []string{
	"listen", "metrics-listen", "upstream", "public-url", "oidc-issuer", "oidc-client-id",
	"oidc-client-secret", "oidc-scopes", "oidc-audiences", "recheck-interval", "recheck-grace",
	"cookie-secret", "cookie-name", "cookie-domain", "cookie-secure", "session-ttl", "session-store",
	"auth-mode", "skip-auth-path", "allowed-email-domain", "allowed-group", "groups-claim",
	"trusted-proxy", "allowed-redirect-domain", "inject", "inject-skip-path", "inject-scan-limit",
	"zendesk-snippet-key", "zendesk-messaging-key-id", "zendesk-messaging-secret",
	"zendesk-chat-secret", "zendesk-sso-secret", "zendesk-subdomain", "zendesk-host",
	"zendesk-flavor", "zendesk-sdk-secret", "zendesk-token-ttl", "external-id-claim",
	"external-id-prefix", "log-format", "log-level", "shutdown-timeout", "redis-url",
}

// derivedFlags are set by the chart from other values, never through config.
var derivedFlags = []string{"listen", "metrics-listen", "upstream"}

// TestEveryFlagHasAValue: each docs/reference.md §1 flag is reachable from values (config, a derived value, or
// secrets), and values.yaml lists every config key. (TestBinaryAcceptsArgs checks config against
// the flags zdgate really has.)
func TestEveryFlagHasAValue(t *testing.T) {
	props := readSchema(t)["properties"].(map[string]any)
	config := props["config"].(map[string]any)["properties"].(map[string]any)
	secrets := slices.Collect(maps.Values(secretFlags))
	for _, f := range specFlags {
		_, inConfig := config[f]
		isSecret := slices.Contains(secrets, f)
		derived := slices.Contains(derivedFlags, f)
		if !inConfig && !isSecret && !derived {
			t.Errorf("--%s has no value in the chart (config, secrets or derived)", f)
		}
		if inConfig && (derived || (isSecret && f != "redis-url")) {
			t.Errorf("--%s is in config although the chart derives it or it is a secret", f)
		}
	}
	defaults, _ := loadValues(t).get("config").(map[string]any)
	for k := range config {
		if _, ok := defaults[k]; !ok {
			t.Errorf("config.%s is in the schema but not in values.yaml", k)
		}
	}
	for k, flag := range secretFlags {
		if _, ok := props["secrets"].(map[string]any)["properties"].(map[string]any)[k]; !ok {
			t.Errorf("secrets.%s (--%s-file) missing from the schema", k, flag)
		}
	}
}

// TestReadmeCoversValues: the chart README names every top-level value and every config key.
func TestReadmeCoversValues(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	v := loadValues(t)
	for k := range v {
		if !strings.Contains(readme, "`"+k) {
			t.Errorf("README.md does not mention `%s`", k)
		}
	}
	cfg, _ := v.get("config").(map[string]any)
	for k := range cfg {
		if !strings.Contains(readme, "`"+k+"`") {
			t.Errorf("README.md does not mention config key `%s`", k)
		}
	}
	sec, _ := v.get("secrets").(map[string]any)
	for k := range sec {
		if !strings.Contains(readme, "`secrets."+k) {
			t.Errorf("README.md does not mention `secrets.%s`", k)
		}
	}
}

// TestNotes renders NOTES.txt for every ci values file. helm template skips NOTES.txt, so a copy
// of the chart renders it through tpl in an extra template.
func TestNotes(t *testing.T) {
	h := newHelm(t)
	dir := filepath.Join(t.TempDir(), "zdgate")
	if err := os.CopyFS(dir, os.DirFS(chartDir(t))); err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(dir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.tmpl"), notes, 0o644); err != nil {
		t.Fatal(err)
	}
	const show = "templates/zz-notes-test.yaml"
	if err := os.WriteFile(filepath.Join(dir, show),
		[]byte("text: {{ tpl (.Files.Get \"notes.tmpl\") . | toJson }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(chartDir(t), "ci", "*-values.yaml"))
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), "-values.yaml"), func(t *testing.T) {
			t.Parallel()
			out, err := h.template(t, dir, "-f", f, "--show-only", show)
			if err != nil {
				t.Fatalf("rendering NOTES.txt: %v", err)
			}
			var doc struct{ Text string }
			if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatal(err)
			}
			v := loadValues(t, readYAMLFile(t, f))
			for _, want := range []string{v.fullname(), "/oauth2/callback", "/zendesk/sso", v.str("mode") + " mode"} {
				if !strings.Contains(doc.Text, want) {
					t.Errorf("NOTES do not mention %q:\n%s", want, doc.Text)
				}
			}
			for key := range secretFlags {
				if val := v.str("secrets." + key + ".value"); val != "" && strings.Contains(doc.Text, val) {
					t.Errorf("NOTES show secrets.%s.value", key)
				}
			}
		})
	}
}

func readSchema(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir(t), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	return schema
}
