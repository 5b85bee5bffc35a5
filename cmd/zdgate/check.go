package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
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
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := a.idp.Discover(dctx)
		cancel()
		if err != nil {
			problems = append(problems, fmt.Sprintf("--oidc-issuer: %v", err))
		}
	}
	printEffective(cfg, stdout)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "zdgate: "+p)
		}
		return 1
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
		if w := bearerWarning(cfg, a.idp.Endpoints()["introspection"], a.idp.BearerAudienceChecked()); w != "" {
			fmt.Fprintln(stderr, w)
		}
	}
	return 0
}

// bearerWarning says what the IdP's endpoints mean for bearer tokens (mobile apps, the Support
// SDK's user_token), when they cannot be checked for the client they were issued to.
func bearerWarning(cfg *Config, introspection, checked bool) string {
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

// printEffective prints every option's effective value as JSON, secrets as "[redacted]".
func printEffective(cfg *Config, w io.Writer) {
	out := map[string]any{}
	for _, o := range cfg.registered.opts {
		val := o.get()
		if o.secret {
			if s, _ := val.(string); s != "" {
				val = "[redacted]"
			}
		}
		out[o.name] = val
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
