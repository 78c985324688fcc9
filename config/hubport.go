package config

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// hubPort is one remote port on one hub.
type hubPort struct {
	hub  string // hubOf
	port int
}

// portClaim is the first forward that asked for a hubPort.
type portClaim struct {
	tunnel string
	line   int
}

// hubOf names the hub a tunnel's forwards are bound on: its server's host
// (case-insensitive, as DNS is) and port, after the jump hops that reach
// it, since 10.0.0.5 behind one bastion is not 10.0.0.5 behind another.
// It is "" when the server did not parse.
func hubOf(t Tunnel) string {
	return hubVia(t, t.Server)
}

// hubsOf is hubOf for every hub of the tunnel.
func hubsOf(t Tunnel) []string {
	if len(t.Hubs) == 0 {
		return []string{hubOf(t)}
	}
	var out []string
	for _, h := range t.Hubs {
		out = append(out, hubVia(t, h))
	}
	return out
}

func hubVia(t Tunnel, server Endpoint) string {
	if server.Host == "" {
		return ""
	}
	var b strings.Builder
	for _, hop := range t.Jump {
		b.WriteString(strings.ToLower(hop.Host) + ":" + strconv.Itoa(hop.Port) + " -> ")
	}
	b.WriteString(strings.ToLower(server.Host) + ":" + strconv.Itoa(server.Port))
	return b.String()
}

// claimPort refuses a remote port that another tunnel already asks the same
// hub for. The hub binds a port once, whatever host each forward names
// (localhost:2220 and 127.0.0.1:2220 overlap), so the second tunnel's
// forward would be refused forever and look like a stale session.
func (d *decoder) claimPort(n *yaml.Node, key, hub, tunnel string, remote Addr) {
	if hub == "" || tunnel == "" {
		return
	}
	hp := hubPort{hub: hub, port: remote.Port}
	first, taken := d.hubPorts[hp]
	switch {
	case !taken:
		d.hubPorts[hp] = portClaim{tunnel: tunnel, line: n.Line}
	case first.tunnel != tunnel:
		d.fail(n, key, "port %d on %s is already asked for by tunnel %q at line %d: the hub binds a port once, so one of the two would be refused forever; give one of them another port",
			remote.Port, hub, first.tunnel, first.line)
	}
}
