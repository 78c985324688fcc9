package fleet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// rtunnelBinary builds ./cmd/rtunnel once per test binary, always without
// the race detector: its cost per process is what is measured, and a
// thousand race-instrumented processes would not fit.
func rtunnelBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "rtunnel-fleet-bin-"); buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=fleet", "-o", filepath.Join(binDir, "rtunnel"), "./cmd/rtunnel")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "rtunnel")
}

// removeBinary is for TestMain, after every test.
func removeBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// client is one started client process (and, for autossh, its ssh).
type client struct {
	name string
	pid  int // also its process group
	log  string
	done chan struct{}
}

// gate holds clients between fork and exec until every one is ready, so
// that they reach the hub together as after a power cut, not in the order
// this process managed to fork them. Each waits in the shell for EOF on a
// FIFO that only the harness holds open for writing.
type gate struct {
	path string
	w    *os.File
}

func newGate(t *testing.T, dir string) *gate {
	t.Helper()
	g := &gate{path: filepath.Join(dir, "gate")}
	if err := syscall.Mkfifo(g.path, 0o600); err != nil {
		t.Fatal(err)
	}
	// O_RDWR never blocks on a FIFO (Linux) and keeps a writer present, so
	// each client's open succeeds at once and its read waits.
	w, err := os.OpenFile(g.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.w = w
	t.Cleanup(func() { g.w.Close() })
	return g
}

// argv wraps a command so that it execs only once the gate opens.
func (g *gate) argv(ns string, argv ...string) []string {
	return append([]string{"ip", "netns", "exec", ns, "/bin/sh", "-c", `read -r go <"$0"; exec "$@"`, g.path}, argv...)
}

// open waits until every client reads the FIFO, then closes the only
// writer: all reads return EOF at once. It returns the moment of release.
func (g *gate) open(t *testing.T, cs []*client) time.Time {
	t.Helper()
	deadline := time.Now().Add(30*time.Second + time.Duration(len(cs))*20*time.Millisecond)
	for _, c := range cs {
		for {
			if link, _ := os.Readlink("/proc/" + strconv.Itoa(c.pid) + "/fd/0"); link == g.path {
				break
			}
			select {
			case <-c.done:
				t.Fatalf("%s exited before the start (log %s)", c.name, c.log)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s (pid %d) not waiting at the gate after %v", c.name, c.pid, time.Until(deadline))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	at := time.Now()
	g.w.Close()
	return at
}

// startClient starts argv (already wrapped by the gate) in its own process
// group, logging to dir/NAME.log.
func startClient(t *testing.T, dir, name string, argv []string, env []string) *client {
	t.Helper()
	c := &client{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own copy
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	c.pid = cmd.Process.Pid
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	return c
}

// stopClients sends SIGTERM to every client's group, waits (bounded) and
// kills what is left. It is safe to call twice.
func stopClients(t testing.TB, cs []*client) {
	for _, c := range cs {
		_ = syscall.Kill(-c.pid, syscall.SIGTERM)
	}
	deadline := time.After(15 * time.Second)
	for _, c := range cs {
		select {
		case <-c.done:
		case <-deadline:
		}
	}
	for _, c := range cs {
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) still running after SIGKILL", c.name, c.pid)
		}
	}
}

// clientKind is what runs on every remote.
type clientKind string

const (
	kindRtunnel clientKind = "rtunnel"
	kindAutossh clientKind = "autossh"
)

// startFleet starts one client per remote behind the gate, and returns them
// with the release function.
func startFleet(t *testing.T, h *hub, dir string, kind clientKind, rs []*remote) ([]*client, func() time.Time) {
	t.Helper()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	g := newGate(t, dir)
	cs := make([]*client, 0, len(rs))
	t.Cleanup(func() { stopClients(t, cs) })
	for _, r := range rs {
		var argv, env []string
		switch kind {
		case kindRtunnel:
			r.config = filepath.Join(dir, r.name+".yaml")
			writeConfig(t, h, r.config, r.metricsPort, r)
			argv = []string{rtunnelBinary(t), "up", "--config", r.config}
		case kindAutossh:
			argv, env = autosshArgv(h, r)
		default:
			t.Fatalf("unknown client %q: use rtunnel or autossh", kind)
		}
		cs = append(cs, startClient(t, logs, r.name, g.argv(h.ns, argv...), env))
	}
	return cs, func() time.Time { return g.open(t, cs) }
}

// autosshArgv is the classic unit's command: autossh -M 0 (ssh's own
// ServerAlive does the watching) with ssh -N -R, the same keepalive and
// ExitOnForwardFailure as rtunnel's defaults. AUTOSSH_GATETIME=0 keeps it
// retrying when the first ssh fails at once, as under a service manager.
func autosshArgv(h *hub, r *remote) (argv, env []string) {
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		ssh = "/usr/bin/ssh"
	}
	auto, err := exec.LookPath("autossh")
	if err != nil {
		auto = "/usr/bin/autossh"
	}
	argv = []string{auto, "-M", "0", "-N",
		"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=" + h.kh,
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
		"-o", "ConnectTimeout=15", "-o", "ExitOnForwardFailure=yes",
		"-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3", "-i", r.key,
		"-R", fmt.Sprintf("localhost:%d:%s", r.port, r.target), "-p", "22", h.user + "@127.0.0.1"}
	return argv, []string{"AUTOSSH_PATH=" + ssh, "AUTOSSH_GATETIME=0"}
}
