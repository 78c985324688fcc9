package e2e

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
)

// A hub past MaxStartups (here 1, held by a connection that never
// authenticates) drops rtunnel's connections before the SSH banner: rtunnel
// says "hub busy (MaxStartups?)" once, retries after spread-out waits that
// grow, and is up as soon as the hub has room again.
func TestHubPastMaxStartups(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{hubExtra: "MaxStartups 1"})
	hold := holdStartup(t, w.hub.Addr)
	defer hold.Close()

	d := w.up(t, w.config(t, [][2]string{w.sshForward()}, ""))
	const drops = 4
	var busy []daemontest.Entry
	for from := 0; len(busy) < drops; {
		e, i, _ := d.WaitFrom(from, 30*time.Second, "a busy retry", func(e daemontest.Entry) bool { return e.Str("result") == "busy" })
		busy = append(busy, e)
		from = i + 1
	}
	// sshd may write its line about the last drop a moment after rtunnel
	// saw the connection close: wait for it, bounded.
	n := 0
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n = strings.Count(w.hub.Log(), "past MaxStartups"); n >= drops || time.Now().After(deadline) {
			break
		}
	}
	if n < drops {
		t.Errorf("the hub logged %d drops past MaxStartups, rtunnel %d busy retries", n, len(busy))
	}
	told := 0
	for i, e := range busy {
		if strings.HasPrefix(e.Msg(), "hub busy (MaxStartups?)") {
			told++
			if e.Level() != "WARN" {
				t.Errorf("hub busy logged at %s, want WARN", e.Level())
			}
			if !strings.Contains(e.Msg(), "raise its MaxStartups") {
				t.Errorf("hub busy line %q does not say what to change", e.Msg())
			}
		} else if e.Level() != "DEBUG" {
			t.Errorf("busy retry %d logged at %s (%q): want it said once, then at debug", i, e.Level(), e.Msg())
		}
		if !strings.Contains(e.Str("err"), "closed the connection before it spoke SSH") {
			t.Errorf("busy retry %d: err %q", i, e.Str("err"))
		}
	}
	if told != 1 {
		t.Errorf("hub busy said %d times in %d busy retries, want once", told, len(busy))
	}
	// Waits grow from backoff.initial (200 ms) and are spread over 0.5-1.5
	// times each step: never an immediate retry.
	for i, e := range busy {
		wait, err := time.ParseDuration(e.Str("retry_in"))
		if err != nil {
			t.Fatalf("retry_in %q: %v", e.Str("retry_in"), err)
		}
		step := min(200*time.Millisecond<<i, 2*time.Second)
		if wait < step/2 || wait > step*3/2 {
			t.Errorf("busy retry %d waits %v, want %v-%v", i, wait, step/2, step*3/2)
		}
	}

	from := d.Mark()
	hold.Close()
	waitForwardUp(t, d, from, 10*time.Second)
	w.echoLogin(t)
}

// holdStartup takes the hub's one MaxStartups slot with a connection that
// never authenticates. The slot may still be held by the readiness probe of
// sshdtest for a moment; Debian's sshd then answers "Exceeded MaxStartups"
// and closes, and the next try gets in.
func holdStartup(t *testing.T, addr string) net.Conn {
	t.Helper()
	var last string
	for range 50 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		banner, err := readLine(c)
		if err == nil && strings.HasPrefix(banner, "SSH-2.0-") {
			return c // sshd forked for it: the slot is ours
		}
		c.Close()
		last = banner
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("could not hold the hub's start-up slot; last answer %q", last)
	return nil
}

// readLine reads up to a newline, byte by byte (no buffering past it).
func readLine(c net.Conn) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < 256 {
		if _, err := c.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			break
		}
		b = append(b, one[0])
	}
	return strings.TrimSpace(string(b)), nil
}
