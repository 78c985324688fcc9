package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"slices"
	"syscall"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/tunnel"
)

// runCheckConnect is `rtunnel check --connect` after the offline checks
// passed. A failed step exits as `rtunnel up` would treat its error: 78
// when retrying cannot help (tunnel.Permanent: a changed or revoked host
// key, a key or known_hosts file rtunnel cannot use, ...), else 1, since
// the network or a hub may be briefly down and a unit must not treat that
// as a broken config.
func runCheckConnect(cfg *config.Config, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	failures := checkConnect(ctx, cfg, stdout)
	if len(failures) == 0 {
		return nil
	}
	if slices.ContainsFunc(failures, tunnel.Permanent) {
		return &exitError{code: exitConfig, err: fmt.Errorf("a connect step failed for a reason that retrying cannot fix (see above); "+
			"rtunnel up would stop that tunnel, so this exits %d", exitConfig)}
	}
	return &exitError{code: exitFail, err: fmt.Errorf("a connect step failed (see above); it may be transient, so this exits %d, not %d", exitFail, exitConfig)}
}

// checkConnect probes every tunnel of cfg step by step and prints a verdict
// per step, with the fix for each failure. It returns the failed steps'
// errors.
func checkConnect(ctx context.Context, cfg *config.Config, stdout io.Writer) []error {
	steps := 0
	var failures []error
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
				failures = append(failures, s.Err)
			}
			fmt.Fprintf(stdout, "  %s  %s: %s\n", verdict, s.Name, s.Detail)
			if fix := stepFix(s); !s.OK && fix != "" {
				fmt.Fprintf(stdout, "        fix: %s\n", fix)
			}
		})
	}
	if len(failures) == 0 {
		fmt.Fprintf(stdout, "connect: all %d steps passed\n", steps)
		return nil
	}
	fmt.Fprintf(stdout, "connect: %d of %d steps failed\n", len(failures), steps)
	return failures
}
