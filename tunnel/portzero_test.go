package tunnel

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// replyAfterChannel grants a port-0 tcpip-forward with port, but first
// sends a forwarded-tcpip channel open for that port: a connection that
// reaches the new listener at once can overtake the reply, and x/crypto
// hands the two to different goroutines anyway. The reply follows 100 ms
// after the open was sent; should the scheduler still deliver the reply
// first, the test passes through the ordinary path, never fails falsely.
func (s *testServer) replyAfterChannel(sc *hubConn, r *ssh.Request, addr string, port uint32) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ch, err := sc.openForwarded(addr, port)
		if err == nil {
			s.earlyChans <- ch
		} else {
			close(s.earlyChans)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	_ = r.Reply(true, ssh.Marshal(&struct{ Port uint32 }{port}))
}

// A port-0 forward: the port from the reply is reported, labels stay
// "localhost:0->...", channels for the allocated port are served (also one
// that arrived before the reply), and the port is withdrawn at the end.
func TestPortZeroForward(t *testing.T) {
	s := newTestServer(t)
	s.allocate.Store(43210)
	s.earlyChans = make(chan ssh.Channel, 1)
	f := newClientFiles(t, s)
	l := &logs{}
	tg := newTarget(t, echo)
	cfg := baseConfig(s, f, l, tg.Addr())
	cfg.Forwards = []Forward{{RemoteHost: "localhost", RemotePort: 0, Local: tg.Addr()}}
	var (
		mu       sync.Mutex
		reported []int
	)
	cfg.ForwardAllocated = func(forward string, port int) {
		mu.Lock()
		defer mu.Unlock()
		if forward != "localhost:0->"+tg.Addr() {
			t.Errorf("ForwardAllocated for %q", forward)
		}
		reported = append(reported, port)
	}
	r := startSession(t, cfg)
	r.waitUp(t)
	sc := s.next(t)

	rec := l.wait(t, "forward up", 5*time.Second)
	if rec.attrs["allocated_port"] != "43210" {
		t.Errorf("forward up %v: want allocated_port 43210", rec.attrs)
	}
	select {
	case ch, ok := <-s.earlyChans:
		if !ok {
			t.Fatal("the channel sent before the reply was refused")
		}
		roundTrip(t, ch, []byte("overtook the reply"))
	case <-time.After(10 * time.Second):
		t.Fatal("the early channel was neither accepted nor refused")
	}
	ch, err := sc.openForwarded("127.0.0.1", 43210) // sshd reports the address it bound
	if err != nil {
		t.Fatalf("forwarded-tcpip for the allocated port: %v", err)
	}
	roundTrip(t, ch, []byte("by the allocated port"))
	if _, err := sc.openForwarded("localhost", 0); err == nil {
		t.Error("a channel for port 0 itself was accepted: sshd never sends one")
	}
	r.cancel()
	if err := r.wait(t, 10*time.Second); err != nil {
		t.Fatalf("session after stop: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 2 || reported[0] != 43210 || reported[1] != 0 {
		t.Errorf("ForwardAllocated got %v, want [43210 0] (up, then down)", reported)
	}
}

// A server that grants port 0 without saying which port it bound: the
// forward cannot be matched or cancelled, so the session ends and says why.
func TestPortZeroReplyWithoutPort(t *testing.T) {
	s := newTestServer(t) // allocate unset: an empty success reply
	f := newClientFiles(t, s)
	l := &logs{}
	tg := newTarget(t, echo)
	cfg := baseConfig(s, f, l, tg.Addr())
	cfg.Forwards = []Forward{{RemoteHost: "localhost", RemotePort: 0, Local: tg.Addr()}}
	r := startSession(t, cfg)
	err := r.wait(t, 10*time.Second)
	var ce *ClosedError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "tcpip-forward localhost:0: the server's reply names no port (0 bytes)") {
		t.Fatalf("session ended with %v, want the missing port named", err)
	}
	if Permanent(err) {
		t.Error("a bad reply is retried, not permanent")
	}
}
