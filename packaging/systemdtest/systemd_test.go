package systemdtest

import (
	"strings"
	"testing"
	"time"
)

// TestSystemd boots systemd 252 as PID 1 in a container, installs the
// package and walks the unit through what an operator does with it. The
// steps share the container and run in order; each is a subtest so that a
// failing one names itself and the others still run.
func TestSystemd(t *testing.T) {
	requireSystemdTest(t)
	began := time.Now()
	root := cachedRoot(t)
	deb := buildDeb(t)
	c := bootContainer(t, root, func(r string) { prepareRoot(t, r, deb) })
	t.Logf("container up after %s (root %s)", time.Since(began).Round(time.Second), root)
	setupInside(t, c)
	tr := &transcript{start: time.Now()}
	t.Cleanup(func() { tr.write(t) })

	c.writeConfig(t, "rtunnel", rtunnelConfig("5s", 9810, []tunnelSpec{{name: "hub", port: hubPort, remote: hubForward}}))
	t.Run("StartWaitsForReady", func(t *testing.T) { testStartWaitsForReady(t, c, tr) })
	t.Logf("total %s", time.Since(began).Round(time.Second))
}

// testStartWaitsForReady holds the hub silent (its sshd SIGSTOPped: the
// kernel still accepts the TCP connection, no SSH banner comes) so the first
// attempt cannot finish: `systemctl start` must not return and the unit
// stays activating until the hub answers.
func testStartWaitsForReady(t *testing.T, c *container, tr *transcript) {
	c.sh(t, "systemctl kill -s SIGSTOP --kill-who=main rt-hub")
	type result struct {
		out    string
		status int
		at     time.Time
	}
	done := make(chan result, 1)
	go func() {
		out, status := c.shStatus(t, 60*time.Second, "systemctl start rtunnel")
		done <- result{out, status, time.Now()}
	}()
	const silent = 5 * time.Second
	deadline := time.Now().Add(silent)
	for time.Now().Before(deadline) {
		select {
		case r := <-done:
			t.Fatalf("systemctl start returned (status %d) while the hub was silent: %s", r.status, r.out)
		case <-time.After(500 * time.Millisecond):
		}
		if state := c.prop(t, "rtunnel", "ActiveState"); state != "activating" {
			t.Errorf("ActiveState=%s while the hub is silent, want activating", state)
		}
	}
	m := tr.record(t, c, "start, hub silent", "rtunnel")
	if !strings.Contains(m["StatusText"], "connecting") {
		t.Errorf("StatusText=%q while the first attempt hangs, want it to say connecting", m["StatusText"])
	}
	resumed := time.Now()
	c.sh(t, "systemctl kill -s SIGCONT --kill-who=main rt-hub")
	select {
	case r := <-done:
		if r.status != 0 {
			t.Fatalf("systemctl start: status %d: %s", r.status, r.out)
		}
		t.Logf("systemctl start returned %s after the hub answered", r.at.Sub(resumed).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("systemctl start did not return within 30s of the hub answering")
	}
	m = tr.record(t, c, "started", "rtunnel")
	if m["ActiveState"] != "active" || m["SubState"] != "running" {
		t.Errorf("after start: ActiveState=%s SubState=%s, want active running", m["ActiveState"], m["SubState"])
	}
	if m["StatusText"] != "1/1 tunnels up" {
		t.Errorf("StatusText=%q, want %q", m["StatusText"], "1/1 tunnels up")
	}
	out, status := c.sshThrough(t, hubForward, `echo through-the-tunnel $(id -un) ${SSH_CONNECTION##* }`)
	if want := "through-the-tunnel op 2202\n"; status != 0 || out != want {
		t.Errorf("ssh through the tunnel: status %d, output %q, want %q", status, out, want)
	}
}
