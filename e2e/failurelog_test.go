package e2e

import (
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// isRetryLine reports whether e is one of the lines a failed attempt logs:
// the first of an outage, one whose cause changed, or (at debug level) the
// others.
func isRetryLine(e daemontest.Entry) bool {
	switch e.Msg() {
	case "tunnel down; will retry", "tunnel still down, for another reason now; will retry", "tunnel down again; will retry":
		return true
	}
	return false
}

// A hub port that refuses connections, retried every 250 ms: over 8 s the
// log holds one warning (the start of the outage) while every attempt is
// counted in rtunnel_connect_attempts_total and shows at debug level; when
// sshd comes back, the recovery is logged once with the outage's length.
// (Before, each attempt was a warning: about 30 lines in these 8 s.)
func TestRefusedPortLoggedOnceNotPerAttempt(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	cfg := w.config(t, [][2]string{w.sshForward()}, "")
	addr := withMetrics(t, cfg)
	dead := sshdtest.FreePort(t)
	text := strings.Replace(mustRead(t, cfg), "server: root@127.0.0.1:"+strconv.Itoa(w.hub.Port), "server: root@127.0.0.1:"+strconv.Itoa(dead), 1)
	// A short backoff.max: the window must hold many attempts (a refused
	// connect doubles from 0.5 s; to the world's 2 s it would hold about 6).
	text = strings.Replace(text, "backoff: {initial: 200ms, max: 2s,", "backoff: {initial: 100ms, max: 300ms,", 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// The hub's keys under the dead port's name too.
	kh := mustRead(t, w.knownHosts)
	moved := strings.ReplaceAll(kh, "]:"+strconv.Itoa(w.hub.Port)+" ", "]:"+strconv.Itoa(dead)+" ")
	if err := os.WriteFile(w.knownHosts, []byte(kh+moved), 0o644); err != nil {
		t.Fatal(err)
	}
	d := w.up(t, cfg)
	d.WaitMsg(0, 10*time.Second, "tunnel down; will retry")
	time.Sleep(8 * time.Second) // the window being measured
	warnings, debug := 0, 0
	for _, e := range d.Entries(0) {
		if e.Str("tunnel") != "hub" {
			continue
		}
		switch e.Level() {
		case "WARN", "ERROR":
			warnings++
		case "DEBUG":
			if e.Msg() == "tunnel down again; will retry" {
				debug++
			}
		}
	}
	attempts := scrape(t, addr)[`rtunnel_connect_attempts_total{result="dial",tunnel="hub"}`]
	t.Logf("8 s of a refused port: %d warnings, %d debug lines, %v attempts counted", warnings, debug, attempts)
	if warnings != 1 {
		t.Errorf("%d warnings for one outage, want 1:\n%s", warnings, d.Raw())
	}
	if attempts < 10 || float64(debug) < attempts-2 {
		t.Errorf("%v attempts counted and %d at debug level: want every attempt (>= 10) counted and at debug", attempts, debug)
	}

	// The port comes back (a relay to the hub): one recovery line.
	mark := d.Mark()
	serveLocal(t, "127.0.0.1:"+strconv.Itoa(dead), func(c net.Conn) {
		h, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(w.hub.Port))
		if err != nil {
			return
		}
		defer h.Close()
		go func() { io.Copy(h, c); h.(*net.TCPConn).CloseWrite() }()
		io.Copy(c, h)
	})
	e, _, _ := d.WaitMsg(mark, 20*time.Second, "tunnel recovered")
	down, err := time.ParseDuration(e.Str("down_for"))
	if err != nil || down < 8*time.Second || down > 30*time.Second {
		t.Errorf("recovery: down_for %q, want the outage's length (8 s and more)", e.Str("down_for"))
	}
	w.echoLogin(t)
}
