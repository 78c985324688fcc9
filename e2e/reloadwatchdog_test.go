package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// notifyEvent is one datagram from rtunnel and when the test read it.
type notifyEvent struct {
	msg string
	at  time.Time
}

// A reload that changes 8 tunnels, each with a connection open and a 5 s
// shutdown grace, under a 2 s systemd watchdog: WATCHDOG=1 keeps coming
// throughout (before the fix the loop waited for each tunnel in turn, 40 s
// without a ping, and systemd killed the service), the tunnels stop in
// parallel (about one grace, not eight), and the reload result shows in the
// metrics; then a refused reload shows there too.
func TestReloadWithOpenConnectionsKeepsTheWatchdogFed(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	const n = 8
	dir := t.TempDir()
	key := sshdtest.NewKey(t, dir, "id", "ed25519")
	ports := make([]int, n)
	var permit strings.Builder
	for i := range ports {
		ports[i] = sshdtest.FreePort(t)
		fmt.Fprintf(&permit, `permitlisten="localhost:%d",`, ports[i])
	}
	hub := sshdtest.Start(t, sshdtest.Options{Name: "hub", AuthorizedKeys: []string{
		`restrict,port-forwarding,` + permit.String() + `permitopen="255.255.255.255:9",command="/bin/false" ` + key.PublicLine}})
	kh := filepath.Join(dir, "known_hosts")
	hub.WriteKnownHosts(t, kh, "127.0.0.1")
	target := serveLocal(t, "", func(c net.Conn) {
		fmt.Fprintf(c, "hi\n")
		buf := make([]byte, 512)
		for { // hold the connection open until the other side closes it
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
	path := filepath.Join(dir, "rtunnel.yaml")
	metricsAddr := "127.0.0.1:" + strconv.Itoa(sshdtest.FreePort(t))
	write := func(keepalive string) {
		var b strings.Builder
		fmt.Fprintf(&b, "log: {level: info, format: json}\nmetrics: {listen: %s}\nshutdown_grace: 5s\ntunnels:\n", metricsAddr)
		for i, p := range ports {
			fmt.Fprintf(&b, "  - name: t%d\n    server: root@127.0.0.1:%d\n    identity: %s\n    known_hosts: %s\n", i, hub.Port, key.Private, kh)
			fmt.Fprintf(&b, "    keepalive: {interval: %s, count_max: 3}\n", keepalive)
			fmt.Fprintf(&b, "    forwards: [{remote: \"localhost:%d\", local: \"%s\"}]\n", p, target.Addr())
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("5s")
	ns := newNotifySocket(t)
	d := daemontest.Start(t, []string{"up", "--config", path}, "NOTIFY_SOCKET="+ns.path, "WATCHDOG_USEC=2000000")
	ns.expect(t, "READY=1", 30*time.Second)
	for i := range n {
		d.WaitFrom(0, 20*time.Second, fmt.Sprintf("forward up of t%d", i), func(e daemontest.Entry) bool {
			return e.Msg() == "forward up" && e.Str("tunnel") == fmt.Sprintf("t%d", i)
		})
	}
	// One connection open through each tunnel.
	for _, p := range ports {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if line, err := bufio.NewReader(c).ReadString('\n'); line != "hi\n" {
			t.Fatalf("through port %d: %q, %v", p, line, err)
		}
	}
	waitMetric(t, metricsAddr, `rtunnel_config_last_reload_successful`, 1, 5*time.Second)

	write("7s")
	mark := d.Mark()
	hupAt := time.Now()
	d.Signal(syscall.SIGHUP)
	var events []notifyEvent
	deadline := time.After(30 * time.Second)
	reloaded := false
	for !reloaded {
		select {
		case m := <-ns.msgs:
			events = append(events, notifyEvent{m, time.Now()})
			reloaded = m == "READY=1"
		case <-deadline:
			t.Fatalf("no READY=1 within 30s of SIGHUP; got %v", events)
		}
	}
	took := time.Since(hupAt)
	t.Logf("reload of %d tunnels with open connections took %s", n, took.Round(time.Millisecond))
	if took < 4*time.Second || took > 9*time.Second {
		t.Errorf("reload took %s, want about one shutdown_grace (5s): the tunnels stop in parallel", took)
	}
	last, pings := hupAt, 0
	for _, e := range events {
		if e.msg != "WATCHDOG=1" {
			continue
		}
		if gap := e.at.Sub(last); gap > 1800*time.Millisecond {
			t.Errorf("no WATCHDOG=1 for %s during the reload (pings every 1s, systemd kills after 2s)", gap.Round(time.Millisecond))
		}
		last = e.at
		pings++
	}
	if pings < 4 {
		t.Errorf("%d WATCHDOG=1 during a %s reload, want one a second; notifications: %v", pings, took, events)
	}
	e, _, _ := d.WaitMsg(mark, 5*time.Second, "reloaded")
	if e.Str("restarted") != strconv.Itoa(n) {
		t.Errorf("reloaded: restarted=%s, want %d", e.Str("restarted"), n)
	}
	m := scrape(t, metricsAddr)
	if m["rtunnel_config_last_reload_successful"] != 1 {
		t.Errorf("after a good reload: rtunnel_config_last_reload_successful %v", m["rtunnel_config_last_reload_successful"])
	}
	if ts := m["rtunnel_config_last_reload_success_timestamp_seconds"]; ts < float64(hupAt.Unix()) || ts > float64(time.Now().Unix()+1) {
		t.Errorf("after a good reload: success timestamp %v, want between %d and now", ts, hupAt.Unix())
	}

	// A refused reload: the metric says so, the timestamp stays, the
	// tunnels keep running.
	waitMetric(t, metricsAddr, `rtunnel_tunnel_up{tunnel="t0"}`, 1, 10*time.Second)
	goodTS := m["rtunnel_config_last_reload_success_timestamp_seconds"]
	mark = d.Mark()
	if err := os.WriteFile(path, []byte("tunnels: [{name: a, bogus: 1}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGHUP)
	d.WaitMsg(mark, 10*time.Second, "reload refused: the new config has problems; the running config stays")
	m = scrape(t, metricsAddr)
	if m["rtunnel_config_last_reload_successful"] != 0 || m["rtunnel_config_last_reload_success_timestamp_seconds"] != goodTS {
		t.Errorf("after a refused reload: successful %v (want 0), timestamp %v (want %v)",
			m["rtunnel_config_last_reload_successful"], m["rtunnel_config_last_reload_success_timestamp_seconds"], goodTS)
	}
	if m[`rtunnel_tunnel_up{tunnel="t0"}`] != 1 {
		t.Errorf("after a refused reload, t0 is down")
	}
}
