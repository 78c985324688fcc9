package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// hop is one live SSH connection of the chain.
type hop struct {
	ep     *Endpoint
	conn   *heardConn
	client *ssh.Client
	reqs   <-chan *ssh.Request // the server's global requests; the session answers them
	tcp    *net.TCPConn        // the socket, for the first hop
}

// heardConn records when anything was last read from the server: the
// keepalive counts silence from there, not from missed ticks.
type heardConn struct {
	net.Conn
	heard atomic.Int64 // unix nanoseconds
}

func newHeardConn(c net.Conn) *heardConn {
	h := &heardConn{Conn: c}
	h.heard.Store(time.Now().UnixNano())
	return h
}

func (h *heardConn) Read(p []byte) (int, error) {
	n, err := h.Conn.Read(p)
	if n > 0 {
		h.heard.Store(time.Now().UnixNano())
	}
	return n, err
}

func (h *heardConn) lastHeard() time.Time { return time.Unix(0, h.heard.Load()) }

// bounded runs fn and calls abort (which must unblock fn, typically by
// closing a connection) if fn has not returned after d or when ctx ends.
// x/crypto has no deadlines on handshakes, channel opens or global requests.
func bounded(ctx context.Context, d time.Duration, abort func(), fn func() error) (err error, timedOut bool) {
	var fired atomic.Bool
	t := time.AfterFunc(d, func() {
		fired.Store(true)
		abort()
	})
	stop := context.AfterFunc(ctx, abort)
	err = fn()
	t.Stop()
	stop()
	if fired.Load() {
		return err, true
	}
	if ctx.Err() != nil {
		return ctx.Err(), false
	}
	return err, false
}

// dialChain connects to every hop in order, each one through the previous
// one's direct-tcpip channel, and returns the live chain. On error every
// connection made so far is closed.
func (t *Tunnel) dialChain(ctx context.Context) (chain []*hop, err error) {
	defer func() {
		if err != nil {
			closeChain(chain)
			chain = nil
		}
	}()
	hops := t.cfg.hops()
	for i, ep := range hops {
		signer, err := LoadIdentity(ep.Identity)
		if err != nil {
			return chain, err
		}
		hk, err := newHostKeys(ep)
		if err != nil {
			return chain, err
		}
		var h *hop
		if i == 0 {
			h, err = t.connectFirst(ctx, ep, signer, hk)
		} else {
			var raw net.Conn
			raw, err = dialThrough(ctx, chain[i-1], ep)
			if err == nil {
				h, err = handshake(ctx, raw, ep, signer, hk)
			}
		}
		if err != nil {
			return chain, err
		}
		chain = append(chain, h)
	}
	return chain, nil
}

// dialTCP makes one TCP connection to the first hop within its
// connect_timeout.
func (t *Tunnel) dialTCP(ctx context.Context, ep *Endpoint) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, ep.ConnectTimeout)
	defer cancel()
	c, err := t.dialOnce(dctx, ep)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, &TimeoutError{Step: "TCP connect", Hop: ep.String(), After: ep.ConnectTimeout}
	}
	return c, err
}

// dialOnce dials the first hop until ctx ends; the caller bounds it.
func (t *Tunnel) dialOnce(ctx context.Context, ep *Endpoint) (net.Conn, error) {
	dial := t.cfg.DialContext
	if dial == nil {
		d := &net.Dialer{KeepAlive: -1}
		dial = d.DialContext
	}
	c, err := dial(ctx, "tcp", ep.Addr())
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &DialError{Hop: ep.String(), Err: err}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tuneServerConn(tc, t.cfg.KeepaliveInterval*time.Duration(t.cfg.KeepaliveCountMax))
	}
	return c, nil
}

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
func (t *Tunnel) connectFirst(ctx context.Context, ep *Endpoint, signer ssh.Signer, hk *hostKeys) (*hop, error) {
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
	poking := t.cfg.DialContext == nil && t.staleConn() != nil
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
				t.poke(pctx, ep)
			}()
		}
		// Each attempt records its own host key error.
		ahk := &hostKeys{ep: hk.ep, callback: hk.callback}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			h, err := t.attemptConnect(actx, a, ep, signer, ahk)
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
func (t *Tunnel) attemptConnect(ctx context.Context, a *attempt, ep *Endpoint, signer ssh.Signer, hk *hostKeys) (*hop, error) {
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
	h, err := handshake(ctx, raw, ep, signer, hk)
	if err == nil && tc != nil {
		// rtunnel's own keepalive watches the session from here.
		_ = tc.SetKeepAlive(false)
		h.tcp = tc
	}
	return h, err
}

