package tunnel

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// Tunnel runs sessions of one configured tunnel.
type Tunnel struct {
	cfg Config
	log *slog.Logger
	obs Observer

	staleMu sync.Mutex
	stale   *staleConn // see poke.go
}

// New prepares a tunnel; it does not connect.
func New(cfg Config) *Tunnel {
	cfg.Jump = append([]Endpoint(nil), cfg.Jump...)
	cfg.Forwards = append([]Forward(nil), cfg.Forwards...)
	cfg.LocalForwards = append([]LocalForward(nil), cfg.LocalForwards...)
	cfg.setDefaults()
	return &Tunnel{
		cfg: cfg,
		log: cfg.Log.With("tunnel", cfg.Name, "server", cfg.Server.String()),
		obs: cfg.Observer,
	}
}

// Name is the tunnel's configured name.
func (t *Tunnel) Name() string { return t.cfg.Name }

// session is one live SSH connection chain with its forwards.
type session struct {
	t      *Tunnel
	chain  []*hop
	server *hop
	fwds   []*fwdState
	locals []*localState // see localforward.go
	sem    chan struct{}

	replies replyNotice // see forward.go: port-0 replies vs early channels

	ctx    context.Context // ends when the session dies
	cancel context.CancelFunc

	wg sync.WaitGroup // every goroutine of the session, timer callbacks included

	dead     chan struct{}
	deadOnce sync.Once
	deadErr  error

	mu       sync.Mutex
	stopping bool
	active   int           // forwarded connections being served
	idle     chan struct{} // closed when stopping and active reaches 0
	conns    map[*pipeConn]struct{}
	warned   map[string]time.Time // rate limit for repeated warnings

	timers    []*time.Timer // keepalive.go; stopped by finish
	finishing bool          // finish has begun: no timer callback may start
	// stopOnCancel unregisters the graceful stop setUp arranged for ctx's
	// end; finish calls it.
	stopOnCancel func() bool

	// wasUp: setUp set every forward up. Written by setUp, read by Session
	// after finish has waited for it.
	wasUp bool
}

// Session connects once and serves until the link dies or ctx ends. up is
// called once the session carries its forwards, from a goroutine of the
// session's (it has returned before Session does). It returns nil after a
// clean stop (ctx ended), otherwise why the session ended; every goroutine
// it started has returned by then.
//
// The calling goroutine serves the server's incoming requests and
// channels (incoming.go) for the whole session: an idle tunnel then holds
// no goroutine of its own beside it and x/crypto's three (issue 12). The
// forwards are set up on a goroutine that ends once they are, and ctx's end
// starts the graceful stop from a context.AfterFunc.
func (t *Tunnel) Session(ctx context.Context, up func()) error {
	t.obs.ConnectAttempt(t.cfg.Name)
	start := time.Now()
	chain, err := t.dialChain(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		t.obs.ConnectResult(t.cfg.Name, Result(err))
		return err
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &session{
		t: t, chain: chain, server: chain[len(chain)-1],
		sem: make(chan struct{}, t.cfg.MaxConnections),
		ctx: sctx, cancel: cancel,
		dead:   make(chan struct{}),
		conns:  map[*pipeConn]struct{}{},
		warned: map[string]time.Time{},
	}
	for _, f := range t.cfg.Forwards {
		s.fwds = append(s.fwds, &fwdState{f: f, label: f.String()})
	}
	took := time.Since(start).Round(time.Millisecond)
	if hops := chain[:len(chain)-1]; len(hops) > 0 {
		t.log.Info("connected", "via", hopNames(hops), "took", took)
	} else {
		t.log.Info("connected", "took", took)
	}
	t.obs.Connected(t.cfg.Name)
	// Every session reported up is reported down, however it ends: health
	// holds rtunnel_tunnel_up at 1 until then. nil is a stop on request.
	var downErr error
	defer func() { t.obs.Disconnected(t.cfg.Name, downErr) }()
	s.watch()
	s.wg.Add(1)
	go s.setUp(ctx, up)
	// Until the server's connection is closed: by the server, by a kill
	// (a failed setup, a dead link, a dead jump hop) or by the graceful stop.
	s.serveIncoming(s.server)
	err = s.finish() // setUp and the graceful stop have returned: wasUp is final
	s.mu.Lock()
	stopped := s.stopping
	s.mu.Unlock()
	if stopped || !s.wasUp && ctx.Err() != nil {
		t.logStop(ctx) // the graceful stop ran, or ctx ended the setup
		return nil
	}
	if !s.wasUp {
		t.obs.ConnectResult(t.cfg.Name, Result(err))
		downErr = err
		return err
	}
	if notClosedByServer(err) && s.chain[0].tcp != nil {
		tcp := s.chain[0].tcp
		t.setStale(&staleConn{local: tcp.LocalAddr().(*net.TCPAddr), remote: tcp.RemoteAddr().(*net.TCPAddr), since: time.Now()})
	}
	downErr = err
	t.log.Warn("disconnected", "err", err.Error(), "was_up_for", time.Since(start).Round(time.Second).String())
	return err
}

// logStop logs a session closed because ctx ended, with the cause a
// reconnect or reload gave.
func (t *Tunnel) logStop(ctx context.Context) {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		t.log.Info("session closed on request", "reason", cause.Error())
	} else {
		t.log.Info("session closed on stop")
	}
}

