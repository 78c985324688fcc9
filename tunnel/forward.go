package tunnel

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// fwdState is one forward within a session.
type fwdState struct {
	f     Forward
	label string
	up    atomic.Bool
	// asked is set before tcpip-forward is sent: sshd may open the first
	// forwarded-tcpip channel before its reply has been processed here.
	asked atomic.Bool
	// allocated is the port the server bound for a port-0 forward in this
	// session; forwarded-tcpip channels arrive with it, not with 0.
	allocated atomic.Uint32
}

func (f *fwdState) isUp() bool { return f.up.Load() }

// setUp records the state and reports whether it changed.
func (f *fwdState) setUp(v bool) bool { return f.up.Swap(v) != v }

// forwardPayload is RFC 4254 7.1's tcpip-forward / cancel-tcpip-forward body.
type forwardPayload struct {
	Addr string
	Port uint32
}

// requestType is the global request that asks for the forward.
func (f *fwdState) requestType() string {
	if f.f.RemotePath != "" {
		return "streamlocal-forward@openssh.com"
	}
	return "tcpip-forward"
}

// cancelType is the global request that cancels it.
func (f *fwdState) cancelType() string { return "cancel-" + f.requestType() }

// payload is the request's body, for asking and cancelling. sshd cancels a
// port-0 forward by the port it bound, as ssh's own -O cancel does.
func (f *fwdState) payload() []byte {
	if f.f.RemotePath != "" {
		return ssh.Marshal(&streamLocalPayload{Path: f.f.RemotePath})
	}
	port := uint32(f.f.RemotePort)
	if port == 0 {
		port = f.allocated.Load()
	}
	return ssh.Marshal(&forwardPayload{Addr: f.f.RemoteHost, Port: port})
}

// boundPort is the port forwarded-tcpip channels of this forward carry.
func (f *fwdState) boundPort() uint32 {
	if f.f.RemotePort == 0 {
		return f.allocated.Load()
	}
	return uint32(f.f.RemotePort)
}

