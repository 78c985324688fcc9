package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/health"
	"github.com/spf13/cobra"
)

func newStatusCmd(stdout io.Writer) *cobra.Command {
	var (
		path    string
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running daemon's tunnels, forwards, state, errors and bytes",
		Long: "status asks the running daemon over its metrics endpoint (metrics.listen in the config) " +
			"and prints one row per forward.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return &exitError{code: exitConfig, err: err}
			}
			if cfg.Metrics == nil {
				return &exitError{code: exitConfig, err: fmt.Errorf("%s has no metrics.listen: the daemon serves its state there (add metrics: {listen: 127.0.0.1:9810} and reload)", path)}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			tunnels, raw, err := fetchStatus(ctx, cfg.Metrics.Listen)
			if err != nil {
				return &exitError{code: exitFail, err: fmt.Errorf("cannot reach the daemon at %s: %v (is rtunnel up running?)", cfg.Metrics.Listen, err)}
			}
			if asJSON {
				_, err := stdout.Write(raw)
				return err
			}
			printStatus(stdout, tunnels, time.Now())
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", config.DefaultPath, "config file of the running daemon")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the daemon's JSON as it is")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the daemon")
	return cmd
}

func fetchStatus(ctx context.Context, listen string) ([]health.TunnelStatus, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+listen+"/status", nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	var ts []health.TunnelStatus
	if err := json.Unmarshal(raw, &ts); err != nil {
		return nil, nil, fmt.Errorf("bad status JSON: %v", err)
	}
	return ts, raw, nil
}

func printStatus(w io.Writer, ts []health.TunnelStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TUNNEL\tFORWARD\tSTATE\tSINCE\tIN\tOUT\tACTIVE\tNEXT RETRY\tLAST ERROR")
	for _, t := range ts {
		since := "-"
		if !t.Since.IsZero() {
			since = now.Sub(t.Since).Round(time.Second).String()
		}
		next := "-"
		if !t.NextRetry.IsZero() && t.NextRetry.After(now) {
			next = "in " + t.NextRetry.Sub(now).Round(time.Second).String()
		}
		lastErr := t.LastError
		if lastErr == "" {
			lastErr = "-"
		}
		if len(lastErr) > 100 {
			lastErr = lastErr[:97] + "..."
		}
		name := t.Name
		if t.Hub != "" {
			name += " via " + t.Hub // the hub in use (failover)
		}
		if len(t.Forwards) == 0 {
			fmt.Fprintf(tw, "%s\t-\t%s\t%s\t-\t-\t-\t%s\t%s\n", name, t.State, since, next, lastErr)
		}
		for _, f := range t.Forwards {
			state := t.State
			if t.State == health.StateUp && !f.Up {
				state = "forward down"
			}
			fname := f.Name
			if f.AllocatedPort != 0 {
				fname += fmt.Sprintf(" (port %d)", f.AllocatedPort) // the hub picked it: remote host:0
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", name, fname, state, since,
				bytesHuman(f.BytesIn), bytesHuman(f.BytesOut), f.Active, next, strings.ReplaceAll(lastErr, "\n", " "))
		}
	}
	tw.Flush()
}

func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
