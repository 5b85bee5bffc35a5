package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zdgate/zdgate/oidc/oidctest"
	"github.com/zdgate/zdgate/tokens"
)

// base are the flags every providers: test shares: the proxy, the cookie secret and the Zendesk
// secrets, but no --oidc-* (the providers are the IdPs).
var base = []string{
	"--upstream=http://127.0.0.1:8080", "--public-url=https://help.example.com",
	"--cookie-secret=0123456789abcdef0123456789abcdef",
	"--zendesk-messaging-key-id=app_1", "--zendesk-messaging-secret=m", "--zendesk-chat-secret=c",
	"--zendesk-sso-secret=s", "--zendesk-sso-staff-secret=st", "--zendesk-subdomain=acme",
}

// twoProviders is a valid two-provider file: Entra ID for staff, Auth0 for customers.
const twoProviders = `
providers:
  - id: staff
    display-name: Acme employees
    hosts: [agents.example.com]
    oidc-issuer: https://login.microsoftonline.com/tenant/v2.0
    oidc-client-id: zdgate-staff
    oidc-client-secret: staff-secret
    email-verified-claim: xms_edov
    external-id-prefix: emp-
    zendesk-sso: staff
    zendesk-claim-role: zendesk_role
    zendesk-allowed-role: [agent, admin]
    allowed-group: [support]
  - id: customers
    display-name: Acme customers
    oidc-issuer: https://acme.eu.auth0.com/
    oidc-client-id: zdgate-customers
    oidc-client-secret-file: CUSTOMER_SECRET_FILE
    external-id-prefix: cust-
    zendesk-flavors: [messaging, sso]
    opaque-bearer-tokens: true
`

func parseProvidersFile(t *testing.T, yaml string, args ...string) (*Config, error, error) {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "customer-secret")
	os.WriteFile(secret, []byte("customers-secret\n"), 0o600)
	file := filepath.Join(dir, "zdgate.yaml")
	os.WriteFile(file, []byte(strings.ReplaceAll(yaml, "CUSTOMER_SECRET_FILE", secret)), 0o600)
	cfg := &Config{}
	if _, err := cfg.options().parse(append(append([]string{"--config", file}, base...), args...), envOf(nil)); err != nil {
		return cfg, err, nil
	}
	return cfg, nil, cfg.Validate()
}

func TestProvidersParse(t *testing.T) {
	cfg, perr, verr := parseProvidersFile(t, twoProviders)
	if perr != nil || verr != nil {
		t.Fatalf("parse = %v, Validate = %v", perr, verr)
	}
	if len(cfg.Providers) != 2 {
		t.Fatalf("%d providers; want 2", len(cfg.Providers))
	}
	staff, cust := cfg.Providers[0], cfg.Providers[1]
	if staff.ID != "staff" || staff.DisplayName != "Acme employees" || staff.OIDCClientID != "zdgate-staff" ||
		staff.EmailVerifiedClaim != "xms_edov" || staff.sso != tokens.Staff || staff.mapping.RoleClaim != "zendesk_role" ||
		strings.Join(staff.AllowedGroup, ",") != "support" || strings.Join(staff.Hosts, ",") != "agents.example.com" {
		t.Errorf("staff = %+v", staff.ProviderItemOptions)
	}
	// Defaults are each item's own, from the same declarations as the single-IdP flags.
	if cust.GroupsClaim != "groups" || strings.Join(cust.scopes, " ") != "openid email profile offline_access" ||
		cust.sso != tokens.EndUsers || !cust.BearerTokens || !cust.OpaqueBearerTokens || staff.OpaqueBearerTokens {
		t.Errorf("customers defaults: groups %q scopes %q sso %q bearer %v/%v", cust.GroupsClaim, cust.scopes, cust.sso, cust.BearerTokens, cust.OpaqueBearerTokens)
	}
	if len(cust.flavors) != 2 || cust.flavors[0] != tokens.Messaging || cust.flavors[1] != tokens.SSO || staff.flavors != nil {
		t.Errorf("flavors: customers %v, staff %v", cust.flavors, staff.flavors)
	}
	pp := cust.proxyProvider()
	if pp.ID != "customers" || pp.Mapping.ExternalIDPrefix != "cust-" || !pp.BearerOpaque {
		t.Errorf("proxyProvider() = %+v", pp)
	}
}

// TestProvidersUnknownKey: a key an item does not have is an error naming the item and the key,
// a usage error like an unknown top-level key.
func TestProvidersUnknownKey(t *testing.T) {
	_, perr, _ := parseProvidersFile(t, `
providers:
  - id: a
    oidc-issuer: https://a.example
    oidc-client-id: a
  - id: b
    oidc-isuer: https://b.example
    external-id-prefix: [x]
  - just a string
`)
	if perr == nil {
		t.Fatal("parse accepted an unknown key")
	}
	for _, want := range []string{
		"providers[1].oidc-isuer: unknown key", "providers[1].external-id-prefix: takes one value, not a list",
		"providers[2]: want a mapping",
	} {
		if !strings.Contains(perr.Error(), want) {
			t.Errorf("parse error lacks %q:\n%v", want, perr)
		}
	}
	_, perr, _ = parseProvidersFile(t, "providers: {id: a}\n")
	if perr == nil || !strings.Contains(perr.Error(), "providers: want a list") {
		t.Errorf("providers as a mapping: %v", perr)
	}
}

