package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/rtunnel/rtunnel/internal/tcptest"
)

// The forward kinds beyond host:port -> host:port (issue 11): a Unix
// socket on the hub, a port the hub picks, and ssh -L. Each is checked
// against the same hub with OpenSSH's ssh doing the same thing first.

const blockPermit = "255.255.255.255:9" // the guide's "nothing" for permitlisten/permitopen

// taggedEcho answers each connection with tag followed by everything it
// read, after the client's EOF: a reply proves the data went to this
// target and that half-close came through.
func taggedEcho(tag string) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		data, err := io.ReadAll(c)
		if err != nil {
			return
		}
		_, _ = c.Write(append([]byte(tag), data...))
	}
}

// roundTrip sends msg, half-closes, and returns the whole answer.
func roundTrip(t *testing.T, network, addr string, msg []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write to %s: %v", addr, err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatalf("half-close %s: %v", addr, err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return got
}

func expectReply(t *testing.T, what string, got []byte, tag string, msg []byte) {
	t.Helper()
	if want := append([]byte(tag), msg...); !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes %.40q, want %d bytes %.40q", what, len(got), got, len(want), want)
	}
}

// openSSH starts the real ssh with the tunnel key against the hub and
// returns it with its stderr; the test's end kills it.
func (w *direct) openSSH(t *testing.T, args ...string) (*exec.Cmd, *lockedLog) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	base := []string{"-N", "-o", "ExitOnForwardFailure=yes", "-p", strconv.Itoa(w.hub.Port)}
	cmd := sshdtest.SSHCommand(ctx, w.tunnelKey, w.knownHosts, append(append(base, args...), "root@127.0.0.1")...)
	stderr := &lockedLog{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	return cmd, stderr
}

// lockedLog is ssh's stderr, read while ssh writes it.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor polls cond (a measurement of something outside the process,
// bounded) until it holds.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A remote forward to a Unix socket on the hub: ssh -R /path:host:port
// binds it first and dies, leaving the socket file; rtunnel then binds the
// same path (StreamLocalBindUnlink yes) although the key's permitlisten
// names only a TCP port: permitlisten does not govern sockets.
func TestSocketForwardLikeSSH(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{hubExtra: "AllowStreamLocalForwarding yes\nStreamLocalBindUnlink yes\n"})
	sshTarget := serveLocal(t, "", taggedEcho("ssh:"))
	rtTarget := serveLocal(t, "", taggedEcho("rtunnel:"))
	sock := filepath.Join(w.dir, "remote-7.sock")
	msg := []byte("through a socket on the hub")

	ssh, _ := w.openSSH(t, "-R", sock+":"+sshTarget.Addr())
	waitFor(t, 15*time.Second, "ssh -R "+sock, func() bool { _, err := os.Stat(sock); return err == nil })
	expectReply(t, "ssh -R socket", roundTrip(t, "unix", sock, msg), "ssh:", msg)
	_ = ssh.Process.Kill()
	_ = ssh.Wait()

	d := w.up(t, w.config(t, [][2]string{{sock, rtTarget.Addr()}}, ""))
	e, _, _ := d.WaitMsg(0, 20*time.Second, "forward up")
	if e.Str("forward") != sock+"->"+rtTarget.Addr() {
		t.Errorf("forward up for %q, want the socket path as its label", e.Str("forward"))
	}
	expectReply(t, "rtunnel socket forward", roundTrip(t, "unix", sock, msg), "rtunnel:", msg)
}

