package systemdtest

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// The unit's timings (packaging/systemd/rtunnel.service).
const (
	watchdogTimeout = 30 * time.Second
	restartDelay    = 5 * time.Second
)

// testWatchdog freezes rtunnel with SIGSTOP: its WATCHDOG=1 pings stop, and
// systemd must kill it and start a new one within WatchdogSec + RestartSec
// (plus the time the new one needs to become ready).
func testWatchdog(t *testing.T, c *container, tr *transcript) {
	c.waitRunning(t, "rtunnel", "9/9 tunnels up")
	before := c.show(t, "rtunnel", "MainPID", "NRestarts", "StatusText")
	cur := c.cursor(t)
	stopped := time.Now()
	c.sh(t, "systemctl kill -s SIGSTOP --kill-who=main rtunnel")
	// Generous: the limit is checked below, this only bounds the wait.
	limit := watchdogTimeout + restartDelay + 30*time.Second
	_, ok := c.waitProp(t, "rtunnel", "MainPID", limit, func(pid string) bool {
		return pid != before["MainPID"] && pid != "0" && c.prop(t, "rtunnel", "ActiveState") == "active"
	})
	took := time.Since(stopped)
	m := tr.record(t, c, "SIGSTOP, killed by the watchdog, restarted", "rtunnel")
	if !ok {
		t.Fatalf("no new active rtunnel process within %s of SIGSTOP", limit)
	}
	t.Logf("SIGSTOP to active again: %s", took.Round(100*time.Millisecond))
	if max := watchdogTimeout + restartDelay + 5*time.Second; took > max {
		t.Errorf("SIGSTOP to active again took %s, want at most WatchdogSec + RestartSec + 5s = %s", took, max)
	}
	if n, _ := strconv.Atoi(before["NRestarts"]); m["NRestarts"] != strconv.Itoa(n+1) {
		t.Errorf("NRestarts %s -> %s, want one more", before["NRestarts"], m["NRestarts"])
	}
	pid1 := c.journalSince(t, cur, "_PID=1")
	t.Logf("systemd's lines from SIGSTOP to the restart:\n%s", pid1)
	for _, want := range []string{"rtunnel.service: Watchdog timeout", "rtunnel.service: Failed with result 'watchdog'"} {
		if !strings.Contains(pid1, want) {
			t.Errorf("systemd did not log %q:\n%s", want, pid1)
		}
	}
	if v, ok := c.waitProp(t, "rtunnel", "StatusText", 30*time.Second, equals(before["StatusText"])); !ok {
		t.Errorf("StatusText=%q after the restart, want %q as before", v, before["StatusText"])
	}
}

// testExit78 gives rtunnel a known_hosts with another key for the hub: a
// changed host key is permanent, rtunnel exits 78, and the unit's
// RestartPreventExitStatus=78 keeps it stopped.
func testExit78(t *testing.T, c *container, tr *transcript) {
	c.sh(t, "install -m 0640 -o root -g rtunnel "+testDir+"/impostor_known_hosts /etc/rtunnel/known_hosts")
	defer c.sh(t, "install -m 0640 -o root -g rtunnel "+testDir+"/known_hosts /etc/rtunnel/known_hosts")
	c.writeConfig(t, "rtunnel", rtunnelConfig("5s", 9810, []tunnelSpec{hubTunnel}))
	cur := c.cursor(t)
	out, status := c.shStatus(t, 60*time.Second, "systemctl restart rtunnel")
	if status == 0 {
		t.Logf("systemctl restart with a changed host key returned 0 (READY came before the exit)")
	} else {
		t.Logf("systemctl restart with a changed host key: status %d: %s", status, strings.TrimSpace(out))
	}
	if v, ok := c.waitProp(t, "rtunnel", "ActiveState", 30*time.Second, equals("failed")); !ok {
		t.Fatalf("ActiveState=%s with a changed host key, want failed", v)
	}
	failed := tr.record(t, c, "changed host key: exit 78", "rtunnel")
	if failed["Result"] != "exit-code" || failed["ExecMainStatus"] != "78" {
		t.Errorf("Result=%s ExecMainStatus=%s, want exit-code 78", failed["Result"], failed["ExecMainStatus"])
	}
	// Long enough for a restart that should not come.
	time.Sleep(restartDelay + 3*time.Second)
	m := tr.record(t, c, "exit 78, RestartSec+3s later", "rtunnel")
	if m["ActiveState"] != "failed" || m["NRestarts"] != failed["NRestarts"] || m["MainPID"] != "0" {
		t.Errorf("restarted after exit 78: ActiveState=%s NRestarts %s -> %s MainPID=%s",
			m["ActiveState"], failed["NRestarts"], m["NRestarts"], m["MainPID"])
	}
	if log, ok := c.journalHas(t, cur, "-u rtunnel _COMM=rtunnel", "host key"); !ok {
		t.Errorf("rtunnel's journal names no host key problem:\n%s", log)
	}
}

