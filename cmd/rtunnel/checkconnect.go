package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/tunnel"
)

// runCheckConnect is `rtunnel check --connect` after the offline checks
// passed. A failed step exits 1, not 78: the network or a hub may be
// briefly down, and a unit must not treat that as a broken config.
func runCheckConnect(cfg *config.Config, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if checkConnect(ctx, cfg, stdout) {
		return nil
	}
	return &exitError{code: exitFail, err: fmt.Errorf("a connect step failed (see above); it may be transient, so this exits %d, not %d", exitFail, exitConfig)}
}

// checkConnect probes every tunnel of cfg step by step and prints a verdict
// per step, with the fix for each failure. It returns true if every step
// passed.
func checkConnect(ctx context.Context, cfg *config.Config, stdout io.Writer) bool {
	steps, failed := 0, 0
	for _, t := range cfg.Tunnels {
		tc := tunnelConfig(cfg, t, nil, nil)
		via := ""
		if len(t.Jump) > 0 {
			via = " via " + hopsString(t.Jump)
		}
		fmt.Fprintf(stdout, "tunnel %s: %s%s\n", t.Name, t.Server, via)
		tunnel.Probe(ctx, tc, func(s tunnel.Step) {
			steps++
			verdict := "ok  "
			if !s.OK {
				verdict = "FAIL"
				failed++
			}
			fmt.Fprintf(stdout, "  %s  %s: %s\n", verdict, s.Name, s.Detail)
			if !s.OK && s.Fix != "" {
				fmt.Fprintf(stdout, "        fix: %s\n", s.Fix)
			}
		})
	}
	if failed == 0 {
		fmt.Fprintf(stdout, "connect: all %d steps passed\n", steps)
		return true
	}
	fmt.Fprintf(stdout, "connect: %d of %d steps failed\n", failed, steps)
	return false
}
