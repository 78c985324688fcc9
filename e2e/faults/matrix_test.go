package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
	"github.com/rtunnel/rtunnel/internal/tcptest"
)

// Row: the remote's link blackholed (nft drop both ways, no RST) for 20 s.
// The dead link is noticed within interval x count_max + 1 s; traffic flows
// again within 3 s of the link's return. The hub runs the guide's
// ClientAlive 15 s x 3, so it still holds the dead session (and the port)
// when the link returns: rtunnel's poke from the old address makes it let
// go (tunnel/poke.go).
func TestLinkBlackholed(t *testing.T) {
	t.Parallel()
	l := newLab(t, labOpts{hubExtra: "ClientAliveInterval 15\nClientAliveCountMax 3\n"})
	tg := l.serveRemote(t, echo)
	// Defaults for connect_timeout (15 s) and backoff; keepalive 1 s x 3.
	d := l.up(t, tun{forwards: [][2]string{{"localhost:2220", tg.Addr()}}})
	d.WaitMsg(0, 20*time.Second, "forward up")
	l.waitTraffic(t, 5*time.Second)

	from := d.Mark()
	down := time.Now()
	l.remote.Blackhole()
	e, _, _ := d.WaitMsg(from, 10*time.Second, "tunnel down; will retry")
	detected := logTime(t, e).Sub(down)
	figure(t, "blackhole detection", detected.Round(time.Millisecond))
	if limit := 3*time.Second + time.Second; detected > limit {
		t.Errorf("dead link noticed after %v, want <= interval x count_max + 1s = %v", detected, limit)
	}
	if e.Str("result") != "timeout" || !strings.Contains(e.Str("err"), "keepalive") {
		t.Errorf("down: result=%q err=%q, want the keepalive timeout", e.Str("result"), e.Str("err"))
	}

	time.Sleep(time.Until(down.Add(20 * time.Second)))
	mark := d.Mark()
	l.remote.Heal()
	healed := time.Now()
	back := l.waitTraffic(t, 15*time.Second)
	recovery := back.Sub(healed)
	fe, _, _ := d.WaitMsg(mark, 5*time.Second, "forward up")
	figure(t, "blackhole recovery (traffic after link back)", recovery.Round(time.Millisecond))
	t.Logf("forward up %v after the link came back", logTime(t, fe).Sub(healed).Round(time.Millisecond))
	if recovery > 3*time.Second {
		t.Errorf("traffic %v after the link came back, want <= 3s", recovery)
	}
	// Attempts during the outage followed the growing schedule (connect
	// attempts hung on the dead link, each at most connect_timeout, with
	// the kernel's SYN retransmissions and no second connect beside them).
	var downs, refusals []daemontest.Entry
	for _, e := range d.Retries(from) {
		if e.Str("result") == "forward_refused" {
			refusals = append(refusals, e)
		} else {
			downs = append(downs, e)
		}
	}
	figure(t, "blackhole: attempts during 20 s", len(downs))
	for i, e := range downs {
		w, _ := time.ParseDuration(e.Str("retry_in"))
		if step := time.Second << i; w < step*8/10 || w > step*12/10 {
			t.Errorf("retry %d: retry_in %s during a 20 s outage, want %v +-20%%", i, e.Str("retry_in"), step)
		}
	}
	// A refusal can come after the link's return when the poke goes
	// unanswered: at most one, after the return.
	figure(t, "blackhole: forward refusals after the link came back", len(refusals))
	if len(refusals) > 1 {
		t.Errorf("%d forward refusals after the link came back, want at most 1 (the poke frees the port)", len(refusals))
	}
	for _, e := range refusals {
		if logTime(t, e).Before(healed) {
			t.Errorf("a forward refused at %v, before the link came back", e.Str("time"))
		}
	}
}

