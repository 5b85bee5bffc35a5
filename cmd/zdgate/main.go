// Command zdgate is an authenticating reverse proxy that logs visitors in through an OpenID Connect
// provider, keeps re-checking them there, and mints the JWTs Zendesk accepts from the verified claims.
//
//	zdgate serve   [flags]   run the proxy (the default)
//	zdgate demo    [flags]   everything on loopback in one command
//	zdgate token verify|mint run Zendesk token checks and test mints
//	zdgate config check      validate configuration against the IdP
//	zdgate version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version and commit are set with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
}

// run is main without the process: tests call it with their own streams and environment.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serveCmd(ctx, args, stdout, stderr, env)
	case "demo":
		return demoCmd(ctx, args, stdout, stderr, env)
	case "token":
		return tokenCmd(args, stdin, stdout, stderr)
	case "config":
		if len(args) == 0 || args[0] != "check" {
			fmt.Fprintln(stderr, "usage: zdgate config check [flags]")
			return 2
		}
		return configCheckCmd(ctx, args[1:], stdout, stderr, env)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "zdgate %s (commit %s)\n", version, commit)
		return 0
	case "help":
		return serveCmd(ctx, []string{"--help"}, stdout, stderr, env)
	}
	fmt.Fprintf(stderr, "zdgate: unknown command %q\n\n%s", cmd, topUsage)
	return 2
}

const topUsage = `zdgate — an authenticating reverse proxy that mints Zendesk JWTs from verified OIDC identities.

Usage:
  zdgate serve   [flags]   run the proxy (also the default when no command is given)
  zdgate demo    [flags]   IdP, sample app and zdgate on loopback, offline, one command
  zdgate token verify --flavor F (--secret S | --secret-file P | --secret-file -) [--key-id K] [--strict] TOKEN
  zdgate token mint   --flavor F (--secret S | --secret-file P | --secret-file -) [--key-id K] [--ttl D] --claims JSON
  zdgate config check [flags]   validate the configuration and the IdP, print it with secrets redacted
  zdgate version

Flags can also be set as ZDGATE_<FLAG> environment variables or as keys of a YAML file given
with --config. Precedence: flag > env > file > default. 'zdgate demo --help' and
'zdgate token verify --help' list their own flags.

Tracing (OpenTelemetry) is off by default and set only by the standard OTEL_* environment
variables: OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT or OTEL_TRACES_EXPORTER=otlp turn it on,
OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off (docs/operations.md, Tracing).
`

// loadConfig parses and validates the serve flags; problems go to stderr one per line.
func loadConfig(args []string, stdout, stderr io.Writer, env func(string) (string, bool), what string) (*Config, int) {
	cfg := &Config{}
	opts := cfg.options()
	rest, err := opts.parse(args, env)
	if errors.Is(err, errHelp) {
		var b strings.Builder
		if what == "serve" { // the default command: its help is the program's help
			fmt.Fprintf(&b, "%s\nFlags of serve and config check", topUsage)
		} else {
			fmt.Fprintf(&b, "Usage: zdgate %s [flags]\n\nFlags", what)
		}
		b.WriteString(" (also ZDGATE_<FLAG> env vars, or keys of the --config YAML file):\n  --config FILE\n        YAML file of flag names to values; its providers: list configures several identity providers (docs/reference.md §1)\n")
		opts.usage(&b)
		fmt.Fprint(stdout, b.String())
		return nil, 0
	}
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected argument %q", rest[0])
	}
	if err != nil {
		printErrors(stderr, err)
		return nil, 2 // usage: unknown flag, malformed value, unreadable --config
	}
	if err := cfg.Validate(); err != nil {
		printErrors(stderr, err)
		return nil, 1
	}
	return cfg, -1
}

// printErrors writes one line per joined error.
func printErrors(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(w, "zdgate: "+line)
	}
}