// TestProvidersValidateEveryProblem: each rule of the providers: list, all reported at once.
func TestProvidersValidateEveryProblem(t *testing.T) {
	_, perr, verr := parseProvidersFile(t, `
providers:
  - id: staff
    oidc-issuer: https://idp.example
    oidc-client-id: zdgate
    hosts: [agents.example.com, "bad/host"]
    external-id-prefix: emp-
    zendesk-claim-role: role
    zendesk-allowed-role: [agent]
    opaque-bearer-tokens: true
  - id: staff
    oidc-issuer: https://idp.example
    oidc-client-id: zdgate
    hosts: [Agents.Example.com]
    external-id-prefix: emp-x-
    zendesk-claim-custom-role-id: light
    opaque-bearer-tokens: true
  - id: Bad_ID
    oidc-client-id: c
    zendesk-flavors: [messaging, sdk, widget]
    zendesk-sso: admins
`, "--oidc-client-id=leftover")
	if perr != nil {
		t.Fatal(perr)
	}
	if verr == nil {
		t.Fatal("Validate() = nil")
	}
	msg := verr.Error()
	for _, want := range []string{
		"--oidc-client-id: cannot be used together with providers:",
		"providers[1].id: \"staff\" is also providers[0]'s",
		"providers[0].hosts: want a host like",
		"providers[1].hosts: \"Agents.Example.com\" is also claimed by providers[0] (staff)",
		"providers[1].opaque-bearer-tokens: providers[0] (staff) takes them already",
		"providers[1].external-id-prefix: \"emp-x-\" and providers[0] (staff)'s \"emp-\" can make the same Zendesk external_id",
		"providers[1].oidc-issuer: same issuer as providers[0] (staff)",
		"providers[0]: tokens: mapping: RoleClaim: only for staff",
		"providers[0]: tokens: mapping: AllowedRoles: only for staff",
		"providers[1]: tokens: mapping: CustomRoleIDClaim: only for staff",
		"providers[2].id: want 1 to 32 of a-z, 0-9 and -",
		"providers[2].oidc-issuer: required",
		"providers[2].zendesk-flavors: want messaging, chat, sso or sdk, got \"widget\"",
		"providers[2].zendesk-flavors: sdk has no secret (--zendesk-sdk-secret)",
		"providers[2].zendesk-sso: must be end-users or staff",
		"--zendesk-sso-staff-secret: only used by a providers: item",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems lack %q", want)
		}
	}
	if strings.Contains(msg, "--oidc-issuer: required") {
		t.Errorf("the single-IdP --oidc-issuer is required although providers: is set:\n%s", msg)
	}
	if t.Failed() {
		t.Log(msg)
	}
}

// TestProvidersStaffNeedsItsSecret: a staff provider without --zendesk-sso-staff-secret, and an
// empty prefix next to another provider, are errors; distinct prefixes, or a provider that mints
// nothing, are fine.
func TestProvidersStaffNeedsItsSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "zdgate.yaml")
	os.WriteFile(file, []byte(`
providers:
  - {id: staff, oidc-issuer: "https://a.example", oidc-client-id: a, zendesk-sso: staff, external-id-prefix: emp-}
  - {id: customers, oidc-issuer: "https://b.example", oidc-client-id: b}
`), 0o600)
	cfg := &Config{}
	args := []string{"--config", file, "--upstream=http://127.0.0.1:1", "--public-url=https://h.example", "--cookie-secret=0123456789abcdef0123456789abcdef",
		"--zendesk-sso-secret=s", "--zendesk-subdomain=acme"}
	if _, err := cfg.options().parse(args, envOf(nil)); err != nil {
		t.Fatal(err)
	}
	// Without the staff secret the staff provider can mint nothing: no collision to report, but
	// its missing secret is an error.
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "providers[0].zendesk-sso: staff needs --zendesk-sso-staff-secret") {
		t.Errorf("Validate() = %v; want the staff secret missing", err)
	}
	if err != nil && strings.Contains(err.Error(), "external-id-prefix") {
		t.Errorf("Validate() reports a collision with a provider that mints nothing: %v", err)
	}
	// With a Chat secret both mint Chat tokens: "" starts "emp-", so user "emp-1" of customers
	// would be staff's user "1".
	cfg = &Config{}
	if _, err := cfg.options().parse(append(args, "--zendesk-chat-secret=c", "--zendesk-sso-staff-secret=st"), envOf(nil)); err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	want := "providers[1].external-id-prefix: \"\" and providers[0] (staff)'s \"emp-\" can make the same Zendesk external_id"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "zendesk-sso: staff needs") {
		t.Errorf("Validate() = %v; want only %q", err, want)
	}
}

