package sshdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runSSH runs ssh against srv as root and returns stdout, stderr and the
// exit code (-1 when ssh did not run to an exit).
func runSSH(t *testing.T, srv *Server, key Key, knownHosts string, extra ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"-p", strconv.Itoa(srv.Port)}, extra...)
	args = append(args, "root@"+srv.Host, "echo hello")
	cmd := SSHCommand(ctx, key, knownHosts, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("ssh did not run: %v", err)
	}
	return out.String(), errb.String(), code
}

// startSession starts ssh running remoteCmd, or `ssh -N` (no command, just
// an authenticated connection) without one, and returns a func that ends it and waits.
func startSession(t *testing.T, srv *Server, key Key, knownHosts string, remoteCmd ...string) (wait func(timeout time.Duration) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	args := []string{"-p", strconv.Itoa(srv.Port), "root@" + srv.Host}
	if len(remoteCmd) == 0 {
		args = append([]string{"-N"}, args...)
	}
	cmd := SSHCommand(ctx, key, knownHosts, append(args, remoteCmd...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start ssh -N: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-done // bounded: ctx kills ssh, WaitDelay bounds its pipes
	})
	return func(timeout time.Duration) error {
		select {
		case err := <-done:
			done <- err // keep it for Cleanup
			return err
		case <-time.After(timeout):
			return fmt.Errorf("ssh -N still running after %v; stderr: %s", timeout, errb.String())
		}
	}
}

func newServer(t *testing.T, opts Options) (*Server, Key, string) {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	key := NewKey(t, dir, "client", "ed25519")
	opts.AuthorizedKeys = append(opts.AuthorizedKeys, key.PublicLine)
	srv := Start(t, opts)
	kh := filepath.Join(dir, "known_hosts")
	srv.WriteKnownHosts(t, kh)
	return srv, key, kh
}

