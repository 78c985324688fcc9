// Package sshdtest starts real OpenSSH sshd servers for tests: each from a
// generated sshd_config in t.TempDir(), on a free loopback port (or inside a
// network namespace), with its log shown only when the test fails. It also
// generates keys with ssh-keygen and builds commands for the real ssh client.
//
// It is a test-only helper: production packages must not import it, and it
// imports the standard library only.
package sshdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireEnv turns every skip of Require and RequireTools into a failure, so
// CI cannot pass by silently skipping the real-sshd tests.
const requireEnv = "RTUNNEL_REQUIRE_SSHD"

// Require skips the test when sshd, ssh or ssh-keygen are missing or the test
// does not run as root; with RTUNNEL_REQUIRE_SSHD=1 it fails the test instead.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"sshd", "ssh", "ssh-keygen"} {
		if _, err := lookTool(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	var reasons []string
	if len(missing) > 0 {
		reasons = append(reasons, "missing tools: "+strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		// sshd must run as root to switch to the logged-in user and to use /run/sshd.
		reasons = append(reasons, fmt.Sprintf("not running as root (euid %d)", os.Geteuid()))
	}
	if len(reasons) > 0 {
		skipOrFail(t, "real OpenSSH sshd test needs "+strings.Join(reasons, "; "))
	}
}

// RequireTools skips the test when any of tools is not installed; with
// RTUNNEL_REQUIRE_SSHD=1 it fails the test instead.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := lookTool(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		skipOrFail(t, "test needs missing tools: "+strings.Join(missing, ", "))
	}
}

func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (%s=1, so this is a failure, not a skip)", msg, requireEnv)
	}
	t.Skipf("%s (set %s=1 to fail instead of skipping)", msg, requireEnv)
}

// lookTool finds a binary in PATH or, because a non-login PATH often lacks
// them, in the usual sbin directories. The result is absolute: sshd refuses
// to re-exec itself from a relative path.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH or sbin directories", name)
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
// Another process may take it before the caller binds it; Start retries.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshdtest: find free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatalf("sshdtest: find free port: %v", err)
	}
	return port
}
