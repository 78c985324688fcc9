package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rtunnel/rtunnel/health"
)

// defaultRuntimeDir is the unit's RuntimeDirectory=rtunnel; the template
// unit rtunnel@NAME uses RuntimeDirectory=rtunnel-NAME (see instanceSocket),
// beside it rather than inside: systemd removes a unit's runtime directory
// with everything in it when the unit stops, and stopping rtunnel.service
// must not take the instances' sockets and ports files with it.
const defaultRuntimeDir = "/run/rtunnel"

const controlSocketName = "control.sock"

// controlSocketPath is where `rtunnel up` puts its control socket: in the
// first directory of $RUNTIME_DIRECTORY (set by systemd from the unit's
// RuntimeDirectory=), else in /run/rtunnel.
func controlSocketPath() string {
	dir := runtimeDir()
	if dir == "" {
		dir = defaultRuntimeDir
	}
	return filepath.Join(dir, controlSocketName)
}

// instanceSocket is the control socket of the template unit rtunnel@NAME,
// whose RuntimeDirectory is rtunnel-NAME.
func instanceSocket(name string) string {
	return filepath.Join(defaultRuntimeDir+"-"+name, controlSocketName)
}

// serveControl opens the control socket and serves the detailed state on
// it until ctx ends; the returned channel is closed once it has stopped. A
// socket that cannot be opened only costs the detailed view, so it is
// logged and the tunnels run anyway.
func serveControl(ctx context.Context, log *slog.Logger, h *health.Health, configPath string) <-chan struct{} {
	done := make(chan struct{})
	path := controlSocketPath()
	cs, err := health.ListenControl(path)
	if err != nil {
		log.Warn("no control socket: `rtunnel status` can show only the public view (rtunnel status --address METRICS_LISTEN); "+
			"under systemd the unit's RuntimeDirectory= provides the directory", "err", err.Error())
		close(done)
		return done
	}
	log.Info("serving the detailed status", "socket", path)
	if abs, err := filepath.Abs(configPath); err == nil {
		configPath = abs
	}
	info := health.ControlInfo{Version: version, PID: os.Getpid(), Config: configPath, Started: time.Now().Round(0)}
	go func() {
		defer close(done)
		if err := h.ServeControl(ctx, cs, info); err != nil {
			log.Error("control socket stopped; `rtunnel status` falls back to the public view", "err", err.Error())
		}
	}()
	return done
}