// forwardedPayload is RFC 4254 7.2's forwarded-tcpip channel open body.
type forwardedPayload struct {
	Addr       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// requestForwards asks for every forward. With ExitOnForwardFailure a
// refusal ends the session; without, the refused forward is asked for again
// on the live session.
func (s *session) requestForwards(ctx context.Context) error {
	for _, f := range s.fwds {
		ok, err := s.request(ctx, f)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		refused := &ForwardRefusedError{Forward: f.label, Server: s.server.ep.String()}
		if s.t.cfg.ExitOnForwardFailure {
			s.t.log.Warn("forward refused; closing the session (exit_on_forward_failure)", "forward", f.label, "err", refused)
			return refused
		}
		s.t.log.Warn("forward refused; keeping the session and asking again",
			"forward", f.label, "err", refused, "retry_in", s.t.cfg.ForwardRetry, "fast_retry_for", s.t.cfg.ForwardRetryFor)
		s.wg.Add(1)
		go s.retryForward(f)
	}
	return nil
}

// request sends one tcpip-forward (or streamlocal-forward) and waits for
// the reply within the server's connect_timeout; a server that never
// answers kills the session.
func (s *session) request(ctx context.Context, f *fwdState) (bool, error) {
	var (
		ok    bool
		reply []byte
	)
	timeout := s.server.ep.ConnectTimeout
	step := f.requestType() + " " + f.f.Remote()
	f.asked.Store(true)
	defer func() {
		if !ok {
			f.asked.Store(false)
		}
		s.replies.notify()
	}()
	err, timedOut := bounded(ctx, timeout, func() {
		s.kill(&TimeoutError{Step: step, Hop: s.server.ep.String(), After: timeout})
	}, func() error {
		var err error
		ok, reply, err = s.server.client.SendRequest(f.requestType(), true, f.payload())
		return err
	})
	if timedOut {
		ok = false
		return false, &TimeoutError{Step: step, Hop: s.server.ep.String(), After: timeout}
	}
	if err != nil {
		ok = false
		return false, &ClosedError{Hop: s.server.ep.String(), Err: err}
	}
	if !ok {
		s.t.obs.ForwardRefused(s.t.cfg.Name, f.label)
		return false, nil
	}
	if f.f.RemotePath == "" && f.f.RemotePort == 0 {
		// RFC 4254 7.1: for port 0 the success reply carries the port bound.
		var got struct{ Port uint32 }
		if err := ssh.Unmarshal(reply, &got); err != nil || got.Port == 0 {
			ok = false
			bad := &ClosedError{Hop: s.server.ep.String(), Err: fmt.Errorf("tcpip-forward %s: the server's reply names no port (%d bytes)", f.f.Remote(), len(reply))}
			s.kill(bad) // its listener is unknown and could not even be cancelled
			return false, bad
		}
		f.allocated.Store(got.Port)
		s.t.log.Info("forward up", "forward", f.label, "allocated_port", got.Port)
		s.t.cfg.ForwardAllocated(f.label, int(got.Port))
	} else {
		s.t.log.Info("forward up", "forward", f.label)
	}
	if f.setUp(true) {
		s.t.obs.ForwardUp(s.t.cfg.Name, f.label)
	}
	return true, nil
}

// retryForward re-requests a refused forward on the retry schedule (the
// port is usually held by our own dead session until the server notices).
func (s *session) retryForward(f *fwdState) {
	defer s.wg.Done()
	s.retryOnSchedule(func() bool {
		ok, err := s.request(s.ctx, f)
		return err != nil || ok
	}, func(attempt int, wait time.Duration, slowed bool) {
		if slowed {
			s.t.log.Warn("forward still refused after the fast-retry window; backing off", "forward", f.label, "attempt", attempt, "retry_in", wait)
		}
		s.t.log.Debug("forward refused again", "forward", f.label, "attempt", attempt, "retry_in", wait)
	})
}

// retryOnSchedule calls done every ForwardRetry for ForwardRetryFor, then
// with doubling waits up to ForwardRetryMax, until it returns true or the
// session dies or stops. again is told of each wait after a failed try;
// slowed is true the first time the wait grows past ForwardRetry.
func (s *session) retryOnSchedule(done func() bool, again func(attempt int, wait time.Duration, slowed bool)) {
	cfg := s.t.cfg
	start := time.Now()
	wait := cfg.ForwardRetry
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for attempt := 2; ; attempt++ {
		select {
		case <-s.dead:
			return
		case <-timer.C:
		}
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping || done() {
			return
		}
		slowed := false
		if time.Since(start) >= cfg.ForwardRetryFor {
			slowed = wait == cfg.ForwardRetry
			wait = min(wait*2, cfg.ForwardRetryMax)
		}
		again(attempt, wait, slowed)
		timer.Reset(wait)
	}
}

// lookup finds the forward a forwarded-tcpip channel belongs to: only ports
// we asked for (and were not refused). For a port-0 forward that is the
// port the server reported it bound.
func (s *session) lookup(addr string, port uint32) *fwdState {
	var byPort *fwdState
	for _, f := range s.fwds {
		if !f.asked.Load() || f.f.RemotePath != "" || f.boundPort() != port {
			continue
		}
		if f.f.RemoteHost == addr {
			return f
		}
		byPort = f
	}
	// sshd reports the listen address it bound, which may differ in spelling
	// from what we asked for (e.g. "localhost" vs "127.0.0.1").
	return byPort
}

// acceptForwarded handles a forwarded-tcpip channel the server opened. It
// gets its own goroutine at once: a slow local dial must not stall the
// connection's channel queue (golang/go#18439).
func (s *session) acceptForwarded(nc ssh.NewChannel) {
	var p forwardedPayload
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		nc.Reject(ssh.ConnectionFailed, "malformed forwarded-tcpip request")
		s.warnLimited("bad-forwarded", "refused a malformed forwarded-tcpip channel from the server", "err", err)
		return
	}
	origin := net.JoinHostPort(p.OriginAddr, strconv.Itoa(int(p.OriginPort)))
	if f := s.lookup(p.Addr, p.Port); f != nil {
		s.admitChannel(nc, f, origin)
		return
	}
	if !s.replies.pending(s.fwds) {
		s.rejectUnknown(nc, net.JoinHostPort(p.Addr, strconv.Itoa(int(p.Port))))
		return
	}
	// A port-0 forward's reply may still be on its way to request: the
	// channel can overtake it. Wait for it off the serving goroutine.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if f := s.replies.await(s, func() *fwdState { return s.lookup(p.Addr, p.Port) }); f != nil {
			s.admitChannel(nc, f, origin)
			return
		}
		s.rejectUnknown(nc, net.JoinHostPort(p.Addr, strconv.Itoa(int(p.Port))))
	}()
}

// rejectUnknown refuses a channel for an address (host:port, or a socket
// path) that no forward of this session asked for.
func (s *session) rejectUnknown(nc ssh.NewChannel, addr string) {
	nc.Reject(ssh.Prohibited, "no such forward")
	s.t.obs.ConnRejected(s.t.cfg.Name, "", "unknown_forward")
	what := "port"
	if strings.HasPrefix(addr, "/") {
		what = "socket path"
	}
	s.warnLimited("unknown-forward:"+what, "refused a forwarded connection for a "+what+" rtunnel did not ask for", "addr", addr)
}

// admitChannel takes a forwarded channel within max_connections and
// serves it on its own goroutine; over the limit or while stopping it is
// refused at once.
func (s *session) admitChannel(nc ssh.NewChannel, f *fwdState, origin string) {
	switch s.takeSlot(f.label, "a forwarded connection") {
	case slotsFull:
		nc.Reject(ssh.ResourceShortage, "too many connections")
		return
	case slotsClosed:
		nc.Reject(ssh.ConnectionFailed, "rtunnel is shutting down")
		return
	}
	s.wg.Add(1)
	go s.serve(nc, f, origin)
}

