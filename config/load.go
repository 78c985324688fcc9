package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

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
		return nil, Errors{d.syntaxError(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: file, Line: extra.Line, Msg: "a second YAML document (---) is not allowed: put every tunnel in one tunnels: list"}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
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
			line := n.Line
			d.mapping(n, key, map[string]func(*yaml.Node, string){
				"listen":       func(n *yaml.Node, key string) { m.Listen = d.str(n, key) },
				"allow_remote": func(n *yaml.Node, key string) { m.AllowRemote = d.boolean(n, key) },
			})
			d.checkMetrics(m, line, key)
			cfg.Metrics = m
		},
		"tunnels": func(n *yaml.Node, key string) { tunnelsNode = n },
	})
	if tunnelsNode == nil {
		if len(d.errs) == 0 {
			d.errs = append(d.errs, &Error{File: file, Line: root.Line, Key: "tunnels", Msg: "missing: at least one tunnel is needed"})
		}
	} else {
		cfg.Tunnels = d.tunnels(tunnelsNode)
	}
	if len(d.errs) > 0 {
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

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns "yaml: line 3: mapping values are not allowed" into file:3: ...
func (d *decoder) syntaxError(err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: d.file, Line: line, Msg: "YAML syntax: " + m[2]}
	}
	return &Error{File: d.file, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// mapping walks a YAML mapping, calling the handler of each known key and
// reporting unknown or repeated keys with their line.
func (d *decoder) mapping(n *yaml.Node, key string, fields map[string]func(*yaml.Node, string)) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
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
		return "an alias"
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

func (d *decoder) scalar(n *yaml.Node, key, want string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.fail(n, key, "must be %s, not %s", want, describe(n))
		return false
	}
	return true
}

func (d *decoder) str(n *yaml.Node, key string) string {
	if !d.scalar(n, key, "a string") {
		return ""
	}
	if n.Tag != "!!str" {
		d.fail(n, key, "must be a string, not %s (quote it)", describe(n))
		return ""
	}
	return n.Value
}

func (d *decoder) path(n *yaml.Node, key string) string {
	p := d.str(n, key)
	if p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(d.dir, p)
	}
	return p
}

func (d *decoder) oneOf(n *yaml.Node, key string, allowed ...string) string {
	s := d.str(n, key)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	if s != "" {
		d.fail(n, key, "%q is not one of %s", s, strings.Join(allowed, ", "))
	}
	return allowed[0]
}

func (d *decoder) boolean(n *yaml.Node, key string) bool {
	if !d.scalar(n, key, "true or false") {
		return false
	}
	if n.Tag != "!!bool" {
		d.fail(n, key, "must be true or false, not %s", describe(n))
		return false
	}
	var b bool
	_ = n.Decode(&b)
	return b
}

func (d *decoder) integer(n *yaml.Node, key string, min, max int) int {
	if !d.scalar(n, key, "a whole number") {
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if n.Tag != "!!int" || err != nil {
		d.fail(n, key, "must be a whole number, not %s", describe(n))
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
	v, err := strconv.ParseFloat(n.Value, 64)
	if (n.Tag != "!!int" && n.Tag != "!!float") || err != nil {
		d.fail(n, key, "must be a number, not %s", describe(n))
		return 0
	}
	if v < min || v > max {
		d.fail(n, key, "%v is out of range %v-%v", v, min, max)
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
		d.fail(n, key, "%s has no unit: write %ss (or ms, m, h)", n.Value, n.Value)
		return 0
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

func (d *decoder) checkMetrics(m *Metrics, line int, key string) {
	if m.Listen == "" {
		d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: join(key, "listen"), Msg: "missing: write e.g. listen: 127.0.0.1:9810, or remove metrics: to turn it off"})
		return
	}
	host, port, err := net.SplitHostPort(m.Listen)
	if err != nil {
		d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: join(key, "listen"), Msg: fmt.Sprintf("%q is not host:port", m.Listen)})
		return
	}
	if _, err := parsePort(port, true); err != nil {
		d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: join(key, "listen"), Msg: err.Error()})
		return
	}
	if !m.AllowRemote && !IsLoopback(host) {
		d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: join(key, "listen"),
			Msg: fmt.Sprintf("%q is not a loopback address: metrics would be reachable from the network; use 127.0.0.1, or set allow_remote: true if you mean it", m.Listen)})
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
	names := map[string]int{}
	var out []Tunnel
	for i, tn := range n.Content {
		key := fmt.Sprintf("tunnels[%d]", i)
		t := d.tunnel(tn, key)
		if t.Name != "" {
			if prev, dup := names[t.Name]; dup {
				d.fail(tn, key+".name", "%q is already used by the tunnel at line %d: names must be unique", t.Name, prev)
			}
			names[t.Name] = tn.Line
		}
		out = append(out, t)
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
	var serverNode, jumpNode *yaml.Node
	var identity, knownHosts string
	var forwardsNode *yaml.Node
	d.mapping(n, key, map[string]func(*yaml.Node, string){
		"name":        func(n *yaml.Node, key string) { t.Name = d.name(n, key) },
		"server":      func(n *yaml.Node, key string) { serverNode = n },
		"identity":    func(n *yaml.Node, key string) { identity = d.path(n, key) },
		"known_hosts": func(n *yaml.Node, key string) { knownHosts = d.path(n, key) },
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
		"backoff": func(n *yaml.Node, key string) {
			line := n.Line
			d.mapping(n, key, map[string]func(*yaml.Node, string){
				"initial":     func(n *yaml.Node, key string) { t.Backoff.Initial = d.duration(n, key, 10*time.Millisecond) },
				"max":         func(n *yaml.Node, key string) { t.Backoff.Max = d.duration(n, key, 10*time.Millisecond) },
				"multiplier":  func(n *yaml.Node, key string) { t.Backoff.Multiplier = d.float(n, key, 1, 100) },
				"jitter":      func(n *yaml.Node, key string) { t.Backoff.Jitter = d.float(n, key, 0, 0.99) },
				"reset_after": func(n *yaml.Node, key string) { t.Backoff.ResetAfter = d.duration(n, key, 0) },
			})
			if t.Backoff.Max < t.Backoff.Initial {
				d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key + ".max",
					Msg: fmt.Sprintf("%s is below initial %s", t.Backoff.Max, t.Backoff.Initial)})
			}
		},
	})
	if t.Name == "" && n.Kind == yaml.MappingNode {
		d.fail(n, key+".name", "missing: every tunnel needs a name (used in logs and metrics)")
	}
	if t.Name != "" {
		key = fmt.Sprintf("tunnels[%s]", t.Name)
	}
	if identity == "" && n.Kind == yaml.MappingNode {
		d.fail(n, key+".identity", "missing: the private key file rtunnel logs in with, e.g. /etc/rtunnel/id_ed25519")
	}
	if knownHosts == "" && n.Kind == yaml.MappingNode {
		d.fail(n, key+".known_hosts", "missing: the known_hosts file that holds the server's host key (rtunnel never trusts an unknown host)")
	}
	if serverNode == nil {
		if n.Kind == yaml.MappingNode {
			d.fail(n, key+".server", "missing: write server: user@host[:port]")
		}
	} else if s := d.str(serverNode, key+".server"); s != "" {
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
		if n.Kind == yaml.MappingNode {
			d.fail(n, key+".forwards", "missing: at least one forward (remote: localhost:2220, local: localhost:22)")
		}
	} else {
		t.Forwards = d.forwards(forwardsNode, key+".forwards")
	}
	return t
}

