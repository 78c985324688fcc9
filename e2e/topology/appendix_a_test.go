package topology

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// appendixA is the guide's Appendix A (double reverse tunnel), one
// namespace per host:
//
//	vpn     sshd + hub snippet; master's key may -R localhost:2210 only,
//	        the remote's key may ProxyJump to localhost:2210 only
//	master  sshd + hub snippet (the remote's key may -R localhost:2220 only);
//	        rtunnel: vpn's localhost:2210 -> master's localhost:22
//	remote  sshd (the admin's key); rtunnel: jump vpn, server master's sshd
//	        as root@localhost:2210, forward master's localhost:2220 -> localhost:22
type appendixA struct {
	*world
	vpn, master, remote            *sshdtest.Server
	masterKey, remoteKey, adminKey sshdtest.Key
	masterCfg, remoteCfg           string
	adminKH                        string // the admin's known_hosts on master: [localhost]:2220
}

func newAppendixA(t *testing.T) *appendixA {
	t.Helper()
	w := newWorld(t, "vpn", "master", "remote")
	a := &appendixA{world: w}
	a.masterKey = w.key("id_master_tunnel")
	a.remoteKey = w.key("id_remote_tunnel")
	a.adminKey = w.key("id_admin") // the master user's own key, for the real login
	a.vpn = w.sshd("vpn", true, "",
		w.authorizedKey("a-master", "2210", a.masterKey),
		w.authorizedKey("a-remote-vpn", "2210", a.remoteKey))
	a.master = w.sshd("master", true, "", w.authorizedKey("a-remote-master", "2220", a.remoteKey))
	a.remote = w.sshd("remote", false, "", a.adminKey.PublicLine)

	vpn := w.ip("vpn")
	a.masterCfg = w.config("master.yaml", tunnelSpec{name: "vpn", server: "root@" + vpn + ":22", key: a.masterKey,
		kh:       w.knownHosts("kh_master", hostKey{vpn, 22, a.vpn}),
		forwards: [][2]string{{"localhost:2210", "localhost:22"}}})
	// The master's sshd as the remote reaches it: through the vpn's loopback,
	// verified under the name written in the config, [localhost]:2210.
	a.remoteCfg = w.config("remote.yaml", tunnelSpec{name: "master", server: "root@localhost:2210", jump: []string{"root@" + vpn + ":22"},
		key:      a.remoteKey,
		kh:       w.knownHosts("kh_remote", hostKey{vpn, 22, a.vpn}, hostKey{"localhost", 2210, a.master}),
		forwards: [][2]string{{"localhost:2220", "localhost:22"}}})
	a.adminKH = w.knownHosts("kh_admin", hostKey{"localhost", 2220, a.remote})
	return a
}

// start runs both daemons and waits until the whole chain carries its forwards.
func (a *appendixA) start(t *testing.T) (master, remote *daemontest.Daemon) {
	t.Helper()
	master = a.up("master", a.masterCfg)
	master.WaitMsg(0, upTimeout, "forward up")
	remote = a.up("remote", a.remoteCfg)
	e, _, _ := remote.WaitMsg(0, upTimeout, "connected")
	if via := e.Str("via"); via != "root@"+a.ip("vpn")+":22" {
		t.Errorf("remote connected via %q, want the vpn hop", via)
	}
	remote.WaitMsg(0, upTimeout, "forward up")
	return master, remote
}

// login is the guide's step 3: on master, ssh -p 2220 user@localhost.
func (a *appendixA) login(t *testing.T) string {
	t.Helper()
	out, err := a.ssh("master", a.adminKey, a.adminKH, "-p", "2220", "root@localhost", whereAmI)
	if err != nil {
		t.Fatalf("ssh -p 2220 root@localhost on master: %v", err)
	}
	a.wantLanded(out, "remote")
	return out
}

