package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// option is one setting, declared once. Its name is the flag --name, the environment variable
// ZDGATE_NAME and the key name of the --config YAML file (precedence: flag > env > file > default).
// The declaration also carries its default, its help, how a value parses (set: a malformed value is
// a usage error, exit 2), how it is validated (check: an invalid value fails Validate, exit 1, and
// the checked value is kept in its typed form for wire), and which package config it fills. The
// flag table of docs/reference.md and the Helm chart's config schema and table are generated from
// these declarations (reference.go).
type option struct {
	name   string
	usage  string
	def    string // shown in --help and applied first
	kind   string // what a value looks like, for the generated reference: string, URL, duration, ...
	fills  string // the package config field the value ends up in, for the reference
	bool   bool
	multi  bool // repeatable: flag given several times, YAML list, env comma-separated (newline-separated for regexes)
	regex  bool
	secret bool     // never printed
	enum   []string // the values it accepts, when a closed set (checked, and listed in --help and the schema)
	chart  chartHint
	set    func(string) error
	get    func() any // effective value, for config check
	reset  func()     // multi: forget the default before a higher source sets values
	check  func() error
}

// checks adds a validation; several run in order and each problem is reported.
func (o *option) checks(fs ...func() error) *option {
	prev := o.check
	o.check = func() error {
		var errs []error
		if prev != nil {
			errs = append(errs, prev())
		}
		for _, f := range fs {
			errs = append(errs, f())
		}
		return errors.Join(errs...)
	}
	return o
}

// into records which package config field the value fills.
func (o *option) into(field string) *option { o.fills = field; return o }

// oneOf restricts a string option to vals: "must be a or b, got %q".
func (o *option) oneOf(vals ...string) *option {
	o.enum = vals
	get := o.get
	return o.checks(func() error {
		v, _ := get().(string)
		if slices.Contains(vals, v) {
			return nil
		}
		return fmt.Errorf("must be %s, got %q", orList(vals), v)
	})
}

func orList(vals []string) string {
	if len(vals) < 2 {
		return strings.Join(vals, "")
	}
	return strings.Join(vals[:len(vals)-1], ", ") + " or " + vals[len(vals)-1]
}

// atDefault reports whether the option still holds its default value.
func (o *option) atDefault() bool {
	if l, ok := o.get().([]string); ok {
		return strings.Join(l, ",") == o.def
	}
	return fmt.Sprint(o.get()) == o.def
}

func (o *option) envName() string {
	return "ZDGATE_" + strings.ToUpper(strings.ReplaceAll(o.name, "-", "_"))
}

// optionSet is the table of options of one command, or of one item of a YAML list of option
// groups (prefix names the item, e.g. "providers[1]", in its errors instead of the flag's dashes).
type optionSet struct {
	opts   []*option
	byKey  map[string]*option
	prefix string
	// lists are the --config keys that hold a list of option groups (providers:), each handled by
	// its function with the file's name; they are not flags and have no environment variable.
	lists map[string]func(v any, where string) []error
}

// name is how errors name option o: --flag, or item.key.
func (s *optionSet) name(key string) string {
	if s.prefix != "" {
		return s.prefix + "." + key
	}
	return "--" + key
}

func (s *optionSet) add(o *option) *option {
	if s.byKey == nil {
		s.byKey = map[string]*option{}
	}
	if s.byKey[o.name] != nil {
		panic("zdgate: option --" + o.name + " declared twice")
	}
	s.opts = append(s.opts, o)
	s.byKey[o.name] = o
	return o
}

// addAll adds a group's options.
func (s *optionSet) addAll(opts []*option) {
	for _, o := range opts {
		s.add(o)
	}
}

// check runs every option's validation, in declaration order, each problem prefixed with its flag,
// except the options skip names (nil: none).
func (s *optionSet) check(skip ...[]*option) []error {
	var errs []error
	for _, o := range s.opts {
		if o.check == nil || len(skip) > 0 && slices.Contains(skip[0], o) {
			continue
		}
		if err := o.check(); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				errs = append(errs, fmt.Errorf("%s: %s", s.name(o.name), line))
			}
		}
	}
	return errs
}

