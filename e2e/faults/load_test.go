package faults

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/rtunnel/rtunnel/internal/tcptest"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stream is size bytes of a seeded ChaCha8 stream: both ends can produce or
// check it without holding it.
type stream struct {
	r    *rand.ChaCha8
	left int64
}

func newStream(seed byte, size int64) *stream {
	var s [32]byte
	s[0] = seed
	return &stream{r: rand.NewChaCha8(s), left: size}
}

func (s *stream) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, _ := s.r.Read(p)
	s.left -= int64(n)
	return n, nil
}

// counted counts bytes as they pass, for the stall watchdog.
type counted struct {
	n *atomic.Int64
	h hash.Hash
}

func (c counted) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// Row: 1 GiB through the tunnel each way at once, while keepalives run
// every second: the sha256 of what arrives equals what was sent, both ways,
// and the transfer never stalls (progress every 5 s at least).
func TestIntegrity(t *testing.T) {
	integrity(t, 1<<30)
}

func integrity(t *testing.T, size int64) {
	l := newLab(t, labOpts{})
	var down, up atomic.Int64 // bytes at the target (from the master), at the master (from the target)
	type sums struct{ got, sent string }
	targetDone := make(chan sums, 1)
	tg := l.serveRemote(t, func(_ int, c net.Conn) {
		// Receive the master's stream while sending our own.
		sent := make(chan string, 1)
		go func() {
			h := sha256.New()
			_, err := io.Copy(c, io.TeeReader(newStream(2, size), h))
			if err == nil {
				c.(*net.TCPConn).CloseWrite()
			}
			sent <- hex.EncodeToString(h.Sum(nil))
		}()
		h := sha256.New()
		io.Copy(counted{&down, h}, c)
		targetDone <- sums{got: hex.EncodeToString(h.Sum(nil)), sent: <-sent}
	})
	d := l.up(t, tun{forwards: [][2]string{{"localhost:2220", tg.Addr()}}})
	d.WaitMsg(0, 20*time.Second, "forward up")
	from := d.Mark()
	c, err := l.dialHub(tunnelPort, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	start := time.Now()
	sentc := make(chan string, 1)
	go func() {
		h := sha256.New()
		_, err := io.Copy(c, io.TeeReader(newStream(1, size), h))
		if err == nil {
			c.(*net.TCPConn).CloseWrite()
		}
		sentc <- hex.EncodeToString(h.Sum(nil))
	}()
	gotc := make(chan string, 1)
	go func() {
		h := sha256.New()
		io.Copy(counted{&up, h}, c)
		gotc <- hex.EncodeToString(h.Sum(nil))
	}()

	// Watchdog: both directions move, or have finished, every 5 s.
	var masterGot, masterSent string
	var target sums
	lastDown, lastUp, lastMove := int64(-1), int64(-1), time.Now()
	var worstGap time.Duration
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for masterGot == "" || target.got == "" {
		select {
		case masterGot = <-gotc:
		case target = <-targetDone:
		case <-tick.C:
			dn, un := down.Load(), up.Load()
			if dn != lastDown || un != lastUp {
				worstGap = max(worstGap, time.Since(lastMove))
				lastDown, lastUp, lastMove = dn, un, time.Now()
			} else if time.Since(lastMove) > 5*time.Second {
				c.Close()
				t.Fatalf("transfer stalled for 5s at %d MiB down, %d MiB up of %d MiB", dn>>20, un>>20, size>>20)
			}
			if time.Since(start) > 10*time.Minute {
				t.Fatal("transfer not done in 10 minutes")
			}
		}
	}
	took := time.Since(start)
	masterSent = <-sentc
	if down.Load() != size || up.Load() != size {
		t.Fatalf("bytes: %d arrived at the target, %d at the master; want %d each", down.Load(), up.Load(), size)
	}
	if target.got != masterSent {
		t.Errorf("master -> target: sha256 %s arrived, %s sent", target.got, masterSent)
	}
	if masterGot != target.sent {
		t.Errorf("target -> master: sha256 %s arrived, %s sent", masterGot, target.sent)
	}
	figure(t, fmt.Sprintf("integrity %d MiB each way: sha256 equal, took", size>>20), took.Round(time.Millisecond))
	figure(t, "integrity: longest gap without progress", worstGap.Round(time.Millisecond))
	if n := len(d.Retries(from)); n != 0 {
		t.Errorf("the tunnel went down %d times during the transfer", n)
	}
}

// Row: 1000 forwarded connections at once, 64 KiB each way (echoed). All
// complete, or are refused cleanly by the hub's own limits (closed, not
// hung); none hangs past its deadline. The counts are logged.
//
// The keepalive is rtunnel's default (15 s x 3) here: the hub's sshd spends
// several seconds at 100 % CPU on 1000 new channels on a 2-core machine,
// sending nothing, and the fault tests' 1 s x 3 rightly calls that hung.
func TestThousandConnections(t *testing.T) {
	const n, size = 1000, 64 << 10
	l := newLab(t, labOpts{})
	tg := l.serveRemote(t, echo)
	d := l.up(t, tun{forwards: [][2]string{{"localhost:2220", tg.Addr()}}, keepalive: "{interval: 15s, count_max: 3}"})
	d.WaitMsg(0, 20*time.Second, "forward up")
	from := d.Mark()

	// Dial them all (16 dialers in the hub's namespace), then start every
	// transfer at the same moment.
	conns := make([]net.Conn, n)
	dialErrs := make([]error, n)
	var next atomic.Int32
	var dialers sync.WaitGroup
	for w := 0; w < 16; w++ {
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			_ = inNS(l.hub.NS, func() error {
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return nil
					}
					conns[i], dialErrs[i] = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tunnelPort), 30*time.Second)
				}
			})
		}()
	}
	dialers.Wait()
	var completed, refused, hung, failed atomic.Int32
	var slowest atomic.Int64
	startGate := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		if dialErrs[i] != nil {
			refused.Add(1)
			continue
		}
		wg.Add(1)
		go func(c net.Conn, seed byte) {
			defer wg.Done()
			defer c.Close()
			<-startGate
			c.SetDeadline(time.Now().Add(90 * time.Second))
			want := make([]byte, size)
			newStream(seed, size).Read(want)
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(want)
				if err == nil {
					err = c.(*net.TCPConn).CloseWrite()
				}
				werr <- err
			}()
			got, rerr := io.ReadAll(c)
			<-werr
			begun := time.Since(start)
			for {
				s := slowest.Load()
				if int64(begun) <= s || slowest.CompareAndSwap(s, int64(begun)) {
					break
				}
			}
			switch {
			case rerr == nil && bytes.Equal(got, want):
				completed.Add(1)
			case errors.Is(rerr, os.ErrDeadlineExceeded):
				hung.Add(1)
			case len(got) == 0:
				refused.Add(1) // closed or reset before any byte: refused
			default:
				failed.Add(1)
			}
		}(conns[i], byte(i))
	}
	close(startGate)
	wg.Wait()
	figure(t, "1000 connections x 64 KiB", fmt.Sprintf("%d completed, %d refused, %d hung, %d broken, slowest %v",
		completed.Load(), refused.Load(), hung.Load(), failed.Load(), time.Duration(slowest.Load()).Round(time.Millisecond)))
	if hung.Load() != 0 || failed.Load() != 0 {
		t.Errorf("%d connections hung and %d broke mid-way", hung.Load(), failed.Load())
	}
	if completed.Load()+refused.Load() != n {
		t.Errorf("%d completed + %d refused != %d", completed.Load(), refused.Load(), n)
	}
	// max_connections is 1024 by default: rtunnel itself refuses none.
	if m := len(entries(d, from, "refused a forwarded connection: max_connections reached")); m != 0 {
		t.Errorf("rtunnel refused connections at max_connections (%d warnings)", m)
	}
	if c := completed.Load(); c < n*9/10 {
		t.Errorf("only %d of %d connections completed", c, n)
	}
	if downs := d.Retries(from); len(downs) != 0 {
		t.Errorf("the tunnel went down %d times under load: %s", len(downs), downs[0].Str("err"))
	}
}

