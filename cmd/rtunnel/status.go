package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/health"
	"github.com/spf13/cobra"
)

// exitNoPerm (EX_NOPERM) is `status` run by a user who may not open the
// control socket: neither transient nor a config problem.
const exitNoPerm = 77

// statusSource says where a report came from, for the lines above the table.
type statusSource struct {
	socket  string // the control socket asked, or that failed
	address string // set when the report is the public HTTP view
	why     error  // why the control socket was not used
}

func newStatusCmd(stdout io.Writer) *cobra.Command {
	var (
		socket, instance, address, path string
		asJSON                          bool
		timeout                         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running daemon's tunnels, forwards, state, errors and bytes",
		Long: "status asks the running daemon over its control socket ($RUNTIME_DIRECTORY/control.sock, " +
			defaultRuntimeDir + "/" + controlSocketName + " by default; root and group " + health.ControlGroup + " only), " +
			"which needs no config file, and prints one row per forward with the last error. " +
			"If no daemon answers there, it falls back to the public view of the config's metrics.listen " +
			"(states and counters, no error texts). --address asks that public view directly.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if instance != "" {
				if socket == "" {
					socket = instanceSocket(instance)
				}
				if !cmd.Flags().Changed("config") {
					path = filepath.Join(filepath.Dir(config.DefaultPath), instance+".yaml")
				}
			}
			if socket == "" {
				socket = controlSocketPath()
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			rep, raw, src, err := findDaemon(ctx, socket, address, path)
			if err != nil {
				return err
			}
			if asJSON {
				_, err := stdout.Write(raw)
				return err
			}
			printReport(stdout, rep, src, time.Now())
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "control socket of the running daemon (default $RUNTIME_DIRECTORY/control.sock or "+defaultRuntimeDir+"/"+controlSocketName+")")
	cmd.Flags().StringVar(&instance, "instance", "", "the daemon of the template unit rtunnel@NAME: its socket "+instanceSocket("NAME")+" and config /etc/rtunnel/NAME.yaml")
	cmd.Flags().StringVar(&address, "address", "", "ask the public HTTP view at HOST:PORT (metrics.listen) instead of the control socket")
	cmd.Flags().StringVarP(&path, "config", "c", config.DefaultPath, "config whose metrics.listen is asked when no daemon answers on the control socket")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the daemon's JSON as it is")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the daemon")
	return cmd
}

// findDaemon asks the control socket, and when no daemon answers there,
// the public HTTP view of the config's metrics.listen. address, when set,
// asks the HTTP view only.
func findDaemon(ctx context.Context, socket, address, configPath string) (health.Report, []byte, statusSource, error) {
	if address != "" {
		rep, raw, err := fetchReport(ctx, httpClient(nil), "http://"+address+"/status")
		if err != nil {
			return rep, nil, statusSource{}, &exitError{code: exitFail, err: fmt.Errorf("cannot reach the daemon at %s: %v (is rtunnel up running with metrics.listen %s?)", address, err, address)}
		}
		return rep, raw, statusSource{address: address}, nil
	}
	rep, raw, err := fetchReport(ctx, httpClient(unixDialer(socket)), "http://rtunnel/status")
	if err == nil {
		return rep, raw, statusSource{socket: socket}, nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return rep, nil, statusSource{}, &exitError{code: exitNoPerm, err: fmt.Errorf(
			"cannot open the control socket %s: permission denied: run as root or as a member of group %s (sudo rtunnel status); "+
				"any user can read the public view without error texts: rtunnel status --address METRICS_LISTEN", socket, health.ControlGroup)}
	}
	src := statusSource{socket: socket, why: err}
	// No daemon on the socket: an older rtunnel, or one run without a runtime directory.
	if cfg, cerr := config.Load(configPath); cerr == nil && cfg.Metrics != nil {
		rep, raw, herr := fetchReport(ctx, httpClient(nil), "http://"+cfg.Metrics.Listen+"/status")
		if herr == nil {
			src.address = cfg.Metrics.Listen
			return rep, raw, src, nil
		}
		err = fmt.Errorf("%v; and the metrics endpoint %s of %s: %v", err, cfg.Metrics.Listen, configPath, herr)
	}
	return rep, nil, statusSource{}, &exitError{code: exitFail, err: fmt.Errorf(
		"no rtunnel daemon answers on %s: %v. Is rtunnel up running? For rtunnel@NAME: rtunnel status --instance NAME; "+
			"else name the daemon with --socket PATH or --address METRICS_LISTEN", socket, err)}
}

