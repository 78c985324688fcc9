package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"go.yaml.in/yaml/v3"
)

// every problem found, not just the first.
func Parse(file string, data []byte) (*Config, error) {
	dir := filepath.Dir(file)
	if abs, err := filepath.Abs(file); err == nil {
		dir = filepath.Dir(abs)
	}
	d := &decoder{file: file, dir: dir, hubPorts: map[hubPort]portClaim{}}
	cfg := &Config{Path: file, Log: Log{Level: "info", Format: "auto"}, ShutdownGrace: DefaultShutdownGrace}

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
					cfg.Log.Format = d.oneOf(n, key, "auto", "text", "json", "journal")
				},
			})
		},
		"shutdown_grace": func(n *yaml.Node, key string) { cfg.ShutdownGrace = d.duration(n, key, "shutdown_grace") },
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
		"tunnels":    func(n *yaml.Node, key string) { tunnelsNode = n },
		"ssh_config": func(n *yaml.Node, key string) { d.sshConfig = d.requiredPath(root, n, key, hintSSHConfig) },
	})
	if tunnelsNode != nil {
		cfg.Tunnels = d.tunnels(tunnelsNode)
	} else {
		d.fail(root, "tunnels", "missing: at least one tunnel is needed")
	}
	if len(d.errs) > 0 {
		// Walk order puts a tunnel's missing keys after its nested problems; people read top down.
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		if d.more != nil {
			d.more.Msg = fmt.Sprintf("... and %d more problems, the first of them on this line", d.more.More)
			d.errs = append(d.errs, d.more)
		}
		return nil, d.errs
	}
	return cfg, nil
}
