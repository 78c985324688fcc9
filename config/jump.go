package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

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
			hop.HostKeyAlias = "" // names the server's key, not a hop's
			var serverNode *yaml.Node
			var a auth
			d.mapping(hn, hk, a.fields(map[string]func(*yaml.Node, string){
				"server":          func(n *yaml.Node, key string) { serverNode = n },
				"connect_timeout": func(n *yaml.Node, key string) { hop.ConnectTimeout = d.duration(n, key, "connect_timeout") },
			}))
			if a.identity != nil || a.agent != nil {
				// A hop's own identity replaces the tunnel's keys and agent.
				hop.Identities, hop.IdentityAgent, hop.Certificate = nil, "", ""
			}
			d.applyAuth(hn, hk, a, &hop, false)
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
	hop.HostKeyAlias = "" // names the server's key, not a hop's
	hop.User, hop.Host, hop.Port, hop.Line = ep.User, ep.Host, ep.Port, n.Line
	return hop, true
}
