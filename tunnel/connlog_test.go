package tunnel

import (
	"net"
	"strings"
	"testing"
	"time"
)

// At debug level each forwarded connection is logged when it opens and
// when it closes, with the bytes each way, how long it lasted and how it
// ended.
func TestForwardedConnectionLoggedAtDebug(t *testing.T) {
	cases := []struct {
		name    string
		target  func(i int, c net.Conn)
		send    string
		in, out string // bytes server->local, local->server
		end     string
		errText string
	}{
		{"both sides close", echo, "hello", "5", "5", "closed by both sides", ""},
		{"local target resets", func(_ int, c net.Conn) {
			buf := make([]byte, 3)
			if _, err := c.Read(buf); err == nil {
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
		}, "abc", "3", "0", "local target error", "connection reset by peer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestServer(t)
			l := &logs{}
			tg := newTarget(t, c.target)
			r := startSession(t, baseConfig(s, newClientFiles(t, s), l, tg.Addr()))
			r.waitUp(t)
			ch, err := s.next(t).openForwarded("localhost", 2220)
			if err != nil {
				t.Fatal(err)
			}
			if c.end == "closed by both sides" {
				roundTrip(t, ch, []byte(c.send))
			} else {
				ch.Write([]byte(c.send))
				defer ch.Close()
			}
			open := l.wait(t, "forwarded connection open", 5*time.Second)
			closed := l.wait(t, "forwarded connection closed", 5*time.Second)
			for _, rec := range []record{open, closed} {
				if rec.level.String() != "DEBUG" || rec.attrs["forward"] != "localhost:2220->"+tg.Addr() || rec.attrs["origin"] != "127.0.0.1:40000" {
					t.Errorf("%q logged as %s %v", rec.msg, rec.level, rec.attrs)
				}
			}
			a := closed.attrs
			if a["bytes_in"] != c.in || a["bytes_out"] != c.out || a["end"] != c.end || !strings.Contains(a["err"], c.errText) {
				t.Errorf("close logged %v; want bytes_in=%s bytes_out=%s end=%q err containing %q", a, c.in, c.out, c.end, c.errText)
			}
			if d, err := time.ParseDuration(a["duration"]); err != nil || d <= 0 || d > 5*time.Second {
				t.Errorf("duration %q", a["duration"])
			}
		})
	}
}