// Without AllowStreamLocalForwarding the hub refuses the socket for ssh
// and rtunnel alike; rtunnel's message names the sshd_config option.
func TestSocketForwardRefusedLikeSSH(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{hubExtra: "AllowStreamLocalForwarding no\n"})
	target := serveLocal(t, "", taggedEcho(""))
	sock := filepath.Join(w.dir, "refused.sock")

	ssh, stderr := w.openSSH(t, "-R", sock+":"+target.Addr())
	done := make(chan error, 1)
	go func() { done <- ssh.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("ssh -R to a refused socket did not exit (ExitOnForwardFailure=yes)")
	}
	if ssh.ProcessState.ExitCode() != 255 || !strings.Contains(stderr.String(), "remote port forwarding failed for listen path "+sock) {
		t.Fatalf("ssh exit %d, stderr %q: want 255 and the refusal", ssh.ProcessState.ExitCode(), stderr.String())
	}

	d := w.up(t, w.config(t, [][2]string{{sock, target.Addr()}}, ""))
	e, _, _ := d.WaitMsg(0, 20*time.Second, "forward refused; closing the session (exit_on_forward_failure)")
	for _, want := range []string{"refused remote socket forward " + sock, "AllowStreamLocalForwarding", "StreamLocalBindUnlink", "permitlisten does not govern sockets"} {
		if !strings.Contains(e.Str("err"), want) {
			t.Errorf("refusal %q lacks %q", e.Str("err"), want)
		}
	}
}

var allocatedRE = regexp.MustCompile(`Allocated port (\d+) for remote forward`)

// remote: localhost:0: the hub picks the port, as ssh -R 0:host:port; the
// key needs permitlisten="localhost:*". rtunnel logs the port, exports it,
// shows it in status, and writes RUNTIME_DIRECTORY/<tunnel>.ports; the
// hub's forwarded-tcpip channels carry that port and are matched to the
// forward.
func TestDynamicPortLikeSSH(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	w.hub.SetAuthorizedKeys(t, []string{guideLine("localhost:*", blockPermit, w.tunnelKey.PublicLine)})
	sshTarget := serveLocal(t, "", taggedEcho("ssh:"))
	rtTarget := serveLocal(t, "", taggedEcho("rtunnel:"))
	msg := []byte("to a port the hub picked")

	_, stderr := w.openSSH(t, "-R", "0:"+sshTarget.Addr())
	var sshPort string
	waitFor(t, 15*time.Second, "ssh's Allocated port line", func() bool {
		m := allocatedRE.FindStringSubmatch(stderr.String())
		if m != nil {
			sshPort = m[1]
		}
		return m != nil
	})
	expectReply(t, "ssh -R 0", roundTrip(t, "tcp", "127.0.0.1:"+sshPort, msg), "ssh:", msg)

	runtimeDir := t.TempDir()
	cfg := w.config(t, [][2]string{{"localhost:0", rtTarget.Addr()}}, "")
	metricsAddr := withMetrics(t, cfg)
	d := daemontest.Start(t, []string{"up", "--config", cfg}, "RUNTIME_DIRECTORY="+runtimeDir)
	e, _, _ := d.WaitMsg(0, 20*time.Second, "forward up")
	label := "localhost:0->" + rtTarget.Addr()
	port, _ := e["allocated_port"].(float64)
	if e.Str("forward") != label || port < 1 || port > 65535 || strconv.Itoa(int(port)) == sshPort {
		t.Fatalf("forward up %v: want %s with an allocated_port of its own (ssh holds %s)", e, label, sshPort)
	}
	p := strconv.Itoa(int(port))
	expectReply(t, "rtunnel port-0 forward", roundTrip(t, "tcp", "127.0.0.1:"+p, msg), "rtunnel:", msg)

	portsFile := filepath.Join(runtimeDir, "hub.ports")
	data, err := os.ReadFile(portsFile)
	if err != nil || string(data) != label+" "+p+"\n" {
		t.Errorf("%s: %q (%v), want %q", portsFile, data, err, label+" "+p+"\n")
	}
	if fi, err := os.Stat(portsFile); err == nil && fi.Mode().Perm() != 0o644 {
		t.Errorf("%s mode %v, want 0644: scripts of other users read it", portsFile, fi.Mode().Perm())
	}
	metric := fmt.Sprintf(`rtunnel_forward_allocated_port{forward=%q,tunnel="hub"}`, label)
	waitMetric(t, metricsAddr, metric, port, 5*time.Second)
	out, err := exec.Command(daemontest.Binary(t), "status", "--config", cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), label+" (port "+p+")") {
		t.Errorf("rtunnel status: %v\n%s\nwant the forward with (port %s)", err, out, p)
	}

	// A clean stop gives the port back, and the file goes.
	d.Signal(os.Interrupt)
	if code, ok := d.Wait(15 * time.Second); !ok || code != 0 {
		t.Fatalf("stop: exit %d (exited %v)", code, ok)
	}
	if _, err := os.Stat(portsFile); !os.IsNotExist(err) {
		t.Errorf("%s still there after stop (%v): a script would read a port nobody holds", portsFile, err)
	}
	waitFor(t, 10*time.Second, "the hub freeing port "+p, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+p)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// ssh -L as local_forwards: rtunnel listens here and the hub connects to
