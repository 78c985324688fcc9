package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxSocketPath is the longest Unix socket path that fits sun_path (108
// bytes with its NUL on Linux); OpenSSH refuses longer ones too.
const maxSocketPath = 107

const (
	hintRemote = "the address the server binds, e.g. localhost:2220 (localhost:0: the hub picks a port), or a socket path such as /run/hub/remote-7.sock"
	hintLocal  = "where connections go on this machine, e.g. localhost:22, or a socket path such as /run/app.sock"
	hintListen = "the address rtunnel listens on here, e.g. 127.0.0.1:15432, or a socket path"
	hintConn   = "where the hub connects each connection, e.g. db.internal:5432, or a socket path on the hub"
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
		f.Remote, f.RemotePath = d.endpointOrPath(fn, remoteNode, fk+".remote", hintRemote, true)
		f.Local, f.LocalPath = d.endpointOrPath(fn, localNode, fk+".local", hintLocal, false)
		// Port 0 may repeat: each asks the hub for a port of its own.
		if f.RemotePath != "" || f.Remote.Port != 0 {
			r := f.RemoteString()
			if prev, dup := seen[r]; dup {
				d.fail(remoteNode, fk+".remote", "%s is already forwarded at line %d: the server can bind it once; remove or change one", r, prev)
			} else {
				seen[r] = remoteNode.Line
				for _, hub := range hubs {
					if f.RemotePath == "" {
						d.claimPort(remoteNode, fk+".remote", hub, tunnel, f.Remote)
					}
				}
			}
		}
		out = append(out, f)
	}
	return out
}

// localForwards parses ssh -L style forwards: listen here, connect through
// the hub.
func (d *decoder) localForwards(n *yaml.Node, key string) []LocalForward {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, key, "must be a list (each item '- listen: 127.0.0.1:15432' with 'connect: db.internal:5432'), not %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		d.fail(n, key, "is empty: add a forward or remove the key")
		return nil
	}
	seen := map[string]int{}
	var out []LocalForward
	for i, fn := range n.Content {
		fk := fmt.Sprintf("%s[%d]", key, i)
		if isNull(fn) {
			d.fail(fn, fk, "empty list item: write '- listen: 127.0.0.1:15432' with 'connect: db.internal:5432' under it")
			continue
		}
		var listenNode, connectNode *yaml.Node
		d.mapping(fn, fk, map[string]func(*yaml.Node, string){
			"listen":  func(n *yaml.Node, key string) { listenNode = n },
			"connect": func(n *yaml.Node, key string) { connectNode = n },
		})
		if fn.Kind != yaml.MappingNode {
			continue
		}
		f := LocalForward{Line: fn.Line}
		f.Listen, f.ListenPath = d.endpointOrPath(fn, listenNode, fk+".listen", hintListen, false)
		f.Connect, f.ConnectPath = d.endpointOrPath(fn, connectNode, fk+".connect", hintConn, false)
		if l := f.ListenString(); listenNode != nil && (f.ListenPath != "" || f.Listen.Port != 0) {
			if prev, dup := seen[l]; dup {
				d.fail(listenNode, fk+".listen", "%s is already listened on at line %d: remove or change one", l, prev)
			} else {
				seen[l] = listenNode.Line
			}
		}
		out = append(out, f)
	}
	return out
}

// endpointOrPath parses a required forward side: host:port, or an absolute
// Unix socket path. Port 0 is allowed only where allowZero says.
func (d *decoder) endpointOrPath(parent, n *yaml.Node, key, hint string, allowZero bool) (Addr, string) {
	if n == nil {
		d.fail(parent, key, "missing: %s", hint)
		return Addr{}, ""
	}
	s, ok := d.str(n, key)
	if !ok {
		return Addr{}, ""
	}
	if strings.Contains(s, "/") {
		if err := checkSocketPath(s); err != nil {
			d.fail(n, key, "%v", err)
		}
		return Addr{}, s
	}
	a, err := ParseAddr(s, allowZero)
	if err != nil {
		d.fail(n, key, "%v", err)
	}
	return a, ""
}

// checkSocketPath accepts an absolute path that fits a Unix socket address.
func checkSocketPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q: a Unix socket path must be absolute (start with /); for host:port, write no /", p)
	case len(p) > maxSocketPath:
		return fmt.Errorf("%q is %d bytes: a Unix socket path can hold at most %d; use a shorter directory", p, len(p), maxSocketPath)
	case strings.ContainsAny(p, "\x00\n"):
		return fmt.Errorf("%q contains a NUL or newline byte", p)
	}
	return nil
}
