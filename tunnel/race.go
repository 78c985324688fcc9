package tunnel

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A first-hop connect whose packets were lost does not wait for the kernel
// to try again. After a dead link comes back, a connect() whose SYNs went
// unanswered is on the kernel's doubling SYN schedule (1, 3, 7, 15 s), and a
// handshake whose packets were lost on its doubling retransmission timer:
// either could hold rtunnel for most of connect_timeout with the link
// already back. So while every attempt is stalled, a fresh one starts every
// redialAfter; the first to finish its handshake wins, and connect_timeout
// still bounds the whole connect. A server that answers slowly, or accepts
// and says nothing, is not stalled: its kernel still ACKs, and it gets one
// attempt at a time.
const (
	// redialAfter: a SYN unanswered this long is stalled; so is a
	// handshake whose server has not ACKed anything for twice as long
	// (keepalive probes every redialAfter get ACKs from a live peer).
	redialAfter = time.Second
	// maxAttempts in flight at once; the oldest makes room for a new one.
	maxAttempts = 4
)

// attempt is one TCP connect + SSH handshake of connectFirst.
type attempt struct {
	start     time.Time
	cancel    context.CancelFunc
	connected atomic.Bool
	tcp       atomic.Pointer[net.TCPConn] // the socket, once connected
}

// stalled reports whether the attempt has heard nothing for long enough
// that a fresh one should start alongside it.
func (a *attempt) stalled(now time.Time) bool {
	if !a.connected.Load() {
		return now.Sub(a.start) >= redialAfter
	}
	tc := a.tcp.Load()
	if tc == nil {
		return false
	}
	age, ok := lastAckAge(tc)
	return ok && age >= 2*redialAfter
}

type attemptResult struct {
	a   *attempt
	hop *hop
	err error
}

// connectFirst dials the first hop and runs its SSH handshake, restarting
// what stalls (see redialAfter). The newest attempt's error is the answer:
// it reflects the network as it is now.
func (t *Tunnel) connectFirst(ctx context.Context, ep *Endpoint, creds *credentials, hk *hostKeys) (*hop, error) {
	done := make(chan struct{})
	results := make(chan attemptResult)
	var (
		wg   sync.WaitGroup
		live []*attempt
	)
	pokeCancel, pokeDone := context.CancelFunc(func() {}), chan struct{}(nil)
	defer func() {
		close(done)
		for _, a := range live {
			a.cancel()
		}
		pokeCancel()
		wg.Wait()
	}()
	poking := t.cfg.DialContext == nil && !t.cfg.DisableStalePoke && t.staleConn() != nil
	launch := func() *attempt {
		actx, cancel := context.WithCancel(ctx)
		a := &attempt{start: time.Now(), cancel: cancel}
		live = append(live, a)
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
	remove := func(a *attempt) {
		for i, b := range live {
			if b == a {
				live = append(live[:i], live[i+1:]...)
				return
			}
		}
	}
	newest := launch()
	deadline := time.NewTimer(ep.ConnectTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(redialAfter / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			step := "TCP connect"
			if newest.connected.Load() {
				step = "SSH handshake"
			}
			return nil, &TimeoutError{Step: step, Hop: ep.String(), After: ep.ConnectTimeout}
		case r := <-results:
			remove(r.a)
			if r.err == nil {
				return r.hop, nil
			}
			if r.a == newest || Permanent(r.err) {
				return nil, r.err
			}
			// An older attempt failed while a newer one runs: wait for it.
		case now := <-tick.C:
			stalled := true
			for _, a := range live {
				stalled = stalled && a.stalled(now)
			}
			if !stalled {
				continue
			}
			if len(live) >= maxAttempts {
				live[0].cancel()
				live = live[1:]
			}
			newest = launch()
		}
	}
}

// attemptConnect is one TCP connect and handshake. While the handshake
// runs, TCP keepalive probes make a live server's kernel ACK every
// redialAfter, which tells a silent server from a lost link.
func (t *Tunnel) attemptConnect(ctx context.Context, a *attempt, ep *Endpoint, creds *credentials, hk *hostKeys) (*hop, error) {
	raw, err := t.dialOnce(ctx, ep)
	if err != nil {
		return nil, err
	}
	tc, _ := raw.(*net.TCPConn)
	if tc != nil {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: redialAfter, Interval: redialAfter})
		a.tcp.Store(tc)
	}
	a.connected.Store(true)
	h, err := handshake(ctx, raw, ep, creds, hk)
	if err == nil && tc != nil {
		// rtunnel's own keepalive watches the session from here.
		_ = tc.SetKeepAlive(false)
		h.tcp = tc
	}
	return h, err
}
