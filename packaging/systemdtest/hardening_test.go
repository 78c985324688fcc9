package systemdtest

import (
	"strings"
	"testing"
	"time"
)

// A system call outside the unit's SystemCallFilter=@system-service returns
// EPERM by the shipped unit, which rtunnel might quietly survive; with
// "kill" the process dies of SIGSYS instead, so every path it takes shows.
const syscallKillDropIn = `[Service]
SystemCallErrorNumber=kill
`

// testHardening runs an instance under SystemCallErrorNumber=kill through
// start, a reload that restarts its tunnel, SIGUSR1 and stop: the same
// process must see all of it and end with status 0.
func testHardening(t *testing.T, c *container, tr *transcript) {
	const unit = "rtunnel@harden"
	c.writeFile(t, "/etc/systemd/system/rtunnel@harden.service.d/syscall-kill.conf", 0o644, "root:root", syscallKillDropIn)
	c.sh(t, "systemctl daemon-reload")
	if dropIns := c.prop(t, unit, "DropInPaths"); !strings.Contains(dropIns, "syscall-kill.conf") {
		t.Fatalf("the drop-in is not in effect: DropInPaths=%s", dropIns)
	}
	c.writeConfig(t, "harden", rtunnelConfig("1s", 9812, []tunnelSpec{{name: "harden", port: hubPort, remote: 2260}}))
	begin := c.cursor(t)
	if out, status := c.shStatus(t, 60*time.Second, "systemctl start "+unit); status != 0 {
		t.Fatalf("systemctl start %s: status %d: %s", unit, status, out)
	}
	if v, ok := c.waitProp(t, unit, "StatusText", 20*time.Second, equals("1/1 tunnels up")); !ok {
		t.Fatalf("StatusText=%q, want 1/1 tunnels up", v)
	}
	started := tr.record(t, c, "hardened: started", unit)
	checkSSH(t, c, 2260)

	c.writeConfig(t, "harden", rtunnelConfig("1s", 9812, []tunnelSpec{{name: "harden", port: hubPort, remote: 2260, keepalive: "12s"}}))
	cur := c.cursor(t)
	if out, status := c.shStatus(t, 30*time.Second, "systemctl reload "+unit); status != 0 {
		t.Errorf("systemctl reload %s: status %d: %s", unit, status, out)
	}
	if out, ok := c.waitJournal(t, cur, "-u "+unit+" _COMM=rtunnel", "restarted=1", 20*time.Second); !ok {
		t.Errorf("no reload line with restarted=1:\n%s", out)
	}
	if out, ok := c.waitJournal(t, cur, "-u "+unit+" _COMM=rtunnel", "forward up", 20*time.Second); !ok {
		t.Errorf("the restarted tunnel's forward did not come up:\n%s", out)
	}
	if v, ok := c.waitProp(t, unit, "StatusText", 10*time.Second, equals("1/1 tunnels up")); !ok {
		t.Errorf("StatusText=%q after the reload, want 1/1 tunnels up", v)
	}
	assertSameProcess(t, started, tr.record(t, c, "hardened: reloaded", unit))

	cur = c.cursor(t)
	c.sh(t, "systemctl kill -s SIGUSR1 --kill-who=main "+unit)
	// SIGUSR1 closes the session and connects again: wait for the new forward.
	if out, ok := c.waitJournal(t, cur, "-u "+unit+" _COMM=rtunnel", "forward up", 20*time.Second); !ok || !strings.Contains(out, "SIGUSR1") {
		t.Errorf("no SIGUSR1 line and new forward after SIGUSR1:\n%s", out)
	}
	if v, ok := c.waitProp(t, unit, "StatusText", 10*time.Second, equals("1/1 tunnels up")); !ok {
		t.Errorf("StatusText=%q after SIGUSR1, want 1/1 tunnels up", v)
	}
	assertSameProcess(t, started, tr.record(t, c, "hardened: SIGUSR1", unit))
	checkSSH(t, c, 2260)

	if out, status := c.shStatus(t, 60*time.Second, "systemctl stop "+unit); status != 0 {
		t.Errorf("systemctl stop %s: status %d: %s", unit, status, out)
	}
	// systemd 252 resets ExecMainCode after a clean stop; its own log line
	// tells a clean exit from death by SIGSYS (code=killed or code=dumped).
	m := tr.record(t, c, "hardened: stopped", unit)
	if m["Result"] != "success" || m["ExecMainStatus"] != "0" {
		t.Errorf("after stop: Result=%s ExecMainStatus=%s, want success 0", m["Result"], m["ExecMainStatus"])
	}
	pid1 := c.journalSince(t, begin, "_PID=1")
	if !strings.Contains(pid1, unit+".service: Deactivated successfully") {
		t.Errorf("systemd did not log a clean end of %s:\n%s", unit, pid1)
	}
	for _, bad := range []string{"SIGSYS", "code=killed", "code=dumped"} {
		if strings.Contains(pid1, bad) {
			t.Errorf("a system call was denied: %q", firstLineWith(pid1, bad))
		}
	}
}
