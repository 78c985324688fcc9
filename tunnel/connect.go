package tunnel

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The first hop is connected by one attempt at a time, and a connection
// the hub may still accept is never given up while another one is made:
// sshd forks for every connection it accepts, also for one whose client
// has moved on (a wasted pre-auth child), and two attempts that both get
// through log in twice. On a busy hub, connections wait in its accept queue
// with their TCP handshake done (its kernel ACKs them): those are left
// alone, up to 4 x connect_timeout (slowHandshakeLimit, dial.go).
//
// Two kinds of attempt are replaced, because nothing of them is on the
// server (a server that never ACKed has nothing queued to accept):
//   - a connect whose SYN is unanswered, on the kernel's own schedule: just
//     before each SYN retransmission would be due (1, 3, 7, 15 s), a fresh
//     socket sends it instead. The hub gets no more SYNs than from the
//     kernel alone (a fresh SYN every second cost a down hub more than
//     autossh does, issue 12), and each one takes a fresh route, source
//     address and port: after a NAT rebinding or an address change the old
//     socket's retransmissions go out from an address that is gone.
//   - a handshake whose server has stopped ACKing anything (keepalive
//     probes every redialAfter go unanswered for twice as long): its
//     packets were lost on a link that dropped, and its retransmissions are
//     on a doubling timer. It is closed and a fresh one started at once.
const (
	redialAfter = time.Second
	// synRedial is the first fresh SYN's delay: just before the kernel's
	// first retransmission (its initial RTO is 1 s), which it replaces.
	// Each later one doubles, as the kernel's do.
	synRedial = 950 * time.Millisecond
)

// attempt is one TCP connect + SSH handshake of connectFirst.
type attempt struct {
	cancel    context.CancelFunc
	connected atomic.Bool
	spoke     atomic.Bool                 // the server's version line arrived
	tcp       atomic.Pointer[net.TCPConn] // the socket, once connected
	// acks is set before connected and read only by connectFirst after it.
	acks ackWatch
}

// lost reports whether the attempt's handshake has heard nothing from the
// server's kernel for long enough that its packets are presumed lost.
func (a *attempt) lost() bool {
	age, segs, ok := a.ackSample()
	return ok && a.acks.lost(time.Now(), age, segs)
}

// queued reports whether the attempt's connection is made and the
// server's kernel is still there, by the same samples as lost: false where
// tcp_info cannot tell. Only connectFirst's goroutine calls it (and lost).
func (a *attempt) queued() bool {
	age, segs, ok := a.ackSample()
	return ok && !a.acks.lost(time.Now(), age, segs)
}

// ackSample reads the connected socket's tcp_info ACK age and segments
// received; ok is false before the connect or where it cannot tell.
func (a *attempt) ackSample() (age time.Duration, segs uint32, ok bool) {
	tc := a.tcp.Load()
	if !a.connected.Load() || tc == nil {
		return 0, 0, false
	}
	return ackState(tc)
}

// ackWatch tells a lost link from a hub whose accept queue is full. Both
// stop ACKing what the client sends. But when the queue overflows just as
// the client's last handshake ACK arrives, the hub's kernel keeps the
// connection half-open and repeats its SYN-ACK (on its own timer, and in
// answer to the client's segments), which the client's kernel counts as
// segments received but not as ACKs. Replacing that connection is what
// made a thousand remotes starting at once leave sshd a hundred children
// to fork for clients that had gone (make fleet, N=1000: "Broken pipe
// [preauth]"); once the queue drains, the half-open connection goes on.
type ackWatch struct {
	lastAck time.Time // when the server's kernel last ACKed, as of the last sample
	segs    uint32    // segments received by then (or by the sample that saw it)
}

// ackClock is the resolution of tcp_info's ages (milliseconds from
// jiffies): an ACK time that moved by less is the same ACK.
const ackClock = 20 * time.Millisecond

// lost takes a sample read at now (tcp_info's last_ack_recv and segs_in)
// and reports whether nothing at all has come from the server for
// 2 x redialAfter: no ACK, and not a segment of any kind since the last
// ACK.
func (w *ackWatch) lost(now time.Time, ackAge time.Duration, segsIn uint32) bool {
	w.observe(now, ackAge, segsIn)
	return ackAge >= 2*redialAfter && segsIn == w.segs
}

// observe notes a newer ACK, and the segments received by then.
func (w *ackWatch) observe(now time.Time, ackAge time.Duration, segsIn uint32) {
	if ackAt := now.Add(-ackAge); ackAt.Sub(w.lastAck) > ackClock {
		w.lastAck, w.segs = ackAt, segsIn
	}
}

// progressing is how much longer the attempt's handshake may run: the
// server has sent data (its kernel received some) within timeout, so it is
// answering, slowly, or it has not spoken yet but its kernel ACKs, so the
// connection is queued (see slowHandshakeLimit). 0: give up.
func (a *attempt) progressing(timeout time.Duration, start time.Time) time.Duration {
	tc := a.tcp.Load()
	if !a.connected.Load() || tc == nil {
		return 0
	}
	if !a.spoke.Load() {
		return moreWhileQueued(timeout, start, a.queued()) // (see slowHandshakeLimit)
	}
	age, ok := lastDataAge(tc)
	return moreForProgress(timeout, start, age, ok)
}