// The value kinds. Each binds an option to a field of a Config group and applies the default.

func strOpt(p *string, name, def, usage string) *option {
	*p = def
	return &option{name: name, usage: usage, def: def, kind: "string", get: func() any { return *p }, set: func(v string) error { *p = v; return nil }}
}

func secretOpt(p *string, name, usage string) *option {
	return &option{name: name, usage: usage, secret: true, kind: "secret", get: func() any { return *p }, set: func(v string) error { *p = v; return nil }}
}

func boolOpt(p *bool, name string, def bool, usage string) *option {
	*p = def
	return &option{name: name, usage: usage, def: strconv.FormatBool(def), bool: true, kind: "bool", get: func() any { return *p }, set: func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*p = b
		return nil
	}}
}

func durationOpt(p *time.Duration, name string, def time.Duration, usage string) *option {
	*p = def
	return &option{name: name, usage: usage, def: def.String(), kind: "duration", get: func() any { return p.String() }, set: func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration like 90s or 5m, got %q", v)
		}
		*p = d
		return nil
	}}
}

func floatOpt(p *float64, name string, def float64, usage string) *option {
	*p = def
	return &option{name: name, usage: usage, def: strconv.FormatFloat(def, 'g', -1, 64), kind: "number", get: func() any { return *p }, set: func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("want a number of 0 or more, got %q", v)
		}
		*p = f
		return nil
	}}
}

func sizeOpt(p *int, name string, def int, defText, usage string) *option {
	*p = def
	return &option{name: name, usage: usage, def: defText, kind: "size", get: func() any { return *p }, set: func(v string) error {
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		*p = n
		return nil
	}}
}

func listOpt(p *[]string, name string, def []string, regex bool, usage string) *option {
	*p = def
	kind := "list"
	if regex {
		kind = "regex list"
	}
	return &option{name: name, usage: usage, def: strings.Join(def, ","), multi: true, regex: regex, kind: kind,
		get:   func() any { return *p },
		set:   func(v string) error { *p = append(*p, v); return nil },
		reset: func() { *p = nil }}
}

// secretWithFile declares a secret's two options, --name and --name-file (re-read when it changes),
// and the rule that only one may be given.
func secretWithFile(value, file *string, name, usage, fileUsage, fills string) []*option {
	v := secretOpt(value, name, usage).into(fills)
	f := strOpt(file, name+"-file", "", fileUsage).into(fills)
	f.kind = "file"
	v.checks(func() error {
		if *value != "" && *file != "" {
			return fmt.Errorf("give either --%s or --%s-file, not both", name, name)
		}
		return nil
	})
	return []*option{v, f}
}

// parseSize reads 256KiB, 1MiB, 4096.
func parseSize(v string) (int, error) {
	units := []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1000}, {"MB", 1000 * 1000}, {"B", 1}, {"", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			n, err := strconv.Atoi(strings.TrimSpace(num))
			if err != nil || n < 0 {
				break
			}
			return n * u.mult, nil
		}
	}
	return 0, fmt.Errorf("want a size like 256KiB or 1MiB, got %q", v)
}

// errHelp is returned when --help was asked for.
var errHelp = errors.New("help requested")