// max_connections: a flood over the limit is refused at once, with one
// (rate-limited) warning, and not queued; the connections under the limit
// are served, and freed slots serve new connections.
func TestMaxConnections(t *testing.T) {
	l := newLab(t, labOpts{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	tg := l.serveRemote(t, func(_ int, c net.Conn) {
		go func() { <-release; c.Close() }()
		io.Copy(io.Discard, c)
	})
	d := l.up(t, tun{forwards: [][2]string{{"localhost:2220", tg.Addr()}}, extra: "    max_connections: 50\n"})
	d.WaitMsg(0, 20*time.Second, "forward up")
	from := d.Mark()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 50; i++ {
		c, err := l.dialHub(tunnelPort, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// Wait until the target holds all 50.
	deadline := time.Now().Add(10 * time.Second)
	for tg.Open() < 50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := tg.Open(); got != 50 {
		t.Fatalf("the target holds %d connections, want 50", got)
	}
	var slowest time.Duration
	for i := 0; i < 150; i++ {
		start := time.Now()
		c, err := l.dialHub(tunnelPort, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		nr, rerr := c.Read(make([]byte, 1))
		c.Close()
		if nr != 0 || rerr == nil || errors.Is(rerr, os.ErrDeadlineExceeded) {
			t.Fatalf("connection %d over max_connections: n=%d err=%v, want closed at once", 51+i, nr, rerr)
		}
		slowest = max(slowest, time.Since(start))
	}
	figure(t, "max_connections 50: 150 over the limit refused, slowest", slowest.Round(time.Millisecond))
	if slowest > 2*time.Second {
		t.Errorf("a refusal took %v: over-limit connections must not queue", slowest)
	}
	if m := len(entries(d, from, "refused a forwarded connection: max_connections reached")); m != 1 {
		t.Errorf("%d warnings for 150 refusals, want 1 (rate-limited)", m)
	}
	if got := tg.Accepted(); got != 50 {
		t.Errorf("the target accepted %d connections, want 50", got)
	}
	// Free the slots: new connections are served again. A slot is free
	// once rtunnel has closed its connection, not when the target has:
	// wait for rtunnel's 50 "closed" lines (the slot goes right after).
	freed := d.Mark()
	releaseOnce.Do(func() { close(release) })
	for _, c := range held {
		c.Close()
	}
	held = nil
	deadline = time.Now().Add(10 * time.Second)
	for (tg.Open() > 0 || len(entries(d, freed, "forwarded connection closed")) < 50) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	l.serveRemoteCheck(t, tg)
}

// serveRemoteCheck opens one more connection and checks the target takes it.
func (l *lab) serveRemoteCheck(t *testing.T, tg *tcptest.Server) {
	t.Helper()
	before := tg.Accepted()
	c, err := l.dialHub(tunnelPort, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for tg.Accepted() == before {
		if time.Now().After(deadline) {
			t.Fatal("no connection served after the slots were freed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A slow or stuck local target does not stall the tunnel's other
// connections: connects that hang (the target's SYNs dropped) on one
// forward and a target that stops reading on the other leave fresh
// connections as fast as ever.
func TestStuckTargetDoesNotStallOthers(t *testing.T) {
	l := newLab(t, labOpts{ports: []int{2220, 2221}})
	stopReading := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(stopReading) })
	tg := l.serveRemote(t, func(i int, c net.Conn) {
		if i == 1 {
			<-stopReading // the first connection is never read
			return
		}
		io.Copy(c, c)
	})
	// The second forward's target drops every SYN: its connects hang.
	stuck := listenIn(t, l.remote.NS, 0)
	defer stuck.Close()
	stuckPort := stuck.Addr().(*net.TCPAddr).Port
	nft(t, l.remote, fmt.Sprintf(`table inet rt_stuck {
	chain in { type filter hook input priority -100; policy accept; tcp dport %d drop; }
}
`, stuckPort))
	d := l.up(t, tun{connectTimeout: "5s", forwards: [][2]string{{"localhost:2220", tg.Addr()}, {"localhost:2221", stuck.Addr().String()}}})
	d.WaitMsg(0, 20*time.Second, "forward up")
	_, idx, _ := d.WaitMsg(0, 20*time.Second, "forward up")
	d.WaitMsg(idx+1, 20*time.Second, "forward up")

	var hung []net.Conn
	defer func() {
		for _, c := range hung {
			c.Close()
		}
	}()
	for i := 0; i < 20; i++ {
		c, err := l.dialHub(2221, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		hung = append(hung, c)
	}
	blocked, err := l.dialHub(2220, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		blocked.Write(make([]byte, 16<<20)) // fills every window on the way, then blocks
	}()
	defer writer.Wait()
	defer blocked.Close()
	time.Sleep(500 * time.Millisecond)

	start := time.Now()
	for i := 0; i < 10; i++ {
		if err := l.echoOnce(5 * time.Second); err != nil {
			t.Fatalf("echo %d beside the stuck targets: %v", i, err)
		}
	}
	took := time.Since(start)
	figure(t, "10 round trips beside 20 hung connects and a stuck reader", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("10 round trips took %v: a stuck target stalls the tunnel", took)
	}
	// The hung connects end at connect_timeout: the master's side is closed.
	for i, c := range hung {
		c.SetDeadline(time.Now().Add(15 * time.Second))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection %d to the hung target still open after connect_timeout", i)
		}
	}
	once.Do(func() { close(stopReading) })
}
