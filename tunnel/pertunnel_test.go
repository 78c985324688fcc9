package tunnel

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// idleGoroutinesPerTunnel is what one idle tunnel may hold, counted from
// the goroutine that calls Session (a reconnect loop in rtunnel):
//   - that caller, which serves the server's requests and channels
//     (serveIncoming, incoming.go) for the whole session;
//   - x/crypto/ssh's three per connection: the transport's readLoop and
//     kexLoop, and the mux loop (no ssh.Client: see channelconn.go).
//
// The keepalive runs on timers and the graceful stop on a
// context.AfterFunc: neither holds one between events. Issue 12 asks for
// at most 2; x/crypto's three are beyond rtunnel's reach.
const idleGoroutinesPerTunnel = 4

// idleHeapPerTunnel bounds the live heap one idle tunnel adds: x/crypto's
// buffers and the session's state, no bulk read buffer (conn.go). It is a
// lower bound of the RSS a tunnel costs; the budget is 100 KiB.
const idleHeapPerTunnel = 64 << 10

// N idle tunnels in one process against a real sshd: each added tunnel
// costs at most idleGoroutinesPerTunnel goroutines, and all of them are
// gone once the sessions are stopped.
func TestIdleTunnelGoroutines(t *testing.T) {
	const n = 10
	h := startRealHub(t, "")
	key := sshdtest.NewKey(t, h.dir, "id", "ed25519")
	h.srv.SetAuthorizedKeys(t, []string{key.PublicLine})
	kh := h.knownHosts(t)
	l := &logs{}

	before := settledGoroutines(t, func(int) bool { return true })
	var heapBefore runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heapBefore)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ups := make(chan int, n)
	errs := make(chan error, n)
	for i := range n {
		cfg := h.config(Endpoint{Identities: []string{key.Private}, KnownHosts: kh}, l)
		cfg.Name = fmt.Sprintf("t%d", i)
		cfg.Forwards[0].RemotePort = sshdtest.FreePort(t)
		// No tick within the test: a keepalive in flight holds a goroutine.
		cfg.KeepaliveInterval = time.Hour
		tn := New(cfg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- tn.Session(ctx, func() { ups <- i })
		}()
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	defer stop()
	deadline := time.After(30 * time.Second)
	for range n {
		select {
		case <-ups:
		case err := <-errs:
			t.Fatalf("a session ended before it came up: %v\n%s", err, l.dump())
		case <-deadline:
			t.Fatalf("not every tunnel came up within 30 s\n%s", l.dump())
		}
	}

	limit := before + n*idleGoroutinesPerTunnel
	idle := settledGoroutines(t, func(g int) bool { return g <= limit })
	var heapIdle runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heapIdle)
	perTunnel := float64(idle-before) / n
	heapPerTunnel := (int64(heapIdle.HeapAlloc) - int64(heapBefore.HeapAlloc)) / n
	t.Logf("%d idle tunnels: %d goroutines more (%.1f per tunnel, at most %d); live heap %+d KiB per tunnel (at most %d), stacks %+d KiB per tunnel",
		n, idle-before, perTunnel, idleGoroutinesPerTunnel, heapPerTunnel>>10, idleHeapPerTunnel>>10,
		(int64(heapIdle.StackInuse)-int64(heapBefore.StackInuse))/n>>10)
	if heapPerTunnel > idleHeapPerTunnel {
		t.Errorf("each idle tunnel holds %d KiB of live heap, want at most %d", heapPerTunnel>>10, idleHeapPerTunnel>>10)
	}
	if idle > limit {
		var dump bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
		t.Fatalf("%d idle tunnels hold %d goroutines more than none (%.1f each), want at most %d each:\n%s",
			n, idle-before, perTunnel, idleGoroutinesPerTunnel, dump.String())
	}

	stop()
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("a session stopped with %v, want nil", err)
		}
	}
	if after := settledGoroutines(t, func(g int) bool { return g <= before }); after > before {
		t.Errorf("%d goroutines outlived the stopped sessions", after-before)
	}
}

// settledGoroutines waits (5 s at most) until the goroutine count meets ok
// and returns it: goroutines that are on their way out (x/crypto's
// dispatchers handed closed channels, a finished callback) must not count.
func settledGoroutines(t *testing.T, ok func(int) bool) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g := runtime.NumGoroutine()
		if ok(g) || time.Now().After(deadline) {
			return g
		}
		time.Sleep(20 * time.Millisecond)
	}
}