// parse applies defaults, the --config file, the environment and args, in rising precedence, and
// returns every problem at once (one per line, each naming its flag) plus the positional arguments.
func (s *optionSet) parse(args []string, environ func(string) (string, bool)) ([]string, error) {
	type kv struct {
		o   *option
		val string
	}
	var flags []kv
	var positional []string
	var errs []error
	configPath := ""
	explicit := map[string]bool{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "help" || name == "h" {
			return nil, errHelp
		}
		if name == "config" {
			if !hasVal {
				if i+1 >= len(args) {
					errs = append(errs, errors.New("--config: needs a file name"))
					continue
				}
				i++
				val = args[i]
			}
			configPath = val
			continue
		}
		o := s.byKey[name]
		if o == nil {
			errs = append(errs, fmt.Errorf("--%s: unknown flag", name))
			continue
		}
		if !hasVal {
			if o.bool {
				val = "true"
			} else if i+1 < len(args) {
				i++
				val = args[i]
			} else {
				errs = append(errs, fmt.Errorf("--%s: needs a value", name))
				continue
			}
		}
		explicit[name] = true
		flags = append(flags, kv{o, val})
	}
	if configPath == "" {
		if v, ok := environ("ZDGATE_CONFIG"); ok {
			configPath = v
		}
	}
	fromEnv := map[string]bool{}
	for _, o := range s.opts {
		if _, ok := environ(o.envName()); ok && !explicit[o.name] {
			fromEnv[o.name] = true
		}
	}
	// File: lowest of the three.
	if configPath != "" {
		file, err := readConfigFile(configPath)
		if err != nil {
			errs = append(errs, fmt.Errorf("--config: %w", err))
		}
		for key, set := range s.lists {
			if v, ok := file[key]; ok {
				delete(file, key)
				errs = append(errs, set(v, configPath)...)
			}
		}
		errs = append(errs, s.applyYAML(file, configPath, func(k string) bool { return explicit[k] || fromEnv[k] })...)
	}
	for _, o := range s.opts {
		if !fromEnv[o.name] {
			continue
		}
		v, _ := environ(o.envName())
		vals := []string{v}
		if o.multi {
			o.reset()
			sep := ","
			if o.regex {
				sep = "\n"
			}
			vals = nil
			for _, x := range strings.Split(v, sep) {
				if x = strings.TrimSpace(x); x != "" {
					vals = append(vals, x)
				}
			}
		}
		for _, x := range vals {
			if err := o.set(x); err != nil {
				errs = append(errs, fmt.Errorf("--%s: %v (from %s)", o.name, err, o.envName()))
			}
		}
	}
	reset := map[string]bool{}
	for _, f := range flags {
		if f.o.multi && !reset[f.o.name] {
			f.o.reset()
			reset[f.o.name] = true
		}
		if err := f.o.set(f.val); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %v", f.o.name, err))
		}
	}
	return positional, errors.Join(errs...)
}

// applyYAML sets options from the keys of a YAML mapping (the --config file, or one item of a list
// of option groups such as providers:), in key order, skipping the keys a higher source set.
// where names the file in errors. Unknown keys and malformed values are each one problem.
func (s *optionSet) applyYAML(m map[string]any, where string, skip func(key string) bool) []error {
	var errs []error
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o := s.byKey[k]
		if o == nil {
			if s.prefix != "" {
				errs = append(errs, fmt.Errorf("%s: unknown key (in %s)", s.name(k), where))
			} else {
				errs = append(errs, fmt.Errorf("--config: unknown key %q", k))
			}
			continue
		}
		if skip(k) {
			continue
		}
		vals, err := yamlValues(m[k], o.multi)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v (in %s)", s.name(k), err, where))
			continue
		}
		if o.multi {
			o.reset()
		}
		for _, v := range vals {
			if err := o.set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %v (in %s)", s.name(k), err, where))
			}
		}
	}
	return errs
}

func readConfigFile(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s is not valid YAML: %v", path, err)
	}
	return m, nil
}

func yamlValues(v any, multi bool) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		if !multi {
			return nil, errors.New("takes one value, not a list")
		}
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, err := yamlScalar(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	default:
		s, err := yamlScalar(v)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
}

func yamlScalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("want a plain value, got a %T", v)
}

// usage writes the option table for --help.
func (s *optionSet) usage(b *strings.Builder) {
	for _, o := range s.opts {
		def := ""
		if o.def != "" && !o.secret {
			def = " [" + o.def + "]"
		}
		rep := ""
		if o.multi {
			rep = " (repeatable)"
		}
		fmt.Fprintf(b, "  --%s%s%s\n        %s\n", o.name, def, rep, o.usage)
	}
}
