package e2e

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// journalSocket stands in for /run/systemd/journal/socket: every entry
// rtunnel sends arrives decoded as its fields.
type journalSocket struct {
	dir  string
	conn *net.UnixConn
	mu   sync.Mutex
	got  []map[string]string
	more chan struct{}
	done chan struct{}
}

func newJournalSocket(t *testing.T) *journalSocket {
	t.Helper()
	j := &journalSocket{dir: t.TempDir(), more: make(chan struct{}, 1), done: make(chan struct{})}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(j.dir, "socket"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	j.conn = conn
	go func() {
		defer close(j.done)
		buf := make([]byte, 1<<16)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			e := parseJournalEntry(buf[:n])
			j.mu.Lock()
			j.got = append(j.got, e)
			j.mu.Unlock()
			select {
			case j.more <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-j.done })
	return j
}

// parseJournalEntry decodes the native protocol: KEY=value lines, or KEY,
// a newline, a little-endian 64-bit length and the value for values that
// hold newlines.
func parseJournalEntry(b []byte) map[string]string {
	e := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			nl = len(b)
		}
		line := b[:nl]
		if k, v, ok := bytes.Cut(line, []byte("=")); ok {
			e[string(k)] = string(v)
			b = b[min(nl+1, len(b)):]
			continue
		}
		rest := b[nl+1:]
		if len(rest) < 8 {
			break
		}
		size := binary.LittleEndian.Uint64(rest[:8])
		e[string(line)] = string(rest[8 : 8+size])
		b = rest[min(8+int(size)+1, len(rest)):]
	}
	return e
}

// wait returns the first entry matching pred, waiting (bounded) for it.
func (j *journalSocket) wait(t *testing.T, what string, timeout time.Duration, exited <-chan struct{}, pred func(map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		j.mu.Lock()
		for _, e := range j.got {
			if pred(e) {
				j.mu.Unlock()
				return e
			}
		}
		j.mu.Unlock()
		select {
		case <-j.more:
		case <-exited:
			t.Fatalf("rtunnel exited before sending the journal entry %s", what)
		case <-deadline:
			j.mu.Lock()
			defer j.mu.Unlock()
			t.Fatalf("no journal entry %s within %s; got %v", what, timeout, j.got)
		}
	}
}

// Run by systemd (stderr is the journal's stream, JOURNAL_STREAM says so)
// with the default log format, rtunnel logs through the journal's native
// protocol: PRIORITY from the level, the fixed keys as fields, MESSAGE
// without a timestamp. The journal socket is a test socket mounted over
// /run/systemd/journal in a private mount namespace.
func TestJournalNativeProtocolUnderSystemd(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is needed: %v", err)
	}
	dead := sshdtest.FreePort(t)
	extra := "  - name: down\n    server: root@127.0.0.1:" + strconv.Itoa(dead) + "\n    identity: " + w.tunnelKey.Private +
		"\n    known_hosts: " + w.knownHosts + "\n    forwards: [{remote: \"localhost:" + strconv.Itoa(sshdtest.FreePort(t)) + "\", local: \"127.0.0.1:9\"}]\n"
	cfg := w.config(t, [][2]string{w.sshForward()}, extra)
	text := strings.Replace(mustRead(t, cfg), "log: {level: debug, format: json}\n", "log: {level: info, format: auto}\n", 1)
	kh := mustRead(t, w.knownHosts)
	if err := os.WriteFile(w.knownHosts, []byte(kh+strings.ReplaceAll(kh, "]:"+strconv.Itoa(w.hub.Port)+" ", "]:"+strconv.Itoa(dead)+" ")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	j := newJournalSocket(t)

	// In the namespace: /run is a tmpfs of its own, the test's socket is the
	// journal's, and JOURNAL_STREAM names the stderr pipe as systemd would.
	script := `mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && mount --bind "$0" /run/systemd/journal &&
JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) && export JOURNAL_STREAM && exec "$1" up --config "$2"`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, j.dir, daemontest.Binary(t), cfg)
	var stderr syncWriter
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("rtunnel stderr:\n%s", stderr.String())
		}
	}()

	up := j.wait(t, "forward up", 20*time.Second, exited, func(e map[string]string) bool {
		return strings.HasPrefix(e["MESSAGE"], "forward up ")
	})
	if up["PRIORITY"] != "6" || up["TUNNEL"] != "hub" || up["SERVER"] != "root@127.0.0.1:"+strconv.Itoa(w.hub.Port) ||
		up["FORWARD"] != w.sshForward()[0]+"->"+w.sshForward()[1] {
		t.Errorf("forward up entry: %v", up)
	}
	if regexp.MustCompile(`\d\d:\d\d:\d\d|time=`).MatchString(up["MESSAGE"]) {
		t.Errorf("MESSAGE carries a second timestamp: %q", up["MESSAGE"])
	}
	down := j.wait(t, "tunnel down", 20*time.Second, exited, func(e map[string]string) bool {
		return strings.HasPrefix(e["MESSAGE"], "tunnel down; will retry ")
	})
	if down["PRIORITY"] != "4" || down["TUNNEL"] != "down" || down["RESULT"] != "dial" || !strings.Contains(down["ERR"], "connection refused") {
		t.Errorf("tunnel down entry: %v", down)
	}
	if s := stderr.String(); strings.Contains(s, "forward up") {
		t.Errorf("logged to stderr as well as to the journal:\n%s", s)
	}
}

// format: journal without the journal's socket falls back to stderr with
// the sd-daemon "<N>" priority prefix.
func TestJournalFormatFallsBackToPrefixes(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	cfg := w.config(t, [][2]string{w.sshForward()}, "")
	text := strings.Replace(mustRead(t, cfg), "log: {level: debug, format: json}\n", "log: {level: info, format: journal}\n", 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// In a mount namespace whose /run is empty: no journal socket.
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
		`mount -t tmpfs tmpfs /run && exec "$0" up --config "$1"`, daemontest.Binary(t), cfg)
	var stderr syncWriter
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	want := "<6>forward up tunnel=hub server=root@127.0.0.1:" + strconv.Itoa(w.hub.Port) + " forward="
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), want) {
		select {
		case <-exited:
			t.Fatalf("rtunnel exited before logging %q:\n%s", want, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on stderr within 20s:\n%s", want, stderr.String())
		}
		time.Sleep(50 * time.Millisecond) // polling a buffer the process writes to
	}
}

// syncWriter is a buffer a child process's stderr is copied into.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
