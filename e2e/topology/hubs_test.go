package topology

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// hubsWorld is Appendix B with two hubs: vpn1 and vpn2 (each the hub
// snippet, its own host key), a remote whose tunnel lists both, and the
// master, which reaches the remote with ssh -J through either hub.
type hubsWorld struct {
	*world
	vpn    [2]*sshdtest.Server
	vpnIP  [2]string
	master string // the master's ssh_config
	cfg    string // the remote's rtunnel config
}

const hubsPort = 2221

func newHubsWorld(t *testing.T, mode string) (*hubsWorld, *daemontest.Daemon) {
	w := &hubsWorld{world: newWorld(t, "vpn1", "vpn2", "master", "remote")}
	remoteKey, masterKey := w.key("id_remote"), w.key("id_master")
	authorized := []string{w.authorizedKey("b-remote", strconv.Itoa(hubsPort), remoteKey), w.authorizedKey("b-master", strconv.Itoa(hubsPort), masterKey)}
	var khs []hostKey
	for i, name := range []string{"vpn1", "vpn2"} {
		w.vpn[i] = w.sshd(name, true, "", authorized...)
		w.vpnIP[i] = w.ip(name)
		khs = append(khs, hostKey{w.vpnIP[i], 22, w.vpn[i]})
	}
	remote := w.sshd("remote", false, "", masterKey.PublicLine)
	extra := ""
	if mode != "" {
		extra = "    hubs: " + mode + "\n"
	}
	cfg := w.config("remote.yaml", tunnelSpec{name: "remote", key: remoteKey, kh: w.knownHosts("kh_remote", khs...),
		server:   "[root@" + w.vpnIP[0] + ":22, root@" + w.vpnIP[1] + ":22]",
		extra:    extra,
		forwards: [][2]string{{"localhost:" + strconv.Itoa(hubsPort), "localhost:22"}}})
	// The remote serves /status, for rtunnel status.
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append([]byte("metrics: {listen: \"127.0.0.1:9810\"}\n"), data...), 0o644); err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	w.master = w.clientConfig("ssh_config", "", masterKey, w.knownHosts("kh_master", append(khs, hostKey{"localhost", hubsPort, remote})...))
	return w, w.up("remote", cfg)
}

// landsVia logs in on the remote as the master does, through hub i.
func (w *hubsWorld) landsVia(i int) error {
	out, err := w.sshF("master", w.master, "-J", "root@"+w.vpnIP[i], "-p", strconv.Itoa(hubsPort), "root@localhost", whereAmI)
	if err == nil && !strings.HasPrefix(out, "landed\n") {
		return &landError{out}
	}
	if err == nil && !strings.Contains(out, " inet "+w.ip("remote")+"/") {
		return &landError{out}
	}
	return err
}

type landError struct{ out string }

func (e *landError) Error() string { return "landed elsewhere: " + e.out }

// status is rtunnel status on the remote.
func (w *hubsWorld) status(t *testing.T) string {
	t.Helper()
	out, err := w.rtunnel("remote", "status", "--config", w.cfg)
	if err != nil {
		t.Fatalf("rtunnel status: %v", err)
	}
	return out
}

// onHub waits for the "holding the tunnel on hub" line naming hub i after
// from, and for the master to land through it.
func (w *hubsWorld) onHub(t *testing.T, d *daemontest.Daemon, from, i int, timeout time.Duration) int {
	t.Helper()
	hub := w.vpnIP[i] + ":22"
	_, idx, _ := d.WaitFrom(from, timeout, "the tunnel held on "+hub, func(e daemontest.Entry) bool {
		return strings.HasPrefix(e.Msg(), "holding the tunnel on hub") && e.Str("hub") == hub
	})
	waitFor(t, 10*time.Second, "ssh -J through "+hub, func() bool { return w.landsVia(i) == nil })
	if st := w.status(t); !strings.Contains(st, "remote via "+hub) {
		t.Errorf("rtunnel status does not show the hub in use (%s):\n%s", hub, st)
	}
	return idx + 1
}

