package systemdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// container is one booted systemd-nspawn container. Commands run in it by
// nsenter into the namespaces of its PID 1: with --register=no there is no
// machined, so `systemd-run -M` and `machinectl shell` cannot reach it.
type container struct {
	root   string    // the container's / as the host reaches it (/proc/PID/root)
	nspawn *exec.Cmd // systemd-nspawn itself
	exited chan struct{}
	pid1   int    // the container's PID 1 (systemd) as the host sees it
	log    string // systemd-nspawn's output: the container's console
}

// bootContainer boots the cached root under an overlay, so the cache stays
// pristine and nothing is copied. prepare writes files into the overlay's
// upper layer before boot. The overlay is mounted in a mount namespace of
// its own that only systemd-nspawn lives in: when nspawn ends, however it
// ends, the mount goes with it and the host keeps nothing mounted. nspawn
// gets SIGTERM (a clean power-off) if the test process dies first.
func bootContainer(t *testing.T, cachedRoot string, prepare func(upper string)) *container {
	t.Helper()
	work := t.TempDir()
	c := &container{exited: make(chan struct{}), log: filepath.Join(work, "console.log")}
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	prepare(filepath.Join(work, "upper"))

	console, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	opts := "lowerdir=" + cachedRoot + ",upperdir=" + filepath.Join(work, "upper") + ",workdir=" + filepath.Join(work, "work")
	// --keep-unit with --register=no: this host has no systemd and no bus,
	// so nspawn must neither register with machined nor ask for a scope.
	c.nspawn = exec.Command("unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount -t overlay overlay -o "$1" "$2" && exec systemd-nspawn --quiet -D "$2" -b \
			--register=no --keep-unit --private-network --console=pipe --machine=rtunnel-systemd-test`,
		"sh", opts, filepath.Join(work, "merged"))
	c.nspawn.Stdout = console
	c.nspawn.Stderr = console
	// Its own process group, so a ^C at the terminal reaches only the test
	// binary; when that dies, Pdeathsig asks nspawn for a clean power-off.
	c.nspawn.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := c.nspawn.Start(); err != nil {
		console.Close()
		t.Fatalf("systemd-nspawn: %v", err)
	}
	go func() {
		c.nspawn.Wait()
		console.Close()
		close(c.exited)
	}()
	t.Cleanup(func() { c.powerOff(t) })
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpOnFailure(t)
		}
	})

	c.pid1 = c.findPID1(t)
	c.root = fmt.Sprintf("/proc/%d/root", c.pid1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// is-system-running --wait may start before systemd's socket exists.
	for {
		out, _ := c.exec(ctx, "systemctl is-system-running --wait")
		state := strings.TrimSpace(out)
		if state == "running" {
			return c
		}
		if state == "degraded" {
			failed, _ := c.exec(ctx, "systemctl --failed --no-legend")
			t.Fatalf("container booted degraded; failed units:\n%s", failed)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("container did not finish booting in 90s (last state %q)", state)
		case <-c.exited:
			t.Fatalf("systemd-nspawn exited during boot: %v", c.nspawn.ProcessState)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// findPID1 finds the child of systemd-nspawn that is PID 1 in its own PID
// namespace (NSpid: <host pid> 1).
func (c *container) findPID1(t *testing.T) int {
	t.Helper()
	nspawn := c.nspawn.Process.Pid
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nspawn, nspawn))
		for _, f := range strings.Fields(string(kids)) {
			status, err := os.ReadFile("/proc/" + f + "/status")
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(status), "\n") {
				ids := strings.Fields(strings.TrimPrefix(line, "NSpid:"))
				if strings.HasPrefix(line, "NSpid:") && len(ids) == 2 && ids[1] == "1" {
					pid, _ := strconv.Atoi(ids[0])
					return pid
				}
			}
		}
		select {
		case <-c.exited:
			t.Fatalf("systemd-nspawn exited before its container started: %v", c.nspawn.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("no PID 1 of the container among systemd-nspawn's children after 30s")
	return 0
}

// exec runs a shell script inside the container as root with a clean
// environment, returning stdout+stderr and the error (an *exec.ExitError
// for a non-zero exit status).
func (c *container) exec(ctx context.Context, script string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(c.pid1),
		"-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--",
		"/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root",
		"SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "/bin/sh", "-c", script)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.String(), err
}

// sh runs script in the container and fails the test when it exits non-zero
// or takes longer than a minute.
func (c *container) sh(t *testing.T, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.exec(ctx, script)
	if err != nil {
		t.Fatalf("in the container: %s\n-> %v\n%s", script, err, out)
	}
	return out
}

// exitStatus is the exit status of a finished command: 0, its status, or -1
// when it did not run or was killed.
func exitStatus(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		return -1
	}
}

// shStatus runs script and returns its output and exit status (-1 when it
// could not run or timed out).
func (c *container) shStatus(t *testing.T, timeout time.Duration, script string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := c.exec(ctx, script)
	status := exitStatus(err)
	if status < 0 {
		t.Logf("in the container: %s\n-> %v\n%s", script, err, out)
	}
	return out, status
}

// powerOff asks systemd in the container to power off (SIGTERM to nspawn
// does that: it sends SIGRTMIN+3 to the container's PID 1) and, when that
// takes longer than 30 s, kills PID 1, which ends every process of the
// container's PID namespace, and nspawn.
func (c *container) powerOff(t *testing.T) {
	select {
	case <-c.exited:
		return
	default:
	}
	c.nspawn.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return
	case <-time.After(30 * time.Second):
	}
	t.Errorf("container did not power off within 30s; killing it")
	if c.pid1 > 0 {
		syscall.Kill(c.pid1, syscall.SIGKILL)
	}
	c.nspawn.Process.Kill()
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("systemd-nspawn (pid %d) still there 10s after SIGKILL", c.nspawn.Process.Pid)
	}
}

// dumpOnFailure shows what a failed test needs to be understood: the
// container's journal and console.
func (c *container) dumpOnFailure(t *testing.T) {
	select {
	case <-c.exited:
	default:
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, _ := c.exec(ctx, "journalctl -b --no-pager -n 300 -o short-precise")
		cancel()
		t.Logf("container journal (last 300 lines):\n%s", out)
	}
	if b, err := os.ReadFile(c.log); err == nil {
		if len(b) > 8000 {
			b = b[len(b)-8000:]
		}
		t.Logf("container console (tail):\n%s", b)
	}
}
