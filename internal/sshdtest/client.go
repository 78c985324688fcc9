package sshdtest

import (
	"context"
	"os/exec"
	"strings"
	"time"
)

// SSHCommand builds a command for the real OpenSSH client that reads no user
// or system configuration, never prompts, trusts only knownHosts and offers
// only key:
//
//	ssh -F /dev/null -o BatchMode=yes -o UserKnownHostsFile=KH
//	    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes
//	    -o IdentitiesOnly=yes -o ConnectTimeout=10 -i KEY ARGS...
//
// ctx kills ssh; WaitDelay stops Wait from hanging on a pipe that a forwarded
// process still holds.
func SSHCommand(ctx context.Context, key Key, knownHosts string, args ...string) *exec.Cmd {
	path, err := lookTool("ssh")
	if err != nil {
		path = "ssh" // exec reports the missing binary at Start
	}
	base := []string{
		"-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + quoteOption(knownHosts),
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "ConnectTimeout=10",
		"-i", key.Private,
	}
	cmd := exec.CommandContext(ctx, path, append(base, args...)...)
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// quoteOption quotes a path with spaces for ssh's -o parser, which splits
// values on whitespace.
func quoteOption(s string) string {
	if strings.ContainsAny(s, " \t") {
		return `"` + s + `"`
	}
	return s
}
