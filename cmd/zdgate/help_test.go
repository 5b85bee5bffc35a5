package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestHelpListsSubcommands: `zdgate --help` (serve is the default command) shows the subcommands as
// well as serve's flags, so a new user finds `demo`, `token` and `config check`.
func TestHelpListsSubcommands(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"serve", "--help"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, nil, &out, &errb, envOf(nil)); code != 0 {
			t.Fatalf("zdgate %s: exit %d; want 0 (stderr %q)", strings.Join(args, " "), code, errb.String())
		}
		for _, want := range []string{"zdgate serve", "zdgate demo", "zdgate token verify", "zdgate token mint", "zdgate config check", "zdgate version", "--recheck-interval [1m0s]"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("zdgate %s: output lacks %q:\n%s", strings.Join(args, " "), want, out.String())
			}
		}
	}
}
