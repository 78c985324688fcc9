package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read config: %v", unwrapPath(err))}}
	}
	return Parse(path, data)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse validates data as if read from file. Relative paths in the file are
// taken relative to the file's directory. On failure it returns Errors with
// every problem found, not just the first.
func Parse(file string, data []byte) (*Config, error) {
	dir := filepath.Dir(file)
	if abs, err := filepath.Abs(file); err == nil {
		dir = filepath.Dir(abs)
	}
	d := &decoder{file: file, dir: dir}
	cfg := &Config{Path: file, Log: Log{Level: "info", Format: "text"}, ShutdownGrace: DefaultShutdownGrace}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Msg: "file is empty: it needs a tunnels: list (see packaging/rtunnel.example.yaml)"}}
		}
		return nil, Errors{d.syntaxError(err, data)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, Errors{{File: file, Line: extra.Line, Msg: "a second YAML document (---) is not allowed: put every tunnel in one tunnels: list"}}
	case !errors.Is(err, io.EOF):
		// A broken second document must not pass as no second document.
		return nil, Errors{d.syntaxError(err, data)}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}

	if root.Kind != yaml.MappingNode && !isNull(root) {
		return nil, Errors{{File: file, Line: root.Line,
			Msg: fmt.Sprintf("the file must be a mapping with a tunnels: key (see packaging/rtunnel.example.yaml), not %s", describe(root))}}
	}
	var tunnelsNode *yaml.Node
	d.mapping(root, "", map[string]func(*yaml.Node, string){
		"log": func(n *yaml.Node, key string) {
			d.mapping(n, key, map[string]func(*yaml.Node, string){
				"level": func(n *yaml.Node, key string) {
					cfg.Log.Level = d.oneOf(n, key, "debug", "info", "warn", "error")
				},
				"format": func(n *yaml.Node, key string) {
					cfg.Log.Format = d.oneOf(n, key, "text", "json")
				},
			})
		},
		"shutdown_grace": func(n *yaml.Node, key string) { cfg.ShutdownGrace = d.duration(n, key, 0) },
		"metrics": func(n *yaml.Node, key string) {
			m := &Metrics{}
			var listen *yaml.Node
			d.mapping(n, key, map[string]func(*yaml.Node, string){
				"listen":       func(n *yaml.Node, key string) { listen = n },
				"allow_remote": func(n *yaml.Node, key string) { m.AllowRemote = d.boolean(n, key) },
			})
			if n.Kind == yaml.MappingNode || isNull(n) {
				d.checkMetrics(m, n, listen, key)
			}
			cfg.Metrics = m
		},
		"tunnels": func(n *yaml.Node, key string) { tunnelsNode = n },
	})
	if tunnelsNode != nil {
		cfg.Tunnels = d.tunnels(tunnelsNode)
	} else {
		d.errs = append(d.errs, &Error{File: file, Line: root.Line, Key: "tunnels", Msg: "missing: at least one tunnel is needed"})
	}
	if len(d.errs) > 0 {
		// Walk order puts a tunnel's missing keys after its nested problems; people read top down.
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		return nil, d.errs
	}
	return cfg, nil
}

type decoder struct {
	file string
	dir  string
	errs Errors
}

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

var (
	yamlLine   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// yaml.v3 numbers the lines of its parser's errors from 0 (its scanner's
// from 1) and leaves "line 0" out: these are the parser's.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// Problems of yaml.v3's reader, which gives no position at all.
var readerProblems = []string{"control characters are not allowed", "invalid leading UTF-8 octet",
	"incomplete UTF-8 octet sequence", "invalid trailing UTF-8 octet", "invalid length of a UTF-8 sequence",
	"invalid Unicode character", "incomplete UTF-16", "unexpected low surrogate area", "expected low surrogate area", "input error"}

const syntaxHint = "; check the indentation (spaces, not tabs) and unclosed quotes or brackets on this line and the next few"

// syntaxError turns yaml.v3's "yaml: line 3: mapping values are not allowed"
// into file:3: ..., correcting the line yaml.v3 gives and finding one where
// it gives none.
func (d *decoder) syntaxError(err error, data []byte) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if parserProblems[m[2]] {
			line++
		}
		return &Error{File: d.file, Line: line, Msg: "YAML syntax: " + m[2] + syntaxHint}
	}
	if m := yamlAnchor.FindStringSubmatch(msg); m != nil {
		return &Error{File: d.file, Line: aliasLine(data, m[1]),
			Msg: fmt.Sprintf("YAML alias *%s has no anchor &%s before it: define the anchor first, or write the value out", m[1], m[1])}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	for _, p := range readerProblems {
		if strings.HasPrefix(msg, p) {
			return &Error{File: d.file, Line: badCharLine(data), Msg: "YAML: " + msg + ": remove the character, or save the file as UTF-8 text"}
		}
	}
	// Any other scanner or parser problem without a line is on line 1.
	return &Error{File: d.file, Line: 1, Msg: "YAML syntax: " + msg + syntaxHint}
}

