package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// maxRSS bounds a run interrupted while reading its files. A -race binary
// starts near 40 MiB; before the read limit, a config of /dev/zero grew by
// about 600 MiB a second until the kernel killed it.
const maxRSS = 150 << 20

// peakRSS is the process's peak resident memory so far (VmHWM). Read from
// /proc while it runs: after exit, rusage's ru_maxrss of a child also counts
// the test process's own memory at the time of exec.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb); err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// run is one rtunnel process the test started.
type run struct {
	cmd   *exec.Cmd
	out   bytes.Buffer // stdout and stderr
	start time.Time
	done  chan struct{}
}

func startRun(t *testing.T, args ...string) *run {
	t.Helper()
	r := &run{cmd: exec.Command(daemontest.Binary(t), args...), done: make(chan struct{})}
	r.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		_ = r.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill() // an error only says it has exited
		<-r.done
	})
	return r
}

// wait waits at most 10 s and returns the exit status (128+signal when a
// signal ended the process).
func (r *run) wait(t *testing.T) (status int) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
		t.Fatalf("rtunnel %s still running after 10 s; output:\n%s", strings.Join(r.cmd.Args[1:], " "), r.out.String())
	}
	ws := r.cmd.ProcessState.Sys().(syscall.WaitStatus)
	status = ws.ExitStatus()
	if ws.Signaled() {
		status = 128 + int(ws.Signal())
	}
	return status
}

// A config path that names no regular file gets a clear error at once, from
// check and from up. Before the fix /dev/zero was read until the kernel
// killed rtunnel, and up ignored SIGTERM meanwhile. (The process is gone
// too soon to read its memory; config's TestLoadReadsAtMostMaxFileSize
// bounds what Load allocates, and the 1 s bound catches an endless read.)
func TestConfigThatIsNotAFileIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.yaml")
	if err := os.WriteFile(huge, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 1<<40); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	// The bound is on the refusal, not on starting a race-built binary on
	// a busy machine: what `rtunnel version` takes here is added to it.
	v := startRun(t, "version")
	if status := v.wait(t); status != 0 {
		t.Fatalf("rtunnel version: status %d:\n%s", status, v.out.String())
	}
	bound := time.Second + time.Since(v.start)
	for path, want := range map[string]string{
		"/dev/zero": "/dev/zero: is a character device, not a regular file",
		link:        link + ": is a character device, not a regular file",
		fifo:        fifo + ": is a named pipe (FIFO), not a regular file",
		dir:         dir + ": is a directory, not a regular file",
		huge:        huge + ": is larger than 1024 KiB",
	} {
		for _, sub := range []string{"check", "up"} {
			r := startRun(t, sub, "--config", path)
			status := r.wait(t)
			took := time.Since(r.start)
			if status != 78 || !strings.Contains(r.out.String(), want) {
				t.Errorf("rtunnel %s --config %s: status %d, want 78 and %q in:\n%s", sub, path, status, want, r.out.String())
			}
			if took > bound {
				t.Errorf("rtunnel %s --config %s took %v, want under %v (1 s beyond starting the binary)", sub, path, took, bound)
			}
		}
	}
}