func TestEchoHello(t *testing.T) {
	t.Parallel()
	srv, key, kh := newServer(t, Options{})
	out, errOut, code := runSSH(t, srv, key, kh)
	if code != 0 || out != "hello\n" {
		t.Fatalf("ssh echo hello: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	srv.WaitLog(t, "Accepted publickey for root from 127.0.0.1", 5*time.Second)
	srv.WaitLog(t, key.Fingerprint, 5*time.Second)
	if !strings.HasPrefix(key.Fingerprint, "SHA256:") || !strings.HasPrefix(key.PublicLine, "ssh-ed25519 AAAA") ||
		!strings.HasSuffix(key.PublicLine, " client") {
		t.Errorf("key = %+v", key)
	}
	if fi, err := os.Stat(key.Private); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode: %v %v", fi.Mode(), err)
	}
	if srv.Addr != "127.0.0.1:"+strconv.Itoa(srv.Port) || srv.PID() == 0 {
		t.Errorf("Addr %q, PID %d", srv.Addr, srv.PID())
	}
}

func TestKnownHostsVerification(t *testing.T) {
	t.Parallel()
	srv, key, _ := newServer(t, Options{})
	dir := t.TempDir()
	other := NewKey(t, dir, "other", "ed25519")
	f := strings.Fields(other.PublicLine)

	cases := []struct {
		name, content, wantErr string
	}{
		{"empty", "", "Host key verification failed."},
		{"changed key", fmt.Sprintf("[127.0.0.1]:%d %s %s\n", srv.Port, f[0], f[1]), "REMOTE HOST IDENTIFICATION HAS CHANGED"},
		{"other name", strings.Join(srv.KnownHostsLines("localhost"), "\n") + "\n", "Host key verification failed."},
		{"other port", strings.Replace(srv.KnownHostsLines()[0], strconv.Itoa(srv.Port), strconv.Itoa(srv.Port+1), 1) + "\n", "Host key verification failed."},
	}
	for _, c := range cases {
		kh := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
		if err := os.WriteFile(kh, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runSSH(t, srv, key, kh)
		if code != 255 || out != "" || !strings.Contains(errOut, c.wantErr) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 255 and %q", c.name, code, out, errOut, c.wantErr)
		}
	}

	good := filepath.Join(dir, "good")
	srv.WriteKnownHosts(t, good, "localhost", srv.Host)
	if fi, err := os.Stat(good); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("known_hosts mode: %v %v", fi.Mode(), err)
	}
	if out, errOut, code := runSSH(t, srv, key, good); code != 0 || out != "hello\n" {
		t.Errorf("good known_hosts: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestSetAuthorizedKeys(t *testing.T) {
	t.Parallel()
	srv, key, kh := newServer(t, Options{})
	stranger := NewKey(t, "", "stranger", "ecdsa")

	_, errOut, code := runSSH(t, srv, stranger, kh)
	if code != 255 || !strings.Contains(errOut, "Permission denied (publickey)") {
		t.Fatalf("unauthorized key: exit %d, stderr %q", code, errOut)
	}
	srv.WaitLog(t, "Failed publickey for root from 127.0.0.1", 5*time.Second)

	srv.SetAuthorizedKeys(t, []string{stranger.PublicLine})
	if out, errOut, code := runSSH(t, srv, stranger, kh); code != 0 || out != "hello\n" {
		t.Fatalf("newly authorized key: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	srv.WaitLog(t, "Accepted publickey for root from 127.0.0.1 port", 5*time.Second)
	srv.WaitLog(t, "ECDSA "+stranger.Fingerprint, 5*time.Second)
	if _, errOut, code := runSSH(t, srv, key, kh); code != 255 || !strings.Contains(errOut, "Permission denied") {
		t.Fatalf("removed key: exit %d, stderr %q", code, errOut)
	}
}

func TestRestartKeepsHostKeyAndPort(t *testing.T) {
	t.Parallel()
	srv, key, kh := newServer(t, Options{Name: "hub"})
	port, pid, pubs := srv.Port, srv.PID(), srv.HostKeyPublicLines()

	start := time.Now()
	srv.Restart(t)
	t.Logf("Restart took %v", time.Since(start))
	if srv.Port != port || !slices.Equal(srv.HostKeyPublicLines(), pubs) {
		t.Fatalf("after Restart: port %d (was %d), host keys %q (were %q)", srv.Port, port, srv.HostKeyPublicLines(), pubs)
	}
	if srv.PID() == 0 || srv.PID() == pid {
		t.Fatalf("after Restart: PID %d, was %d", srv.PID(), pid)
	}
	// The known_hosts written before the restart still verifies the server.
	if out, errOut, code := runSSH(t, srv, key, kh); code != 0 || out != "hello\n" {
		t.Fatalf("after Restart: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if n := strings.Count(srv.Log(), "Server listening on 127.0.0.1 port "+strconv.Itoa(port)); n != 2 {
		t.Fatalf("log shows %d starts, want 2:\n%s", n, srv.Log())
	}
}

func TestStopEndsSessionsAndRestarts(t *testing.T) {
	t.Parallel()
	srv, key, kh := newServer(t, Options{Extra: "ClientAliveInterval 15\nClientAliveCountMax 3"})
	wait := startSession(t, srv, key, kh)
	srv.WaitLog(t, "Accepted publickey for root", 10*time.Second)

	pids := settledSessionPIDs(t, srv, 10*time.Second)
	t.Logf("session PIDs while connected: %v", pids)

	start := time.Now()
	srv.Stop()
	t.Logf("Stop took %v", time.Since(start))
	if err := wait(10 * time.Second); err == nil {
		t.Error("ssh -N exited 0 after Stop; want the connection dropped")
	}
	for _, pid := range pids {
		if st, ok := readStat(pid); ok && st.state != 'Z' {
			t.Errorf("session pid %d still alive after Stop (state %c)", pid, st.state)
		}
	}
	if srv.PID() != 0 || srv.SessionPIDs() != nil {
		t.Errorf("after Stop: PID %d, SessionPIDs %v", srv.PID(), srv.SessionPIDs())
	}
	if !strings.Contains(srv.Log(), "Received signal 15; terminating.") {
		t.Errorf("sshd did not log a SIGTERM shutdown:\n%s", srv.Log())
	}
	assertPortFree(t, srv.Port)

	srv.Restart(t)
	if out, errOut, code := runSSH(t, srv, key, kh); code != 0 || out != "hello\n" {
		t.Fatalf("after Stop and Restart: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// settledSessionPIDs waits until the session processes sshd forked for one
// login have settled: "Accepted publickey" is logged by the monitor while the
// pre-auth child may still be exiting, so a listing taken at that moment can
// name a process that is gone a moment later. It returns the first listing
// that is non-empty, names only live sshd processes, and is the same on two
// reads 50 ms apart.
func settledSessionPIDs(t *testing.T, srv *Server, timeout time.Duration) []int {
	t.Helper()
	var last []int
	var why string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		pids := srv.SessionPIDs()
		why = ""
		if len(pids) == 0 {
			why = "SessionPIDs is empty while ssh -N is connected"
		}
		for _, pid := range pids {
			comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if err != nil || !strings.HasPrefix(string(comm), "sshd") {
				why = fmt.Sprintf("session pid %d: comm %q, %v", pid, comm, err)
			}
		}
		if why == "" && slices.Equal(pids, last) {
			return pids
		}
		last = pids
	}
	t.Fatalf("session processes did not settle within %v: last listing %v: %s", timeout, last, why)
	return nil
}

func TestKillFreesPort(t *testing.T) {
	t.Parallel()
	srv, key, kh := newServer(t, Options{})
	wait := startSession(t, srv, key, kh, "exec sleep 300")
	// The remote command runs as a descendant of the listener too.
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pids = srv.SessionPIDs()
		if slices.ContainsFunc(pids, func(pid int) bool {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			return string(comm) == "sleep\n"
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sleep among SessionPIDs %v", pids)
		}
	}
	t.Logf("session PIDs running sleep: %v", pids)
	pid := srv.PID()

	start := time.Now()
	srv.Kill()
	t.Logf("Kill took %v", time.Since(start))
	if err := wait(10 * time.Second); err == nil {
		t.Error("ssh exited 0 after Kill")
	}
	for _, p := range append(pids, pid) {
		if st, ok := readStat(p); ok && st.state != 'Z' {
			t.Errorf("pid %d still alive after Kill (state %c)", p, st.state)
		}
	}
	assertPortFree(t, srv.Port)
	srv.Kill() // a second Kill (and the Cleanup's) is a no-op
}

func assertPortFree(t *testing.T, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("port %d not free: %v", port, err)
	}
	ln.Close()
}

func TestHostKeyTypes(t *testing.T) {
	t.Parallel()
	srv, key, kh := newServer(t, Options{HostKeyTypes: []string{"rsa", "ed25519"}})
	pubs := srv.HostKeyPublicLines()
	if len(pubs) != 2 || !strings.HasPrefix(pubs[0], "ssh-rsa ") || !strings.HasPrefix(pubs[1], "ssh-ed25519 ") {
		t.Fatalf("HostKeyPublicLines = %q", pubs)
	}
	lines := srv.KnownHostsLines("127.0.0.1", "localhost")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "[127.0.0.1]:"+strconv.Itoa(srv.Port)+" ssh-rsa AAAA") ||
		!strings.HasPrefix(lines[3], "[localhost]:"+strconv.Itoa(srv.Port)+" ssh-ed25519 AAAA") {
		t.Fatalf("KnownHostsLines = %q", lines)
	}
	for _, alg := range []string{"rsa-sha2-512", "ssh-ed25519"} {
		if out, errOut, code := runSSH(t, srv, key, kh, "-o", "HostKeyAlgorithms="+alg); code != 0 || out != "hello\n" {
			t.Errorf("HostKeyAlgorithms=%s: exit %d, stdout %q, stderr %q", alg, code, out, errOut)
		}
	}
}

func TestExtraOverridesDefaults(t *testing.T) {
	t.Parallel()
	srv, _, _ := newServer(t, Options{Extra: "MaxSessions 7\nClientAliveInterval 15\nMatch User nobody\n  AllowTcpForwarding no\n"})
	cfg, err := os.ReadFile(srv.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(cfg), "MaxSessions"); n != 1 {
		t.Errorf("sshd_config has %d MaxSessions lines, want 1:\n%s", n, cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sshd, _ := lookTool("sshd")
	out, err := exec.CommandContext(ctx, sshd, "-T", "-f", srv.ConfigPath()).CombinedOutput()
	if err != nil {
		t.Fatalf("sshd -T: %v\n%s", err, out)
	}
	for _, want := range []string{
		"maxsessions 7\n", "clientaliveinterval 15\n", "allowtcpforwarding yes\n", "gatewayports no\n",
		"permitrootlogin without-password\n", "port " + strconv.Itoa(srv.Port) + "\n",
		"authorizedkeysfile " + srv.AuthorizedKeysPath() + "\n", "maxstartups 200:30:1000\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("sshd -T lacks %q", want)
		}
	}
}

func TestPortRaceRetries(t *testing.T) {
	// Not parallel: it swaps pickPort.
	Require(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	calls := 0
	pickPort = func(t testing.TB, host string) int {
		calls++
		if calls <= 2 {
			return takenPort
		}
		return freePortOn(t, host)
	}
	defer func() { pickPort = freePortOn }()

	srv := Start(t, Options{})
	if calls != 3 || srv.Port == takenPort {
		t.Fatalf("pickPort called %d times, port %d (taken %d)", calls, srv.Port, takenPort)
	}
	if n := strings.Count(srv.Log(), "Address already in use"); n != 2 {
		t.Errorf("log shows %d bind failures, want 2:\n%s", n, srv.Log())
	}
}

func TestNetNS(t *testing.T) {
	Require(t)
	RequireTools(t, "ip")
	t.Parallel()
	ns := fmt.Sprintf("sshdtest-%d", os.Getpid())
	ipCmd := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ipCmd("netns", "add", ns); err != nil {
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() {
		if err := ipCmd("netns", "del", ns); err != nil {
			t.Error(err)
		}
	})
	if err := ipCmd("-n", ns, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}

	srv, key, kh := newServer(t, Options{NetNS: ns, Port: 22})
	if got := srv.KnownHostsLines()[0]; !strings.HasPrefix(got, "127.0.0.1 ssh-ed25519 AAAA") {
		t.Errorf("port-22 known_hosts line %q has brackets or a port", got)
	}
	// Port 22 in the namespace is not reachable from the host namespace.
	if c, err := net.DialTimeout("tcp", "127.0.0.1:22", 200*time.Millisecond); err == nil {
		c.Close()
		t.Log("note: something listens on host 127.0.0.1:22 too; not our sshd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ssh := SSHCommand(ctx, key, kh, "root@127.0.0.1", "echo hello")
	ipPath, _ := lookTool("ip")
	cmd := exec.CommandContext(ctx, ipPath, append([]string{"netns", "exec", ns}, ssh.Args...)...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.Output()
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("ssh inside netns: %v, stdout %q", err, out)
	}
	srv.Kill()
}

func TestRequireToolsSkips(t *testing.T) {
	t.Setenv(requireEnv, "")
	var inner *testing.T
	t.Run("missing", func(t *testing.T) {
		inner = t
		RequireTools(t, "sh", "rtunnel-no-such-tool")
		t.Error("RequireTools returned for a missing tool")
	})
	if !inner.Skipped() {
		t.Error("RequireTools did not skip")
	}
}

func TestKnownHostsLinePort22(t *testing.T) {
	s := &Server{Host: "127.0.0.1", Port: 22, hostPubs: []string{"ssh-ed25519 AAAAkey host-comment"}}
	got := s.KnownHostsLines("localhost", "::1")
	want := []string{"localhost ssh-ed25519 AAAAkey", "::1 ssh-ed25519 AAAAkey"}
	if !slices.Equal(got, want) {
		t.Errorf("KnownHostsLines = %q, want %q", got, want)
	}
	s.Port = 2222
	if got := s.KnownHostsLines(); !slices.Equal(got, []string{"[127.0.0.1]:2222 ssh-ed25519 AAAAkey"}) {
		t.Errorf("KnownHostsLines = %q", got)
	}
}

func TestReadStatSelf(t *testing.T) {
	st, ok := readStat(os.Getpid())
	if !ok || st.ppid != os.Getppid() || st.start == 0 || st.state == 'Z' {
		t.Fatalf("readStat(self) = %+v, %v; ppid want %d", st, ok, os.Getppid())
	}
}

func TestRenderConfig(t *testing.T) {
	cfg := renderConfig(2222, "127.0.0.1", []string{"/tmp/a b/hk"}, "/tmp/d/sshd.pid", "/tmp/50%/authorized_keys",
		"# comment\nSubsystem sftp /usr/lib/openssh/sftp-server\nMatch User x\n  MaxSessions 1\n")
	for _, want := range []string{
		"Port 2222\n", "ListenAddress 127.0.0.1\n", "HostKey \"/tmp/a b/hk\"\n", "PidFile /tmp/d/sshd.pid\n",
		"AuthorizedKeysFile /tmp/50%%/authorized_keys\n", "MaxSessions 50\n", "StrictModes no\n",
		"UsePAM no\n", "LogLevel VERBOSE\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "Subsystem sftp internal-sftp") {
		t.Errorf("default Subsystem not dropped for Extra's:\n%s", cfg)
	}
	if !strings.HasSuffix(cfg, "Match User x\n  MaxSessions 1\n") {
		t.Errorf("Extra not appended verbatim at the end:\n%s", cfg)
	}
}

func TestIPv6Loopback(t *testing.T) {
	t.Parallel()
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	srv, key, kh := newServer(t, Options{ListenAddr: "::1"})
	if srv.Addr != "[::1]:"+strconv.Itoa(srv.Port) {
		t.Errorf("Addr = %q", srv.Addr)
	}
	if out, errOut, code := runSSH(t, srv, key, kh); code != 0 || out != "hello\n" {
		t.Fatalf("ssh to ::1: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