// badCharLine is the line of the first byte yaml.v3's reader refuses, or 0.
func badCharLine(data []byte) int {
	if bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) {
		return 0 // UTF-16: lines are not counted in bytes
	}
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 || !yamlPrintable(r) {
			return line
		}
		if r == '\n' {
			line++
		}
		i += size
	}
	return 0
}

// yamlPrintable is the YAML 1.2 c-printable set, which yaml.v3's reader enforces.
func yamlPrintable(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r == 0x85 ||
		r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff
}

// aliasLine is the line of the first *name in data, or 0.
func aliasLine(data []byte, name string) int {
	re, err := regexp.Compile(`\*` + regexp.QuoteMeta(name) + `(?:[\s,\]}]|$)`)
	if err != nil {
		return 0
	}
	loc := re.FindIndex(data)
	if loc == nil {
		return 0
	}
	return 1 + bytes.Count(data[:loc[0]], []byte("\n"))
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

const (
	hintIdentity   = "the private key file rtunnel logs in with, e.g. /etc/rtunnel/id_ed25519"
	hintKnownHosts = "the known_hosts file that holds the server's host key (rtunnel never trusts an unknown host)"
	hintServer     = "write server: user@host[:port]"
)

// requiredPath is required for a file name, taken relative to the config
// file's directory.
func (d *decoder) requiredPath(parent, n *yaml.Node, key, hint string) string {
	p := d.required(parent, n, key, hint)
	if p == "" {
		return ""
	}
	if strings.HasPrefix(p, "~") {
		// Left as is it would name a directory called "~" next to the config.
		d.fail(n, key, "%q: ~ is not expanded (rtunnel does not run from a shell): write the full path", p)
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(d.dir, p)
	}
	return p
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

// duration parses Go durations ("15s", "2m"); a bare number is refused
// because "15" could mean seconds or milliseconds.
func (d *decoder) duration(n *yaml.Node, key string, min time.Duration) time.Duration {
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
	if v < min {
		d.fail(n, key, "%s is below the minimum %s", v, min)
	}
	return v
}

func (d *decoder) checkMetrics(m *Metrics, parent, listen *yaml.Node, key string) {
	key = join(key, "listen")
	if listen == nil {
		d.fail(parent, key, "missing: write e.g. listen: 127.0.0.1:9810, or remove metrics: to turn it off")
		return
	}
	s, ok := d.str(listen, key)
	if !ok {
		return
	}
	m.Listen = s
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		d.fail(listen, key, "%q is not host:port: write e.g. 127.0.0.1:9810", s)
		return
	}
	if _, err := parsePort(port, true); err != nil {
		d.fail(listen, key, "%q: %v", s, err)
		return
	}
	if host != "" {
		if err := checkHost(host); err != nil {
			d.fail(listen, key, "%q: %v", s, err)
			return
		}
	}
	if !m.AllowRemote && !IsLoopback(host) {
		d.fail(listen, key, "%q is not a loopback address: metrics would be reachable from the network; use 127.0.0.1, or set allow_remote: true if you mean it", s)
	}
}

// IsLoopback reports whether host is "localhost" or a loopback IP.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func (d *decoder) tunnels(n *yaml.Node) []Tunnel {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, "tunnels", "must be a list (each item starts with '- name: ...'), not %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		d.fail(n, "tunnels", "is empty: at least one tunnel is needed")
		return nil
	}
	first := map[string]int{} // name -> line of the tunnel that has it
	var out []Tunnel
	for i, tn := range n.Content {
		// Every message about a tunnel uses one key: its name when that is
		// valid and unique, else its index.
		key := fmt.Sprintf("tunnels[%d]", i)
		if nn := valueOf(tn, "name"); nn != nil && nn.Kind == yaml.ScalarNode && nn.Tag == "!!str" && nameRE.MatchString(nn.Value) {
			if prev, dup := first[nn.Value]; dup {
				d.fail(nn, key+".name", "%q is already used by the tunnel at line %d: names must be unique, rename one", nn.Value, prev)
			} else {
				first[nn.Value] = tn.Line
				key = "tunnels[" + nn.Value + "]"
			}
		}
		out = append(out, d.tunnel(tn, key))
	}
	return out
}

