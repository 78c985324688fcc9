package config

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// algorithm records a ciphers/kex_algorithms/macs/host_key_algorithms
// spec. Only the syntax is checked here: which names exist is x/crypto's
// business, and config does not import it (cmd checks them with file:line).
func (d *decoder) algorithm(t *Tunnel, n *yaml.Node, key string) {
	s, ok := d.str(n, key)
	if !ok {
		return
	}
	body := strings.TrimLeft(s, "+-^")
	if len(s)-len(body) > 1 || body == "" || strings.ContainsAny(body, " \t") || strings.Contains(","+body+",", ",,") {
		d.fail(n, key, "%q: write a comma-separated list without spaces, optionally after one +, - or ^ (OpenSSH syntax), e.g. +aes128-cbc", s)
		return
	}
	t.Algorithms = append(t.Algorithms, AlgorithmSpec{Key: key[strings.LastIndex(key, ".")+1:], Spec: s, Line: n.Line})
}