// blockedInFIFOOpen waits (bounded) until a thread of pid sleeps in open(2)
// of a FIFO with no writer, which the kernel shows as wait_for_partner.
func blockedInFIFOOpen(t *testing.T, r *run) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/wchan", r.cmd.Process.Pid))
		for _, task := range tasks {
			if b, _ := os.ReadFile(task); string(b) == "wait_for_partner" {
				return
			}
		}
		select {
		case <-r.done:
			t.Fatalf("rtunnel %s exited before blocking on the FIFO:\n%s", strings.Join(r.cmd.Args[1:], " "), r.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("rtunnel %s did not block on the FIFO within 10 s", strings.Join(r.cmd.Args[1:], " "))
}

// SIGTERM and SIGINT end check and up at once while they read their files,
// even when a read blocks for good: here an ssh_config that is a FIFO no one
// writes. Before the fix up caught SIGTERM first and then never looked.
// (identity, certificate and known_hosts are refused unread when they are
// not regular files, so none can block; the ssh_config is opened as it is.)
func TestSignalEndsALoadThatBlocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sshConfig := filepath.Join(dir, "ssh_config")
	if err := syscall.Mkfifo(sshConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "rtunnel.yaml")
	data := fmt.Sprintf(`ssh_config: %s
tunnels:
  - name: a
    server: hub
    identity: %s
    known_hosts: %s
    forwards: [{remote: "localhost:2220", local: "localhost:22"}]
`, sshConfig, filepath.Join(dir, "no-such-key"), kh)
	if err := os.WriteFile(cfg, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"check", "up"} {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
			r := startRun(t, sub, "--config", cfg)
			blockedInFIFOOpen(t, r)
			rss := peakRSS(t, r.cmd.Process.Pid)
			t.Logf("rtunnel %s blocked on the FIFO: peak RSS %d MiB", sub, rss>>20)
			if rss > maxRSS {
				t.Errorf("rtunnel %s peaked at %d MiB RSS while reading its files, want at most %d", sub, rss>>20, maxRSS>>20)
			}
			sent := time.Now()
			if err := r.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			status := r.wait(t)
			if took := time.Since(sent); took > time.Second {
				t.Errorf("rtunnel %s: %v ended it after %v, want under 1 s", sub, sig, took)
			}
			if want := 128 + int(sig); status != want {
				t.Errorf("rtunnel %s: status %d after %v, want %d (ended by the signal)\n%s", sub, status, sig, want, r.out.String())
			}
		}
	}
}

// A SIGHUP reload goes through the same checks: a config replaced by a
// device, a FIFO or a directory is refused within a second, and the running
// config stays.
func TestReloadRefusesAConfigThatIsNotAFile(t *testing.T) {
	t.Parallel()
	sshdtest.RequireTools(t, "ssh-keygen")
	dir := t.TempDir()
	key := sshdtest.NewKey(t, dir, "id", "ed25519")
	// Nothing listens on the hub's port: the tunnel retries, which is all
	// this test needs from it. The host key is any key.
	port := sshdtest.FreePort(t)
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", port, key.PublicLine)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "rtunnel.yaml")
	data := fmt.Sprintf(`log: {format: json}
tunnels:
  - name: a
    server: u@127.0.0.1:%d
    identity: %s
    known_hosts: %s
    forwards: [{remote: "localhost:2220", local: "localhost:22"}]
`, port, key.Private, kh)
	if err := os.WriteFile(cfg, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	d := daemontest.Start(t, []string{"up", "--config", cfg})
	d.WaitMsg(0, 20*time.Second, "starting")

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]string{
		"/dev/zero": "is a character device, not a regular file",
		fifo:        "is a named pipe (FIFO), not a regular file",
		dir:         "is a directory, not a regular file",
	} {
		// Replace the config by a symlink in one rename, as an editor would.
		tmp := cfg + ".new"
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfg); err != nil {
			t.Fatal(err)
		}
		mark := d.Mark()
		sent := time.Now()
		d.Signal(syscall.SIGHUP)
		e, _, seen := d.WaitFrom(mark, 10*time.Second, "reload refused", func(e daemontest.Entry) bool {
			return strings.HasPrefix(e.Msg(), "reload refused")
		})
		if took := seen.Sub(sent); took > time.Second {
			t.Errorf("config -> %s: reload refused after %v, want under 1 s", target, took)
		}
		if !strings.Contains(e.Str("err"), cfg+": "+want) {
			t.Errorf("config -> %s: refusal says %q, want %q", target, e.Str("err"), want)
		}
	}
	d.Signal(syscall.SIGTERM)
	if status, ok := d.Wait(10 * time.Second); !ok || status != 0 {
		t.Errorf("after the refused reloads, SIGTERM: status %d (exited: %v), want 0", status, ok)
	}
}
