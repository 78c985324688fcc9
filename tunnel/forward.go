package tunnel

import (
	"context"
	"net"
	"strconv"
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
}

func (f *fwdState) isUp() bool { return f.up.Load() }

// setUp records the state and reports whether it changed.
func (f *fwdState) setUp(v bool) bool { return f.up.Swap(v) != v }

// forwardPayload is RFC 4254 7.1's tcpip-forward / cancel-tcpip-forward body.
type forwardPayload struct {
	Addr string
	Port uint32
}

func (f *fwdState) payload() *forwardPayload {
	return &forwardPayload{Addr: f.f.RemoteHost, Port: uint32(f.f.RemotePort)}
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

// request sends one tcpip-forward and waits for the reply within the
// server's connect_timeout; a server that never answers kills the session.
func (s *session) request(ctx context.Context, f *fwdState) (bool, error) {
	var ok bool
	timeout := s.server.ep.ConnectTimeout
	f.asked.Store(true)
	defer func() {
		if !ok {
			f.asked.Store(false)
		}
	}()
	err, timedOut := bounded(ctx, timeout, func() {
		s.kill(&TimeoutError{Step: "tcpip-forward " + f.f.Remote(), Hop: s.server.ep.String(), After: timeout})
	}, func() error {
		var err error
		ok, _, err = s.server.client.SendRequest("tcpip-forward", true, ssh.Marshal(f.payload()))
		return err
	})
	if timedOut {
		return false, &TimeoutError{Step: "tcpip-forward " + f.f.Remote(), Hop: s.server.ep.String(), After: timeout}
	}
	if err != nil {
		return false, &ClosedError{Hop: s.server.ep.String(), Err: err}
	}
	if ok {
		if f.setUp(true) {
			s.t.obs.ForwardUp(s.t.cfg.Name, f.label)
		}
		s.t.log.Info("forward up", "forward", f.label)
		return true, nil
	}
	s.t.obs.ForwardRefused(s.t.cfg.Name, f.label)
	return false, nil
}

// retryForward re-requests a refused forward every ForwardRetry for
// ForwardRetryFor (the port is usually held by our own dead session until
// the server notices), then with doubling waits up to ForwardRetryMax.
func (s *session) retryForward(f *fwdState) {
	defer s.wg.Done()
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
		if stopping {
			return
		}
		ok, err := s.request(s.ctx, f)
		if err != nil || ok {
			return
		}
		if time.Since(start) >= cfg.ForwardRetryFor {
			slow := wait == cfg.ForwardRetry
			wait = min(wait*2, cfg.ForwardRetryMax)
			if slow {
				s.t.log.Warn("forward still refused after the fast-retry window; backing off", "forward", f.label, "attempt", attempt, "retry_in", wait)
			}
		}
		s.t.log.Debug("forward refused again", "forward", f.label, "attempt", attempt, "retry_in", wait)
		timer.Reset(wait)
	}
}

// lookup finds the forward a forwarded-tcpip channel belongs to: only ports
// we asked for (and were not refused).
func (s *session) lookup(addr string, port uint32) *fwdState {
	var byPort *fwdState
	for _, f := range s.fwds {
		if !f.asked.Load() || uint32(f.f.RemotePort) != port {
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

// accept handles every forwarded-tcpip channel the server opens. Each gets
// its own goroutine at once: a slow local dial must not stall the
// connection's channel queue (golang/go#18439).
func (s *session) accept(chans <-chan ssh.NewChannel) {
	defer s.wg.Done()
	for nc := range chans {
		var p forwardedPayload
		if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
			nc.Reject(ssh.ConnectionFailed, "malformed forwarded-tcpip request")
			s.warnLimited("bad-forwarded", "refused a malformed forwarded-tcpip channel from the server", "err", err)
			continue
		}
		f := s.lookup(p.Addr, p.Port)
		if f == nil {
			nc.Reject(ssh.Prohibited, "no such forward")
			s.t.obs.ConnRejected(s.t.cfg.Name, "", "unknown_forward")
			s.warnLimited("unknown-forward", "refused a forwarded connection for a port rtunnel did not ask for",
				"addr", net.JoinHostPort(p.Addr, strconv.Itoa(int(p.Port))))
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			nc.Reject(ssh.ResourceShortage, "too many connections")
			s.t.obs.ConnRejected(s.t.cfg.Name, f.label, "max_connections")
			s.warnLimited("max-conns:"+f.label, "refused a forwarded connection: max_connections reached",
				"forward", f.label, "max_connections", s.t.cfg.MaxConnections)
			continue
		}
		if !s.admit() {
			<-s.sem
			nc.Reject(ssh.ConnectionFailed, "rtunnel is shutting down")
			continue
		}
		s.wg.Add(1)
		go s.serve(nc, f, net.JoinHostPort(p.OriginAddr, strconv.Itoa(int(p.OriginPort))))
	}
}

// serve dials the local target and pipes the channel to it. origin is who
// connected to the forwarded port, as the server reports it.
func (s *session) serve(nc ssh.NewChannel, f *fwdState, origin string) {
	defer s.wg.Done()
	defer s.release()
	defer func() { <-s.sem }()
	d := net.Dialer{Timeout: s.server.ep.ConnectTimeout}
	local, err := d.DialContext(s.ctx, "tcp", f.f.Local)
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
	s.t.obs.ConnOpened(s.t.cfg.Name, f.label)
	start := time.Now()
	s.t.log.Debug("forwarded connection open", "forward", f.label, "origin", origin)
	end := s.pipe(pc, f)
	s.t.obs.ConnClosed(s.t.cfg.Name, f.label)
	args := []any{"forward", f.label, "origin", origin, "bytes_in", end.in, "bytes_out", end.out,
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
