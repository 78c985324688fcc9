package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// Test 1: the guide's Direct topology with its exact key line; real ssh
// through the tunnel; 64 MiB each way with equal sha256.
func TestDirectLoginAndTransfer(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	d := w.up(t, w.config(t, [][2]string{w.sshForward()}, ""))
	waitForwardUp(t, d, 0, 20*time.Second)
	if e, _, _ := d.WaitMsg(0, time.Second, "connected"); e["via"] != nil || e.Str("took") == "" {
		t.Errorf("connected line %v: want took, and no via without jump hosts", e)
	}
	w.echoLogin(t)

	const size = 64 << 20
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// master -> remote: the remote hashes what arrives.
	out, err := w.masterSSH(ctx, bytes.NewReader(data), "sha256sum | cut -d' ' -f1")
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("upload: remote sha256 %s, sent %s", got, want)
	}
	// remote -> master: the remote writes the same bytes back.
	out, err = w.masterSSH(ctx, bytes.NewReader(data), "cat > /tmp/rtunnel-e2e-$$ && cat /tmp/rtunnel-e2e-$$ && rm -f /tmp/rtunnel-e2e-$$")
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	got := sha256.Sum256(out)
	if len(out) != size || hex.EncodeToString(got[:]) != want {
		t.Fatalf("download: got %d bytes sha256 %x, want %d bytes %s", len(out), got, size, want)
	}
}

// Test 2: a forward outside permitlisten is refused, logged with the likely
// causes and retried; with exit_on_forward_failure each retry is a new
// session; without it the session and the working forward stay up.
func TestForwardRefusedExitOnForwardFailure(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	other := sshdtest.FreePort(t)
	d := w.up(t, w.config(t, [][2]string{{"localhost:" + strconv.Itoa(other), w.remote.Addr}},
		"    forward_retry: 300ms\n    forward_retry_for: 1m\n"))
	e, _, _ := d.WaitMsg(0, 20*time.Second, "forward refused; closing the session (exit_on_forward_failure)")
	for _, cause := range []string{"older session of this key", "permitlisten", "port-forwarding", "but the request was denied"} {
		if !strings.Contains(e.Str("err"), cause) {
			t.Errorf("refusal log %q does not mention %q", e.Str("err"), cause)
		}
	}
	// What the refusal tells the operator to look for in the hub's log.
	w.hub.WaitLog(t, fmt.Sprintf("to remote forward to host localhost port %d, but the request was denied", other), 5*time.Second)
	// Three new sessions, each retry at forward_retry (300 ms), not at backoff.
	var times []time.Time
	from := 0
	for i := 0; i < 3; i++ {
		// The first failure is a warning, the next ones of the same outage
		// are at debug level (logged once a minute otherwise).
		e, idx, at := d.WaitFrom(from, 10*time.Second, "a retry", isRetryLine)
		if e.Str("result") != "forward_refused" || e.Str("retry_in") != "300ms" {
			t.Fatalf("retry %d: result=%q retry_in=%q, want forward_refused / 300ms", i, e.Str("result"), e.Str("retry_in"))
		}
		times = append(times, at)
		from = idx + 1
	}
	if n := countMsg(d, "connected"); n < 3 {
		t.Errorf("exit_on_forward_failure: %d sessions, want a new session per retry (>=3)", n)
	}
	if gap := times[2].Sub(times[0]); gap > 4*time.Second {
		t.Errorf("two fast retries took %s", gap)
	}
	if _, alive := d.Wait(0); alive {
		t.Fatalf("rtunnel exited with %d on a refused forward", d.ExitCode())
	}
}

func TestForwardRefusedKeepsSession(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	other := sshdtest.FreePort(t)
	d := w.up(t, w.config(t, [][2]string{{"localhost:" + strconv.Itoa(other), w.remote.Addr}, w.sshForward()},
		"    exit_on_forward_failure: false\n    forward_retry: 200ms\n"))
	e, _, _ := d.WaitMsg(0, 20*time.Second, "forward refused; keeping the session and asking again")
	if !strings.Contains(e.Str("err"), "permitlisten") {
		t.Errorf("refusal log lacks the permitlisten hint: %q", e.Str("err"))
	}
	waitForwardUp(t, d, 0, 10*time.Second)
	// Re-requested on the live session.
	_, idx, _ := d.WaitMsg(0, 5*time.Second, "forward refused again")
	d.WaitMsg(idx+1, 5*time.Second, "forward refused again")
	w.echoLogin(t)
	if n := countMsg(d, "connected"); n != 1 {
		t.Errorf("%d sessions, want the first one kept", n)
	}
}