func hopNames(chain []*hop) string {
	names := make([]string, len(chain))
	for i, h := range chain {
		names[i] = h.ep.String()
	}
	return strings.Join(names, ",")
}

// watch arms, per hop, the keepalive that notices a dead link, and for
// each jump hop starts the goroutine that serves or refuses what its
// server starts (incoming.go); Session's own goroutine serves the last
// hop's.
func (s *session) watch() {
	for _, h := range s.chain {
		s.startKeepalive(h)
		if h == s.server {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveIncoming(h)
		}()
	}
}

// setUp sets the forwards up, then reports the session up and arranges the
// graceful stop for ctx's end; if a forward fails, it kills the session.
// It runs on a goroutine of its own because the server's incoming must be
// served meanwhile: a reply to tcpip-forward may follow any number of the
// server's own requests and channel opens, and x/crypto queues only 16
// of each before its reader stops (the hostile-server tests).
func (s *session) setUp(ctx context.Context, up func()) {
	defer s.wg.Done()
	err := s.listenLocals()
	if err == nil {
		err = s.requestForwards(ctx)
	}
	if err != nil {
		s.kill(err)
		return
	}
	s.t.obs.ConnectResult(s.t.cfg.Name, ResultOK)
	s.t.setStale(nil)
	s.wasUp = true
	if up != nil {
		up()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.finishing {
		// onTimer: the stop counts as the session's goroutine, and does
		// nothing once the session is dead.
		s.stopOnCancel = context.AfterFunc(ctx, s.onTimer(s.shutdown))
	}
}

// kill ends the session with err (the first cause wins) and closes every
// connection so that no read, write or request stays blocked.
func (s *session) kill(err error) {
	s.deadOnce.Do(func() {
		s.deadErr = err
		if _, silent := err.(*LinkDeadError); silent {
			// Reset, not FIN: the socket and its port are freed at once,
			// for the next connect's poke (poke.go).
			for _, h := range s.chain {
				if h.tcp != nil {
					_ = h.tcp.SetLinger(0)
				}
			}
		}
		close(s.dead)
		s.cancel()
		closeChain(s.chain)
		s.mu.Lock()
		for pc := range s.conns {
			pc.local.Close()
		}
		s.mu.Unlock()
	})
}

// finish waits for every goroutine and returns the cause of death.
func (s *session) finish() error {
	s.stopTimers()
	s.wg.Wait()
	for _, f := range s.fwds {
		if f.setUp(false) {
			s.t.obs.ForwardDown(s.t.cfg.Name, f.label)
			if f.allocated.Load() != 0 {
				s.t.cfg.ForwardAllocated(f.label, 0)
			}
		}
	}
	s.localsDown()
	return s.deadErr
}

// shutdown is the graceful stop: cancel the forwards so the server accepts
// no new connections, let open ones finish within the grace, then close.
func (s *session) shutdown() {
	idle := make(chan struct{})
	s.mu.Lock()
	s.stopping = true
	s.closeLocals()
	if s.active == 0 {
		close(idle)
	} else {
		s.idle = idle
	}
	s.mu.Unlock()
	grace := s.t.cfg.ShutdownGrace
	deadline := time.Now().Add(grace)
	cancelBound := min(grace, 2*time.Second)
	if cancelBound > 0 {
		bounded(context.Background(), cancelBound, func() { s.kill(nil) }, func() error {
			for _, f := range s.fwds {
				if f.isUp() {
					_, _, _ = s.server.client.SendRequest(f.cancelType(), true, f.payload())
				}
			}
			return nil
		})
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-idle:
	case <-s.dead:
	case <-t.C:
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		s.t.log.Warn("closing connections still open after the shutdown grace", "open", n, "grace", grace)
	}
	s.kill(nil)
}

// warnLimited logs at most once a minute per key.
func (s *session) warnLimited(key, msg string, args ...any) {
	s.mu.Lock()
	last, seen := s.warned[key]
	now := time.Now()
	if seen && now.Sub(last) < time.Minute {
		s.mu.Unlock()
		return
	}
	s.warned[key] = now
	s.mu.Unlock()
	s.t.log.Warn(msg, args...)
}

// admit counts a new forwarded connection unless the session is stopping.
func (s *session) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.active++
	return true
}

// release ends a forwarded connection's count.
func (s *session) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}