type slotResult int

const (
	slotTaken   slotResult = iota
	slotsFull              // max_connections reached: counted and logged
	slotsClosed            // the session is stopping
)

// takeSlot takes one of max_connections' slots and counts the connection
// as active for a connection through the forward labelled label. A full
// session counts the rejection and logs it (at most once a minute per
// forward); a stopping one takes nothing.
func (s *session) takeSlot(label, what string) slotResult {
	select {
	case s.sem <- struct{}{}:
	default:
		s.t.obs.ConnRejected(s.t.cfg.Name, label, "max_connections")
		s.warnLimited("max-conns:"+label, "refused "+what+": max_connections reached",
			"forward", label, "max_connections", s.t.cfg.MaxConnections)
		return slotsFull
	}
	if !s.admit() {
		<-s.sem
		return slotsClosed
	}
	return slotTaken
}

// serve dials the local target and pipes the channel to it. origin is who
// connected to the forwarded port, as the server reports it.
func (s *session) serve(nc ssh.NewChannel, f *fwdState, origin string) {
	defer s.wg.Done()
	defer s.release()
	defer func() { <-s.sem }()
	d := net.Dialer{Timeout: s.server.ep.ConnectTimeout}
	local, err := d.DialContext(s.ctx, network(f.f.Local), f.f.Local)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, "local target unreachable")
		s.t.obs.ConnRejected(s.t.cfg.Name, f.label, "local_dial")
		s.warnLimited("local:"+f.label, "local target refused a forwarded connection; the tunnel stays up",
			"forward", f.label, "err", err)
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		local.Close()
		return
	}
	s.carry(ch, reqs, local, f.label, origin)
}

// carry pipes one accepted channel and its local socket until both ends
// are done, with the open and close logged and counted under label. Its
// caller holds a max_connections slot and an admit count.
func (s *session) carry(ch ssh.Channel, reqs <-chan *ssh.Request, local net.Conn, label, origin string) {
	pc := &pipeConn{ch: ch, local: local, inDone: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// reqs ends when the channel is closed. A server that closes it
		// while the local side is silent would otherwise leave the local
		// socket (and its max_connections slot) open until the target
		// speaks: close it once what the channel delivered is written.
		ssh.DiscardRequests(reqs)
		select {
		case <-pc.inDone:
		case <-s.dead:
		}
		pc.local.Close()
	}()
	s.mu.Lock()
	if s.isDead() {
		s.mu.Unlock()
		pc.close()
		return
	}
	s.conns[pc] = struct{}{}
	s.mu.Unlock()
	s.t.obs.ConnOpened(s.t.cfg.Name, label)
	start := time.Now()
	s.t.log.Debug("forwarded connection open", "forward", label, "origin", origin)
	end := s.pipe(pc, label)
	s.t.obs.ConnClosed(s.t.cfg.Name, label)
	args := []any{"forward", label, "origin", origin, "bytes_in", end.in, "bytes_out", end.out,
		"duration", time.Since(start).Round(time.Microsecond).String(), "end", end.how}
	if end.err != nil {
		args = append(args, "err", end.err.Error())
	}
	s.t.log.Debug("forwarded connection closed", args...)
	s.mu.Lock()
	delete(s.conns, pc)
	s.mu.Unlock()
}

func (s *session) isDead() bool {
	select {
	case <-s.dead:
		return true
	default:
		return false
	}
}

// replyNotice wakes channels that arrived for a port-0 forward before its
// reply was recorded: sshd may open the first forwarded-tcpip channel right
// after its reply, and x/crypto hands the two to different goroutines.
type replyNotice struct {
	mu sync.Mutex
	ch chan struct{} // closed at the next recorded reply
}

func (r *replyNotice) next() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	return r.ch
}

func (r *replyNotice) notify() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch != nil {
		close(r.ch)
		r.ch = nil
	}
}

// pending reports whether a port-0 forward was asked for and its port is
// not known yet.
func (r *replyNotice) pending(fwds []*fwdState) bool {
	for _, f := range fwds {
		if f.f.RemotePath == "" && f.f.RemotePort == 0 && f.asked.Load() && f.allocated.Load() == 0 {
			return true
		}
	}
	return false
}

// await retries find after each recorded reply while a port-0 reply is
// pending, for at most the server's connect_timeout.
func (r *replyNotice) await(s *session, find func() *fwdState) *fwdState {
	timer := time.NewTimer(s.server.ep.ConnectTimeout)
	defer timer.Stop()
	for {
		next := r.next() // before find: a reply recorded in between still wakes us
		if f := find(); f != nil {
			return f
		}
		if !r.pending(s.fwds) {
			return nil
		}
		select {
		case <-next:
		case <-s.dead:
			return nil
		case <-timer.C:
			return nil
		}
	}
}
