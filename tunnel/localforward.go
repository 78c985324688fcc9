package tunnel

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Local forwards (ssh -L): rtunnel listens on this machine and carries each
// connection through the server in a direct-tcpip channel (or, for a socket
// path on the server, direct-streamlocal@openssh.com). They share the
// session's max_connections, pipe and metrics with the remote forwards.

// localState is one local forward within a session.
type localState struct {
	lf    LocalForward
	label string
	up    atomic.Bool
	ln    net.Listener // set once bound; closed by closeLocals
}

// directTCPIPPayload is RFC 4254 7.2's direct-tcpip channel open body.
type directTCPIPPayload struct {
	Host       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// directStreamLocalPayload is the body of a direct-streamlocal@openssh.com
// channel open (OpenSSH's PROTOCOL, 2.4).
type directStreamLocalPayload struct {
	Path         string
	Reserved     string
	ReservedPort uint32
}

// listenLocals binds every local forward. A bind failure ends the session
// with ExitOnForwardFailure (as ssh does); otherwise the forward is bound
// again later on the live session.
func (s *session) listenLocals() error {
	for _, lf := range s.t.cfg.LocalForwards {
		l := &localState{lf: lf, label: lf.String()}
		s.mu.Lock()
		s.locals = append(s.locals, l)
		s.mu.Unlock()
		err := s.bindLocal(l)
		if err == nil {
			continue
		}
		if s.t.cfg.ExitOnForwardFailure {
			s.t.log.Warn("local forward cannot listen; closing the session (exit_on_forward_failure)", "forward", l.label, "err", err)
			return err
		}
		s.t.log.Warn("local forward cannot listen; keeping the session and trying again",
			"forward", l.label, "err", err, "retry_in", s.t.cfg.ForwardRetry)
		s.wg.Add(1)
		go s.retryLocal(l)
	}
	return nil
}

// bindLocal listens on l's address and starts its accept loop.
func (s *session) bindLocal(l *localState) error {
	netw := network(l.lf.Listen)
	if netw == "unix" {
		// A socket file left by an earlier run would make the bind fail,
		// as ssh's StreamLocalBindUnlink does for it; only a socket is
		// removed, never another kind of file.
		if fi, err := os.Lstat(l.lf.Listen); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(l.lf.Listen)
		}
	}
	lc := net.ListenConfig{}
	ln, err := lc.Listen(s.ctx, netw, l.lf.Listen)
	if err != nil {
		s.t.obs.ForwardRefused(s.t.cfg.Name, l.label)
		return &LocalBindError{Forward: l.label, Listen: l.lf.Listen, Err: err}
	}
	s.mu.Lock()
	if s.stopping || s.isDead() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	l.ln = ln
	s.mu.Unlock()
	if l.up.CompareAndSwap(false, true) {
		s.t.obs.ForwardUp(s.t.cfg.Name, l.label)
	}
	s.t.log.Info("forward up", "forward", l.label, "listen", ln.Addr().String())
	s.wg.Add(1)
	go s.acceptLocal(l, ln)
	return nil
}

// retryLocal binds a local forward again on the retry schedule, as
// retryForward requests a refused remote forward again.
func (s *session) retryLocal(l *localState) {
	defer s.wg.Done()
	var err error
	s.retryOnSchedule(func() bool {
		err = s.bindLocal(l)
		return err == nil
	}, func(attempt int, wait time.Duration, _ bool) {
		s.t.log.Debug("local forward still cannot listen", "forward", l.label, "attempt", attempt, "err", err, "retry_in", wait)
	})
}

// closeLocals stops every local forward's listener: no new connections
// during a graceful stop. The caller holds s.mu.
func (s *session) closeLocals() {
	for _, l := range s.locals {
		if l.ln != nil {
			l.ln.Close()
		}
	}
}

// localsDown reports every local forward down at the session's end.
func (s *session) localsDown() {
	for _, l := range s.locals {
		if l.up.CompareAndSwap(true, false) {
			s.t.obs.ForwardDown(s.t.cfg.Name, l.label)
		}
	}
}

// acceptLocal takes the listener's connections until it is closed (by a
// stop, or by the session's end).
func (s *session) acceptLocal(l *localState, ln net.Listener) {
	defer s.wg.Done()
	stop := context.AfterFunc(s.ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if !errors.Is(err, net.ErrClosed) {
				s.t.log.Warn("local forward stopped accepting", "forward", l.label, "err", err)
			}
			return
		}
		if s.takeSlot(l.label, "a local forward connection") != slotTaken {
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.serveLocal(l, c)
	}
}

// serveLocal opens the channel through the server and pipes c to it.
// x/crypto cannot bound a channel open; sshd answers once its connect to
// the target succeeds or fails, and the session's end unblocks it.
func (s *session) serveLocal(l *localState, c net.Conn) {
	defer s.wg.Done()
	defer s.release()
	defer func() { <-s.sem }()
	typ, payload := l.openPayload(c.RemoteAddr())
	ch, reqs, err := s.server.client.OpenChannel(typ, payload)
	if err != nil {
		c.Close()
		s.t.obs.ConnRejected(s.t.cfg.Name, l.label, "target_refused")
		s.warnLimited("open:"+l.label, "the server refused a local forward's connection to its target; the tunnel stays up "+
			"(administratively prohibited: the key's permitopen does not allow it; connect failed: nothing answers there as the server sees it)",
			"forward", l.label, "connect", l.lf.Connect, "err", err)
		return
	}
	s.carry(ch, reqs, c, l.label, c.RemoteAddr().String())
}

// openPayload is the channel type and body that reach l's target.
func (l *localState) openPayload(origin net.Addr) (string, []byte) {
	if network(l.lf.Connect) == "unix" {
		return "direct-streamlocal@openssh.com", ssh.Marshal(&directStreamLocalPayload{Path: l.lf.Connect})
	}
	host, port, _ := net.SplitHostPort(l.lf.Connect)
	p, _ := strconv.Atoi(port)
	o := directTCPIPPayload{Host: host, Port: uint32(p), OriginAddr: "127.0.0.1"}
	if a, ok := origin.(*net.TCPAddr); ok {
		o.OriginAddr, o.OriginPort = a.IP.String(), uint32(a.Port)
	}
	return "direct-tcpip", ssh.Marshal(&o)
}
