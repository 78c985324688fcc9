package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	hintIdentity   = "the private key file rtunnel logs in with, e.g. /etc/rtunnel/id_ed25519"
	hintKnownHosts = "the known_hosts file that holds the server's host key (rtunnel never trusts an unknown host)"
	hintServer     = "write server: user@host[:port]"
)

// validName reports whether s can name a tunnel: a letter or digit, then
// at most 62 letters, digits, '_', '.' or '-'. Written out, not as a
// regexp: the bounded repetition compiles at package init to about 70 KB
// of heap that an idle daemon, which never runs a GC, keeps resident.
func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

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
		if nn := valueOf(tn, "name"); nn != nil && nn.Kind == yaml.ScalarNode && nn.Tag == "!!str" && validName(nn.Value) {
			if prev, dup := first[nn.Value]; dup {
				d.fail(nn, key+".name", "%q is already used by the tunnel at line %d: names must be unique, rename one", nn.Value, prev)
			} else {
				first[nn.Value] = tn.Line
				key = "tunnels[" + nn.Value + "]"
			}
		}
		t := d.tunnel(tn, key)
		if d.found == 0 {
			// After a problem the result is thrown away: keeping a list of
			// half a million broken tunnels would only cost memory.
			out = append(out, t)
		}
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
		StaleSessionPoke:     true,
		Backoff: Backoff{Initial: DefaultBackoffInitial, Max: DefaultBackoffMax, Multiplier: DefaultBackoffMult,
			Jitter: DefaultBackoffJitter, ResetAfter: DefaultBackoffReset},
	}
	if isNull(n) {
		d.fail(n, key, "empty list item: each tunnel is a mapping that starts with '- name: ...'")
		return t
	}
	var nameNode, serverNode, jumpNode, forwardsNode, sshConfigNode, localForwardsNode, hubsNode *yaml.Node
	var a auth
	d.mapping(n, key, a.fields(map[string]func(*yaml.Node, string){
		"ssh_config":          func(n *yaml.Node, key string) { sshConfigNode = n },
		"ciphers":             func(n *yaml.Node, key string) { d.algorithm(&t, n, key) },
		"kex_algorithms":      func(n *yaml.Node, key string) { d.algorithm(&t, n, key) },
		"macs":                func(n *yaml.Node, key string) { d.algorithm(&t, n, key) },
		"host_key_algorithms": func(n *yaml.Node, key string) { d.algorithm(&t, n, key) },
		"name":                func(n *yaml.Node, key string) { nameNode = n },
		"server":              func(n *yaml.Node, key string) { serverNode = n },
		"hubs":                func(n *yaml.Node, key string) { hubsNode = n },
		"jump":                func(n *yaml.Node, key string) { jumpNode = n },
		"forwards":            func(n *yaml.Node, key string) { forwardsNode = n },
		"local_forwards":      func(n *yaml.Node, key string) { localForwardsNode = n },
		"keepalive": func(n *yaml.Node, key string) {
			d.mapping(n, key, map[string]func(*yaml.Node, string){
				"interval":  func(n *yaml.Node, key string) { t.Keepalive.Interval = d.duration(n, key, "keepalive.interval") },
				"count_max": func(n *yaml.Node, key string) { t.Keepalive.CountMax = d.integer(n, key, 1, maxKeepaliveCount) },
			})
		},
		"connect_timeout":         func(n *yaml.Node, key string) { t.ConnectTimeout = d.duration(n, key, "connect_timeout") },
		"exit_on_forward_failure": func(n *yaml.Node, key string) { t.ExitOnForwardFailure = d.boolean(n, key) },
		"forward_retry":           func(n *yaml.Node, key string) { t.ForwardRetry = d.duration(n, key, "forward_retry") },
		"forward_retry_for":       func(n *yaml.Node, key string) { t.ForwardRetryFor = d.duration(n, key, "forward_retry_for") },
		"max_connections":         func(n *yaml.Node, key string) { t.MaxConnections = d.integer(n, key, 1, 1<<20) },
		"backoff":                 func(n *yaml.Node, key string) { d.backoff(n, key, &t.Backoff) },
		"stale_session_poke":      func(n *yaml.Node, key string) { t.StaleSessionPoke = d.boolean(n, key) },
	}))
	if n.Kind != yaml.MappingNode {
		return t
	}
	t.Name = d.required(n, nameNode, key+".name", "every tunnel needs a name (used in logs and metrics)")
	if t.Name != "" && !validName(t.Name) {
		d.fail(nameNode, key+".name", "%q: use letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit", t.Name)
	}
	sshConfig := d.sshConfig
	if sshConfigNode != nil {
		sshConfig = d.requiredPath(n, sshConfigNode, key+".ssh_config", hintSSHConfig)
	}
	if localForwardsNode != nil {
		t.LocalForwards = d.localForwards(localForwardsNode, key+".local_forwards")
	}
	if sshConfig != "" || sshConfigNode != nil {
		if hubsNode != nil {
			d.fail(hubsNode, key+".hubs", "is for a list of servers; with ssh_config, server is one alias")
		}
		if sshConfig != "" {
			d.tunnelFromSSHConfig(&t, n, key, sshConfig, serverNode, a, jumpNode, forwardsNode, localForwardsNode)
		}
		return t
	}
	if serverNode != nil && serverNode.Kind == yaml.SequenceNode {
		d.hubs(&t, serverNode, hubsNode, key)
	} else {
		if hubsNode != nil {
			d.fail(hubsNode, key+".hubs", "is for a list of servers (server: [user@hub1, user@hub2]); this tunnel has one")
		}
		if s := d.required(n, serverNode, key+".server", hintServer); s != "" {
			ep, err := ParseEndpoint(s)
			if err != nil {
				d.fail(serverNode, key+".server", "%v", err)
			}
			t.Server = ep
			t.Server.Line = serverNode.Line
		}
	}
	d.applyAuth(n, key, a, &t.Server, true)
	t.Server.ConnectTimeout = t.ConnectTimeout
	for i, h := range t.Hubs {
		// Every hub logs in as the tunnel does: its identity, known_hosts
		// and the rest, with its own address.
		t.Hubs[i] = t.Server
		t.Hubs[i].User, t.Hubs[i].Host, t.Hubs[i].Port, t.Hubs[i].Line = h.User, h.Host, h.Port, h.Line
	}
	if jumpNode != nil {
		if len(t.Hubs) > 0 {
			d.fail(jumpNode, key+".jump", "is not supported with a list of servers: give each hub its own tunnel, or reach it without a jump host")
		} else {
			t.Jump = d.jumps(jumpNode, key+".jump", t.Server)
		}
	}
	if forwardsNode == nil {
		if localForwardsNode == nil {
			d.fail(n, key+".forwards", "missing: at least one forward (remote: localhost:2220, local: localhost:22), or local_forwards")
		}
	} else {
		t.Forwards = d.forwards(forwardsNode, key+".forwards", hubsOf(t), t.Name)
	}
	return t
}

