package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/tunnel"
	"github.com/spf13/cobra"
)

func newCheckCmd(stdout io.Writer) *cobra.Command {
	var path string
	var connect bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the config, key files and known_hosts entries without connecting",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, problems := loadAndCheck(path)
			if cfg != nil {
				printResolved(stdout, cfg)
			}
			if len(problems) == 0 {
				fmt.Fprintln(stdout, "ok")
				if connect {
					return runCheckConnect(cfg, stdout)
				}
				return nil
			}
			for _, p := range problems {
				fmt.Fprintln(stdout, p)
			}
			return &exitError{code: exitConfig, err: fmt.Errorf("%d problem(s) in %s", problemCount(problems), path)}
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", config.DefaultPath, "config file")
	cmd.Flags().BoolVar(&connect, "connect", false, "also connect: each hop, host key, auth, each forward (requested, then cancelled), each local target; exit 78 if a step fails for good (as rtunnel up would stop), 1 if it may be transient")
	return cmd
}

// loadAndCheck loads the config and checks every key and known_hosts file
// it names. It returns every problem, each naming its file.
func loadAndCheck(path string) (*config.Config, []error) {
	cfg, err := config.Load(path)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			out := make([]error, len(errs))
			for i, e := range errs {
				out[i] = e
			}
			return nil, out
		}
		return nil, []error{err}
	}
	var problems []error
	for _, t := range cfg.Tunnels {
		_, errs := tunnelAlgorithms(cfg, t)
		problems = append(problems, errs...)
		for _, err := range tunnel.Check(tunnelConfig(cfg, t, nil, nil)) {
			problems = append(problems, fmt.Errorf("%s:%d: tunnel %s: %w", cfg.Path, t.Line, t.Name, err))
		}
		// Every other hub of a list needs its own known_hosts entry.
		for i := 1; i < len(t.Hubs); i++ {
			for _, err := range tunnel.Check(tunnelConfig(cfg, hubSpec(t, t.Hubs[i]), nil, nil)) {
				problems = append(problems, fmt.Errorf("%s:%d: tunnel %s, hub %s: %w", cfg.Path, t.Hubs[i].Line, t.Name, hubName(t.Hubs[i]), err))
			}
		}
	}
	return cfg, capProblems(cfg.Path, problems)
}

// capProblems lists at most config.MaxErrors problems and counts the rest,
// as config.Load does within the file: a hundred tunnels sharing one broken
// known_hosts need one fix, not a hundred lines.
func capProblems(file string, problems []error) []error {
	if len(problems) <= config.MaxErrors {
		return problems
	}
	more := len(problems) - config.MaxErrors
	return append(problems[:config.MaxErrors:config.MaxErrors],
		&config.Error{File: file, More: more, Msg: fmt.Sprintf("... and %d more problems", more)})
}

// problemCount is the number of problems found, listed or not.
func problemCount(problems []error) int {
	n := len(problems)
	var last *config.Error
	if n > 0 && errors.As(problems[n-1], &last) && last.More > 0 {
		n += last.More - 1
	}
	return n
}

// printResolved shows what each ssh_config alias resolved to, and where
// each value came from, as ssh -G would show the alias.
func printResolved(w io.Writer, cfg *config.Config) {
	for _, t := range cfg.Tunnels {
		if t.SSHConfig == nil {
			continue
		}
		fmt.Fprintf(w, "tunnel %s: server %s resolved through %s:\n", t.Name, t.SSHConfig.Alias, t.SSHConfig.Path)
		for _, r := range t.SSHConfig.Resolved {
			fmt.Fprintf(w, "  %-24s %-40s %s\n", r.Key+":", r.Value, r.From)
		}
	}
}