func TestAppendixA(t *testing.T) {
	t.Parallel()
	a := newAppendixA(t)
	master, remote := a.start(t)
	t.Logf("master$ ssh -p 2220 root@localhost '%s'\n%s", whereAmI, a.login(t))

	// The hops saw only what their lines allow: nothing was refused anywhere.
	for _, s := range []*sshdtest.Server{a.vpn, a.master} {
		for _, bad := range []string{"denied", "refused", "Failed publickey"} {
			if strings.Contains(s.Log(), bad) {
				t.Errorf("a hub logged %q:\n%s", bad, s.Log())
			}
		}
	}

	// Killing master's rtunnel breaks the chain: the remote's second hop
	// rides on it.
	from := remote.Mark()
	master.Signal(syscall.SIGKILL)
	if _, ok := master.Wait(10 * time.Second); !ok {
		t.Fatal("master's rtunnel did not die")
	}
	e, _, _ := remote.WaitMsg(from, downTimeout, "tunnel down; will retry")
	t.Logf("remote noticed: %s", e.Str("err"))
	waitFor(t, downTimeout, "ssh -p 2220 on master fails once the chain is broken", func() bool {
		_, err := a.ssh("master", a.adminKey, a.adminKH, "-p", "2220", "root@localhost", "true")
		return err != nil
	})
	// The remote keeps retrying; the vpn now refuses the channel to 2210.
	// Only the outage's first failure is a warning; the retries after it
	// are at debug level, which this lab logs.
	e, _, _ = remote.WaitFrom(from, downTimeout, "a retry failing at the vpn hop", func(e daemontest.Entry) bool {
		return daemontest.IsRetry(e) && strings.Contains(e.Str("err"), "through root@"+a.ip("vpn")+":22")
	})
	t.Logf("remote retrying: %s", e.Str("err"))

	// Restarting master's rtunnel restores the whole chain; the remote's
	// rtunnel is the same process throughout.
	from = remote.Mark()
	master2 := a.up("master", a.masterCfg)
	master2.WaitMsg(0, upTimeout, "forward up")
	remote.WaitMsg(from, upTimeout, "forward up")
	if _, exited := remote.Wait(0); exited {
		t.Fatalf("the remote's rtunnel exited (%d); it should have kept retrying", remote.ExitCode())
	}
	t.Logf("after restarting master's rtunnel:\n%s", a.login(t))
}

// A dead hop (the vpn blackholed: no RST, no ICMP) is noticed by the
// keepalive within interval x count_max (+1 s), the chain is torn down and
// rebuilt from the first hop once the vpn answers again, and nothing of the
// old chain is left.
func TestAppendixADeadHop(t *testing.T) {
	t.Parallel()
	a := newAppendixA(t)
	master, remote := a.start(t)
	a.login(t)
	pid := remote.PID()
	// One connection, to the vpn: the second hop rides inside it. (The
	// login's connection to the remote's sshd closes a moment after ssh.)
	waitFor(t, 10*time.Second, "the remote's rtunnel holding only its connection to the vpn", func() bool {
		conns := a.connsOf("remote", pid)
		return len(conns) == 1 && strings.Contains(conns[0], " "+a.ip("vpn")+":22 ")
	})
	accepted := func() int {
		return strings.Count(a.vpn.Log(), "Accepted publickey for root from "+a.ip("remote"))
	}
	before := accepted()

	fromR, fromM := remote.Mark(), master.Mark()
	start := time.Now()
	a.host("vpn").Blackhole()
	e, _, at := remote.WaitMsg(fromR, downTimeout, "tunnel down; will retry")
	took := at.Sub(start)
	t.Logf("remote: dead chain noticed after %s: %s", took.Round(time.Millisecond), e.Str("err"))
	if !strings.Contains(e.Str("err"), "(keepalive)") {
		t.Errorf("down reason %q, want a keepalive timeout on a hop", e.Str("err"))
	}
	// interval 1 s x count_max 3, + 1 s; + 1 s for a loaded test machine.
	if took > 5*time.Second {
		t.Errorf("dead hop noticed after %s, want <= 3s + 1s", took)
	}
	master.WaitMsg(fromM, downTimeout, "tunnel down; will retry")
	a.host("vpn").Heal()
	healed := time.Now()

	// Rebuilt from the first hop: a new login on the vpn, then the master's sshd.
	_, i, _ := remote.WaitFrom(fromR, 60*time.Second, "a new chain", func(e daemontest.Entry) bool {
		return e.Msg() == "connected" && e.Str("via") == "root@"+a.ip("vpn")+":22"
	})
	_, _, at = remote.WaitMsg(i, 60*time.Second, "forward up")
	t.Logf("chain back %s after the vpn answered again", at.Sub(healed).Round(time.Millisecond))
	if n := accepted(); n <= before {
		t.Errorf("the vpn saw no new login from the remote (%d before, %d after)", before, n)
	}
	waitFor(t, 10*time.Second, "the torn-down chain's connections gone", func() bool {
		conns := a.connsOf("remote", pid)
		return len(conns) == 1 && strings.Contains(conns[0], " "+a.ip("vpn")+":22 ")
	})
	a.login(t)
}
