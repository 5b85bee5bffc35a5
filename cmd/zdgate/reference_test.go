package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated files (go generate ./cmd/zdgate)")

// TestGeneratedFilesAreCurrent: docs/reference.md's flag table and the chart's config schema and
// table are what the option declarations generate. Run `go generate ./cmd/zdgate` after changing
// an option.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	s := serveOptions()
	for _, g := range generated {
		path := filepath.Join("..", "..", g.path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		keep := strings.HasPrefix(g.begin, "<!--")
		want, err := splice(string(b), g.begin, g.end, g.text(s), keep)
		if err != nil {
			t.Fatalf("%s: %v", g.path, err)
		}
		if want == string(b) {
			continue
		}
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s is not what the option declarations generate; run: go generate ./cmd/zdgate", g.path)
	}
}

// TestReferenceNamesEveryOption: each flag appears in the generated table with its env name, and
// every chart config key is a real flag (the chart can pass nothing zdgate lacks).
func TestReferenceNamesEveryOption(t *testing.T) {
	s := serveOptions()
	table := flagTable(s)
	for _, o := range s.opts {
		if !strings.Contains(table, "| `--"+o.name+"` | `"+o.envName()+"` |") {
			t.Errorf("flag table lacks --%s", o.name)
		}
	}
	for _, name := range []string{"cookie-secret", "cookie-secret-file", "listen", "upstream"} {
		if strings.Contains(chartTable(s), "| `"+name+"` |") {
			t.Errorf("chart table offers %s, which the chart sets itself", name)
		}
	}
	if !strings.Contains(chartTable(s), "| `redis-url` |") {
		t.Error("chart table lacks redis-url (a URL without a password is taken in config)")
	}
}
