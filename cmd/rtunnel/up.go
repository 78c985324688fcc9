package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

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

// checked loads the config and checks its key and known_hosts files; any
// problem is one error listing them all.
func checked(path string) (*config.Config, error) {
	cfg, problems := loadAndCheck(path)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return cfg, nil
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
	cfg, problems := loadAndCheck(path)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, p)
		}
		return &exitError{code: exitConfig, err: fmt.Errorf("not starting: %d problem(s) in %s (run rtunnel check --config %s)", problemCount(problems), path, path)}
	}
	// Until here SIGTERM and SIGINT kept their default action, ending the
	// process at once: a read that blocks (a known_hosts that is a FIFO, a
	// hung mount) cannot be cancelled, and a caught signal would wait for it.
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()
	level := new(slog.LevelVar)
	log := newLogger(stderr, cfg.Log, level)
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
	var gc *gcGoal
	gogc := os.Getenv("GOGC")
	if gogc == "" {
		gc, gogc = newGCGoal(), "adaptive"
		gc.watch()
		defer gc.stop()
	}
	log.Info("starting", "version", version, "config", path, "tunnels", len(cfg.Tunnels),
		"gomaxprocs", runtime.GOMAXPROCS(0), "gogc", gogc)

	notifier := health.NewNotifier()
	notifier.Logger = log
	sup := newSupervisor(log, h, notifier, cfg)
	sup.gc = gc

	bg, cancelBG := context.WithCancel(context.Background())
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
		// The supervisor beats every second; a stuck one stops the pings.
		if err := notifier.RunWatchdog(bg, func() bool { return sup.beat.Fresh(5 * time.Second) }); err != nil {
			log.Warn("systemd watchdog disabled", "err", err)
		}
	}()

	err := sup.run(ctx, hup, usr1, func() (*config.Config, error) {
		next, err := checked(path)
		if err == nil {
			level.Set(logLevel(next.Log.Level))
		}
		return next, err
	})
	cancelBG()
	<-done
	<-done
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
