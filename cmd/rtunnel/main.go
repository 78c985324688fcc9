// Command rtunnel keeps reverse SSH tunnels up: the autossh + ssh -R pair in
// one process. This package holds flags, signals and wiring only; the work
// is in config, tunnel, reconnect and health.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit statuses. 78 is EX_CONFIG: the unit's RestartPreventExitStatus=78
// keeps systemd from restarting into the same error.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 78
)

// version is set with -ldflags "-X main.version=..." from git describe.
var version = "dev"

// exitError carries an exit status out of a cobra command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "rtunnel:", ee.err)
		}
		return ee.code
	}
	// Flag and usage errors: bad input, like a bad config.
	fmt.Fprintln(stderr, "rtunnel:", err)
	fmt.Fprintln(stderr, "Run 'rtunnel --help' for usage.")
	return exitConfig
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "rtunnel",
		Short:         "Keep reverse SSH tunnels up (a replacement for autossh + ssh -R)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newUpCmd(stderr), newCheckCmd(stdout), newStatusCmd(stdout), newVersionCmd(stdout),
		newAuthorizedKeyCmd(stdout), newSSHConfigCmd(stdout), newImportAutosshCmd(stdout), newFleetTargetsCmd(stdout))
	return root
}
