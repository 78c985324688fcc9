package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/reconnect"
	"github.com/rtunnel/rtunnel/tunnel"
	"github.com/spf13/cobra"
)

func newUpCmd(stderr io.Writer) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run every tunnel in the config until SIGTERM or SIGINT",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return up(ctx, path, stderr)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", config.DefaultPath, "config file")
	return cmd
}

func up(ctx context.Context, path string, stderr io.Writer) error {
	cfg, problems := loadAndCheck(path)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, p)
		}
		return &exitError{code: exitConfig, err: fmt.Errorf("not starting: %d problem(s) in %s (run rtunnel check --config %s)", len(problems), path, path)}
	}
	log := newLogger(stderr, cfg.Log)
	log.Info("starting", "version", version, "config", path, "tunnels", len(cfg.Tunnels))

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		permanent int
	)
	for _, tc := range cfg.Tunnels {
		tlog := log.With("tunnel", tc.Name, "server", tc.Server.String())
		t := tunnel.New(tunnelConfig(cfg, tc, log, nil))
		loop := &reconnect.Loop{
			Policy:      reconnectPolicy(tc),
			Session:     t.Session,
			IsPermanent: tunnel.Permanent,
			IsFast:      tunnel.FastRetry,
			OnRetry: func(attempt int, err error, wait time.Duration) {
				retryLog(tlog, attempt, err, wait)
			},
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := loop.Run(ctx)
			var pe *reconnect.PermanentError
			if errors.As(err, &pe) {
				tlog.Error("tunnel stopped: this needs an operator, retrying cannot help", "err", pe.Err.Error())
				mu.Lock()
				permanent++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() == nil && permanent > 0 {
		return &exitError{code: exitConfig, err: fmt.Errorf("every tunnel stopped on a permanent error (see the log above); exiting with status %d", exitConfig)}
	}
	log.Info("stopped")
	_ = os.Stderr.Sync()
	return nil
}

var _ = slog.LevelInfo
