package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/zdgate/zdgate/tokens"
)

const tokenUsage = `Usage:
  zdgate token verify --flavor F (--secret-file PATH | --secret-file - | --secret S) [--key-id K] [--strict] TOKEN
      Checks the signature (HS256, the secret's raw bytes) and every rule of flavor F (messaging,
      chat, sso, sdk). Prints the header and claims as JSON. A broken rule that Zendesk documents is
      an error ("zendesk: ..." on stderr); a broken rule of zdgate's stricter contract only is a
      warning ("warning: ..."), because Zendesk accepts such a token. Exit 0 when Zendesk should
      accept the token (with --strict: and there are no warnings either), 1 when not, 2 on a usage
      error. TOKEN may be - (stdin).
  zdgate token mint --flavor F (--secret-file PATH | --secret-file - | --secret S) [--key-id K] [--ttl D] --claims JSON
      Mints a test token from Zendesk claims, e.g.
      --claims '{"external_id":"u-1","name":"Ann","email":"ann@example.com","email_verified":true}'
      exp is iat + --ttl, by default what serve mints: 10m for messaging, 5m for chat (at most 5m),
      and no exp for sso and sdk (serve never adds one; --ttl adds one for a test). An sso/sdk
      locale is a Zendesk locale id (a number), or a tag of the built-in table (en-US, de).
  Prefer --secret-file (or - for stdin) to --secret: arguments are visible to other local users.
`

func tokenCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "mint") {
		fmt.Fprint(stderr, tokenUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("token "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flavor := fs.String("flavor", "", "")
	secret := fs.String("secret", "", "")
	secretFile := fs.String("secret-file", "", "")
	keyID := fs.String("key-id", "", "")
	claims := fs.String("claims", "", "")
	ttl := fs.Duration("ttl", 0, "")
	strict := fs.Bool("strict", false, "")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, tokenUsage)
			return 0
		}
		fmt.Fprintf(stderr, "zdgate token %s: %v\n\n%s", sub, err, tokenUsage)
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "zdgate token %s: %s\n\n%s", sub, msg, tokenUsage)
		return 2
	}
	f, err := tokens.ParseFlavor(*flavor)
	if err != nil {
		return usage("--flavor: must be messaging, chat, sso or sdk")
	}
	if (*secret == "") == (*secretFile == "") {
		return usage("give exactly one of --secret-file or --secret")
	}
	rest := fs.Args()
	tokenArg := ""
	if sub == "verify" {
		if len(rest) != 1 {
			return usage("give exactly one TOKEN")
		}
		tokenArg = rest[0]
		if tokenArg == "-" && *secretFile == "-" {
			return usage("the secret and the token cannot both come from stdin")
		}
	} else if len(rest) != 0 || *claims == "" {
		return usage("mint takes --claims JSON and no other argument")
	}
	in := bufio.NewReader(stdin)
	key := *secret
	if *secretFile != "" {
		var b []byte
		if *secretFile == "-" {
			b, err = io.ReadAll(io.LimitReader(in, 64<<10))
		} else {
			b, err = os.ReadFile(*secretFile)
		}
		if err != nil {
			return usage("--secret-file: " + err.Error())
		}
		key = strings.TrimSpace(string(b))
	}
	if f == tokens.Messaging {
		if id, sec, ok := strings.Cut(key, ":"); ok && *secretFile != "" && *keyID == "" {
			*keyID, key = id, sec // KEY_ID:SECRET file
		}
	}
	if key == "" {
		return usage("the secret is empty")
	}
	if *strict && sub != "verify" {
		return usage("--strict is for verify")
	}
	if sub == "mint" {
		return mint(f, key, *keyID, *ttl, *claims, stdout, stderr)
	}
	if tokenArg == "-" {
		b, _ := io.ReadAll(io.LimitReader(in, 64<<10))
		tokenArg = strings.TrimSpace(string(b))
	}
	res := tokens.Verify(strings.TrimSpace(tokenArg), tokens.VerifyOptions{Flavor: f, Secret: []byte(key), KeyID: *keyID})
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(map[string]any{"header": res.Header, "claims": res.Claims})
	for _, p := range res.Problems {
		fmt.Fprintln(stderr, "zendesk: "+p)
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "warning: "+w+" (zdgate policy; Zendesk accepts it)")
	}
	switch {
	case len(res.Problems) > 0:
		return 1
	case len(res.Warnings) > 0 && *strict:
		fmt.Fprintf(stderr, "invalid under --strict: %d zdgate polic%s broken\n", len(res.Warnings), plural(len(res.Warnings), "y", "ies"))
		return 1
	case len(res.Warnings) > 0:
		fmt.Fprintf(stderr, "valid %s token for Zendesk (zdgate would not mint it; --strict makes that an error)\n", f)
		return 0
	}
	fmt.Fprintf(stderr, "valid %s token\n", f)
	return 0
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func mint(f tokens.Flavor, secret, keyID string, ttl time.Duration, claimsJSON string, stdout, stderr io.Writer) int {
	var u tokens.User
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(claimsJSON))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		fmt.Fprintf(stderr, "zdgate token mint: --claims: not a JSON object: %v\n", err)
		return 2
	}
	str := func(k string) string {
		switch v := raw[k].(type) {
		case string:
			return v
		case json.Number:
			return v.String()
		}
		return ""
	}
	u.ExternalID, u.Name, u.Email = str("external_id"), str("name"), str("email")
	u.EmailVerified, _ = raw["email_verified"].(bool)
	if f == tokens.SSO || f == tokens.SDK {
		u.EmailVerified = u.Email != "" // SSO has no email_verified claim: the caller vouches
		u.Organization, u.OrganizationID, u.Role = str("organization"), str("organization_id"), str("role")
		u.CustomRoleID, u.Phone, u.RemotePhotoURL = str("custom_role_id"), str("phone"), str("remote_photo_url")
		if l := str("locale"); l != "" {
			m, err := tokens.Mapping{LocaleClaim: "locale"}.User(map[string]any{"sub": "x", "locale": l})
			if err != nil {
				fmt.Fprintf(stderr, "zdgate token mint: --claims: locale %q is neither a Zendesk locale id nor one of the built-in tags\n", l)
				return 2
			}
			u.Locale = m.Locale
		}
		if tags, ok := raw["tags"].([]any); ok {
			for _, t := range tags {
				if s, ok := t.(string); ok {
					u.Tags = append(u.Tags, s)
				}
			}
		}
		if uf, ok := raw["user_fields"].(map[string]any); ok {
			u.UserFields = uf
		}
	}
	if !u.EmailVerified {
		u.Email = ""
	}
	// ttl 0: the flavor's default lifetime (tokens.Config.TTL).
	s, err := tokens.NewSigner(tokens.Config{Flavor: f, Keys: tokens.StaticKey{ID: keyID, Secret: []byte(secret)}, TTL: ttl})
	if err != nil {
		fmt.Fprintf(stderr, "zdgate token mint: %v\n", err)
		return 2
	}
	tok, _, err := s.Sign(u)
	if err != nil {
		fmt.Fprintf(stderr, "zdgate token mint: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