// abandon gives up a lost attempt with a reset, not a FIN. A close would
// leave the kernel retransmitting the unACKed version line and then the
// FIN for a minute; if the hub's accept queue was full when our handshake
// ACK came (its SYN cookie then holds the connection, and nothing on the
// hub remembers it), one of those retransmissions makes the hub's kernel
// create the connection after all, and sshd forks a child for a client
// that has gone ("Broken pipe [preauth]"). A reset stops them, and to a
// hub that kept no state it is nothing.
func (a *attempt) abandon() {
	if tc := a.tcp.Load(); tc != nil {
		_ = tc.SetLinger(0)
	}
	a.cancel()
}

type attemptResult struct {
	a   *attempt
	hop *hop
	err error
}

// connectFirst dials the first hop and runs its SSH handshake within
// connect_timeout, replacing an attempt whose packets were lost.
func (t *Tunnel) connectFirst(ctx context.Context, ep *Endpoint, creds *credentials, hk *hostKeys) (*hop, error) {
	done := make(chan struct{})
	results := make(chan attemptResult)
	var (
		wg      sync.WaitGroup
		current *attempt
	)
	pokeCancel, pokeDone := context.CancelFunc(func() {}), chan struct{}(nil)
	defer func() {
		close(done)
		current.cancel()
		pokeCancel()
		wg.Wait()
	}()
	poking := t.cfg.DialContext == nil && !t.cfg.DisableStalePoke && t.staleConn() != nil
	launch := func() *attempt {
		actx, cancel := context.WithCancel(ctx)
		a := &attempt{cancel: cancel}
		if poking {
			// One poke at a time (they share a port), each as long as its
			// attempt: the kernel repeats both SYNs on the same schedule,
			// so whenever the attempt's SYN gets through, so does the poke's.
			pokeCancel()
			prev := pokeDone
			pctx, pc := context.WithCancel(actx)
			pokeCancel, pokeDone = pc, make(chan struct{})
			finished := pokeDone
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(finished)
				if prev != nil {
					<-prev
				}
				t.poke(pctx)
			}()
		}
		// Each attempt records its own host key error.
		ahk := hk.fork()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			h, err := t.attemptConnect(actx, a, ep, creds, ahk)
			select {
			case results <- attemptResult{a: a, hop: h, err: err}:
			case <-done:
				if h != nil {
					closeChain([]*hop{h})
				}
			}
		}()
		return a
	}
	current = launch()
	started := time.Now()
	deadline := time.NewTimer(ep.ConnectTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(redialAfter / 2)
	defer tick.Stop()
	synRedials := 0
	fresh := time.NewTimer(synRedial)
	defer fresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			if more := current.progressing(ep.ConnectTimeout, started); more > 0 {
				deadline.Reset(more) // a slow hub that answers (see slowHandshakeLimit)
				continue
			}
			if current.connected.Load() {
				return nil, handshakeTimeout(ep, started, !current.spoke.Load())
			}
			return nil, &TimeoutError{Step: "TCP connect", Hop: ep.String(), After: ep.ConnectTimeout}
		case r := <-results:
			if r.a != current {
				// A replaced attempt finishing late: never a second login.
				if r.hop != nil {
					closeChain([]*hop{r.hop})
				}
				continue
			}
			return r.hop, r.err
		case <-fresh.C:
			if !current.connected.Load() {
				current.cancel()
				current = launch()
				// The next fresh SYN comes twice as late, as the kernel's would.
				synRedials++
				fresh.Reset(synRedial << synRedials)
			}
		case <-tick.C:
			if current.lost() {
				current.abandon()
				current = launch()
				fresh.Reset(synRedial << synRedials)
			}
		}
	}
}

// attemptConnect is one TCP connect and handshake. While the handshake
// runs, TCP keepalive probes make a live server's kernel ACK every
// redialAfter, which tells a silent server (or a full accept queue) from a
// lost link.
func (t *Tunnel) attemptConnect(ctx context.Context, a *attempt, ep *Endpoint, creds *credentials, hk *hostKeys) (*hop, error) {
	raw, err := t.dialOnce(ctx, ep)
	if err != nil {
		return nil, err
	}
	tc, _ := raw.(*net.TCPConn)
	if tc != nil {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: redialAfter, Interval: redialAfter})
		if age, segs, ok := ackState(tc); ok { // the SYN-ACK: the first ACK
			a.acks.observe(time.Now(), age, segs)
		}
		a.tcp.Store(tc)
	}
	a.connected.Store(true)
	h, err := handshakeWatched(ctx, raw, ep, creds, hk, &a.spoke)
	if err == nil && tc != nil {
		// rtunnel's own keepalive watches the session from here.
		_ = tc.SetKeepAlive(false)
		h.tcp = tc
	}
	return h, err
}
