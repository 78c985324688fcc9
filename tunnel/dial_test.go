package tunnel

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// stallingDialer lets a test decide, per call, whether the first-hop
// connect hangs as a SYN into a dead link does (until its context ends).
type stallingDialer struct {
	calls    atomic.Int32
	inFlight atomic.Int32
	maxIn    atomic.Int32
	do       func(n int, ctx context.Context, addr string) (net.Conn, error)
}

func (d *stallingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n := int(d.calls.Add(1))
	in := d.inFlight.Add(1)
	defer d.inFlight.Add(-1)
	for {
		m := d.maxIn.Load()
		if in <= m || d.maxIn.CompareAndSwap(m, in) {
			break
		}
	}
	return d.do(n, ctx, addr)
}

func hang(ctx context.Context) (net.Conn, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func realDial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// A connect whose SYN is unanswered gets a fresh socket just before each of
// the kernel's SYN retransmissions would be due (1, 3, 7 s), never a second
// connect beside it, and connect_timeout bounds the whole.
func TestConnectRedialsAStalledSYNOnTheKernelsSchedule(t *testing.T) {
	f := newClientFiles(t, nil)
	var at []time.Duration
	var mu sync.Mutex
	start := time.Now()
	d := &stallingDialer{do: func(_ int, ctx context.Context, _ string) (net.Conn, error) {
		mu.Lock()
		at = append(at, time.Since(start))
		mu.Unlock()
		return hang(ctx)
	}}
	cfg := baseConfig(nil, f, &logs{}, "127.0.0.1:22")
	cfg.Server.Port = 22
	cfg.Server.ConnectTimeout = 7500 * time.Millisecond
	cfg.DialContext = d.dial
	writeFile(t, f.knownHosts, "127.0.0.1 "+string(marshalKey(t)), 0o644)
	err := runOnce(t, cfg)
	took := time.Since(start)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Step != "TCP connect" {
		t.Fatalf("err %v, want a TCP connect timeout", err)
	}
	check(t, err, classified{result: ResultTimeout, words: []string{"TCP connect with rt@127.0.0.1:22 did not finish within 7.5s"}})
	if took < cfg.Server.ConnectTimeout || took > cfg.Server.ConnectTimeout+500*time.Millisecond {
		t.Errorf("gave up after %v, want connect_timeout %v", took, cfg.Server.ConnectTimeout)
	}
	mu.Lock()
	defer mu.Unlock()
	// Fresh SYNs at 0, 0.95, 2.85 and 6.65 s: where the kernel's own
	// retransmissions (1, 3, 7 s) would have gone.
	want := []time.Duration{0, 950 * time.Millisecond, 2850 * time.Millisecond, 6650 * time.Millisecond}
	if len(at) != len(want) {
		t.Fatalf("connects at %v, want at %v", at, want)
	}
	for i := range want {
		if at[i] < want[i] || at[i] > want[i]+300*time.Millisecond {
			t.Errorf("connect %d at %v, want at %v", i, at[i], want[i])
		}
	}
	// +1: the replaced connect may not have returned yet.
	if m := d.maxIn.Load(); m > 2 {
		t.Errorf("%d connects in flight at once, want one (and the one it replaces)", m)
	}
}

// A refused connect is the answer at once.
func TestConnectRefusedIsTheAnswer(t *testing.T) {
	f := newClientFiles(t, nil)
	closed := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	d := &stallingDialer{do: func(_ int, ctx context.Context, _ string) (net.Conn, error) { return realDial(ctx, closed) }}
	cfg := baseConfig(nil, f, &logs{}, "127.0.0.1:22")
	cfg.Server.Port = 22
	cfg.Server.ConnectTimeout = 15 * time.Second
	cfg.DialContext = d.dial
	writeFile(t, f.knownHosts, "127.0.0.1 "+string(marshalKey(t)), 0o644)
	start := time.Now()
	err := runOnce(t, cfg)
	if !errors.Is(err, syscall.ECONNREFUSED) || !Refused(err) {
		t.Fatalf("err %v, want the refusal", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("refusal reported after %v, want at once", took)
	}
	if n := d.calls.Load(); n != 1 {
		t.Errorf("%d connects, want 1", n)
	}
}

func marshalKey(t *testing.T) []byte {
	t.Helper()
	return ssh.MarshalAuthorizedKey(otherKey(t))
}

// The tcp_info ages the connect and keepalive logic read are the kernel's:
// data counts when it arrives, before anyone reads it.
func TestTCPInfoAges(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("tcp_info is Linux-only")
	}
	peer, tc := tcpPair(t)
	time.Sleep(400 * time.Millisecond)
	data, ok1 := lastDataAge(tc)
	ack, ok2 := lastAckAge(tc)
	if !ok1 || !ok2 || data < 300*time.Millisecond || ack < 300*time.Millisecond {
		t.Fatalf("idle for 400ms: last data %v (%v), last ack %v (%v)", data, ok1, ack, ok2)
	}
	peer.Write([]byte("x")) // never read by tc
	tc.Write([]byte("y"))   // ACKed by the peer's kernel
	time.Sleep(50 * time.Millisecond)
	data, _ = lastDataAge(tc)
	ack, _ = lastAckAge(tc)
	if data > 200*time.Millisecond || ack > 200*time.Millisecond {
		t.Fatalf("after traffic: last data %v, last ack %v, want recent", data, ack)
	}
}
