package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/health"
	"github.com/spf13/cobra"
)

func newUpCmd(stderr io.Writer) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run every tunnel in the config until SIGTERM or SIGINT (SIGHUP reloads the config, SIGUSR1 reconnects now)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// SIGTERM and SIGINT are caught only once the files are read (see up).
			return up(ctx, path, stderr, relaySignal(ctx, syscall.SIGHUP), relaySignal(ctx, syscall.SIGUSR1))
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", config.DefaultPath, "config file")
	return cmd
}

// relaySignal delivers sig on the returned channel until ctx ends.
func relaySignal(ctx context.Context, sig os.Signal) <-chan struct{} {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, sig)
	out := make(chan struct{})
	go func() {
		defer signal.Stop(sigs)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigs:
				select {
				case out <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

func up(ctx context.Context, path string, stderr io.Writer, hup, usr1 <-chan struct{}) error {
	// One P unless the operator says otherwise: like OpenSSH's single
	// thread, it lets packets batch up between reads, which measured lower
	// CPU per GiB, higher throughput and lower latency (docs/PERFORMANCE.md).
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	// A file that cannot be read as a config refuses the whole start; a
	// tunnel whose key or known_hosts has a problem stops only that tunnel,
	// unless none is left to run.
	cfg, byTunnel, problems := loadTunnels(path)
	if cfg == nil {
		for _, p := range problems {
			fmt.Fprintln(stderr, p)
		}
		return &exitError{code: exitConfig, err: fmt.Errorf("not starting: %d problem(s) in %s (run rtunnel check --config %s)", problemCount(problems), path, path)}
	}
	if len(byTunnel) == len(cfg.Tunnels) {
		for _, p := range problems {
			fmt.Fprintln(stderr, p)
		}
		return &exitError{code: exitConfig, err: fmt.Errorf("not starting: no tunnel can run, %d problem(s) in %s (run rtunnel check --config %s)", problemCount(problems), path, path)}
	}
	// Until here SIGTERM and SIGINT kept their default action, ending the
	// process at once: a read that blocks (a known_hosts that is a FIFO, a
	// hung mount) cannot be cancelled, and a caught signal would wait for it.
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()
	out := newLogOutput(stderr)
	format, _, err := out.apply(cfg.Log)
	if err != nil {
		return &exitError{code: exitConfig, err: fmt.Errorf("%s: log: %v", path, err)}
	}
	log := out.logger()
	h := health.New(version)

	// Bind the metrics endpoint before anything runs: a taken port is an
	// error now, not a silent gap in monitoring later. (config.Parse has
	// already refused a non-loopback address without allow_remote.)
	var ln net.Listener
	if cfg.Metrics != nil {
		var err error
		ln, err = net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			return &exitError{code: exitFail, err: fmt.Errorf("metrics endpoint: %v", err)}
		}
	}
	// The GC goal follows the traffic (gcgoal.go) unless the operator set GOGC.
	gogc := os.Getenv("GOGC")
	if gogc == "" {
		gc := newGCGoal()
		gogc = "adaptive"
		gc.watch()
		defer gc.stop()
	}
	log.Info("starting", "version", version, "config", path, "tunnels", len(cfg.Tunnels),
		"gomaxprocs", runtime.GOMAXPROCS(0), "gogc", gogc, "log_format", format)
	h.ReloadResult(nil) // the load at start counts, as in Prometheus

	notifier := health.NewNotifier()
	notifier.Logger = log
	sup := newSupervisor(log, h, notifier, cfg)
	sup.applyLog = func(c config.Log) error {
		format, changed, err := out.apply(c)
		if changed {
			log.Info("log format changed", "log_format", format)
		}
		return err
	}

	bg, cancelBG := context.WithCancel(context.Background())
	controlDone := serveControl(bg, log, h, path)
	done := make(chan struct{}, 2)
	if ln != nil {
		log.Info("serving metrics", "listen", ln.Addr().String(), "paths", "/metrics /healthz /readyz /status")
		go func() {
			defer func() { done <- struct{}{} }()
			if err := h.ServeListener(bg, ln); err != nil {
				log.Error("metrics endpoint stopped", "err", err)
			}
		}()
	} else {
		done <- struct{}{}
	}
	go func() {
		defer func() { done <- struct{}{} }()
		// A supervisor loop that does not answer stops the pings.
		if err := notifier.RunWatchdog(bg, sup.answers); err != nil {
			log.Warn("systemd watchdog disabled", "err", err)
		}
	}()

	err = sup.run(ctx, byTunnel, hup, usr1, func() (*config.Config, map[string]error, error) {
		next, byTunnel, problems := loadTunnels(path)
		if next == nil {
			return nil, nil, errors.Join(problems...)
		}
		return next, byTunnel, nil
	})
	cancelBG()
	<-done
	<-done
	<-controlDone
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