// A port held on the hub by a process that is not sshd: the refusal says
// the port is held, by an older session of this key or by another process
// (not only "an older session"), and what in the hub's log and ss output
// tells which. The hub's log says so.
func TestForwardRefusedPortHeldByAnotherProcess(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	// sshd binds localhost as 127.0.0.1 and ::1; one free address is
	// enough for it to report success, so both are held.
	for _, host := range []string{"127.0.0.1", "::1"} {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(w.tunnelPort)))
		if err != nil {
			t.Fatalf("holding the hub's port: %v", err)
		}
		defer ln.Close()
	}
	d := w.up(t, w.config(t, [][2]string{w.sshForward()}, ""))
	e, _, _ := d.WaitMsg(0, 20*time.Second, "forward refused; closing the session (exit_on_forward_failure)")
	for _, words := range []string{"Address already in use", "the port is held", "older session of this key", "another process on the hub", "ss -ltnp"} {
		if !strings.Contains(e.Str("err"), words) {
			t.Errorf("refusal log lacks %q:\n%s", words, e.Str("err"))
		}
	}
	w.hub.WaitLog(t, fmt.Sprintf("bind [127.0.0.1]:%d: Address already in use", w.tunnelPort), 5*time.Second)
}

func countMsg(d *daemontest.Daemon, msg string) int {
	n := 0
	for _, e := range d.Entries(0) {
		if e.Msg() == msg {
			n++
		}
	}
	return n
}

// Test 3: the port is held by another session (a real ssh -R with the same
// key); rtunnel holds it within 2 s after it is freed.
func TestPortHeldByStaleSession(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	holder := sshdtest.SSHCommand(ctx, w.tunnelKey, w.knownHosts, "-N", "-o", "ExitOnForwardFailure=yes",
		"-R", fmt.Sprintf("localhost:%d:%s", w.tunnelPort, w.remote.Addr), "-p", strconv.Itoa(w.hub.Port), "root@127.0.0.1")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	defer holder.Process.Kill()
	waitListening(t, w.tunnelPort, 10*time.Second)

	d := w.up(t, w.config(t, [][2]string{w.sshForward()}, ""))
	d.WaitMsg(0, 20*time.Second, "forward refused; closing the session (exit_on_forward_failure)")
	from := d.Mark()
	freed := time.Now()
	holder.Process.Kill()
	_, at := waitForwardUp(t, d, from, 10*time.Second)
	took := at.Sub(freed)
	t.Logf("port held again %s after the stale session was killed", took)
	if took > 2*time.Second {
		t.Errorf("took %s to hold the port after it was freed, want <= 2s", took)
	}
	w.echoLogin(t)
}

func waitListening(t *testing.T, port int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on 127.0.0.1:%d after %s", port, timeout)
}

// Test 4: the hub sshd is killed and restarted: the tunnel comes back.
func TestHubRestart(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	d := w.up(t, w.config(t, [][2]string{w.sshForward()}, ""))
	waitForwardUp(t, d, 0, 20*time.Second)
	w.echoLogin(t)
	from := d.Mark()
	w.hub.Kill()
	d.WaitMsg(from, 10*time.Second, "tunnel down; will retry")
	w.hub.Restart(t)
	restarted := time.Now()
	_, at := waitForwardUp(t, d, from, 20*time.Second)
	t.Logf("tunnel back %s after the hub listened again", at.Sub(restarted))
	w.echoLogin(t)
}

