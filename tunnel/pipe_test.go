package tunnel

import (
	"io"
	"net"
	"testing"
	"time"
)

// A server that closes a forwarded channel while the local target stays
// silent (reads, sends nothing, keeps its socket open): rtunnel must still
// deliver what the channel carried, then close the local socket and free
// the connection's max_connections slot instead of waiting for the target.
func TestChannelClosedWhileLocalSilent(t *testing.T) {
	got := make(chan string, 4)
	release := make(chan struct{})
	s := newTestServer(t)
	f := newClientFiles(t, s)
	l := &logs{}
	tg := newTarget(t, func(_ int, c net.Conn) {
		b, _ := io.ReadAll(c) // until rtunnel's EOF
		got <- string(b)
		<-release // silent, socket open
	})
	t.Cleanup(func() { close(release) })
	cfg := baseConfig(s, f, l, tg.Addr())
	cfg.MaxConnections = 1
	r := startSession(t, cfg)
	r.waitUp(t)
	sc := s.next(t)
	ch, err := sc.openForwarded("localhost", 2220)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	ch.Close() // no EOF first, as a hostile or buggy server might
	select {
	case b := <-got:
		if b != "last words" {
			t.Fatalf("local target got %q, want the bytes sent before the close", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the local target never got EOF after the server closed the channel")
	}
	// With max_connections 1, a second connection is served only if the
	// first one's slot was freed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ch2, err := sc.openForwarded("localhost", 2220)
		if err == nil {
			ch2.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second connection still refused 5 s after the first channel closed: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // bounded poll of the server-visible outcome
	}
	r.alive(t)
}
