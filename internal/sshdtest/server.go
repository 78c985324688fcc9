package sshdtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	startTimeout = 10 * time.Second // sshd must listen within this
	exitTimeout  = 5 * time.Second  // a signalled process must be gone within this
	portRetries  = 3                // extra attempts when the chosen port was taken meanwhile
)

// pickPort chooses the port of a server started with Port 0; tests replace it
// to provoke the port race.
var pickPort = freePortOn

// errAddrInUse means sshd could not bind its port.
var errAddrInUse = errors.New("address already in use")

// Options configures Start. The zero value is a usable server.
type Options struct {
	ListenAddr     string   // default "127.0.0.1"
	Port           int      // 0 = a free port
	AuthorizedKeys []string // full authorized_keys lines, written to DIR/authorized_keys
	HostKeyTypes   []string // default {"ed25519"}; e.g. {"rsa", "ed25519"}
	// Extra is appended verbatim to sshd_config (e.g. "ClientAliveInterval 15").
	// A keyword it sets before any Match line replaces this package's default
	// for that keyword instead of being shadowed by it.
	Extra string
	NetNS string // if set, sshd runs via `ip netns exec NetNS`; ListenAddr is inside it
	Name  string // label for logs (default "sshd")
}

// Server is a running OpenSSH sshd owned by one test. Its methods are safe
// for concurrent use, except that the exported fields change only in Restart,
// which must not race with readers of them.
type Server struct {
	Addr string // host:port
	Host string
	Port int
	Dir  string // the server's own directory: config, host keys, authorized_keys

	name       string
	opts       Options
	sshdPath   string
	ipPath     string
	configPath string
	authKeys   string
	pidFile    string
	hostPubs   []string // trimmed host public key lines, in HostKeyTypes order
	log        logBuffer

	life sync.Mutex // serialises start, stop and kill
	mu   sync.Mutex // guards proc
	proc *process   // nil while not running
}

// process is one run of the sshd listener.
type process struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed when cmd.Wait has returned
	err  error         // cmd.Wait's result, set before done is closed
}

func (p *process) exited(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Start writes host keys, authorized_keys and an sshd_config into a fresh
// t.TempDir(), starts `sshd -D -e -f CONFIG` and waits (at most 10 s) until it
// listens. A t.Cleanup kills sshd and every session process it started, and
// prints sshd's log if the test failed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.ListenAddr == "" {
		opts.ListenAddr = "127.0.0.1"
	}
	if len(opts.HostKeyTypes) == 0 {
		opts.HostKeyTypes = []string{"ed25519"}
	}
	if opts.Name == "" {
		opts.Name = "sshd"
	}
	opts.AuthorizedKeys = append([]string(nil), opts.AuthorizedKeys...)
	opts.HostKeyTypes = append([]string(nil), opts.HostKeyTypes...)

	sshdPath, err := lookTool("sshd")
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	var ipPath string
	if opts.NetNS != "" {
		if ipPath, err = lookTool("ip"); err != nil {
			t.Fatalf("sshdtest: NetNS %q: %v", opts.NetNS, err)
		}
	}
	// sshd's privilege-separated children chroot into /run/sshd and refuse to
	// start without it; a container often lacks it.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshdtest: create privilege separation directory: %v", err)
	}

	dir := t.TempDir()
	if strings.ContainsAny(dir, "\"\n") {
		t.Fatalf("sshdtest: server dir %q cannot be written into sshd_config", dir)
	}
	s := &Server{
		Host:       opts.ListenAddr,
		Dir:        dir,
		name:       opts.Name,
		opts:       opts,
		sshdPath:   sshdPath,
		ipPath:     ipPath,
		configPath: filepath.Join(dir, "sshd_config"),
		authKeys:   filepath.Join(dir, "authorized_keys"),
		pidFile:    filepath.Join(dir, "sshd.pid"),
	}
	for _, typ := range opts.HostKeyTypes {
		path := filepath.Join(dir, "ssh_host_"+typ+"_key")
		generateKey(t, path, s.name+"-host-"+typ, typ)
		pub, err := os.ReadFile(path + ".pub")
		if err != nil {
			t.Fatalf("sshdtest: %v", err)
		}
		s.hostPubs = append(s.hostPubs, strings.TrimSpace(string(pub)))
	}
	s.SetAuthorizedKeys(t, opts.AuthorizedKeys)

	// Registered before sshd starts, so a Fatalf below still cleans up.
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("sshdtest: %s (%s, dir %s) log:\n%s", s.name, s.Addr, s.Dir, s.Log())
		}
	})

	s.life.Lock()
	defer s.life.Unlock()
	for attempt := 0; ; attempt++ {
		port := opts.Port
		if port == 0 {
			port = pickPort(t, s.portProbeHost())
		}
		err := s.launch(port)
		if err == nil {
			return s
		}
		if errors.Is(err, errAddrInUse) && opts.Port == 0 && attempt < portRetries {
			s.log.notef("port %d was taken before sshd bound it; retrying with another port", port)
			continue
		}
		t.Fatalf("sshdtest: start %s: %v", s.name, err)
	}
}

