package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// option is one command-line flag. Every option can also come from ZDGATE_<NAME> or from key NAME
// in the --config YAML file. Precedence: flag > env > file > default.
type option struct {
	name   string
	usage  string
	def    string // shown in --help and applied first
	bool   bool
	multi  bool // repeatable: flag given several times, YAML list, env comma-separated (newline-separated for regexes)
	regex  bool
	secret bool // never printed
	set    func(string) error
	get    func() any // effective value, for config check
	reset  func()     // multi: forget the default before a higher source sets values
}

func (o *option) envName() string {
	return "ZDGATE_" + strings.ToUpper(strings.ReplaceAll(o.name, "-", "_"))
}

// optionSet is the table of options of one command.
type optionSet struct {
	opts  []*option
	byKey map[string]*option
}

func (s *optionSet) add(o *option) {
	if s.byKey == nil {
		s.byKey = map[string]*option{}
	}
	s.opts = append(s.opts, o)
	s.byKey[o.name] = o
}

func (s *optionSet) str(p *string, name, def, usage string) {
	*p = def
	s.add(&option{name: name, usage: usage, def: def, get: func() any { return *p }, set: func(v string) error { *p = v; return nil }})
}

func (s *optionSet) secretStr(p *string, name, usage string) {
	s.add(&option{name: name, usage: usage, secret: true, get: func() any { return *p }, set: func(v string) error { *p = v; return nil }})
}

func (s *optionSet) boolean(p *bool, name string, def bool, usage string) {
	*p = def
	s.add(&option{name: name, usage: usage, def: strconv.FormatBool(def), bool: true, get: func() any { return *p }, set: func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*p = b
		return nil
	}})
}

func (s *optionSet) duration(p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	s.add(&option{name: name, usage: usage, def: def.String(), get: func() any { return p.String() }, set: func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration like 90s or 5m, got %q", v)
		}
		*p = d
		return nil
	}})
}

func (s *optionSet) float(p *float64, name string, def float64, usage string) {
	*p = def
	s.add(&option{name: name, usage: usage, def: strconv.FormatFloat(def, 'g', -1, 64), get: func() any { return *p }, set: func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("want a number of 0 or more, got %q", v)
		}
		*p = f
		return nil
	}})
}

func (s *optionSet) size(p *int, name string, def int, defText, usage string) {
	*p = def
	s.add(&option{name: name, usage: usage, def: defText, get: func() any { return *p }, set: func(v string) error {
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		*p = n
		return nil
	}})
}

func (s *optionSet) list(p *[]string, name string, def []string, regex bool, usage string) {
	*p = def
	defText := strings.Join(def, ",")
	s.add(&option{name: name, usage: usage, def: defText, multi: true, regex: regex,
		get:   func() any { return *p },
		set:   func(v string) error { *p = append(*p, v); return nil },
		reset: func() { *p = nil }})
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
		keys := make([]string, 0, len(file))
		for k := range file {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			o := s.byKey[k]
			if o == nil {
				errs = append(errs, fmt.Errorf("--config: unknown key %q", k))
				continue
			}
			if explicit[k] || fromEnv[k] {
				continue
			}
			vals, err := yamlValues(file[k], o.multi)
			if err != nil {
				errs = append(errs, fmt.Errorf("--%s: %v (in %s)", k, err, configPath))
				continue
			}
			if o.multi {
				o.reset()
			}
			for _, v := range vals {
				if err := o.set(v); err != nil {
					errs = append(errs, fmt.Errorf("--%s: %v (in %s)", k, err, configPath))
				}
			}
		}
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
