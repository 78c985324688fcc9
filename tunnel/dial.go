package tunnel

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// hop is one live SSH connection of the chain.
type hop struct {
	ep     *Endpoint
	conn   *heardConn
	client ssh.Conn              // the SSH connection; no ssh.Client (channelconn.go)
	reqs   <-chan *ssh.Request   // the server's global requests; the session answers them
	chans  <-chan ssh.NewChannel // the channels the server opens; the session serves them
	// carrier holds the requests on the jump host's channel that carries
	// this hop (nil for the first hop); the session refuses them.
	carrier <-chan *ssh.Request
	tcp     *net.TCPConn // the socket, for the first hop
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
		h, err := t.connectHop(ctx, i, ep, chain)
		if err != nil {
			return chain, err
		}
		chain = append(chain, h)
	}
	return chain, nil
}

// connectHop reads the hop's credentials and known_hosts afresh (a renewed
// certificate, a learned host key) and connects to it.
func (t *Tunnel) connectHop(ctx context.Context, i int, ep *Endpoint, chain []*hop) (*hop, error) {
	hk, err := newHostKeys(ep, t.log)
	if err != nil {
		return nil, err
	}
	creds, err := loadCredentials(ctx, ep)
	if err != nil {
		return nil, err
	}
	defer creds.close()
	for _, n := range creds.notes {
		t.log.Warn("not offering a certificate", "hop", ep.String(), "why", n)
	}
	if i == 0 {
		return t.connectFirst(ctx, ep, creds, hk)
	}
	raw, err := dialThrough(ctx, chain[i-1], ep)
	if err != nil {
		return nil, err
	}
	return handshake(ctx, raw, ep, creds, hk)
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

// dialThrough opens a direct-tcpip channel from prev to ep, sending the
// host exactly as written (what permitopen="localhost:N" matches).
func dialThrough(ctx context.Context, prev *hop, ep *Endpoint) (net.Conn, error) {
	var c *channelConn
	err, timedOut := bounded(ctx, ep.ConnectTimeout, func() { prev.conn.Close() }, func() error {
		var err error
		c, err = openDirect(prev.client, ep.Addr())
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

func handshake(ctx context.Context, raw net.Conn, ep *Endpoint, creds *credentials, hk *hostKeys) (*hop, error) {
	return handshakeWatched(ctx, raw, ep, creds, hk, nil)
}

// handshakeWatched is handshake that also sets spoke once the server's
// version line begins.
func handshakeWatched(ctx context.Context, raw net.Conn, ep *Endpoint, creds *credentials, hk *hostKeys, spoke *atomic.Bool) (*hop, error) {
	banner := &bannerConn{Conn: newServerConn(raw), spoke: spoke}
	conn := newHeardConn(banner)
	cfg := &ssh.ClientConfig{
		User:              ep.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(creds.signers...)},
		HostKeyCallback:   hk.Check,
		HostKeyAlgorithms: hk.Algorithms(),
		ClientVersion:     "SSH-2.0-rtunnel",
		// No Timeout: it bounds only ssh.Dial's TCP connect, which rtunnel
		// does itself; bounded below covers the handshake.
	}
	if a := ep.algorithms; a != nil {
		cfg.Ciphers, cfg.KeyExchanges, cfg.MACs = a.ciphers, a.keyExchanges, a.macs
		cfg.HostKeyAlgorithms = hostKeyAlgorithms(cfg.HostKeyAlgorithms, a.hostKeys)
	}
	var (
		c     ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
	)
	start := time.Now()
	more := func() time.Duration {
		return moreForProgress(ep.ConnectTimeout, start, time.Since(conn.lastHeard()), banner.seen.Load())
	}
	if spoke != nil {
		// connectFirst watches the first hop's progress, telling a
		// connection queued at a busy hub from a lost one, and gives up on
		// it; this is only the backstop.
		more = func() time.Duration { return max(0, slowHandshakeLimit*ep.ConnectTimeout-time.Since(start)) }
	}
	err, timedOut := boundedBy(ctx, ep.ConnectTimeout, more, func() { conn.Close() }, func() error {
		var err error
		c, chans, reqs, err = ssh.NewClientConn(conn, ep.Addr(), cfg)
		return err
	})
	if err == nil && !timedOut {
		// The session answers global requests and channel opens itself, on
		// one goroutine per hop (incoming.go).
		h := &hop{ep: ep, conn: conn, client: c, reqs: reqs, chans: chans}
		if cc, ok := raw.(*channelConn); ok {
			h.carrier = cc.reqs
		}
		return h, nil
	}
	if c != nil {
		c.Close()
	}
	conn.Close()
	if herr := hk.Err(); herr != nil {
		return nil, herr
	}
	if timedOut {
		return nil, handshakeTimeout(ep, start, !banner.seen.Load())
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if isAuthFailure(err) {
		return nil, &AuthError{Hop: ep.String(), Offered: creds.labels, Notes: creds.notes, MaxTries: isMaxTries(err), Err: err}
	}
	if closedBeforeBanner(banner, err) {
		return nil, &BusyError{Hop: ep.String(), Err: err}
	}
	return nil, &HandshakeError{Hop: ep.String(), Err: err}
}

// A handshake with a hub that is working through a storm (a hundred
// pre-auth children on its CPUs) can take longer than connect_timeout while
// the hub answers every step; abandoning it makes the hub's work wasted and,
// if the hub had just accepted the key, leaves a second login behind. So
// once the server has spoken SSH, connect_timeout bounds its silence, not
// the whole handshake, up to slowHandshakeLimit x connect_timeout.
const slowHandshakeLimit = 4

// The same holds before the hub has spoken, while its kernel is there
// (it ACKs the handshake's TCP keepalive probes, or repeats its SYN-ACK
// while its accept queue is full; connect.go tells that from a lost link):
// the connection waits in the accept queue of a hub whose sshd is behind.
// A fresh connection would queue behind it, and sshd would still fork for
// the one given up and find its client gone (a wasted child; make fleet
// N=1000 saw 39 at cold start).

// moreWhileQueued is how much longer a handshake that started at start may
// wait for a server that has not spoken but whose kernel is there
// (queued): up to slowHandshakeLimit x timeout, checked again every
// 2 x redialAfter. 0: give up.
func moreWhileQueued(timeout time.Duration, start time.Time, queued bool) time.Duration {
	if !queued {
		return 0
	}
	left := slowHandshakeLimit*timeout - time.Since(start)
	return max(0, min(2*redialAfter, left))
}

// handshakeTimeout is the error of a handshake given up on after it began
// at start; unanswered: the server never sent its version.
func handshakeTimeout(ep *Endpoint, start time.Time, unanswered bool) *TimeoutError {
	after := ep.ConnectTimeout
	if took := time.Since(start); took > after {
		after = took.Round(time.Second)
	}
	return &TimeoutError{Step: "SSH handshake", Hop: ep.String(), After: after, Unanswered: unanswered}
}

// moreForProgress is how much longer a handshake that started at start
// may run, given how long ago the server was last heard and whether it has
// spoken SSH at all: 0 to give up.
func moreForProgress(timeout time.Duration, start time.Time, silent time.Duration, spoke bool) time.Duration {
	if !spoke || silent >= timeout {
		return 0
	}
	left := slowHandshakeLimit*timeout - time.Since(start)
	return max(0, min(timeout-silent, left))
}

// closeChain closes the innermost connection first.
func closeChain(chain []*hop) {
	for i := len(chain) - 1; i >= 0; i-- {
		chain[i].client.Close()
		chain[i].conn.Close()
	}
}