// Restart starts sshd again, stopping it first if it runs, on the same port
// with the same host keys and config, and waits until it listens.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.life.Lock()
	defer s.life.Unlock()
	s.stop(false)
	var err error
	for attempt := 0; attempt <= portRetries; attempt++ {
		if err = s.launch(s.Port); err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("sshdtest: restart %s on port %d: %v", s.name, s.Port, err)
}

// launch writes the config for port, starts sshd and waits until it listens.
// On error nothing of that run is left running.
func (s *Server) launch(port int) error {
	cfg := renderConfig(port, s.opts.ListenAddr, s.hostKeyPaths(), s.pidFile, s.authKeys, s.opts.Extra)
	if err := os.WriteFile(s.configPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))

	args := []string{s.sshdPath, "-D", "-e", "-f", s.configPath}
	if s.opts.NetNS != "" {
		// `ip netns exec` execs its command in place, so the PID stays sshd's.
		args = append([]string{s.ipPath, "netns", "exec", s.opts.NetNS}, args...)
	}
	s.log.notef("starting %s on %s: %s", s.name, s.Addr, strings.Join(args, " "))
	from := s.log.Len()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout = &s.log
	cmd.Stderr = &s.log
	// Session processes inherit sshd's stderr; do not let one that escaped the
	// kill hold Wait forever.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.done:
			s.mu.Lock()
			s.proc = nil
			s.mu.Unlock()
			out := s.log.Since(from)
			if strings.Contains(out, "Address already in use") {
				return fmt.Errorf("sshd could not bind port %d: %w", port, errAddrInUse)
			}
			return fmt.Errorf("sshd exited before listening (%v):\n%s", p.err, out)
		default:
		}
		if strings.Contains(s.log.Since(from), "Server listening on") && s.accepts() {
			return nil
		}
		if time.Now().After(deadline) {
			s.stop(true)
			return fmt.Errorf("sshd not listening on %s after %v:\n%s", s.Addr, startTimeout, s.log.Since(from))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// accepts reports whether the server's port takes a TCP connection. Inside a
// network namespace it cannot be reached from here, and sshd's own "Server
// listening" line has to do.
func (s *Server) accepts() bool {
	if s.opts.NetNS != "" {
		return true
	}
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// portProbeHost is where a free port is looked for: the listen address, or
// host loopback when sshd listens inside another namespace.
func (s *Server) portProbeHost() string {
	if s.opts.NetNS != "" {
		return "127.0.0.1"
	}
	return s.opts.ListenAddr
}

func freePortOn(t testing.TB, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("sshdtest: find free port on %s: %v", host, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatalf("sshdtest: find free port on %s: %v", host, err)
	}
	return port
}

func (s *Server) hostKeyPaths() []string {
	paths := make([]string, len(s.opts.HostKeyTypes))
	for i, typ := range s.opts.HostKeyTypes {
		paths[i] = filepath.Join(s.Dir, "ssh_host_"+typ+"_key")
	}
	return paths
}

// Stop sends SIGTERM to the listener, kills every session process it
// started, and waits (bounded) until all are gone and the port is free.
// Established sessions end; a later Restart serves new ones.
func (s *Server) Stop() {
	s.life.Lock()
	defer s.life.Unlock()
	s.stop(false)
}

// Kill sends SIGKILL to the listener and every descendant, and waits
// (bounded) until all are gone.
func (s *Server) Kill() {
	s.life.Lock()
	defer s.life.Unlock()
	s.stop(true)
}

// stop ends the current run, if any. The tree is frozen first: sshd cannot
// fork a new session, and no session is reparented away from the listener
// before it has been found.
func (s *Server) stop(kill bool) {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	kids := freezeTree(p.pid)
	how := "SIGTERM"
	if kill {
		how = "SIGKILL"
	}
	s.log.notef("stopping %s: %s to pid %d, SIGKILL to %d session processes", s.name, how, p.pid, len(kids))
	if kill {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	} else {
		_ = syscall.Kill(p.pid, syscall.SIGTERM)
		_ = syscall.Kill(p.pid, syscall.SIGCONT)
	}
	killProcs(kids)
	if !p.exited(exitTimeout) {
		s.log.notef("%s pid %d ignored SIGTERM for %v; sending SIGKILL", s.name, p.pid, exitTimeout)
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		if !p.exited(exitTimeout) {
			s.log.notef("%s pid %d still not reaped after SIGKILL", s.name, p.pid)
		}
	}
	if left := waitGone(kids, exitTimeout); len(left) > 0 {
		s.log.notef("%d session processes of %s survived SIGKILL: %v", len(left), s.name, left)
	}
	s.waitPortFree()
}

// waitPortFree waits (bounded) until nothing accepts on the server's port.
func (s *Server) waitPortFree() {
	if s.opts.NetNS != "" {
		return
	}
	deadline := time.Now().Add(exitTimeout)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			s.log.notef("%s still accepts after stop", s.Addr)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// PID returns the PID of the running sshd listener, or 0.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.pid
}

// SessionPIDs returns the PIDs of every live descendant of the listener: the
// per-connection sshd processes and what they run.
func (s *Server) SessionPIDs() []int {
	pid := s.PID()
	if pid == 0 {
		return nil
	}
	var pids []int
	for _, p := range descendants(pid) {
		pids = append(pids, p.pid)
	}
	return pids
}

// ConfigPath returns the path of the generated sshd_config.
func (s *Server) ConfigPath() string { return s.configPath }

// AuthorizedKeysPath returns the path of the server's authorized_keys file.
func (s *Server) AuthorizedKeysPath() string { return s.authKeys }

// SetAuthorizedKeys replaces authorized_keys; sshd reads it at each login, so
// it applies to new logins only. The file is replaced by rename, so a login
// never sees it half-written.
func (s *Server) SetAuthorizedKeys(t testing.TB, lines []string) {
	t.Helper()
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.TrimRight(l, "\n"))
		b.WriteString("\n")
	}
	tmp := s.authKeys + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("sshdtest: write authorized_keys: %v", err)
	}
	if err := os.Rename(tmp, s.authKeys); err != nil {
		t.Fatalf("sshdtest: write authorized_keys: %v", err)
	}
}

