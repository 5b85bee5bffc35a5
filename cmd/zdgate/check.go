package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"regexp/syntax"
	"strings"
	"time"

	"github.com/zdgate/zdgate/oidc"
)

// configCheckCmd validates the configuration like serve, contacts the IdP (discovery and JWKS),
// checks each configured Zendesk secret can be read, and prints the effective configuration with
// secrets redacted. Exit 0 when all is well, 1 with one line per problem, 2 on a usage error.
func configCheckCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	cfg, code := loadConfig(args, stdout, stderr, env, "config check")
	if cfg == nil {
		return code
	}
	var problems []string
	a, err := wire(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		problems = append(problems, strings.Split(err.Error(), "\n")...)
	} else {
		for i, c := range a.idps {
			dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := c.client.Discover(dctx)
			cancel()
			if err != nil && cfg.multi() {
				problems = append(problems, fmt.Sprintf("providers[%d].oidc-issuer: %s: %v", i, c.id, err))
			} else if err != nil {
				problems = append(problems, fmt.Sprintf("--oidc-issuer: %v", err))
			}
		}
	}
	printEffective(cfg, stdout)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "zdgate: "+p)
		}
		return 1
	}
	for _, w := range skipAuthWarnings(cfg.SkipAuthPath) {
		fmt.Fprintln(stderr, w)
	}
	if cfg.multi() {
		fmt.Fprintf(stderr, "configuration OK: discovery and JWKS loaded for %d identity providers\n", len(a.idps))
		for i, c := range a.idps {
			caps, _ := c.client.Capabilities()
			fmt.Fprintf(stderr, "provider %s (%s): %s\n", c.id, c.options.OIDCIssuer, capabilityText(caps))
			if w := bearerWarning(c.options, caps.Introspection, c.client.BearerAudienceChecked()); w != "" && cfg.Providers[i].BearerTokens {
				fmt.Fprintf(stderr, "provider %s: %s\n", c.id, w)
			}
		}
		return 0
	}
	fmt.Fprintln(stderr, "configuration OK: IdP discovery and JWKS loaded")
	fmt.Fprintf(stderr, "tracing: %s\n", a.tracing) // wire succeeded, so a is set
	if a != nil {
		var on []string
		for k, v := range a.idp.Endpoints() {
			if v {
				on = append(on, k)
			}
		}
		fmt.Fprintf(stderr, "IdP endpoints: %s\n", strings.Join(sortStrings(on), ", "))
		if w := bearerWarning(&cfg.ProviderOptions, a.idp.Endpoints()["introspection"], a.idp.BearerAudienceChecked()); w != "" {
			fmt.Fprintln(stderr, w)
		}
	}
	return 0
}

// skipAuthWarnings names each --skip-auth-path anchored at neither end: a regular expression
// matches anywhere in the path, so "/public/" also opens "/admin/public/x" (oauth2-proxy's
// unanchored --skip-auth-regex advisory). "^/public/" or "\.css$" say where the match must be.
func skipAuthWarnings(exprs []string) []string {
	var out []string
	for _, e := range exprs {
		re, err := syntax.Parse(e, syntax.Perl)
		if err != nil {
			continue // Validate has said so
		}
		re = re.Simplify()
		if !anchored(re, true) && !anchored(re, false) {
			out = append(out, fmt.Sprintf("warning: --skip-auth-path %q is anchored at neither end, so it matches anywhere in a path "+
				"(\"/admin/...%s\" too); write ^ before the prefix it is meant for, or $ after the suffix", e, strings.Trim(e, "^$")))
		}
	}
	return out
}

// anchored reports whether every match of re must start at the beginning of the text (start) or
// end at its end (!start).
func anchored(re *syntax.Regexp, start bool) bool {
	want := syntax.OpBeginText
	if !start {
		want = syntax.OpEndText
	}
	switch re.Op {
	case want:
		return true
	case syntax.OpCapture:
		return anchored(re.Sub[0], start)
	case syntax.OpConcat:
		if len(re.Sub) == 0 {
			return false
		}
		if start {
			return anchored(re.Sub[0], start)
		}
		return anchored(re.Sub[len(re.Sub)-1], start)
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !anchored(sub, start) {
				return false
			}
		}
		return true
	}
	return false
}

// bearerWarning says what the IdP's endpoints mean for bearer tokens (mobile apps, the Support
// SDK's user_token), when they cannot be checked for the client they were issued to.
func bearerWarning(cfg *ProviderOptions, introspection, checked bool) string {
	if checked {
		return ""
	}
	why := "the IdP advertises no introspection_endpoint"
	if introspection {
		why = "no --oidc-client-secret is set, so zdgate cannot call the IdP's introspection_endpoint"
	}
	if cfg.InsecureBearerUserinfo {
		return "warning: " + why + ": opaque bearer access tokens are confirmed at userinfo only (--insecure-bearer-userinfo), " +
			"so an access token this IdP issued to ANY of its clients for a user mints Zendesk tokens for that user. " +
			"JWT access tokens are still checked by aud (--oidc-client-id, --oidc-audiences)."
	}
	return "warning: " + why + ": opaque bearer access tokens cannot be checked for the client they were issued to, " +
		"so zdgate refuses them (401 invalid_audience); JWT access tokens are checked by aud (--oidc-client-id, --oidc-audiences). " +
		"Have the IdP issue JWT access tokens to the mobile app, or expose introspection to zdgate's client."
}

// capabilityText lists what an IdP announced, for config check.
func capabilityText(c oidc.Capabilities) string {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	return fmt.Sprintf("refresh tokens %s, userinfo %s, introspection %s, revocation %s, end_session %s, back-channel logout %s",
		yes(c.RefreshTokens), yes(c.Userinfo), yes(c.Introspection), yes(c.Revocation), yes(c.EndSession), yes(c.BackchannelLogout))
}

// printEffective prints every option's effective value as JSON, secrets as "[redacted]"; with
// several providers, "providers" is the list of each item's options.
func printEffective(cfg *Config, w io.Writer) {
	out := effective(cfg.registered)
	if cfg.multi() {
		for _, o := range cfg.providerOpts {
			delete(out, o.name) // providers: replaces them
		}
		var items []map[string]any
		for _, pc := range cfg.Providers {
			items = append(items, effective(pc.registered))
		}
		out["providers"] = items
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

// effective is every option of s by name, secrets as "[redacted]".
func effective(s *optionSet) map[string]any {
	out := map[string]any{}
	for _, o := range s.opts {
		val := o.get()
		if o.secret {
			if s, _ := val.(string); s != "" {
				val = "[redacted]"
			}
		}
		out[o.name] = val
	}
	return out
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
