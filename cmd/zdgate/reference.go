package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

//go:generate go test -run ^TestGeneratedFilesAreCurrent$ . -args -update

// The files generated from the option declarations, each between two marker lines. Regenerate
// with `go generate ./cmd/zdgate`; TestGeneratedFilesAreCurrent fails when one has drifted.
var generated = []struct {
	path  string // from the repository root
	begin string // marker line before the generated text
	end   string
	text  func(*optionSet) string
}{
	{"docs/reference.md", "<!-- BEGIN GENERATED: flags (go generate ./cmd/zdgate) -->", "<!-- END GENERATED: flags -->", flagTable},
	{"docs/reference.md", "<!-- BEGIN GENERATED: provider keys (go generate ./cmd/zdgate) -->", "<!-- END GENERATED: provider keys -->", providerTable},
	{"charts/zdgate/README.md", "<!-- BEGIN GENERATED: config (go generate ./cmd/zdgate) -->", "<!-- END GENERATED: config -->", chartTable},
	{"charts/zdgate/values.schema.json", `    "config": {`, `    "secrets": {`, chartSchema},
}

// serveOptions are the options of serve and config check, bound to a throw-away Config.
func serveOptions() *optionSet { return (&Config{}).options() }

func mdCode(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

func mdText(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func (o *option) kindText() string {
	if len(o.enum) > 0 {
		var vs []string
		for _, v := range o.enum {
			vs = append(vs, mdCode(v))
		}
		return strings.Join(vs, ` \| `)
	}
	return o.kind
}

// flagTable is docs/reference.md's table of every serve flag.
func flagTable(s *optionSet) string {
	var b strings.Builder
	b.WriteString("| flag | environment | value | default | meaning | fills |\n|---|---|---|---|---|---|\n")
	for _, o := range s.opts {
		rep := ""
		if o.multi {
			rep = ", repeatable"
		}
		def := mdCode(o.def)
		if o.secret {
			def = ""
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s%s | %s | %s | %s |\n", o.name, o.envName(), o.kindText(), rep, def, mdText(o.usage), mdText(o.fills))
	}
	return b.String()
}

// providerTable is docs/reference.md's table of the keys of a providers: item: its own keys, then
// every key of the single-IdP provider options, declared once and bound to each item.
func providerTable(*optionSet) string {
	var b strings.Builder
	b.WriteString("| key | value | default | meaning |\n|---|---|---|---|\n")
	for _, o := range providerItemOptions().opts {
		def := mdCode(o.def)
		if o.secret {
			def = ""
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", o.name, o.kindText(), def, mdText(o.usage))
	}
	return b.String()
}

// inChart reports whether the chart takes the option in its config map.
func (o *option) inChart() bool {
	if o.chart.omit {
		return false
	}
	if o.chart.include {
		return true
	}
	return !o.secret && o.kind != "file"
}

// chartTable is the chart README's table of config keys.
func chartTable(s *optionSet) string {
	var b strings.Builder
	b.WriteString("| key | type | meaning |\n|---|---|---|\n")
	for _, o := range s.opts {
		if !o.inChart() {
			continue
		}
		kind := o.kindText()
		if o.multi && !o.chart.asString {
			kind = "list"
		}
		meaning := mdText(o.usage)
		if o.def != "" {
			def := o.def
			if o.chart.asString {
				def = strings.ReplaceAll(def, ",", " ")
			}
			meaning = "[" + mdCode(def) + "] " + meaning
		}
		if o.chart.desc != "" && o.chart.include {
			meaning = mdText(strings.TrimPrefix(o.chart.desc, "--"+o.name+" "))
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", o.name, kind, meaning)
	}
	return b.String()
}

// durationPattern is what time.ParseDuration accepts (plus "" for "unset").
const durationPattern = `^$|^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

type schemaItems struct {
	Type      string   `json:"type"`
	MinLength int      `json:"minLength,omitempty"`
	Pattern   string   `json:"pattern,omitempty"`
	Enum      []string `json:"enum,omitempty"`
}

type schemaProp struct {
	Type        any          `json:"type"`
	Description string       `json:"description"`
	Pattern     string       `json:"pattern,omitempty"`
	Enum        []string     `json:"enum,omitempty"`
	Items       *schemaItems `json:"items,omitempty"`
}

func (o *option) schema() schemaProp {
	p := schemaProp{Type: "string", Description: "--" + o.name}
	if o.def != "" {
		p.Description += " [" + strings.ReplaceAll(o.def, ",", " ") + "]"
	}
	switch {
	case o.bool:
		p.Type = []string{"boolean", "null"}
	case o.multi && !o.chart.asString:
		p.Type = "array"
		p.Description += ", repeated"
		p.Items = &schemaItems{Type: "string", MinLength: 1, Pattern: o.chart.itemPattern}
		if len(o.chart.itemEnum) > 0 {
			p.Items = &schemaItems{Type: "string", Enum: o.chart.itemEnum}
		}
	case o.kind == "duration":
		p.Pattern = durationPattern
		p.Description += " (Go duration)"
	case o.kind == "number":
		p.Pattern = `^$|^[0-9]+(\.[0-9]+)?$`
	case o.kind == "URL":
		p.Pattern = `^$|^https?://[^\s]+$`
	case len(o.enum) > 0:
		p.Enum = append([]string{""}, o.enum...)
	}
	if o.chart.pattern != "" {
		p.Pattern = o.chart.pattern
	}
	p.Description += ": " + o.usage
	if o.chart.desc != "" {
		p.Description = o.chart.desc
	}
	return p
}

// chartSchema is values.schema.json's "config" property, and its "providers" (the items of
// zdgate's providers: list, each with the keys of a providers: item the chart takes; client
// secrets come from secrets.providerClientSecrets), indented for their place in the file.
func chartSchema(s *optionSet) string {
	var b bytes.Buffer
	b.WriteString(`    "config": {
      "type": "object",
      "description": "zdgate flags by name (docs/reference.md §1), rendered as --<name>=<value>; lists repeat the flag; \"\"/null/[] leave it out",
      "additionalProperties": false,
      "properties": {
`)
	b.WriteString(schemaProps(s, "        "))
	b.WriteString("\n      }\n    },\n")
	b.WriteString(`    "providers": {
      "type": "array",
      "description": "several identity providers: zdgate's providers: list (docs/reference.md §1), written into a ConfigMap mounted as the --config file; each item's client secret goes in secrets.providerClientSecrets.<id>",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "oidc-issuer", "oidc-client-id"],
        "properties": {
`)
	b.WriteString(schemaProps(providerItemOptions(), "          "))
	b.WriteString("\n        }\n      }\n    },\n")
	return b.String()
}

// schemaProps are the JSON schema properties of the options of s the chart takes, at indent.
func schemaProps(s *optionSet, indent string) string {
	var props []string
	for _, o := range s.opts {
		if !o.inChart() {
			continue
		}
		var pb bytes.Buffer
		enc := json.NewEncoder(&pb)
		enc.SetEscapeHTML(false)
		enc.SetIndent(indent, "  ")
		if err := enc.Encode(o.schema()); err != nil {
			panic(err) // plain strings and slices always encode
		}
		props = append(props, fmt.Sprintf("%s%q: %s", indent, o.name, strings.TrimRight(pb.String(), "\n")))
	}
	return strings.Join(props, ",\n")
}

// splice replaces what lies between the line starting with begin and the line starting with end.
// For the markdown files the marker lines are kept; for the schema, begin is the first line of the
// generated text itself and end the first line after it.
func splice(file, begin, end, text string, keepBegin bool) (string, error) {
	i := strings.Index(file, begin)
	if i < 0 {
		return "", fmt.Errorf("marker %q not found", begin)
	}
	j := strings.Index(file[i:], end)
	if j < 0 {
		return "", fmt.Errorf("marker %q not found after %q", end, begin)
	}
	j += i
	if keepBegin {
		return file[:i] + begin + "\n" + text + file[j:], nil
	}
	return file[:i] + text + file[j:], nil
}
