package config

import (
	"net"

	"go.yaml.in/yaml/v3"
)

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
