// Package daemontest builds the real rtunnel binary once per test binary and
// runs it as a child process, reading its JSON log line by line so tests can
// wait for events ("forward up") instead of sleeping. Test-only; it imports
// the standard library only.
package daemontest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds ./cmd/rtunnel (with -race when the tests run with it) into a
// temp dir shared by the whole test binary, and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rtunnel-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "rtunnel")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "-ldflags", "-X main.version=test", "github.com/rtunnel/rtunnel/cmd/rtunnel")
		cmd := exec.Command("go", args...)
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Cleanup removes the shared binary; call it from TestMain after m.Run.
func Cleanup() {
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Entry is one JSON log line.
type Entry map[string]any

// Msg is the log message.
func (e Entry) Msg() string { return e.Str("msg") }

// Str is a field as a string ("" if absent).
func (e Entry) Str(k string) string {
	v, ok := e[k]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// Level is the log level.
func (e Entry) Level() string { return e.Str("level") }

// Daemon is a running `rtunnel` process.
type Daemon struct {
	t    testing.TB
	cmd  *exec.Cmd
	Args []string

	mu      sync.Mutex
	entries []Entry
	seen    []time.Time // when the test saw each entry
	raw     bytes.Buffer
	stdout  lockedBuffer
	changed chan struct{}
	done    chan struct{}
	exit    int
}

// Start runs the binary with args (e.g. "up", "--config", path). Its stderr
// is parsed as JSON lines; Cleanup kills it and shows the log on failure.
func Start(t testing.TB, args []string, env ...string) *Daemon {
	t.Helper()
	return start(t, exec.Command(Binary(t), args...), args, env)
}

// StartCommand is Start for a binary the test did not build: argv is the
// command line in front of args, e.g. a release binary, or
// {"qemu-aarch64-static", bin} to run a foreign one under emulation
// (qemu-user runs it in the same process, so PID and signals are its own).
func StartCommand(t testing.TB, argv, args []string, env ...string) *Daemon {
	t.Helper()
	return start(t, exec.Command(argv[0], append(argv[1:len(argv):len(argv)], args...)...), args, env)
}

// StartInNetns is Start inside a network namespace (ip netns exec execs the
// binary, so the PID and signals are rtunnel's own).
func StartInNetns(t testing.TB, ns string, args []string, env ...string) *Daemon {
	t.Helper()
	return start(t, exec.Command("ip", append([]string{"netns", "exec", ns, Binary(t)}, args...)...), args, env)
}

func start(t testing.TB, cmd *exec.Cmd, args []string, env []string) *Daemon {
	t.Helper()
	d := &Daemon{t: t, Args: args, changed: make(chan struct{}), done: make(chan struct{})}
	d.cmd = cmd
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "RUNTIME_DIRECTORY=") }) {
		// As systemd's RuntimeDirectory= would: each daemon gets its own
		// control socket directory, so parallel tests never share
		// /run/rtunnel. Short, for the 108-byte socket path limit.
		dir, err := os.MkdirTemp("", "rtunnel-run-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		env = append(env, "RUNTIME_DIRECTORY="+dir)
	}
	// A -race binary sleeps 1 s at exit by default; exit timing is tested.
	d.cmd.Env = append(append(os.Environ(), "GORACE=atexit_sleep_ms=0"), env...)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stdout = &d.stdout
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go d.read(stderr)
	t.Cleanup(func() {
		d.Signal(syscall.SIGKILL)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			t.Errorf("rtunnel pid %d did not exit after SIGKILL", d.cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("rtunnel %s log:\n%s", strings.Join(args, " "), d.Raw())
		}
	})
	return d
}

func (d *Daemon) read(r interface{ Read([]byte) (int, error) }) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e Entry
		if json.Unmarshal(line, &e) != nil {
			e = Entry{"msg": string(line), "level": "RAW"}
		}
		d.mu.Lock()
		d.raw.Write(line)
		d.raw.WriteByte('\n')
		d.entries = append(d.entries, e)
		d.seen = append(d.seen, time.Now())
		close(d.changed)
		d.changed = make(chan struct{})
		d.mu.Unlock()
	}
	err := d.cmd.Wait()
	d.mu.Lock()
	d.exit = 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			d.exit = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				d.exit = 128 + int(ws.Signal())
			}
		} else {
			d.exit = -1
		}
	}
	d.mu.Unlock()
	close(d.done)
}

// Raw is everything the process wrote to stderr so far.
func (d *Daemon) Raw() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.raw.String()
}

// Mark is the number of log entries so far: pass it to WaitFrom to wait only
// for entries that come after now.
func (d *Daemon) Mark() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.entries)
}

// Entries returns a copy of the log entries from index from on.
func (d *Daemon) Entries(from int) []Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Entry(nil), d.entries[min(from, len(d.entries)):]...)
}

// WaitFrom waits (bounded) for the first entry at index >= from matching
// pred; it returns the entry, its index and when the test saw it.
func (d *Daemon) WaitFrom(from int, timeout time.Duration, what string, pred func(Entry) bool) (Entry, int, time.Time) {
	d.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		for i := from; i < len(d.entries); i++ {
			if pred(d.entries[i]) {
				e, at := d.entries[i], d.seen[i]
				d.mu.Unlock()
				return e, i, at
			}
		}
		from = len(d.entries)
		ch := d.changed
		d.mu.Unlock()
		select {
		case <-ch:
		case <-d.done:
			// Drain what was read before exit, then give up.
			d.mu.Lock()
			n := len(d.entries)
			d.mu.Unlock()
			if from >= n {
				d.t.Fatalf("rtunnel exited (status %d) before logging %s", d.ExitCode(), what)
			}
		case <-deadline.C:
			d.t.Fatalf("rtunnel did not log %s within %s", what, timeout)
		}
	}
}

// WaitMsg waits for an entry with exactly this msg after index from.
func (d *Daemon) WaitMsg(from int, timeout time.Duration, msg string) (Entry, int, time.Time) {
	d.t.Helper()
	return d.WaitFrom(from, timeout, fmt.Sprintf("%q", msg), func(e Entry) bool { return e.Msg() == msg })
}

// Signal sends sig to the process (ignored once it exited).
func (d *Daemon) Signal(sig os.Signal) {
	select {
	case <-d.done:
	default:
		_ = d.cmd.Process.Signal(sig)
	}
}

// Wait waits (bounded) for the process to exit and returns its exit status.
func (d *Daemon) Wait(timeout time.Duration) (int, bool) {
	select {
	case <-d.done:
		return d.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// ExitCode is the exit status once the process ended (128+signal if killed).
func (d *Daemon) ExitCode() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.exit
}

// PID of the process.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// lockedBuffer collects stdout; exec writes it from its own goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Stdout is what the process printed on stdout so far.
func (d *Daemon) Stdout() string { return d.stdout.String() }
