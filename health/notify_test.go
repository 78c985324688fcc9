package health

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// notifySocket stands in for systemd: a real unixgram socket that
// NOTIFY_SOCKET points at for the rest of the test.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// recv reads one datagram, or reports false if none arrives within wait.
func recv(t *testing.T, conn *net.UnixConn, wait time.Duration) (string, bool) {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n]), true
}

func mustRecv(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	msg, ok := recv(t, conn, 5*time.Second)
	if !ok {
		t.Fatal("no datagram within 5s")
	}
	return msg
}

func TestNotifierSendsDatagrams(t *testing.T) {
	conn := notifySocket(t)
	n := NewNotifier()
	for _, err := range []error{
		n.Ready(),
		n.Status("1/2 tunnels up; hub: down (EOF\nmore)"),
		n.Reloading(),
		n.Reloading(),
		n.Watchdog(),
		n.Stopping(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := mustRecv(t, conn); got != "READY=1" {
		t.Errorf("datagram 1 = %q, want READY=1", got)
	}
	if got, want := mustRecv(t, conn), "STATUS=1/2 tunnels up; hub: down (EOF more)"; got != want {
		t.Errorf("datagram 2 = %q, want %q", got, want)
	}
	reload := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$`)
	var prev uint64
	for i := range 2 {
		got := mustRecv(t, conn)
		m := reload.FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("reload datagram = %q, want RELOADING=1\\nMONOTONIC_USEC=<usec>", got)
		}
		usec, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil || usec == 0 || usec < prev {
			t.Errorf("reload %d: MONOTONIC_USEC=%s (previous %d) is not a monotonic timestamp", i, m[1], prev)
		}
		prev = usec
	}
	if got := mustRecv(t, conn); got != "WATCHDOG=1" {
		t.Errorf("datagram 5 = %q, want WATCHDOG=1", got)
	}
	if got := mustRecv(t, conn); got != "STOPPING=1" {
		t.Errorf("datagram 6 = %q, want STOPPING=1", got)
	}
}

// Any STATUS text, however long, goes out in a datagram systemd accepts
// (under 4096 bytes); the cut is marked.
func TestNotifierStatusIsCut(t *testing.T) {
	conn := notifySocket(t)
	if err := NewNotifier().Status(strings.Repeat("a", 10000)); err != nil {
		t.Fatal(err)
	}
	got := mustRecv(t, conn)
	if len(got) >= 4096 || len(got) != len("STATUS=")+notifyMaxStatus || !strings.HasSuffix(got, "a...") {
		t.Errorf("a 10000-byte status went out as %d bytes ending %q", len(got), got[len(got)-8:])
	}
}

func TestNotifierWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := NewNotifier()
	var nilN *Notifier
	for _, err := range []error{n.Ready(), n.Status("x"), n.Reloading(), n.Stopping(), n.Watchdog(),
		nilN.Ready(), nilN.Status("x"), nilN.Stopping()} {
		if err != nil {
			t.Errorf("without NOTIFY_SOCKET: %v", err)
		}
	}
}

func TestNotifierReportsSendError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent.sock"))
	err := NewNotifier().Ready()
	if err == nil || !strings.Contains(err.Error(), "sd_notify READY") {
		t.Fatalf("Ready to a missing socket = %v", err)
	}
}

func TestRunWatchdogPingsOnlyWhileProgressing(t *testing.T) {
	conn := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "200000") // ping every 100ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	var healthy atomic.Bool
	healthy.Store(true)
	evaluated := make(chan bool, 1000)
	progress := func(ctx context.Context) bool {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("alive asked without a deadline")
		}
		v := healthy.Load()
		select {
		case evaluated <- v:
		default:
		}
		return v
	}
	// waitEvaluated returns once progress has answered want k times.
	waitEvaluated := func(want bool, k int) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for k > 0 {
			select {
			case v := <-evaluated:
				if v == want {
					k--
				}
			case <-deadline:
				t.Fatalf("progress() not called with result %v within 5s", want)
			}
		}
	}

	var logs bytes.Buffer // read only after RunWatchdog has returned
	n := NewNotifier()
	n.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.RunWatchdog(ctx, progress) }()

	for i := range 3 {
		if got := mustRecv(t, conn); got != "WATCHDOG=1" {
			t.Fatalf("ping %d = %q", i, got)
		}
	}

	healthy.Store(false)
	// Every ping sent before the first false answer is already queued: drain.
	waitEvaluated(false, 1)
	for {
		msg, ok := recv(t, conn, 50*time.Millisecond)
		if !ok {
			break
		}
		if msg != "WATCHDOG=1" {
			t.Fatalf("unexpected datagram %q", msg)
		}
	}
	waitEvaluated(false, 3) // three more ticks with no progress
	if msg, ok := recv(t, conn, 50*time.Millisecond); ok {
		t.Fatalf("got %q while progress() returned false", msg)
	}

	healthy.Store(true)
	if got := mustRecv(t, conn); got != "WATCHDOG=1" {
		t.Fatalf("ping after recovery = %q", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunWatchdog: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunWatchdog did not return within 5s of cancel")
	}
	for _, want := range []string{"did not answer; withholding pings", "answers again; resuming pings"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestRunWatchdogDisabled(t *testing.T) {
	for _, tc := range []struct {
		name, usec, pid string
		wantErr         bool
	}{
		{"unset", "", "", false},
		{"other process", "200000", strconv.Itoa(os.Getpid() + 1), false},
		{"malformed", "soon", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := notifySocket(t)
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			done := make(chan error, 1)
			go func() {
				done <- NewNotifier().RunWatchdog(context.Background(), func(context.Context) bool { return true })
			}()
			select {
			case err := <-done:
				if (err != nil) != tc.wantErr {
					t.Fatalf("RunWatchdog = %v, want error: %v", err, tc.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("RunWatchdog did not return at once with the watchdog disabled")
			}
			if msg, ok := recv(t, conn, 50*time.Millisecond); ok {
				t.Fatalf("sent %q with the watchdog disabled", msg)
			}
		})
	}
}
