package main

import (
	"testing"

	"github.com/rtunnel/rtunnel/config"
)

// The YAML key reads "poke on" and tunnel.Config's zero value is "poke on":
// the wiring must invert it, in both directions.
func TestTunnelConfigStaleSessionPoke(t *testing.T) {
	for _, poke := range []bool{true, false} {
		tc := tunnelConfig(&config.Config{}, config.Tunnel{Name: "hub", StaleSessionPoke: poke}, nil, nil)
		if tc.DisableStalePoke == poke {
			t.Errorf("stale_session_poke: %v gave DisableStalePoke %v", poke, tc.DisableStalePoke)
		}
	}
}
