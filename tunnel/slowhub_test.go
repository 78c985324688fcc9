package tunnel

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// slowProxy forwards connections to target, holding back every chunk the
// server sends for delay: a hub that answers each step of the handshake,
// slowly, as one working through a storm does.
func slowProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, s)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(s, c); s.Close() }()
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						time.Sleep(delay)
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A hub that answers every step, each within connect_timeout but the whole
// handshake in more than it, is not given up (which would waste its work
// and may leave a second login behind): connect_timeout bounds its silence
// once it has spoken SSH, up to slowHandshakeLimit x connect_timeout.
func TestSlowHubHandshakeIsNotAbandoned(t *testing.T) {
	s := newTestServer(t)
	proxy := slowProxy(t, s.ln.Addr().String(), 300*time.Millisecond)
	cfg := baseConfig(s, newClientFiles(t, s), &logs{}, "127.0.0.1:22")
	cfg.Server.ConnectTimeout = time.Second
	cfg.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, proxy)
	}
	start := time.Now()
	r := startSession(t, cfg)
	r.waitUp(t)
	took := time.Since(start)
	t.Logf("up after %v through a hub that answers each step after 0.3 s (connect_timeout 1s)", took)
	if took < cfg.Server.ConnectTimeout {
		t.Fatalf("up after %v: the proxy did not slow the handshake past connect_timeout", took)
	}
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("%d connections to the hub, want 1 (none abandoned)", n)
	}
}

func TestMoreForProgress(t *testing.T) {
	const timeout = 10 * time.Second
	now := time.Now()
	for _, tc := range []struct {
		started time.Duration // ago
		silent  time.Duration
		spoke   bool
		want    time.Duration
	}{
		{10 * time.Second, 10 * time.Second, false, 0}, // never spoke: connect_timeout as ever
		{10 * time.Second, 2 * time.Second, false, 0},  // data, but no SSH banner
		{10 * time.Second, 2 * time.Second, true, 8 * time.Second},
		{10 * time.Second, 10 * time.Second, true, 0},          // silent for connect_timeout
		{38 * time.Second, time.Second, true, 2 * time.Second}, // the limit, 40 s, comes first
		{41 * time.Second, 0, true, 0},
	} {
		got := moreForProgress(timeout, now.Add(-tc.started), tc.silent, tc.spoke)
		if d := got - tc.want; d < -50*time.Millisecond || d > 50*time.Millisecond {
			t.Errorf("started %v ago, silent %v, spoke %v: %v more, want %v", tc.started, tc.silent, tc.spoke, got, tc.want)
		}
	}
}
