package config

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

type decoder struct {
	file      string
	dir       string
	errs      Errors // the first MaxErrors problems
	found     int    // every problem, listed or not
	more      *Error // counts the problems past MaxErrors; it names the line of the first
	sshConfig string // the top-level ssh_config, for every tunnel
	// hubPorts records, per hub and remote port, the first forward asking
	// for it, so a second tunnel asking for the same is refused.
	hubPorts map[hubPort]portClaim
}

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.failAt(line, key, format, args...)
}

// failAt is fail for a problem located by line, not by node.
func (d *decoder) failAt(line int, key, format string, args ...any) {
	d.found++
	if len(d.errs) < MaxErrors {
		d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
		return
	}
	// A wrong file (a log, a binary) would give one problem per line; the
	// first ones say what is wrong, and formatting the rest costs memory.
	if d.more == nil {
		d.more = &Error{File: d.file, Line: line}
	}
	d.more.More++
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// mapping walks a YAML mapping, calling the handler of each known key and
// reporting unknown or repeated keys with their line. An empty value (key:
// with nothing after it) is an empty mapping.
func (d *decoder) mapping(n *yaml.Node, key string, fields map[string]func(*yaml.Node, string)) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "must be a mapping of key: value, not %s", describe(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		if seen[name] {
			d.fail(k, join(key, name), "repeated key: remove one of them")
			continue
		}
		seen[name] = true
		f, ok := fields[name]
		if !ok {
			d.fail(k, key, "unknown key %q (known keys: %s)", name, knownKeys(fields))
			continue
		}
		f(v, join(key, name))
	}
}

// valueOf is the value of the first key called key in mapping n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func knownKeys(fields map[string]func(*yaml.Node, string)) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return fmt.Sprintf("the alias *%s (aliases are not supported: write the value out)", n.Value)
	}
	switch n.Tag {
	case "!!null":
		return "empty"
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	}
	return fmt.Sprintf("%q", n.Value)
}

// quoted is a hint for a value that is right but for its quotes.
func quoted(n *yaml.Node, wouldDo bool) string {
	if n.Tag == "!!str" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 && wouldDo {
		return " (remove the quotes)"
	}
	return ""
}

func (d *decoder) scalar(n *yaml.Node, key, want string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.fail(n, key, "must be %s, not %s", want, describe(n))
		return false
	}
	return true
}

// str returns a string value; ok is false when the value is not a string
// (already reported). An empty string is ok: callers decide.
func (d *decoder) str(n *yaml.Node, key string) (s string, ok bool) {
	if !d.scalar(n, key, "a string") {
		return "", false
	}
	if n.Tag != "!!str" {
		d.fail(n, key, "must be a string, not %s (quote it)", describe(n))
		return "", false
	}
	return n.Value, true
}

// required returns the string value of a key the parent mapping must have,
// reporting it once if it is missing, not a string or empty.
func (d *decoder) required(parent, n *yaml.Node, key, hint string) string {
	if n == nil {
		d.fail(parent, key, "missing: %s", hint)
		return ""
	}
	s, ok := d.str(n, key)
	if ok && s == "" {
		d.fail(n, key, "is empty: %s", hint)
	}
	return s
}

func (d *decoder) oneOf(n *yaml.Node, key string, allowed ...string) string {
	s, ok := d.str(n, key)
	if !ok {
		return allowed[0]
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	d.fail(n, key, "%q is not one of %s", s, strings.Join(allowed, ", "))
	return allowed[0]
}

func (d *decoder) boolean(n *yaml.Node, key string) bool {
	if !d.scalar(n, key, "true or false") {
		return false
	}
	var b bool
	if n.Tag != "!!bool" || n.Decode(&b) != nil {
		d.fail(n, key, "must be true or false, not %s%s", describe(n), quoted(n, n.Value == "true" || n.Value == "false"))
		return false
	}
	return b
}

func (d *decoder) integer(n *yaml.Node, key string, min, max int) int {
	if !d.scalar(n, key, "a whole number") {
		return 0
	}
	var v int
	if n.Tag != "!!int" || n.Decode(&v) != nil {
		_, err := strconv.Atoi(n.Value)
		d.fail(n, key, "must be a whole number, not %s%s", describe(n), quoted(n, err == nil))
		return 0
	}
	if v < min || v > max {
		d.fail(n, key, "%d is out of range %d-%d", v, min, max)
	}
	return v
}

func (d *decoder) float(n *yaml.Node, key string, min, max float64) float64 {
	if !d.scalar(n, key, "a number") {
		return 0
	}
	var v float64
	if (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&v) != nil {
		_, err := strconv.ParseFloat(n.Value, 64)
		d.fail(n, key, "must be a number, not %s%s", describe(n), quoted(n, err == nil))
		return 0
	}
	// NaN compares false with everything, so it would pass the range check.
	if math.IsNaN(v) || v < min || v > max {
		d.fail(n, key, "%s is out of range %v-%v", n.Value, min, max)
	}
	return v
}

// duration parses Go durations ("15s", "2m") within the limits of the key
// called name in durationLimits; a bare number is refused because "15" could
// mean seconds or milliseconds.
func (d *decoder) duration(n *yaml.Node, key, name string) time.Duration {
	if !d.scalar(n, key, "a duration like 15s") {
		return 0
	}
	if n.Tag == "!!int" || n.Tag == "!!float" {
		if _, err := time.ParseDuration(n.Value + "s"); err == nil {
			d.fail(n, key, "%s has no unit: write %ss (or ms, m, h)", n.Value, n.Value)
			return 0
		}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(n, key, "%q is not a duration: write e.g. 500ms, 15s, 2m", n.Value)
		return 0
	}
	if why := outside(name, v); why != "" {
		d.fail(n, key, "%s", why)
	}
	return v
}

// short writes a duration as a person would: 24h, not 24h0m0s.
func short(v time.Duration) string {
	s := v.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