func unixDialer(path string) func(ctx context.Context, _, _ string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
}

// httpClient asks one daemon once. No proxy: HTTP_PROXY from the
// environment would otherwise catch a request to 127.0.0.1 (only
// "localhost" is exempt) and carry it off the machine.
func httpClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: dial, Proxy: nil}
	return &http.Client{Transport: tr}
}

func fetchReport(ctx context.Context, client *http.Client, url string) (health.Report, []byte, error) {
	var rep health.Report
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return rep, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) { // *url.Error: its text repeats the URL
			err = ue.Unwrap()
		}
		return rep, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return rep, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return rep, nil, fmt.Errorf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return rep, nil, fmt.Errorf("bad status JSON (an rtunnel older than this command?): %v", err)
	}
	return rep, raw, nil
}

// printReport prints where the report came from, the last reload, and one
// row per forward.
func printReport(w io.Writer, rep health.Report, src statusSource, now time.Time) {
	if rep.Detailed {
		fmt.Fprintf(w, "rtunnel %s (pid %d) running %s", rep.Version, rep.PID, rep.Config)
		if !rep.Started.IsZero() {
			fmt.Fprintf(w, " since %s (%s ago)", rep.Started.Local().Format(time.DateTime), ago(now, rep.Started))
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "public view from http://%s/status: no error texts", src.address)
		if src.why != nil {
			fmt.Fprintf(w, " (control socket %s: %v)", src.socket, src.why)
		}
		fmt.Fprintln(w)
	}
	if r := rep.LastReload; r != nil {
		when := fmt.Sprintf("%s (%s ago)", r.At.Local().Format(time.DateTime), ago(now, r.At))
		if r.OK {
			fmt.Fprintf(w, "config last loaded %s: applied\n", when)
		} else {
			fmt.Fprintf(w, "last reload %s: REFUSED, the tunnels below still run the previous config; the file on disk has problems:\n  %s\n",
				when, strings.ReplaceAll(strings.TrimSpace(r.Error), "\n", "\n  "))
		}
	}
	printStatus(w, rep.Tunnels, rep.Detailed, now)
}

// printStatus prints one row per forward; the LAST ERROR column only for
// the detailed view, where "-" means there was none.
func printStatus(w io.Writer, ts []health.TunnelStatus, detailed bool, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "TUNNEL\tFORWARD\tSTATE\tSINCE\tIN\tOUT\tACTIVE\tNEXT RETRY"
	if detailed {
		header += "\tLAST ERROR"
	}
	fmt.Fprintln(tw, header)
	for _, t := range ts {
		since := "-"
		if !t.Since.IsZero() {
			since = ago(now, t.Since)
		}
		next := "-"
		if !t.NextRetry.IsZero() && t.NextRetry.After(now) {
			next = "in " + t.NextRetry.Sub(now).Round(time.Second).String()
		}
		lastErr := ""
		if detailed {
			lastErr = "\t" + lastError(t, now)
		}
		name := t.Name
		if t.Hub != "" {
			name += " via " + t.Hub // the hub in use (failover)
		}
		if len(t.Forwards) == 0 {
			fmt.Fprintf(tw, "%s\t-\t%s\t%s\t-\t-\t-\t%s%s\n", name, t.State, since, next, lastErr)
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
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s%s\n", name, fname, state, since,
				bytesHuman(f.BytesIn), bytesHuman(f.BytesOut), f.Active, next, lastErr)
		}
	}
	tw.Flush()
}

// lastError is the LAST ERROR cell: how long ago, whether the tunnel has
// come up since (an old error must not read as the current state), and
// the error on one line.
func lastError(t health.TunnelStatus, now time.Time) string {
	if t.LastError == "" {
		return "-"
	}
	msg := strings.Join(strings.Fields(t.LastError), " ")
	if len(msg) > 160 {
		msg = msg[:157] + "..."
	}
	if t.LastErrorAt.IsZero() {
		return msg
	}
	when := ago(now, t.LastErrorAt) + " ago"
	if t.State == health.StateUp && !t.Since.Before(t.LastErrorAt) {
		when += ", recovered since"
	}
	return when + ": " + msg
}

func ago(now, t time.Time) string {
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String()
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
