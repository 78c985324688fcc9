package systemdtest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSystemd boots systemd 252 as PID 1 in a container, installs the
// package and walks the units through what an operator does with them. The
// steps share the container and run in order; each is a subtest so that a
// failing one names itself and the others still run. Subtests whose name
// ends in an issue item (_14.1 ...) pin fixes that may not be merged yet.
func TestSystemd(t *testing.T) {
	requireSystemdTest(t)
	began := time.Now()
	root := cachedRoot(t)
	deb := buildDeb(t)
	c := bootContainer(t, root, func(upper string) { prepareRoot(t, upper, deb) })
	t.Logf("container up %s after the test began (root %s, package %s)", time.Since(began).Round(time.Second), root, deb)
	setupInside(t, c)
	tr := &transcript{start: time.Now()}
	t.Cleanup(func() { tr.write(t) })

	c.writeConfig(t, "rtunnel", rtunnelConfig("5s", 9810, []tunnelSpec{hubTunnel}))
	steps := []struct {
		name string
		run  func(*testing.T, *container, *transcript)
	}{
		{"StartWaitsForReady", testStartWaitsForReady},
		{"SSHThroughTheTunnel", testSSHThroughTheTunnel},
		{"StatusDownReconnectingUp", testStatusDownReconnectingUp},
		{"ReloadUnchangedKeepsConnection", testReloadUnchanged},
		{"ReloadBrokenRefused", testReloadBroken},
		{"ReloadEightChangedNoWatchdogKill_10.3", testReloadEightChanged},
		{"WatchdogKillsStoppedProcess", testWatchdog},
		{"PermanentErrorExit78", testExit78},
		{"StopWithOpenConnections", testStop},
		{"TemplateInstance", testTemplate},
		{"SixtyTunnelsDownStatus_14.1", testSixtyDown},
		{"TwoHundredFailingForAMinute", testFlood},
		{"HardeningSystemCallKill", testHardening},
		{"MainUnitJournal_14.2", testMainUnitJournal},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) { s.run(t, c, tr) })
	}
	t.Logf("total %s", time.Since(began).Round(time.Second))
}

var hubTunnel = tunnelSpec{name: "hub", port: hubPort, remote: hubForward}

// testStartWaitsForReady holds the hub silent (its sshd SIGSTOPped: the
// kernel still accepts the TCP connection, no SSH banner comes) so the first
// attempt cannot finish: `systemctl start` must not return and the unit
// stays activating until the hub answers.
func testStartWaitsForReady(t *testing.T, c *container, tr *transcript) {
	c.sh(t, "systemctl kill -s SIGSTOP --kill-who=main rt-hub")
	type result struct {
		out    string
		status int
	}
	done := make(chan result, 1)
	go func() {
		// c.exec, not c.shStatus: no t.Log from a goroutine that may
		// outlive a failed step.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := c.exec(ctx, "systemctl start rtunnel")
		done <- result{out, exitStatus(err)}
	}()
	const silent = 5 * time.Second
	deadline := time.Now().Add(silent)
	for time.Now().Before(deadline) {
		select {
		case r := <-done:
			c.sh(t, "systemctl kill -s SIGCONT --kill-who=main rt-hub")
			t.Fatalf("systemctl start returned (status %d) while the hub was silent: %s", r.status, r.out)
		case <-time.After(500 * time.Millisecond):
		}
		if state := c.prop(t, "rtunnel", "ActiveState"); state != "activating" {
			t.Errorf("ActiveState=%s while the hub is silent, want activating", state)
		}
	}
	m := tr.record(t, c, "start, hub silent 5s", "rtunnel")
	if !strings.Contains(m["StatusText"], "hub: connecting") {
		t.Errorf("StatusText=%q while the first attempt hangs, want it to say hub: connecting", m["StatusText"])
	}
	resumed := time.Now()
	c.sh(t, "systemctl kill -s SIGCONT --kill-who=main rt-hub")
	select {
	case r := <-done:
		if r.status != 0 {
			t.Fatalf("systemctl start: status %d: %s", r.status, r.out)
		}
		t.Logf("systemctl start returned %s after the hub answered", time.Since(resumed).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("systemctl start did not return within 30s of the hub answering")
	}
	if v, ok := c.waitProp(t, "rtunnel", "StatusText", 10*time.Second, equals("1/1 tunnels up")); !ok {
		t.Errorf("StatusText=%q 10s after start, want %q", v, "1/1 tunnels up")
	}
	m = tr.record(t, c, "started", "rtunnel")
	if m["ActiveState"] != "active" || m["SubState"] != "running" {
		t.Errorf("after start: ActiveState=%s SubState=%s, want active running", m["ActiveState"], m["SubState"])
	}
}

// testSSHThroughTheTunnel logs in to the target sshd through the hub's
// forwarded port: the whole path an operator uses.
func testSSHThroughTheTunnel(t *testing.T, c *container, tr *transcript) {
	checkSSH(t, c, hubForward)
}

// checkSSH runs a command through the forward on port and checks that it
// ran as op on the target sshd.
func checkSSH(t *testing.T, c *container, port int) {
	t.Helper()
	out, status := c.sshThrough(t, port, `echo through-the-tunnel $(id -un) ${SSH_CONNECTION##* }`)
	if want := fmt.Sprintf("through-the-tunnel op %d\n", targetPort); status != 0 || out != want {
		t.Errorf("ssh through port %d: status %d, output %q, want %q", port, status, out, want)
	}
}

var (
	downRetry      = regexp.MustCompile(`^0/1 tunnels up; hub: down \(.+\), retry at [0-9]{2}:[0-9]{2}:[0-9]{2}$`) // refreshed on change only, so a clock time, not a countdown
	downConnecting = regexp.MustCompile(`^0/1 tunnels up; hub: down \(.+\), connecting$`)
)

// The firewall that holds the hub silent: its SYNs are dropped.
const dropHub = `nft -f - <<'NFT'
table inet rttest {
	chain input { type filter hook input priority 0; tcp dport 2200 drop; }
}
NFT`

// testStatusDownReconnectingUp: the hub stops (down, waiting to retry), comes
// back behind a firewall that drops its SYNs (reconnecting: an attempt that
// hangs), then answers again (up).
func testStatusDownReconnectingUp(t *testing.T, c *container, tr *transcript) {
	c.sh(t, "systemctl stop rt-hub")
	if v, ok := c.waitProp(t, "rtunnel", "StatusText", 15*time.Second, downRetry.MatchString); !ok {
		t.Errorf("StatusText=%q with the hub stopped, want %s", v, downRetry)
	}
	tr.record(t, c, "hub stopped", "rtunnel")

	c.sh(t, dropHub+"\nsystemctl start rt-hub")
	if v, ok := c.waitProp(t, "rtunnel", "StatusText", 15*time.Second, downConnecting.MatchString); !ok {
		t.Errorf("StatusText=%q while an attempt hangs, want %s", v, downConnecting)
	}
	tr.record(t, c, "hub back, SYNs dropped", "rtunnel")

	c.sh(t, "nft delete table inet rttest")
	if v, ok := c.waitProp(t, "rtunnel", "StatusText", 30*time.Second, equals("1/1 tunnels up")); !ok {
		t.Errorf("StatusText=%q after the hub answers again, want 1/1 tunnels up", v)
	}
	tr.record(t, c, "hub answers", "rtunnel")
	checkSSH(t, c, hubForward)
}

func equals(want string) func(string) bool { return func(v string) bool { return v == want } }