// maxHubs bounds server: as a list; a fleet shards over hubs, a remote
// holds a few.
const maxHubs = 8

// hubs parses server: as a list of hubs and hubs: (failover, the default,
// or all).
func (d *decoder) hubs(t *Tunnel, list, mode *yaml.Node, key string) {
	t.HubMode = HubsFailover
	if mode != nil {
		if s, ok := d.str(mode, key+".hubs"); ok {
			switch s {
			case HubsFailover, HubsAll:
				t.HubMode = s
			default:
				d.fail(mode, key+".hubs", "%q: write failover (one hub at a time, the first reachable one preferred) or all (every hub at once)", s)
			}
		}
	}
	switch {
	case len(list.Content) == 0:
		d.fail(list, key+".server", "is an empty list: name at least one hub (user@host[:port])")
		return
	case len(list.Content) > maxHubs:
		d.fail(list, key+".server", "lists %d hubs, at most %d are supported", len(list.Content), maxHubs)
		return
	}
	seen := map[string]int{}
	for i, hn := range list.Content {
		hk := fmt.Sprintf("%s.server[%d]", key, i)
		s, ok := d.str(hn, hk)
		if !ok {
			continue
		}
		ep, err := ParseEndpoint(s)
		if err != nil {
			d.fail(hn, hk, "%v", err)
			continue
		}
		ep.Line = hn.Line
		name := strings.ToLower(net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)))
		if prev, dup := seen[name]; dup {
			d.fail(hn, hk, "%s is already listed at line %d: each hub once", name, prev)
			continue
		}
		seen[name] = hn.Line
		t.Hubs = append(t.Hubs, ep)
	}
	if len(t.Hubs) > 0 {
		t.Server = t.Hubs[0]
	}
}

func (d *decoder) backoff(n *yaml.Node, key string, b *Backoff) {
	var initialNode, maxNode *yaml.Node
	ok := true
	dur := func(n *yaml.Node, key, name string) time.Duration {
		before := d.found
		v := d.duration(n, key, name)
		ok = ok && d.found == before
		return v
	}
	d.mapping(n, key, map[string]func(*yaml.Node, string){
		"initial":     func(n *yaml.Node, key string) { initialNode, b.Initial = n, dur(n, key, "backoff.initial") },
		"max":         func(n *yaml.Node, key string) { maxNode, b.Max = n, dur(n, key, "backoff.max") },
		"multiplier":  func(n *yaml.Node, key string) { b.Multiplier = d.float(n, key, 1, 100) },
		"jitter":      func(n *yaml.Node, key string) { b.Jitter = d.float(n, key, 0, 0.99) },
		"reset_after": func(n *yaml.Node, key string) { b.ResetAfter = d.duration(n, key, "backoff.reset_after") },
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
