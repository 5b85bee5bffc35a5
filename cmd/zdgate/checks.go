package main

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// The validations options share. Each returns its problem without the flag (optionSet.check adds
// it) and, where the value has a typed form, keeps that form for wire so it is parsed once.

func required(p *string) func() error {
	return func() error {
		if strings.TrimSpace(*p) == "" {
			return errors.New("required")
		}
		return nil
	}
}

// httpURL accepts an empty value (required says whether one is needed) or an http(s) URL with a
// host, kept in out when out is not nil.
func httpURL(p *string, out **url.URL) func() error {
	return func() error {
		if *p == "" {
			return nil
		}
		u, err := url.Parse(*p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("must be an http:// or https:// URL, got %q", *p)
		}
		if out != nil {
			*out = u
		}
		return nil
	}
}

func positive(p *time.Duration) func() error {
	return func() error {
		if *p <= 0 {
			return errors.New("must be positive")
		}
		return nil
	}
}

// regexps compiles every expression into out.
func regexps(p *[]string, out *[]*regexp.Regexp) func() error {
	return func() error {
		*out = nil
		var errs []error
		for _, r := range *p {
			re, err := regexp.Compile(r)
			if err != nil {
				errs = append(errs, fmt.Errorf("invalid regular expression %q", r))
				continue
			}
			*out = append(*out, re)
		}
		return errors.Join(errs...)
	}
}

// prefixes parses every CIDR (or single address) into out.
func prefixes(p *[]string, out *[]netip.Prefix) func() error {
	return func() error {
		*out = nil
		var errs []error
		for _, s := range *p {
			pf, err := parsePrefix(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("want a CIDR like 10.0.0.0/8 or an address, got %q", s))
				continue
			}
			*out = append(*out, pf)
		}
		return errors.Join(errs...)
	}
}

// parsePrefix accepts a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// chartHint is how an option appears in the Helm chart's config (values.schema.json and its
// README table). By default every option is there except secrets and their -file forms (the chart
// passes those from Kubernetes Secrets) and the options the chart derives from other values.
type chartHint struct {
	omit        bool     // the chart sets it from other values
	include     bool     // a secret the chart also takes in config (redis-url without a password)
	asString    bool     // a list given as one space-separated string
	desc        string   // overrides the generated description
	pattern     string   // overrides the kind's pattern
	itemPattern string   // for lists: each item's pattern
	itemEnum    []string // for lists: the values each item may take
}

func (o *option) chartDerived() *option { o.chart.omit = true; return o }

// kindOf names what a value looks like when the binding's kind says too little ("URL").
func (o *option) kindOf(kind string) *option { o.kind = kind; return o }