func (d *decoder) tunnel(n *yaml.Node, key string) Tunnel {
	t := Tunnel{
		Line:                 n.Line,
		Keepalive:            Keepalive{Interval: DefaultKeepalive, CountMax: DefaultKeepaliveCount},
		ConnectTimeout:       DefaultConnectTimeout,
		ExitOnForwardFailure: true,
		ForwardRetry:         DefaultForwardRetry,
		ForwardRetryFor:      DefaultForwardRetryFor,
		MaxConnections:       DefaultMaxConnections,
		Backoff: Backoff{Initial: DefaultBackoffInitial, Max: DefaultBackoffMax, Multiplier: DefaultBackoffMult,
			Jitter: DefaultBackoffJitter, ResetAfter: DefaultBackoffReset},
	}
	if isNull(n) {
		d.fail(n, key, "empty list item: each tunnel is a mapping that starts with '- name: ...'")
		return t
	}
	var nameNode, serverNode, identityNode, knownHostsNode, jumpNode, forwardsNode *yaml.Node
	d.mapping(n, key, map[string]func(*yaml.Node, string){
		"name":        func(n *yaml.Node, key string) { nameNode = n },
		"server":      func(n *yaml.Node, key string) { serverNode = n },
		"identity":    func(n *yaml.Node, key string) { identityNode = n },
		"known_hosts": func(n *yaml.Node, key string) { knownHostsNode = n },
		"jump":        func(n *yaml.Node, key string) { jumpNode = n },
		"forwards":    func(n *yaml.Node, key string) { forwardsNode = n },
		"keepalive": func(n *yaml.Node, key string) {
			d.mapping(n, key, map[string]func(*yaml.Node, string){
				"interval":  func(n *yaml.Node, key string) { t.Keepalive.Interval = d.duration(n, key, 100*time.Millisecond) },
				"count_max": func(n *yaml.Node, key string) { t.Keepalive.CountMax = d.integer(n, key, 1, 1000) },
			})
		},
		"connect_timeout":         func(n *yaml.Node, key string) { t.ConnectTimeout = d.duration(n, key, 100*time.Millisecond) },
		"exit_on_forward_failure": func(n *yaml.Node, key string) { t.ExitOnForwardFailure = d.boolean(n, key) },
		"forward_retry":           func(n *yaml.Node, key string) { t.ForwardRetry = d.duration(n, key, 10*time.Millisecond) },
		"forward_retry_for":       func(n *yaml.Node, key string) { t.ForwardRetryFor = d.duration(n, key, 0) },
		"max_connections":         func(n *yaml.Node, key string) { t.MaxConnections = d.integer(n, key, 1, 1<<20) },
		"backoff":                 func(n *yaml.Node, key string) { d.backoff(n, key, &t.Backoff) },
	})
	if n.Kind != yaml.MappingNode {
		return t
	}
	t.Name = d.required(n, nameNode, key+".name", "every tunnel needs a name (used in logs and metrics)")
	if t.Name != "" && !nameRE.MatchString(t.Name) {
		d.fail(nameNode, key+".name", "%q: use letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit", t.Name)
	}
	identity := d.requiredPath(n, identityNode, key+".identity", hintIdentity)
	knownHosts := d.requiredPath(n, knownHostsNode, key+".known_hosts", hintKnownHosts)
	if s := d.required(n, serverNode, key+".server", hintServer); s != "" {
		ep, err := ParseEndpoint(s)
		if err != nil {
			d.fail(serverNode, key+".server", "%v", err)
		}
		t.Server = ep
		t.Server.Line = serverNode.Line
	}
	t.Server.Identity, t.Server.KnownHosts, t.Server.ConnectTimeout = identity, knownHosts, t.ConnectTimeout
	if jumpNode != nil {
		t.Jump = d.jumps(jumpNode, key+".jump", t.Server)
	}
	if forwardsNode == nil {
		d.fail(n, key+".forwards", "missing: at least one forward (remote: localhost:2220, local: localhost:22)")
	} else {
		t.Forwards = d.forwards(forwardsNode, key+".forwards")
	}
	return t
}

func (d *decoder) backoff(n *yaml.Node, key string, b *Backoff) {
	var initialNode, maxNode *yaml.Node
	ok := true
	dur := func(n *yaml.Node, key string) time.Duration {
		before := len(d.errs)
		v := d.duration(n, key, 10*time.Millisecond)
		ok = ok && len(d.errs) == before
		return v
	}
	d.mapping(n, key, map[string]func(*yaml.Node, string){
		"initial":     func(n *yaml.Node, key string) { initialNode, b.Initial = n, dur(n, key) },
		"max":         func(n *yaml.Node, key string) { maxNode, b.Max = n, dur(n, key) },
		"multiplier":  func(n *yaml.Node, key string) { b.Multiplier = d.float(n, key, 1, 100) },
		"jitter":      func(n *yaml.Node, key string) { b.Jitter = d.float(n, key, 0, 0.99) },
		"reset_after": func(n *yaml.Node, key string) { b.ResetAfter = d.duration(n, key, 0) },
	})
	switch {
	case !ok || b.Max >= b.Initial:
		// A bad initial or max is reported already; comparing it adds noise.
	case maxNode != nil:
		d.fail(maxNode, key+".max", "%s is below initial %s: raise max or lower initial", b.Max, b.Initial)
	default:
		d.fail(initialNode, key+".initial", "%s is above max, %s by default: lower initial or set max", b.Initial, b.Max)
	}
}

