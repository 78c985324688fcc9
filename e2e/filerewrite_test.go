package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
)

// A key or known_hosts file that is missing or empty for a moment (an
// editor or config-management tool rewriting it non-atomically) while the
// tunnel reconnects does not stop the tunnel for good: the attempt is
// retried after backoff.max (2 s here) and the tunnel is back once the file
// is. Against a real sshd; the hub drops the session to force a reconnect.
func TestKeyAndKnownHostsRewrittenDuringReconnect(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	d := w.up(t, w.config(t, [][2]string{w.sshForward()}, ""))
	waitForwardUp(t, d, 0, 20*time.Second)

	cases := []struct {
		name    string
		path    string
		spoil   func(t *testing.T, path string)
		errText string
	}{
		{"key removed", w.tunnelKey.Private, func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, "cannot read: no such file or directory"},
		{"known_hosts truncated", w.knownHosts, func(t *testing.T, p string) {
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
		}, "is not in " + w.knownHosts},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			saved, err := os.ReadFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			from := d.Mark()
			c.spoil(t, c.path)
			for _, p := range w.hub.SessionPIDs() {
				syscall.Kill(p, syscall.SIGKILL)
			}
			// Two slow retries in a row, each waiting about backoff.max.
			last := from
			for i := range 2 {
				e, idx, _ := d.WaitFrom(last, 20*time.Second, "a retry after the file error", func(e daemontest.Entry) bool {
					return isRetryLine(e) && strings.Contains(e.Str("err"), c.errText)
				})
				last = idx + 1
				wait, err := time.ParseDuration(e.Str("retry_in"))
				if err != nil || wait < 1800*time.Millisecond || wait > 2200*time.Millisecond {
					t.Errorf("retry %d after %q waits %q, want backoff.max (2s +-10%%)", i, e.Str("err"), e.Str("retry_in"))
				}
			}
			if _, exited := d.Wait(0); exited {
				t.Fatalf("rtunnel exited (%d) on a file that was gone for a moment", d.ExitCode())
			}
			if err := os.WriteFile(c.path, saved, 0o600); err != nil {
				t.Fatal(err)
			}
			restored := time.Now()
			_, at := waitForwardUp(t, d, last, 10*time.Second)
			t.Logf("%s: forward up %v after the file was back", c.name, at.Sub(restored).Round(time.Millisecond))
			if took := at.Sub(restored); took > 3*time.Second {
				t.Errorf("forward up %v after the file was back, want within backoff.max + 1s", took)
			}
			w.echoLogin(t)
		})
	}
}
