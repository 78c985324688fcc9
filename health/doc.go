// Package health owns rtunnel's observability surface: its Prometheus
// metrics (rtunnel_*, and the go_* and process_* series, written in the text
// exposition format by this package), the per-tunnel state behind the
// public HTTP endpoints /healthz, /readyz and /status (names, states and
// counters, for any local user) and behind the control socket (the same
// with error texts, for root and group rtunnel), and the systemd notify
// protocol (READY, STATUS, RELOADING, STOPPING and watchdog pings).
//
// It learns about tunnels only through the observer methods on [Health],
// which cmd/rtunnel wires to the tunnel and reconnect packages. It must
// not import any rtunnel package (tunnel, reconnect, config, cmd): only
// the standard library and go-systemd. An import-rule test
// enforces this.
package health