// the target (direct-tcpip), within the key's permitopen; half-close,
// metrics and max_connections as for remote forwards. A target outside
// permitopen is refused for ssh and rtunnel alike, and the tunnel stays up.
func TestLocalForwardLikeSSH(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	target := serveLocal(t, "", taggedEcho("db:"))
	w.hub.SetAuthorizedKeys(t, []string{guideLine("localhost:"+strconv.Itoa(w.tunnelPort), target.Addr(), w.tunnelKey.PublicLine)})
	msg := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: more than a channel window

	sshListen := "127.0.0.1:" + strconv.Itoa(sshdtest.FreePort(t))
	w.openSSH(t, "-L", sshListen+":"+target.Addr())
	waitFor(t, 15*time.Second, "ssh -L listening", func() bool {
		c, err := net.Dial("tcp", sshListen)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	expectReply(t, "ssh -L", roundTrip(t, "tcp", sshListen, msg), "db:", msg)

	listen := "127.0.0.1:" + strconv.Itoa(sshdtest.FreePort(t))
	forbidden := "127.0.0.1:" + strconv.Itoa(sshdtest.FreePort(t))
	forbiddenTarget := "127.0.0.1:9"
	extra := fmt.Sprintf("    max_connections: 2\n    local_forwards:\n      - {listen: %q, connect: %q}\n      - {listen: %q, connect: %q}\n",
		listen, target.Addr(), forbidden, forbiddenTarget)
	cfg := w.config(t, [][2]string{w.sshForward()}, extra)
	metricsAddr := withMetrics(t, cfg)
	d := w.up(t, cfg)
	label := "L:" + listen + "->" + target.Addr()
	d.WaitFrom(0, 20*time.Second, "forward up "+label, func(e daemontest.Entry) bool {
		return e.Msg() == "forward up" && e.Str("forward") == label && e.Str("listen") == listen
	})
	expectReply(t, "rtunnel local forward", roundTrip(t, "tcp", listen, msg), "db:", msg)
	waitMetric(t, metricsAddr, fmt.Sprintf(`rtunnel_connections_total{forward=%q,tunnel="hub"}`, label), 1, 5*time.Second)
	m := scrape(t, metricsAddr)
	if in, out := m[fmt.Sprintf(`rtunnel_bytes_total{direction="in",forward=%q,tunnel="hub"}`, label)],
		m[fmt.Sprintf(`rtunnel_bytes_total{direction="out",forward=%q,tunnel="hub"}`, label)]; int(out) != len(msg) || int(in) != len(msg)+3 {
		t.Errorf("bytes in %v out %v, want %d and %d", in, out, len(msg)+3, len(msg))
	}
	if m[fmt.Sprintf(`rtunnel_forward_up{forward=%q,tunnel="hub"}`, label)] != 1 {
		t.Errorf("rtunnel_forward_up for %s is not 1", label)
	}

	// Outside permitopen: ssh gets "administratively prohibited", rtunnel
	// closes the client's connection and says why; the tunnel stays up.
	sshForbidden := "127.0.0.1:" + strconv.Itoa(sshdtest.FreePort(t))
	_, ssh2Err := w.openSSH(t, "-L", sshForbidden+":"+forbiddenTarget)
	waitFor(t, 15*time.Second, "ssh -L "+sshForbidden+" listening", func() bool {
		c, err := net.Dial("tcp", sshForbidden)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	waitFor(t, 10*time.Second, "ssh's refusal", func() bool { return strings.Contains(ssh2Err.String(), "administratively prohibited") })
	// rtunnel closes the client's connection unread: EOF or a reset.
	fc, err := net.DialTimeout("tcp", forbidden, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	_ = fc.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = fc.Write([]byte("x"))
	if n, err := fc.Read(make([]byte, 1)); n != 0 || (err != io.EOF && !errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("a refused target: read %d, %v; want the connection closed", n, err)
	}
	e, _, _ := d.WaitMsg(0, 10*time.Second, "the server refused a local forward's connection to its target; the tunnel stays up "+
		"(administratively prohibited: the key's permitopen does not allow it; connect failed: nothing answers there as the server sees it)")
	if !strings.Contains(e.Str("err"), "administratively prohibited") {
		t.Errorf("refusal err %q: want sshd's administratively prohibited, as ssh printed: %s", e.Str("err"), ssh2Err)
	}
	forbiddenLabel := "L:" + forbidden + "->" + forbiddenTarget
	waitMetric(t, metricsAddr, fmt.Sprintf(`rtunnel_connections_rejected_total{forward=%q,reason="target_refused",tunnel="hub"}`, forbiddenLabel), 1, 5*time.Second)
	w.echoLogin(t) // the remote forward of the same session still works

	// max_connections counts local forward connections too: two held
	// open, the third is closed at once and counted. The login's
	// connection must have ended first: it shares the limit.
	remoteLabel := w.sshForward()[0] + "->" + w.sshForward()[1]
	waitMetric(t, metricsAddr, fmt.Sprintf(`rtunnel_connections_active{forward=%q,tunnel="hub"}`, remoteLabel), 0, 10*time.Second)
	for range 2 { // held open until the test ends
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitMetric(t, metricsAddr, fmt.Sprintf(`rtunnel_connections_active{forward=%q,tunnel="hub"}`, label), 2, 5*time.Second)
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := bufio.NewReader(c).Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("third connection over max_connections 2: read %d, %v; want EOF at once", n, err)
	}
	waitMetric(t, metricsAddr, fmt.Sprintf(`rtunnel_connections_rejected_total{forward=%q,reason="max_connections",tunnel="hub"}`, label), 1, 5*time.Second)
}

// ExitOnForwardFailure for the local bind: with the port held here, ssh
// -o ExitOnForwardFailure=yes -L exits 255, and rtunnel (true by default)
// ends the session and retries; once the port is free the forward comes
// up. With false the session stays up and the bind is retried on it.
func TestLocalBindFailureLikeSSH(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	target := serveLocal(t, "", taggedEcho("db:"))
	w.hub.SetAuthorizedKeys(t, []string{guideLine("localhost:"+strconv.Itoa(w.tunnelPort), target.Addr(), w.tunnelKey.PublicLine)})
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	held := holder.Addr().String()

	ssh, stderr := w.openSSH(t, "-L", held+":"+target.Addr())
	done := make(chan error, 1)
	go func() { done <- ssh.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("ssh -L on a held port did not exit (ExitOnForwardFailure=yes)")
	}
	if ssh.ProcessState.ExitCode() != 255 || !strings.Contains(stderr.String(), "Could not request local forwarding") {
		t.Fatalf("ssh exit %d, stderr %q: want 255 and the bind failure", ssh.ProcessState.ExitCode(), stderr.String())
	}

	extra := fmt.Sprintf("    forward_retry: 200ms\n    local_forwards: [{listen: %q, connect: %q}]\n", held, target.Addr())
	d := w.up(t, w.config(t, [][2]string{w.sshForward()}, extra))
	e, i, _ := d.WaitMsg(0, 20*time.Second, "local forward cannot listen; closing the session (exit_on_forward_failure)")
	if !strings.Contains(e.Str("err"), "address already in use") || !strings.Contains(e.Str("err"), "ss -ltnp") {
		t.Errorf("bind failure %q: want the cause and how to find the holder", e.Str("err"))
	}
	d.WaitFrom(i, 10*time.Second, "a retry", func(e daemontest.Entry) bool {
		return e.Msg() == "tunnel down; will retry" && e.Str("result") == "forward_refused"
	})
	holder.Close()
	label := "L:" + held + "->" + target.Addr()
	d.WaitFrom(i, 20*time.Second, "forward up "+label, func(e daemontest.Entry) bool { return e.Msg() == "forward up" && e.Str("forward") == label })
	msg := []byte("after the port was freed")
	expectReply(t, "local forward after retry", roundTrip(t, "tcp", held, msg), "db:", msg)

	// exit_on_forward_failure: false keeps the session and binds later.
	d.Signal(os.Interrupt)
	if code, ok := d.Wait(15 * time.Second); !ok || code != 0 {
		t.Fatalf("stop: exit %d (exited %v)", code, ok)
	}
	holder2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder2.Close()
	held2 := holder2.Addr().String()
	extra2 := fmt.Sprintf("    exit_on_forward_failure: false\n    forward_retry: 200ms\n    local_forwards: [{listen: %q, connect: %q}]\n", held2, target.Addr())
	d2 := w.up(t, w.config(t, [][2]string{w.sshForward()}, extra2))
	_, j, _ := d2.WaitMsg(0, 20*time.Second, "local forward cannot listen; keeping the session and trying again")
	d2.WaitFrom(j, 20*time.Second, "the remote forward up on the same session", func(e daemontest.Entry) bool {
		return e.Msg() == "forward up" && !strings.HasPrefix(e.Str("forward"), "L:")
	})
	holder2.Close()
	label2 := "L:" + held2 + "->" + target.Addr()
	d2.WaitFrom(j, 20*time.Second, "forward up "+label2, func(e daemontest.Entry) bool { return e.Msg() == "forward up" && e.Str("forward") == label2 })
	expectReply(t, "local forward bound on the live session", roundTrip(t, "tcp", held2, msg), "db:", msg)
	for _, e := range d2.Entries(0) {
		if e.Msg() == "tunnel down; will retry" || e.Msg() == "disconnected" {
			t.Errorf("the session ended (%v): exit_on_forward_failure false keeps it", e)
		}
	}
}

// ssh -L with socket paths on both sides: rtunnel listens on a socket here
// and the hub connects to a socket (direct-streamlocal@openssh.com), as
// ssh -L /here.sock:/there.sock does with the same hub. sshd checks such a
// path against the key's permitopen list, which can only hold host:port:
// any permitopen (the guide's line has the blocking one) refuses every
// socket target, for ssh and rtunnel alike, so this key line has none. A
// socket file left by an earlier run is replaced.
func TestLocalForwardSocketsLikeSSH(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	w.hub.SetAuthorizedKeys(t, []string{fmt.Sprintf(`restrict,port-forwarding,permitlisten="localhost:%d",command="/bin/false" %s`,
		w.tunnelPort, w.tunnelKey.PublicLine)})
	hubSock := filepath.Join(w.dir, "hub-target.sock")
	ln, err := net.Listen("unix", hubSock)
	if err != nil {
		t.Fatal(err)
	}
	echo := taggedEcho("hub-socket:")
	tcptest.Serve(t, ln, func(_ int, c net.Conn) { echo(c) })
	msg := []byte("socket to socket")

	sshSock := filepath.Join(w.dir, "ssh-local.sock")
	w.openSSH(t, "-L", sshSock+":"+hubSock)
	waitFor(t, 15*time.Second, "ssh -L "+sshSock, func() bool { _, err := os.Stat(sshSock); return err == nil })
	expectReply(t, "ssh -L socket", roundTrip(t, "unix", sshSock, msg), "hub-socket:", msg)

	// A stale socket file where rtunnel will listen: the previous run's.
	localSock := filepath.Join(w.dir, "rtunnel-local.sock")
	stale, err := net.Listen("unix", localSock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	extra := fmt.Sprintf("    local_forwards: [{listen: %q, connect: %q}]\n", localSock, hubSock)
	d := w.up(t, w.config(t, [][2]string{w.sshForward()}, extra))
	label := "L:" + localSock + "->" + hubSock
	d.WaitFrom(0, 20*time.Second, "forward up "+label, func(e daemontest.Entry) bool { return e.Msg() == "forward up" && e.Str("forward") == label })
	expectReply(t, "rtunnel local socket forward", roundTrip(t, "unix", localSock, msg), "hub-socket:", msg)
}
