package main

import (
	"errors"
	"fmt"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/tunnel"
)

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