// TestSingleIdPRejectsStaffSecret: the staff secret belongs to providers:; alone it would sign
// nothing.
func TestSingleIdPRejectsStaffSecret(t *testing.T) {
	_, err := parseConfig(t, append(minimal, "--zendesk-sso-staff-secret=x", "--zendesk-subdomain=acme"), nil)
	if err == nil || !strings.Contains(err.Error(), "--zendesk-sso-staff-secret: only used by a providers: item") {
		t.Fatalf("Validate() = %v", err)
	}
}

// TestReferenceNamesEveryProviderKey: docs/reference.md's table of providers: keys has every key
// of an item, the provider options declared once for the single IdP among them.
func TestReferenceNamesEveryProviderKey(t *testing.T) {
	table := providerTable(nil)
	item := providerItemOptions()
	for _, o := range item.opts {
		if !strings.Contains(table, "| `"+o.name+"` |") {
			t.Errorf("provider keys table lacks %s", o.name)
		}
	}
	cfg := &Config{}
	cfg.options()
	if len(cfg.providerOpts) < 20 {
		t.Fatalf("only %d provider options", len(cfg.providerOpts))
	}
	for _, o := range cfg.providerOpts {
		if _, ok := item.byKey[o.name]; !ok {
			t.Errorf("--%s is a provider option but no providers: key", o.name)
		}
	}
}

// TestConfigCheckEveryProvider: config check discovers every provider and reports what each
// announced, with the bearer warning of the one that cannot check opaque tokens; the printed
// configuration lists the providers with their secrets redacted.
func TestConfigCheckEveryProvider(t *testing.T) {
	a := oidctest.NewT(t, oidctest.Options{})
	b := oidctest.NewT(t, oidctest.Options{Disable: []string{"introspection", "revocation"}})
	file := filepath.Join(t.TempDir(), "zdgate.yaml")
	os.WriteFile(file, []byte(`
providers:
  - {id: staff, oidc-issuer: "`+a.URL()+`", oidc-client-id: zdgate, oidc-client-secret: very-secret-a, external-id-prefix: emp-}
  - {id: customers, oidc-issuer: "`+b.URL()+`", oidc-client-id: zdgate, oidc-client-secret: very-secret-b, external-id-prefix: cust-}
`), 0o600)
	var stdout, stderr strings.Builder
	code := run(context.Background(), append([]string{"config", "check", "--config", file}, base[:3]...), strings.NewReader(""), &stdout, &stderr, envOf(nil))
	if code != 0 {
		t.Fatalf("config check = %d:\n%s", code, stderr.String())
	}
	errText := stderr.String()
	for _, want := range []string{
		"discovery and JWKS loaded for 2 identity providers",
		"provider staff (" + a.URL() + "): refresh tokens yes, userinfo yes, introspection yes, revocation yes, end_session yes, back-channel logout yes",
		"provider customers (" + b.URL() + "): refresh tokens yes, userinfo yes, introspection no, revocation no, end_session yes, back-channel logout yes",
		"provider customers: warning: the IdP advertises no introspection_endpoint",
	} {
		if !strings.Contains(errText, want) {
			t.Errorf("config check output lacks %q:\n%s", want, errText)
		}
	}
	if strings.Contains(errText, "provider staff: warning") {
		t.Errorf("a bearer warning for staff, whose IdP introspects:\n%s", errText)
	}
	var eff map[string]any
	if err := json.Unmarshal([]byte(stdout.String()), &eff); err != nil {
		t.Fatal(err)
	}
	items, _ := eff["providers"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["id"] != "staff" || items[1].(map[string]any)["oidc-client-secret"] != "[redacted]" {
		t.Fatalf("effective providers = %v", eff["providers"])
	}
	if _, ok := eff["oidc-issuer"]; ok || strings.Contains(stdout.String(), "very-secret") {
		t.Fatalf("effective configuration shows the single-IdP options or a secret:\n%s", stdout.String())
	}
	// An unreachable provider names its item.
	os.WriteFile(file, []byte(`
providers:
  - {id: staff, oidc-issuer: "`+a.URL()+`", oidc-client-id: zdgate, external-id-prefix: emp-}
  - {id: gone, oidc-issuer: "http://127.0.0.1:1", oidc-client-id: zdgate, external-id-prefix: cust-}
`), 0o600)
	stderr.Reset()
	if code := run(context.Background(), append([]string{"config", "check", "--config", file}, base[:3]...), strings.NewReader(""), &stdout, &stderr, envOf(nil)); code != 1 ||
		!strings.Contains(stderr.String(), "zdgate: providers[1].oidc-issuer: gone: ") {
		t.Fatalf("config check with an unreachable provider = %d:\n%s", code, stderr.String())
	}
}
