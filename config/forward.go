package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// forwards parses a tunnel's forwards; hubs and tunnel say whose they are,
// for claimPort: every hub the tunnel may use binds them.
func (d *decoder) forwards(n *yaml.Node, key string, hubs []string, tunnel string) []Forward {
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
				for _, hub := range hubs {
					d.claimPort(remoteNode, fk+".remote", hub, tunnel, f.Remote)
				}
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