// Failover: the first hub blackholed, then restored (the tunnel goes back
// after backoff.reset_after, 10 s here, of answers); rebooted; both down,
// then the second back.
func TestHubsFailover(t *testing.T) {
	t.Parallel()
	w, d := newHubsWorld(t, "")
	from := w.onHub(t, d, 0, 0, upTimeout)
	if err := w.landsVia(1); err == nil {
		t.Errorf("the master landed through vpn2 while the tunnel is held on vpn1: two sessions")
	}

	// vpn1 blackholed: the tunnel moves to vpn2 (keepalive 3 s, one more
	// try on vpn1 within connect_timeout 5 s).
	w.host("vpn1").Blackhole()
	lost := time.Now()
	from = w.onHub(t, d, from, 1, 20*time.Second)
	t.Logf("on vpn2 %v after vpn1 was blackholed", time.Since(lost).Round(time.Millisecond))
	w.host("vpn1").Heal()
	healed := time.Now()
	e, _, at := d.WaitFrom(from, 40*time.Second, "the move back to vpn1", func(e daemontest.Entry) bool {
		return strings.HasPrefix(e.Msg(), "hub "+w.vpnIP[0]+":22 answered for 10s: moving the tunnel back")
	})
	if back := at.Sub(healed); back < 10*time.Second {
		t.Errorf("moved back to vpn1 %v after it answered again, want after reset_after (10s): no flapping", back)
	}
	t.Logf("%s (%v after vpn1 came back)", e.Msg(), at.Sub(healed).Round(time.Millisecond))
	from = w.onHub(t, d, from, 0, 20*time.Second)

	// vpn1 rebooted: its sshd and sessions killed, back 2 s later. The
	// tunnel is held on one of the hubs throughout, and on vpn1 again in
	// the end.
	w.vpn[0].Kill()
	time.Sleep(2 * time.Second)
	w.vpn[0].Restart(t)
	waitFor(t, 20*time.Second, "ssh -J through either hub after vpn1's reboot", func() bool { return w.landsVia(0) == nil || w.landsVia(1) == nil })
	from = w.onHub(t, d, from, 0, 40*time.Second)

	// Both down, then vpn2 back.
	w.vpn[0].Kill()
	w.vpn[1].Kill()
	time.Sleep(3 * time.Second)
	w.vpn[1].Restart(t)
	w.onHub(t, d, from, 1, 20*time.Second)
}

// All: the same forward on both hubs at once; the master lands through
// either, also while the other is blackholed.
func TestHubsAll(t *testing.T) {
	t.Parallel()
	w, d := newHubsWorld(t, "all")
	for i := range 2 {
		name := "remote@" + w.vpnIP[i] + ":22"
		d.WaitFrom(0, upTimeout, "forward up on "+name, func(e daemontest.Entry) bool {
			return e.Msg() == "forward up" && e.Str("tunnel") == name
		})
	}
	for i := range 2 {
		waitFor(t, 10*time.Second, "ssh -J through vpn"+strconv.Itoa(i+1), func() bool { return w.landsVia(i) == nil })
	}
	status := w.status(t)
	for i := range 2 {
		if !strings.Contains(status, "remote@"+w.vpnIP[i]+":22") {
			t.Errorf("status does not show hub %s:\n%s", w.vpnIP[i], status)
		}
	}
	for i, other := range []int{1, 0} {
		host := "vpn" + strconv.Itoa(i+1)
		w.host(host).Blackhole()
		for range 5 { // throughout the outage, through the other hub
			if err := w.landsVia(other); err != nil {
				t.Fatalf("%s blackholed: ssh -J through vpn%d: %v", host, other+1, err)
			}
			time.Sleep(time.Second)
		}
		w.host(host).Heal()
		waitFor(t, 30*time.Second, "ssh -J through "+host+" after it came back", func() bool { return w.landsVia(i) == nil })
	}
}
