package systemdtest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// testReloadUnchanged: a reload with the same file keeps the tunnel and the
// connection open through it.
func testReloadUnchanged(t *testing.T, c *container, tr *transcript) {
	c.openConn(t, "rt-conn-keep", hubForward)
	before := c.show(t, "rtunnel", "MainPID", "NRestarts")
	cur := c.cursor(t)
	if out, status := c.shStatus(t, 30*time.Second, "systemctl reload rtunnel"); status != 0 {
		t.Fatalf("systemctl reload: status %d: %s", status, out)
	}
	if out, ok := c.waitJournal(t, cur, "-u rtunnel _COMM=rtunnel", "kept=1", 15*time.Second); !ok {
		t.Fatalf("no reload line with kept=1 in the journal:\n%s", out)
	}
	m := tr.record(t, c, "reload, unchanged", "rtunnel")
	assertSameProcess(t, before, m)
	if state := c.prop(t, "rt-conn-keep", "ActiveState"); state != "active" {
		t.Errorf("the open connection ended on an unchanged reload (rt-conn-keep %s)", state)
	}
}

// testReloadBroken: a file that does not parse makes the reload fail
// visibly; the process and its tunnels carry on with the old config.
func testReloadBroken(t *testing.T, c *container, tr *transcript) {
	good := rtunnelConfig("5s", 9810, []tunnelSpec{hubTunnel})
	before := c.show(t, "rtunnel", "MainPID", "NRestarts")
	c.writeConfig(t, "rtunnel", good+"    no_such_key: 1\n")
	out, status := c.shStatus(t, 30*time.Second, "systemctl reload rtunnel")
	if status == 0 {
		t.Errorf("systemctl reload with a broken file: status 0, want a failure\n%s", out)
	}
	m := tr.record(t, c, "reload, broken file", "rtunnel")
	if m["ReloadResult"] != "exit-code" || m["ActiveState"] != "active" {
		t.Errorf("ReloadResult=%s ActiveState=%s, want exit-code active", m["ReloadResult"], m["ActiveState"])
	}
	assertSameProcess(t, before, m)
	if state := c.prop(t, "rt-conn-keep", "ActiveState"); state != "active" {
		t.Errorf("the open connection ended on a refused reload (rt-conn-keep %s)", state)
	}
	checkSSH(t, c, hubForward)
	c.writeConfig(t, "rtunnel", good)
}

// eightTunnels is the hub tunnel plus eight more; their keepalive differs
// between two versions of the file, which restarts all eight on reload.
func eightTunnels(keepalive string) string {
	tunnels := []tunnelSpec{hubTunnel}
	for i := 1; i <= 8; i++ {
		tunnels = append(tunnels, tunnelSpec{name: fmt.Sprintf("r%d", i), port: hubPort, remote: 2310 + i, keepalive: keepalive})
	}
	return rtunnelConfig("5s", 9810, tunnels)
}

// testReloadEightChanged: eight changed tunnels, each with an open
// connection that lives past shutdown_grace (5 s). Stopping them one after
// another on the goroutine that feeds the watchdog took 8 x 5 s > 30 s and
// got the service killed (issue 10.3 / 14.3).
func testReloadEightChanged(t *testing.T, c *container, tr *transcript) {
	c.writeConfig(t, "rtunnel", eightTunnels("10s"))
	cur := c.cursor(t)
	if out, status := c.shStatus(t, 30*time.Second, "systemctl reload rtunnel"); status != 0 {
		t.Fatalf("systemctl reload (adding 8 tunnels): status %d: %s", status, out)
	}
	if out, ok := c.waitJournal(t, cur, "-u rtunnel _COMM=rtunnel", "added=8", 15*time.Second); !ok {
		t.Fatalf("no reload line with added=8:\n%s", out)
	}
	if v, ok := c.waitProp(t, "rtunnel", "StatusText", 20*time.Second, equals("9/9 tunnels up")); !ok {
		t.Fatalf("StatusText=%q after adding 8 tunnels, want 9/9 tunnels up", v)
	}
	for i := 1; i <= 8; i++ {
		c.openConn(t, fmt.Sprintf("rt-conn-r%d", i), 2310+i)
	}
	before := tr.record(t, c, "8 tunnels added, 8+1 connections open", "rtunnel")

	c.writeConfig(t, "rtunnel", eightTunnels("11s"))
	cur = c.cursor(t)
	began := time.Now()
	if out, status := c.shStatus(t, 60*time.Second, "systemctl reload rtunnel"); status != 0 {
		t.Errorf("systemctl reload (8 changed): status %d: %s", status, out)
	}
	// Done one after another, the reload needs 8 x 5 s; the watchdog fires
	// after 30 s. Wait for the reload's line, or the end of the process.
	var ok bool
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if _, ok = c.journalHas(t, cur, "-u rtunnel _COMM=rtunnel", "restarted=8"); ok {
			break
		}
		if c.prop(t, "rtunnel", "MainPID") != before["MainPID"] {
			break
		}
	}
	took := time.Since(began)
	m := tr.record(t, c, "reload, 8 changed with open connections", "rtunnel")
	if !ok {
		t.Errorf("no reload line with restarted=8 within 60s")
	} else {
		t.Logf("reload of 8 changed tunnels took %s", took.Round(100*time.Millisecond))
	}
	if strings.Contains(c.journalSince(t, cur, "_PID=1"), "Watchdog timeout") {
		t.Errorf("the watchdog killed rtunnel during the reload (Result=%s)", m["Result"])
	}
	assertSameProcess(t, before, m)
	// Also after a watchdog kill: the next steps need the service up.
	c.waitRunning(t, "rtunnel", "9/9 tunnels up")
	for i := 1; i <= 8; i++ {
		unit := fmt.Sprintf("rt-conn-r%d", i)
		if state := c.prop(t, unit, "ActiveState"); state == "active" {
			t.Errorf("%s still open: tunnel r%d was not restarted", unit, i)
		}
		checkSSH(t, c, 2310+i)
	}
	if state := c.prop(t, "rt-conn-keep", "ActiveState"); state != "active" {
		t.Errorf("the connection through the unchanged tunnel ended (rt-conn-keep %s)", state)
	}
}

// assertSameProcess fails when the main process changed or was restarted
// between two snapshots of the unit.
func assertSameProcess(t *testing.T, before, after map[string]string) {
	t.Helper()
	if before["MainPID"] != after["MainPID"] || before["NRestarts"] != after["NRestarts"] {
		t.Errorf("rtunnel was replaced: MainPID %s -> %s, NRestarts %s -> %s",
			before["MainPID"], after["MainPID"], before["NRestarts"], after["NRestarts"])
	}
}