// A session that died silently (keepalive timeout) may still be alive on
// the server, holding its forwarded ports until the server's own timeout:
// sshd's ClientAlive takes longer than its interval x count_max on a dead
// link, and without it a hub only learns when one of its retransmissions
// meets the RST of our kernel, on a doubling timer. A SYN from the dead
// connection's own address and port settles it when the link is back: the
// server's kernel answers it with a challenge ACK (RFC 5961 4.2), ours
// answers that with a RST, the stale connection is gone and sshd frees its
// ports. The same holds after a reset the server did not send (a firewall
// rejecting on its behalf). So every first-hop attempt after such an end
// sends that SYN alongside ("poke"); it is never used as a connection.
type staleConn struct {
	local *net.TCPAddr // our end of the dead connection
	since time.Time
}

// pokeFor: then the old port is forgotten.
const pokeFor = 2 * time.Minute

// notClosedByServer reports whether a session ended without the server
// closing it: silence (keepalive), or a reset that a middlebox may have
// sent on the server's behalf. The server may still hold it.
func notClosedByServer(err error) bool {
	var dead *LinkDeadError
	var closed *ClosedError
	return errors.As(err, &dead) || errors.As(err, &closed) && closed.Err != nil && !errors.Is(closed.Err, io.EOF)
}

func (t *Tunnel) staleConn() *staleConn {
	t.staleMu.Lock()
	defer t.staleMu.Unlock()
	if t.stale != nil && time.Since(t.stale.since) > pokeFor {
		t.stale = nil
	}
	return t.stale
}

func (t *Tunnel) setStale(s *staleConn) {
	t.staleMu.Lock()
	t.stale = s
	t.staleMu.Unlock()
}

// poke connects from the stale connection's address to ep until ctx ends.
// Its SYN is answered with a challenge ACK while the server holds the
// stale connection, and our kernel resets that connection whether the poke
// is still waiting or gone. A poke that connects proves the server holds
// nothing on that address: it is reset at once and the address forgotten.
func (t *Tunnel) poke(ctx context.Context, ep *Endpoint) {
	st := t.staleConn()
	if st == nil || reuseAddr == nil {
		return
	}
	d := net.Dialer{LocalAddr: st.local, Control: reuseAddr, KeepAlive: -1}
	c, err := d.DialContext(ctx, "tcp", ep.Addr())
	if err != nil {
		return // ended unanswered (the link is still down), or the address is gone
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
	t.setStale(nil)
}

// dialThrough opens a direct-tcpip channel from prev to ep, sending the
// host exactly as written (what permitopen="localhost:N" matches).
func dialThrough(ctx context.Context, prev *hop, ep *Endpoint) (net.Conn, error) {
	var c net.Conn
	err, timedOut := bounded(ctx, ep.ConnectTimeout, func() { prev.conn.Close() }, func() error {
		var err error
		c, err = prev.client.Dial("tcp", ep.Addr())
		return err
	})
	if timedOut {
		if c != nil {
			c.Close()
		}
		return nil, &TimeoutError{Step: "opening a channel", Hop: ep.String() + " via " + prev.ep.String(), After: ep.ConnectTimeout}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &DialError{Hop: ep.String(), Via: prev.ep.String(), Err: err}
	}
	return c, nil
}

func handshake(ctx context.Context, raw net.Conn, ep *Endpoint, signer ssh.Signer, hk *hostKeys) (*hop, error) {
	conn := newHeardConn(newServerConn(raw))
	cfg := &ssh.ClientConfig{
		User:              ep.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   hk.Check,
		HostKeyAlgorithms: hk.Algorithms(),
		Timeout:           ep.ConnectTimeout,
		ClientVersion:     "SSH-2.0-rtunnel",
	}
	var (
		c     ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
	)
	err, timedOut := bounded(ctx, ep.ConnectTimeout, func() { conn.Close() }, func() error {
		var err error
		c, chans, reqs, err = ssh.NewClientConn(conn, ep.Addr(), cfg)
		return err
	})
	if err == nil && !timedOut {
		// The session answers global requests itself (and logs odd ones);
		// the client's own handler gets a closed channel and returns.
		none := make(chan *ssh.Request)
		close(none)
		return &hop{ep: ep, conn: conn, client: ssh.NewClient(c, chans, none), reqs: reqs}, nil
	}
	if c != nil {
		c.Close()
	}
	conn.Close()
	if herr := hk.Err(); herr != nil {
		return nil, herr
	}
	if timedOut {
		return nil, &TimeoutError{Step: "SSH handshake", Hop: ep.String(), After: ep.ConnectTimeout}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if isAuthFailure(err) {
		return nil, &AuthError{Hop: ep.String(), Fingerprint: ssh.FingerprintSHA256(signer.PublicKey()), Err: err}
	}
	return nil, &HandshakeError{Hop: ep.String(), Err: err}
}

// closeChain closes the innermost connection first.
func closeChain(chain []*hop) {
	for i := len(chain) - 1; i >= 0; i-- {
		chain[i].client.Close()
		chain[i].conn.Close()
	}
}