// Test 6: a hub whose session process is stopped (SIGSTOP) answers nothing:
// detected within interval x count_max + 1 s, reconnected once it answers.
func TestHubStopsAnswering(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	d := w.up(t, w.config(t, [][2]string{w.sshForward()}, ""))
	waitForwardUp(t, d, 0, 20*time.Second)
	pids := w.hub.SessionPIDs()
	if len(pids) == 0 {
		t.Fatal("no hub session processes")
	}
	from := d.Mark()
	stopped := time.Now()
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGSTOP)
	}
	defer func() {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGCONT)
		}
	}()
	e, _, at := d.WaitMsg(from, 10*time.Second, "tunnel down; will retry")
	took := at.Sub(stopped)
	t.Logf("dead link detected after %s: %s", took, e.Str("err"))
	if !strings.Contains(e.Str("err"), "keepalive") {
		t.Errorf("down reason %q, want the keepalive timeout", e.Str("err"))
	}
	if limit := 3*time.Second + time.Second; took > limit {
		t.Errorf("detection took %s, want <= interval x count_max + 1s = %s", took, limit)
	}
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGCONT)
	}
	waitForwardUp(t, d, from, 20*time.Second)
	w.echoLogin(t)
}

// Test 7: the local target down, then up: the channel is closed, the tunnel
// stays up and works again.
func TestLocalTargetDownThenUp(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	localPort := sshdtest.FreePort(t)
	local := "127.0.0.1:" + strconv.Itoa(localPort)
	d := w.up(t, w.config(t, [][2]string{{"localhost:" + strconv.Itoa(w.tunnelPort), local}}, ""))
	waitForwardUp(t, d, 0, 20*time.Second)
	hubSide := "127.0.0.1:" + strconv.Itoa(w.tunnelPort)

	// Nothing listens locally: the connection is closed quickly, no data.
	start := time.Now()
	c, err := net.DialTimeout("tcp", hubSide, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	c.Close()
	if n != 0 || err == nil {
		t.Fatalf("read through a tunnel to a dead target: n=%d err=%v, want a closed connection", n, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("dead local target took %s to close the connection", took)
	}
	d.WaitMsg(0, 5*time.Second, "local target refused a forwarded connection; the tunnel stays up")

	serveLocal(t, local, func(c net.Conn) { io.WriteString(c, "target is back\n") })
	c, err = net.DialTimeout("tcp", hubSide, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "target is back\n" {
		t.Fatalf("after the target came back: %q, %v", got, err)
	}
	if n := countMsg(d, "connected"); n != 1 {
		t.Errorf("%d sessions: the tunnel should have stayed up", n)
	}
}

// Test 8: half-close: a client that sends, shuts its write side and waits
// gets the reply.
func TestHalfClose(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	srv := serveLocal(t, "", func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c) // until the client's EOF
		fmt.Fprintf(c, "got %d bytes\n", n)
	})
	d := w.up(t, w.config(t, [][2]string{{"localhost:" + strconv.Itoa(w.tunnelPort), srv.Addr()}}, ""))
	waitForwardUp(t, d, 0, 20*time.Second)
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(w.tunnelPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	payload := bytes.Repeat([]byte("x"), 300000)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "got 300000 bytes\n" {
		t.Fatalf("reply after half-close: %q", got)
	}
}

// Test 9: SIGTERM: exit 0 within grace + 1 s; the hub's port is free.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	// An open connection that never finishes: the grace (2 s) must end it.
	srv := serveLocal(t, "", func(c net.Conn) { io.Copy(io.Discard, c) })
	d := w.up(t, w.config(t, [][2]string{{"localhost:" + strconv.Itoa(w.tunnelPort), srv.Addr()}}, ""))
	waitForwardUp(t, d, 0, 20*time.Second)
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(w.tunnelPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hold")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d.Signal(syscall.SIGTERM)
	code, ok := d.Wait(2*time.Second + time.Second + 2*time.Second)
	took := time.Since(start)
	if !ok {
		t.Fatalf("rtunnel still running %s after SIGTERM", took)
	}
	if code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	if took > 3*time.Second {
		t.Errorf("exit took %s, want <= grace (2s) + 1s", took)
	}
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(w.tunnelPort), time.Second); err == nil {
		t.Errorf("the hub still listens on the tunnel port after rtunnel stopped")
	}
}