// Row (second half of the first): a handshake started while packets were
// being lost does not hold rtunnel for its connect_timeout once they flow
// again. The hub drops every TCP segment that carries data on its sshd port
// (SYN, SYN-ACK and bare ACKs pass): connects succeed, handshakes stall.
func TestHandshakeStartedOnALossyLink(t *testing.T) {
	t.Parallel()
	l := newLab(t, labOpts{})
	tg := l.serveRemote(t, echo)
	d := l.up(t, tun{forwards: [][2]string{{"localhost:2220", tg.Addr()}}, connectTimeout: "15s"})
	d.WaitMsg(0, 20*time.Second, "forward up")

	port := l.sshd.Port
	nft(t, l.hub, fmt.Sprintf(`table inet rt_lossy {
	chain in { type filter hook input priority -100; policy accept; tcp dport %[1]d tcp flags & (syn | fin | rst) == 0 meta length > 52 drop; }
	chain out { type filter hook output priority -100; policy accept; tcp sport %[1]d tcp flags & (syn | fin | rst) == 0 meta length > 52 drop; }
}
`, port))
	from := d.Mark()
	logFrom := len(l.sshd.Log())
	l.killSessions(t) // the tunnel reconnects into the lossy link
	d.WaitMsg(from, 10*time.Second, "tunnel down; will retry")
	lossy := time.Now()
	time.Sleep(8 * time.Second)
	nftDelete(t, l.hub, "rt_lossy")
	healed := time.Now()
	// Each stalled handshake got a fresh connection beside it (one about
	// every 2 s), instead of one connection waiting on its doubling
	// retransmission timer.
	conns := strings.Count(l.sshd.Log()[logFrom:], "Connection from "+l.remote.IP)
	figure(t, "lossy handshake: connections during 8 s of loss", conns)
	if conns < 3 {
		t.Errorf("%d connections to the hub during 8 s of loss: stalled handshakes were not restarted", conns)
	}
	back := l.waitTraffic(t, 20*time.Second)
	// Each replaced connection was given up with a reset: the hub's child
	// ends at once ("Connection reset by"), instead of waiting for
	// LoginGraceTime or, once the loss heals, being woken by the given-up
	// socket's retransmissions into a child for a client that is gone
	// ("Broken pipe [preauth]", make fleet's wasted children).
	hubLog := l.sshd.Log()[logFrom:]
	ports := regexp.MustCompile(`Connection from `+regexp.QuoteMeta(l.remote.IP)+` port (\d+) `).FindAllStringSubmatch(hubLog, -1)
	for _, m := range ports[:max(0, len(ports)-1)] {
		reset := regexp.MustCompile(`Connection reset by ` + regexp.QuoteMeta(l.remote.IP) + ` port ` + m[1] + `\b`)
		if !reset.MatchString(hubLog) {
			t.Errorf("the connection from port %s was replaced without a reset; sshd log:\n%s", m[1], hubLog)
		}
	}
	recovery := back.Sub(healed)
	figure(t, "lossy handshake recovery (traffic after loss stops)", recovery.Round(time.Millisecond))
	if recovery > 3*time.Second {
		t.Errorf("traffic %v after the loss stopped (handshakes started %v before), want <= 3s", recovery, healed.Sub(lossy).Round(time.Second))
	}
}

// Row: the link comes back while the hub still holds the old session's
// listener. The log says why the forward is refused meanwhile, and rtunnel
// holds the port within 2 s of the hub freeing it. Two ways it happens:
//   - same address: the hub frees it because rtunnel's poke from the dead
//     connection's address resets it (TestLinkBlackholed shows the same);
//   - new address (a NAT rebinding, DHCP): no poke can reach the old
//     connection; the hub frees it on its own ClientAlive timeout.
func TestStaleListenerSameAddress(t *testing.T) {
	t.Parallel()
	l := newLab(t, labOpts{hubExtra: "ClientAliveInterval 15\nClientAliveCountMax 3\n"})
	staleListener(t, l, false)
}