func (d *decoder) name(n *yaml.Node, key string) string {
	s := d.str(n, key)
	if s != "" && !nameRE.MatchString(s) {
		d.fail(n, key, "%q: use letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit", s)
	}
	return s
}

// jumps parses ProxyJump hops: each is "user@host[:port]" or a mapping with
// server and optional identity, known_hosts and connect_timeout (defaults:
// the tunnel's).
func (d *decoder) jumps(n *yaml.Node, key string, def Endpoint) []Endpoint {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		// "a,b" as ssh -J writes it.
		var out []Endpoint
		for _, part := range strings.Split(n.Value, ",") {
			out = append(out, d.hopFrom(n, key, strings.TrimSpace(part), def))
		}
		return out
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, key, "must be a list of hops (user@host[:port] or a mapping with server:), not %s", describe(n))
		return nil
	}
	var out []Endpoint
	for i, hn := range n.Content {
		hk := fmt.Sprintf("%s[%d]", key, i)
		if hn.Kind == yaml.MappingNode {
			hop := def
			var server string
			d.mapping(hn, hk, map[string]func(*yaml.Node, string){
				"server":          func(n *yaml.Node, key string) { server = d.str(n, key) },
				"identity":        func(n *yaml.Node, key string) { hop.Identity = d.path(n, key) },
				"known_hosts":     func(n *yaml.Node, key string) { hop.KnownHosts = d.path(n, key) },
				"connect_timeout": func(n *yaml.Node, key string) { hop.ConnectTimeout = d.duration(n, key, 100*time.Millisecond) },
			})
			if server == "" {
				d.fail(hn, hk+".server", "missing: write server: user@host[:port]")
				continue
			}
			ep, err := ParseEndpoint(server)
			if err != nil {
				d.fail(hn, hk+".server", "%v", err)
				continue
			}
			hop.User, hop.Host, hop.Port, hop.Line = ep.User, ep.Host, ep.Port, hn.Line
			out = append(out, hop)
			continue
		}
		s := d.str(hn, hk)
		if s != "" {
			out = append(out, d.hopFrom(hn, hk, s, def))
		}
	}
	return out
}

func (d *decoder) hopFrom(n *yaml.Node, key, s string, def Endpoint) Endpoint {
	ep, err := ParseEndpoint(s)
	if err != nil {
		d.fail(n, key, "%v", err)
		return def
	}
	hop := def
	hop.User, hop.Host, hop.Port, hop.Line = ep.User, ep.Host, ep.Port, n.Line
	return hop
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
		f := Forward{Line: fn.Line}
		var haveRemote, haveLocal bool
		d.mapping(fn, fk, map[string]func(*yaml.Node, string){
			"remote": func(n *yaml.Node, key string) {
				haveRemote = true
				if s := d.str(n, key); s != "" {
					a, err := ParseAddr(s, false)
					if err != nil {
						d.fail(n, key, "%v", err)
					}
					f.Remote = a
				}
			},
			"local": func(n *yaml.Node, key string) {
				haveLocal = true
				if s := d.str(n, key); s != "" {
					a, err := ParseAddr(s, false)
					if err != nil {
						d.fail(n, key, "%v", err)
					}
					f.Local = a
				}
			},
		})
		if fn.Kind != yaml.MappingNode {
			continue
		}
		if !haveRemote {
			d.fail(fn, fk+".remote", "missing: the address the server binds, e.g. localhost:2220")
		}
		if !haveLocal {
			d.fail(fn, fk+".local", "missing: where connections go on this machine, e.g. localhost:22")
		}
		if f.Remote.Port != 0 {
			r := f.Remote.String()
			if prev, dup := seen[r]; dup {
				d.fail(fn, fk+".remote", "%s is already forwarded at line %d", r, prev)
			}
			seen[r] = fn.Line
		}
		out = append(out, f)
	}
	return out
}