// jumps parses ProxyJump hops: each is "user@host[:port]" or a mapping with
// server and optional identity, known_hosts and connect_timeout (defaults:
// the tunnel's).
func (d *decoder) jumps(n *yaml.Node, key string, def Endpoint) []Endpoint {
	var out []Endpoint
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		// "a,b" as ssh -J writes it.
		for i, part := range strings.Split(n.Value, ",") {
			if hop, ok := d.hopFrom(n, fmt.Sprintf("%s[%d]", key, i), strings.TrimSpace(part), def); ok {
				out = append(out, hop)
			}
		}
		return out
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, key, "must be a list of hops (user@host[:port] or a mapping with server:), not %s", describe(n))
		return nil
	}
	for i, hn := range n.Content {
		hk := fmt.Sprintf("%s[%d]", key, i)
		if hn.Kind == yaml.MappingNode {
			hop := def
			var serverNode *yaml.Node
			d.mapping(hn, hk, map[string]func(*yaml.Node, string){
				"server":          func(n *yaml.Node, key string) { serverNode = n },
				"identity":        func(n *yaml.Node, key string) { hop.Identity = d.requiredPath(hn, n, key, hintIdentity) },
				"known_hosts":     func(n *yaml.Node, key string) { hop.KnownHosts = d.requiredPath(hn, n, key, hintKnownHosts) },
				"connect_timeout": func(n *yaml.Node, key string) { hop.ConnectTimeout = d.duration(n, key, 100*time.Millisecond) },
			})
			server := d.required(hn, serverNode, hk+".server", hintServer)
			if server == "" {
				continue
			}
			ep, err := ParseEndpoint(server)
			if err != nil {
				d.fail(serverNode, hk+".server", "%v", err)
				continue
			}
			hop.User, hop.Host, hop.Port, hop.Line = ep.User, ep.Host, ep.Port, hn.Line
			out = append(out, hop)
			continue
		}
		if s, ok := d.str(hn, hk); ok {
			if hop, ok := d.hopFrom(hn, hk, s, def); ok {
				out = append(out, hop)
			}
		}
	}
	return out
}

func (d *decoder) hopFrom(n *yaml.Node, key, s string, def Endpoint) (Endpoint, bool) {
	ep, err := ParseEndpoint(s)
	if err != nil {
		d.fail(n, key, "%v", err)
		return Endpoint{}, false
	}
	hop := def
	hop.User, hop.Host, hop.Port, hop.Line = ep.User, ep.Host, ep.Port, n.Line
	return hop, true
}

func (d *decoder) forwards(n *yaml.Node, key string) []Forward {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, key, "must be a list (each item '- remote: localhost:2220' with 'local: localhost:22'), not %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		d.fail(n, key, "is empty: at least one forward is needed")
		return nil
	}
	seen := map[string]int{}
	var out []Forward
	for i, fn := range n.Content {
		fk := fmt.Sprintf("%s[%d]", key, i)
		if isNull(fn) {
			d.fail(fn, fk, "empty list item: write '- remote: localhost:2220' with 'local: localhost:22' under it")
			continue
		}
		var remoteNode, localNode *yaml.Node
		d.mapping(fn, fk, map[string]func(*yaml.Node, string){
			"remote": func(n *yaml.Node, key string) { remoteNode = n },
			"local":  func(n *yaml.Node, key string) { localNode = n },
		})
		if fn.Kind != yaml.MappingNode {
			continue
		}
		f := Forward{Line: fn.Line}
		f.Remote = d.addr(fn, remoteNode, fk+".remote", "the address the server binds, e.g. localhost:2220")
		f.Local = d.addr(fn, localNode, fk+".local", "where connections go on this machine, e.g. localhost:22")
		if f.Remote.Port != 0 {
			r := f.Remote.String()
			if prev, dup := seen[r]; dup {
				d.fail(remoteNode, fk+".remote", "%s is already forwarded at line %d: the server can bind it once; remove or change one", r, prev)
			} else {
				seen[r] = remoteNode.Line
			}
		}
		out = append(out, f)
	}
	return out
}

// addr parses a required host:port value of a forward.
func (d *decoder) addr(parent, n *yaml.Node, key, hint string) Addr {
	if n == nil {
		d.fail(parent, key, "missing: %s", hint)
		return Addr{}
	}
	s, ok := d.str(n, key)
	if !ok {
		return Addr{}
	}
	a, err := ParseAddr(s, false)
	if err != nil {
		d.fail(n, key, "%v", err)
	}
	return a
}