func TestStaleListenerNewAddress(t *testing.T) {
	t.Parallel()
	l := newLab(t, labOpts{hubExtra: "ClientAliveInterval 2\nClientAliveCountMax 2\n"})
	staleListener(t, l, true)
}

func staleListener(t *testing.T, l *lab, newAddress bool) {
	tg := l.serveRemote(t, echo)
	d := l.up(t, tun{forwards: [][2]string{{"localhost:2220", tg.Addr()}}})
	d.WaitMsg(0, 20*time.Second, "forward up")
	l.waitTraffic(t, 5*time.Second)
	old := l.listenInode(tunnelPort)
	if old == 0 {
		t.Fatal("the hub does not listen on localhost:2220")
	}

	from := d.Mark()
	down := time.Now()
	l.remote.Blackhole()
	d.WaitMsg(from, 10*time.Second, "tunnel down; will retry")
	time.Sleep(time.Until(down.Add(5 * time.Second)))
	if l.listenInode(tunnelPort) != old {
		t.Fatal("the hub let go of the port while the link was down: the row is not exercised")
	}
	if newAddress {
		l.remote.Run("ip", "addr", "del", l.remote.IP+"/24", "dev", "eth0")
		l.remote.Run("ip", "addr", "add", "198.18.0.12/24", "dev", "eth0")
	}
	// Watch the hub's listener: freed is when the old session's socket is
	// gone (polled every 10 ms in the hub namespace's /proc/net/tcp).
	freedc := make(chan time.Time, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			if ino := l.listenInode(tunnelPort); ino != old {
				freedc <- time.Now()
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	l.remote.Heal()
	healed := time.Now()

	var freed time.Time
	select {
	case freed = <-freedc:
	case <-time.After(60 * time.Second):
		t.Fatal("the hub never freed the old session's listener")
	}
	fe, _, _ := d.WaitMsg(from, 10*time.Second, "forward up")
	held := logTime(t, fe).Sub(freed)
	if !newAddress {
		// The poke's reset, as HUB.md quotes it: logged for the old session.
		l.sshd.WaitLog(t, "Read error from remote host "+l.remote.IP+" port ", 5*time.Second)
		l.sshd.WaitLog(t, ": Connection reset by peer", 5*time.Second)
	}
	refusals := entries(d, from, "forward refused; closing the session (exit_on_forward_failure)")
	how := "same address"
	if newAddress {
		how = "new address"
	}
	figure(t, how+": hub freed the port after the link came back", freed.Sub(healed).Round(time.Millisecond))
	figure(t, how+": port held again after the hub freed it", held.Round(time.Millisecond))
	figure(t, how+": refusals meanwhile", len(refusals))
	if held > 2*time.Second {
		t.Errorf("port held %v after the hub freed it, want <= 2s", held)
	}
	if newAddress {
		if len(refusals) == 0 {
			t.Fatal("no refused forward logged while the hub held the port")
		}
		for _, cause := range []string{"the port is held, by an older session of this key", "ClientAlive", "permitlisten"} {
			if !strings.Contains(refusals[0].Str("err"), cause) {
				t.Errorf("refusal log %q does not mention %q", refusals[0].Str("err"), cause)
			}
		}
	}
	l.waitTraffic(t, 5*time.Second)
}

// Row: the hub's sshd killed (listener and sessions) and started again 3 s
// later. With the default backoff, traffic flows within 3 s of sshd
// listening again: the first retry after the session's end comes after
// backoff.initial (1 s), and a refused connect (the host is up, sshd is not
// listening) doubles from 0.5 s, so attempts come at about 1, 2 and 4 s
// (reconnect's tests show a hub down for hours gets about one attempt a
// minute, and 4 in its first 10 s, as with autossh).
func TestHubKilledAndRestarted(t *testing.T) {
	t.Parallel()
	l := newLab(t, labOpts{})
	tg := l.serveRemote(t, echo)
	d := l.up(t, tun{forwards: [][2]string{{"localhost:2220", tg.Addr()}}})
	d.WaitMsg(0, 20*time.Second, "forward up")
	l.waitTraffic(t, 5*time.Second)

	from := d.Mark()
	l.sshd.Kill()
	e, _, _ := d.WaitMsg(from, 5*time.Second, "tunnel down; will retry")
	t.Logf("down: result=%s err=%s", e.Str("result"), e.Str("err"))
	time.Sleep(3 * time.Second)
	restart := time.Now() // sshd listens shortly after: the figure includes its start
	l.sshd.Restart(t)
	back := l.waitTraffic(t, 15*time.Second)
	recovery := back.Sub(restart)
	figure(t, "hub restart recovery (traffic after sshd started)", recovery.Round(time.Millisecond))
	if recovery > 3*time.Second {
		t.Errorf("traffic %v after sshd was started again, want <= 3s", recovery)
	}
	downs := d.Retries(from)
	figure(t, "hub restart attempts while down 3 s", len(downs))
	for i, e := range downs {
		w, _ := time.ParseDuration(e.Str("retry_in"))
		step := time.Second // after the session's end: backoff.initial
		if strings.Contains(e.Str("err"), "connection refused") {
			step = 500 * time.Millisecond << i // reconnect.DefaultRefusedRetry, doubling
		}
		if w < step*8/10 || w > step*12/10 {
			t.Errorf("retry %d: retry_in %s after %q, want %v +-20%%", i, e.Str("retry_in"), e.Str("err"), step)
		}
	}
	// About 1, 2 and 4 s after the kill: the first failure and three more.
	if len(downs) > 4 {
		t.Errorf("%d attempts in about 3 s, want <= 4 (what autossh costs a down hub)", len(downs))
	}
}

// Row: an RST storm (every TCP segment reaching the hub answered with a
// reset) for 40 s. No crash, no tight loop: the attempts follow the backoff
// schedule (doubling from backoff.initial, here 500 ms, to its max, 4 s),
// and rtunnel barely uses the CPU.
//
// The rule rejects on input only: netns.Host.RejectReset also rejects on
// output, which drops the very resets it generates (the peer then sees a
// blackhole, not resets).
func TestRSTStorm(t *testing.T) {
	t.Parallel()
	l := newLab(t, labOpts{})
	tg := l.serveRemote(t, echo)
	d := l.up(t, tun{forwards: [][2]string{{"localhost:2220", tg.Addr()}},
		backoff: "{initial: 500ms, max: 4s, multiplier: 2, jitter: 0.2, reset_after: 60s}"})
	d.WaitMsg(0, 20*time.Second, "forward up")

	from := d.Mark()
	before := readProc(t, d.PID())
	nft(t, l.hub, `table inet rt_rst {
	chain in { type filter hook input priority -100; policy accept; iifname "eth0" meta l4proto tcp reject with tcp reset; }
}
`)
	time.Sleep(40 * time.Second)
	after := readProc(t, d.PID())
	nftDelete(t, l.hub, "rt_rst")
	healed := time.Now()
	if _, exited := d.Wait(0); exited {
		t.Fatalf("rtunnel exited (%d) during the RST storm", d.ExitCode())
	}
	downs := d.Retries(from)
	if len(downs) < 2 {
		t.Fatalf("%d retries during a 40 s RST storm", len(downs))
	}
	first := logTime(t, downs[0])
	var grown time.Duration
	for i, e := range downs {
		wait, err := time.ParseDuration(e.Str("retry_in"))
		if err != nil {
			t.Fatalf("retry_in %q: %v", e.Str("retry_in"), err)
		}
		if r := e.Str("result"); r != "dial" && r != "closed" && r != "handshake" {
			t.Errorf("retry %d: result %q, want dial (a reset connect)", i, r)
		}
		age := logTime(t, e).Sub(first)
		step := min(500*time.Millisecond<<i, 4*time.Second) // backoff.initial doubling to max
		if lo, hi := step*8/10, step*12/10; wait < lo || wait > hi {
			t.Errorf("retry %d at +%v waits %v, want %v-%v", i, age.Round(time.Millisecond), wait, lo, hi)
		}
		grown = max(grown, wait)
		if i+1 < len(downs) {
			if gap := logTime(t, downs[i+1]).Sub(logTime(t, e)); gap < wait-20*time.Millisecond {
				t.Errorf("retry %d came %v after the previous, which scheduled %v: tight loop", i+1, gap, wait)
			}
		}
	}
	cpu := after.cpu - before.cpu
	figure(t, "RST storm: attempts in 40 s", len(downs))
	figure(t, "RST storm: longest wait reached", grown)
	figure(t, "RST storm: rtunnel CPU time in 40 s", cpu)
	// 0.5, 1, 2 s, then one per 4 s (-20 %): about 14.
	if len(downs) > 16 {
		t.Errorf("%d attempts in 40 s: too many", len(downs))
	}
	if grown < 1600*time.Millisecond {
		t.Errorf("longest wait %v after 40 s of resets, want the schedule to have grown", grown)
	}
	if cpu > 8*time.Second {
		t.Errorf("rtunnel used %v of CPU in 40 s of resets", cpu)
	}
	fe, _, _ := d.WaitMsg(from, 15*time.Second, "forward up")
	figure(t, "RST storm: forward up after the resets stopped", logTime(t, fe).Sub(healed).Round(time.Millisecond))
	l.waitTraffic(t, 5*time.Second)
}

// Row: the hub's name does not resolve at boot (the remote's /etc/hosts
// lacks it, and its resolver answers nothing), then the line is added.
// rtunnel keeps retrying with backoff and connects once the name resolves.
func TestHubNameDoesNotResolve(t *testing.T) {
	t.Parallel()
	const name = "hub.rtunnel.test"
	l := newLab(t, labOpts{hostName: name})
	l.remote.SetHosts() // no line for the hub
	// A resolver on the remote's own loopback, where nothing listens: no
	// query leaves the namespace.
	resolv := filepath.Join("/etc/netns", l.remote.NS, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tg := l.serveRemote(t, echo)
	d := l.up(t, tun{server: fmt.Sprintf("root@%s:%d", name, l.sshd.Port), forwards: [][2]string{{"localhost:2220", tg.Addr()}}})
	var last int
	var lastWait time.Duration
	for i := 0; i < 3; i++ {
		e, idx, _ := d.WaitFrom(last, 20*time.Second, "a retry", daemontest.IsRetry)
		last = idx + 1
		if e.Str("result") != "dial" || !strings.Contains(e.Str("err"), name) {
			t.Fatalf("retry %d: result=%q err=%q, want a dial error naming %s", i, e.Str("result"), e.Str("err"), name)
		}
		if w, _ := time.ParseDuration(e.Str("retry_in")); w < time.Second<<i*8/10 || w > time.Second<<i*12/10 {
			t.Errorf("retry %d: retry_in %s, want %v +-20%%", i, e.Str("retry_in"), time.Second<<i)
		}
		lastWait, _ = time.ParseDuration(e.Str("retry_in"))
		if i == 0 {
			t.Logf("unresolvable: %s", e.Str("err"))
		}
	}
	l.remote.SetHosts(l.hub.IP + " " + name)
	fixed := time.Now()
	fe, _, _ := d.WaitMsg(last, 20*time.Second, "forward up")
	took := logTime(t, fe).Sub(fixed)
	figure(t, "DNS: connected after the name resolves", took.Round(time.Millisecond))
	// Go's resolver re-reads /etc/hosts at most every 5 s; the next attempt
	// comes after the wait scheduled last (4 s) and the one after it (8 s).
	if took > lastWait+10*time.Second+1500*time.Millisecond {
		t.Errorf("connected %v after the name was added", took)
	}
	l.waitTraffic(t, 5*time.Second)
}

// Row: a server that accepts TCP and never speaks SSH. The handshake times
// out at connect_timeout and is retried; its kernel ACKs, so rtunnel does
// not open a second connection beside the silent one.
func TestServerNeverSpeaksSSH(t *testing.T) {
	t.Parallel()
	l := newLab(t, labOpts{})
	ln := listenInAddr(t, l.hub.NS, l.hub.IP+":2222")
	var mu sync.Mutex
	var accepts []time.Time
	tcptest.Serve(t, ln, func(_ int, c net.Conn) {
		mu.Lock()
		accepts = append(accepts, time.Now())
		mu.Unlock()
		io.Copy(io.Discard, c) // reads, never writes
	})
	kh := filepath.Join(l.dir, "known_hosts_silent")
	f := strings.Fields(l.sshd.HostKeyPublicLines()[0])
	if err := os.WriteFile(kh, []byte(fmt.Sprintf("[%s]:2222 %s %s\n", l.hub.IP, f[0], f[1])), 0o644); err != nil {
		t.Fatal(err)
	}
	tg := l.serveRemote(t, echo)
	// Its kernel ACKs, as a busy hub's does for a connection in its accept
	// queue: the handshake waits 4 x connect_timeout.
	d := l.up(t, tun{server: "root@" + l.hub.IP + ":2222", knownHosts: kh, connectTimeout: "1s",
		forwards: [][2]string{{"localhost:2220", tg.Addr()}}})
	e1, i1, _ := d.WaitMsg(0, 15*time.Second, "tunnel down; will retry")
	e2, _, _ := d.WaitFrom(i1+1, 15*time.Second, "a second retry", daemontest.IsRetry)
	for _, e := range []map[string]any{e1, e2} {
		if e["result"] != "timeout" || !strings.Contains(fmt.Sprint(e["err"]), "SSH handshake with root@"+l.hub.IP+":2222 did not finish within 4s: connected, but sshd never sent its version") {
			t.Errorf("retry: result=%v err=%v, want the handshake timeout", e["result"], e["err"])
		}
	}
	mu.Lock()
	n := len(accepts)
	firstAccept := accepts[0]
	mu.Unlock()
	took := logTime(t, e1).Sub(firstAccept)
	figure(t, "silent server: handshake gave up after", took.Round(time.Millisecond))
	if took < 3900*time.Millisecond || took > 4500*time.Millisecond {
		t.Errorf("handshake gave up %v after the connection, want 4 x connect_timeout (4s)", took)
	}
	if n != 2 {
		t.Errorf("%d connections for 2 attempts to a silent server, want 2", n)
	}
}

// Row: our key removed from the hub's authorized_keys, then restored. The
// refusal is retried, logged as auth refused at error level once, then each
// retry at debug level; the tunnel connects after the restore.
func TestKeyRemovedThenRestored(t *testing.T) {
	t.Parallel()
	l := newLab(t, labOpts{})
	tg := l.serveRemote(t, echo)
	// backoff.max 1s: the row measures that a refused key keeps being
	// retried and connects once restored, not the default 60 s schedule.
	d := l.up(t, tun{forwards: [][2]string{{"localhost:2220", tg.Addr()}}, backoff: "{initial: 250ms, max: 1s}"})
	d.WaitMsg(0, 20*time.Second, "forward up")
	from := d.Mark()
	l.sshd.SetAuthorizedKeys(t, nil)
	l.killSessions(t)
	// The first refusal of the outage is logged at ERROR (the outage may
	// have started as "closed" when the session was killed: then as a
	// change of cause); the retries after it at DEBUG, where the lab's
	// log.level debug shows them (cmd/rtunnel/failurelog.go).
	last := from
	for i := 0; i < 3; i++ {
		e, idx, _ := d.WaitFrom(last, 15*time.Second, "an auth refusal", func(e daemontest.Entry) bool {
			return daemontest.IsRetry(e) && e.Str("result") == "auth"
		})
		last = idx + 1
		want := "DEBUG"
		if i == 0 {
			want = "ERROR"
		}
		if e.Level() != want || !strings.Contains(e.Str("err"), "refused every key offered (key "+l.tunnelKey.Fingerprint) || !strings.Contains(e.Str("err"), "authorized_keys") {
			t.Errorf("auth refusal %d logged as %s %q, want %s naming the key and authorized_keys", i, e.Level(), e.Str("err"), want)
		}
	}
	if _, exited := d.Wait(0); exited {
		t.Fatalf("rtunnel exited (%d) on a refused key", d.ExitCode())
	}
	l.sshd.SetAuthorizedKeys(t, []string{l.authorizedLine()})
	restored := time.Now()
	back := l.waitTraffic(t, 10*time.Second)
	figure(t, "key restored: traffic after", back.Sub(restored).Round(time.Millisecond))
	if took := back.Sub(restored); took > 3*time.Second {
		t.Errorf("traffic %v after the key was restored", took)
	}
}

// Row: the local target (the remote's own sshd) down, then up. The tunnel
// stays up; each forwarded connection fails fast and cleanly meanwhile;
// logins work again once sshd is back.
func TestLocalTargetDownThenUp(t *testing.T) {
	t.Parallel()
	l := newLab(t, labOpts{})
	masterKey := sshdtest.NewKey(t, l.dir, "id_master", "ed25519")
	remote := sshdtest.Start(t, sshdtest.Options{Name: "remote-sshd", NetNS: l.remote.NS, ListenAddr: "127.0.0.1",
		AuthorizedKeys: []string{masterKey.PublicLine}})
	masterKH := filepath.Join(l.dir, "master_known_hosts")
	var lines []string
	for _, pub := range remote.HostKeyPublicLines() {
		f := strings.Fields(pub)
		lines = append(lines, fmt.Sprintf("[localhost]:%d %s %s", tunnelPort, f[0], f[1]))
	}
	if err := os.WriteFile(masterKH, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := l.up(t, tun{forwards: [][2]string{{"localhost:2220", remote.Addr}}})
	d.WaitMsg(0, 20*time.Second, "forward up")
	login := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := sshdtest.SSHCommand(ctx, masterKey, masterKH, "-p", strconv.Itoa(tunnelPort), "root@localhost", "echo through-the-tunnel")
		ip, err := exec.LookPath("ip")
		if err != nil {
			return err
		}
		cmd.Args = append([]string{"ip", "netns", "exec", l.hub.NS}, cmd.Args...)
		cmd.Path = ip
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if string(out) != "through-the-tunnel\n" {
			return fmt.Errorf("login printed %q", out)
		}
		return nil
	}
	if err := login(); err != nil {
		t.Fatalf("login through the tunnel: %v", err)
	}
	from := d.Mark()
	remote.Kill()
	var slowest time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		c, err := l.dialHub(tunnelPort, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		n, rerr := c.Read(make([]byte, 1))
		c.Close()
		if n != 0 || rerr == nil || errors.Is(rerr, os.ErrDeadlineExceeded) {
			t.Fatalf("a connection to the dead target: n=%d err=%v, want closed", n, rerr)
		}
		slowest = max(slowest, time.Since(start))
	}
	figure(t, "dead local target: slowest of 5 connections to close", slowest.Round(time.Millisecond))
	if slowest > time.Second {
		t.Errorf("a connection to the dead target took %v to close", slowest)
	}
	if err := login(); err == nil {
		t.Error("login succeeded with the remote's sshd down")
	}
	d.WaitMsg(from, 5*time.Second, "local target refused a forwarded connection; the tunnel stays up")
	remote.Restart(t)
	if err := login(); err != nil {
		t.Fatalf("login after the remote's sshd came back: %v", err)
	}
	if n := len(entries(d, 0, "connected")); n != 1 {
		t.Errorf("%d sessions: the tunnel should have stayed up", n)
	}
	if n := len(d.Retries(from)); n != 0 {
		t.Errorf("the tunnel went down %d times while the local target was down", n)
	}
}