// testStop stops rtunnel with connections open: it waits up to
// shutdown_grace for them, then ends cleanly, well before TimeoutStopSec.
func testStop(t *testing.T, c *container, tr *transcript) {
	c.sh(t, "systemctl reset-failed rtunnel")
	if out, status := c.shStatus(t, 60*time.Second, "systemctl start rtunnel"); status != 0 {
		t.Fatalf("systemctl start: status %d: %s", status, out)
	}
	if v, ok := c.waitProp(t, "rtunnel", "StatusText", 20*time.Second, equals("1/1 tunnels up")); !ok {
		t.Fatalf("StatusText=%q, want 1/1 tunnels up", v)
	}
	c.openConn(t, "rt-conn-stop1", hubForward)
	c.openConn(t, "rt-conn-stop2", hubForward)
	const grace = 5 * time.Second
	began := time.Now()
	out, status := c.shStatus(t, 60*time.Second, "systemctl stop rtunnel")
	took := time.Since(began)
	m := tr.record(t, c, "stop with 2 connections open", "rtunnel")
	t.Logf("systemctl stop took %s with shutdown_grace %s", took.Round(10*time.Millisecond), grace)
	if status != 0 {
		t.Errorf("systemctl stop: status %d: %s", status, out)
	}
	if took > grace+time.Second {
		t.Errorf("systemctl stop took %s, want at most shutdown_grace + 1s = %s", took, grace+time.Second)
	}
	if m["Result"] != "success" || m["ActiveState"] != "inactive" || m["ExecMainStatus"] != "0" {
		t.Errorf("after stop: Result=%s ActiveState=%s ExecMainStatus=%s, want success inactive 0",
			m["Result"], m["ActiveState"], m["ExecMainStatus"])
	}
}

// testTemplate runs rtunnel@alt.service with its own /etc/rtunnel/alt.yaml
// next to rtunnel.service.
func testTemplate(t *testing.T, c *container, tr *transcript) {
	if out, status := c.shStatus(t, 60*time.Second, "systemctl start rtunnel"); status != 0 {
		t.Fatalf("systemctl start rtunnel: status %d: %s", status, out)
	}
	c.writeConfig(t, "alt", rtunnelConfig("2s", 9811, []tunnelSpec{{name: "alt", port: hubPort, remote: 2250}}))
	if out, status := c.shStatus(t, 60*time.Second, "systemctl start rtunnel@alt"); status != 0 {
		t.Fatalf("systemctl start rtunnel@alt: status %d: %s", status, out)
	}
	if v, ok := c.waitProp(t, "rtunnel@alt", "StatusText", 20*time.Second, equals("1/1 tunnels up")); !ok {
		t.Errorf("rtunnel@alt StatusText=%q, want 1/1 tunnels up", v)
	}
	m := tr.record(t, c, "template instance started", "rtunnel@alt")
	main := tr.record(t, c, "beside the template instance", "rtunnel")
	if m["ActiveState"] != "active" || main["ActiveState"] != "active" || m["MainPID"] == main["MainPID"] {
		t.Errorf("rtunnel@alt %s pid %s, rtunnel %s pid %s: want two active processes",
			m["ActiveState"], m["MainPID"], main["ActiveState"], main["MainPID"])
	}
	checkSSH(t, c, 2250)
	checkSSH(t, c, hubForward)
	if log := c.sh(t, "journalctl -u rtunnel@alt -b -o cat --no-pager"); !strings.Contains(log, "/etc/rtunnel/alt.yaml") {
		t.Errorf("rtunnel@alt's journal does not name /etc/rtunnel/alt.yaml:\n%s", log)
	}
	c.sh(t, "systemctl stop rtunnel@alt")
	if m := tr.record(t, c, "template instance stopped", "rtunnel@alt"); m["Result"] != "success" {
		t.Errorf("rtunnel@alt stopped with Result=%s", m["Result"])
	}
}
