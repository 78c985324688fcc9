package config

import (
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
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