// HostKeyPublicLines returns the host public keys as in their .pub files
// ("ssh-ed25519 AAAA... comment"), in Options.HostKeyTypes order.
func (s *Server) HostKeyPublicLines() []string {
	return append([]string(nil), s.hostPubs...)
}

// KnownHostsLines returns one known_hosts line per name and host key, such as
// "[127.0.0.1]:2222 ssh-ed25519 AAAA...", or "localhost ssh-ed25519 AAAA..."
// on port 22. No names means the server's Host.
func (s *Server) KnownHostsLines(names ...string) []string {
	if len(names) == 0 {
		names = []string{s.Host}
	}
	var lines []string
	for _, name := range names {
		host := name
		if s.Port != 22 {
			host = "[" + name + "]:" + strconv.Itoa(s.Port)
		}
		for _, pub := range s.hostPubs {
			f := strings.Fields(pub)
			lines = append(lines, host+" "+f[0]+" "+f[1])
		}
	}
	return lines
}

// WriteKnownHosts writes KnownHostsLines(names...) to path, mode 0644.
func (s *Server) WriteKnownHosts(t testing.TB, path string, names ...string) {
	t.Helper()
	data := strings.Join(s.KnownHostsLines(names...), "\n") + "\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatalf("sshdtest: write known_hosts: %v", err)
	}
}

// Log returns everything sshd wrote to stderr so far, across restarts, with
// this package's own notes as "sshdtest:" lines.
func (s *Server) Log() string { return s.log.String() }

// WaitLog polls the log until it contains substr, and fails the test if that
// does not happen within timeout. Like t.Fatalf, call it from the test's own
// goroutine.
func (s *Server) WaitLog(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(s.Log(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("sshdtest: %s log has no %q after %v", s.name, substr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logBuffer collects sshd's output; sshd and its sessions write to it while
// tests read it.
type logBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

func (l *logBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.b)
}

// Since returns what was written after the first off bytes.
func (l *logBuffer) Since(off int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b[off:])
}

func (l *logBuffer) notef(format string, args ...any) {
	_, _ = fmt.Fprintf(l, "sshdtest: "+format+"\n", args...)
}
