package main

import (
	"errors"
	"fmt"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/tunnel"
)

// loadTunnels reads the config for `up` and a reload. A file that cannot
// be used at all (syntax, schema, algorithm names) returns a nil config and
// its problems. Otherwise byTunnel holds the tunnels that cannot run with
// their files, and problems every problem, as `check` lists them.
func loadTunnels(path string) (cfg *config.Config, byTunnel map[string]error, problems []error) {
	cfg, problems = loadAndCheck(path)
	if cfg == nil {
		return nil, nil, problems
	}
	if errs := algorithmProblems(cfg); len(errs) > 0 {
		return nil, nil, errs
	}
	return cfg, tunnelProblems(cfg), problems
}

// algorithmProblems lists the algorithm specs (ciphers, kex, MACs, host
// key algorithms) that name nothing x/crypto knows. They are mistakes in
// the file, like a schema error: they refuse the whole file.
func algorithmProblems(cfg *config.Config) []error {
	var out []error
	for _, t := range cfg.Tunnels {
		_, errs := tunnelAlgorithms(cfg, t)
		out = append(out, errs...)
	}
	return out
}

// tunnelProblems checks each tunnel's key, certificate and known_hosts
// files (tunnel.Check) and returns, by tunnel name, every problem of the
// tunnels that cannot run, each naming the config file and line. `up` and a
// reload stop only those tunnels; `check` reports them all.
func tunnelProblems(cfg *config.Config) map[string]error {
	out := map[string]error{}
	for _, t := range cfg.Tunnels {
		var errs []error
		for _, err := range tunnel.Check(tunnelConfig(cfg, t, nil, nil)) {
			errs = append(errs, fmt.Errorf("%s:%d: tunnel %s: %w", cfg.Path, t.Line, t.Name, err))
		}
		if len(errs) > 0 {
			out[t.Name] = errors.Join(errs...)
		}
	}
	return out
}
