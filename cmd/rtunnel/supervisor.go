package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/health"
	"github.com/rtunnel/rtunnel/reconnect"
	"github.com/rtunnel/rtunnel/tunnel"
)

// statusEvery bounds how often STATUS= is sent while tunnels change state:
// a fleet of failing tunnels changes state many times a second.
const statusEvery = time.Second

// supervisor owns the running tunnels: it starts them, restarts changed ones
// on reload, keeps systemd informed and tells when none is left running.
//
// Its loop never waits for a tunnel to stop: the watchdog asks it to answer
// (alive) and a reload that stops tunnels with open connections may take
// shutdown_grace, so the stops run in parallel in a goroutine the loop
// waits for through a channel.
type supervisor struct {
	log      *slog.Logger
	health   *health.Health
	notifier *health.Notifier
	// applyLog puts a reloaded log section in force; nil leaves logging
	// as it is.
	applyLog func(config.Log) error
	alive    chan struct{} // the watchdog's question; the loop answers
	// sessionFor, when set, replaces the real SSH session of a tunnel (tests).
	sessionFor func(config.Tunnel) func(ctx context.Context, up func()) error

	cfg     *config.Config
	tunnels map[string]*running // every tunnel of the config in force
	stopped map[string]bool     // tunnels stopped for good
	ended   chan *running       // a tunnel's loop returned on its own

	readyOnce sync.Once
	pending   map[string]bool // tunnels whose first attempt has not finished
	mu        sync.Mutex
}

// running is one tunnel's reconnect loop, or a tunnel refused at start
// (done already closed).
type running struct {
	name   string
	spec   config.Tunnel
	cancel context.CancelFunc
	kick   func() // reconnect now (SIGUSR1); nil when nothing runs
	done   chan struct{}
	err    error // *reconnect.PermanentError when it stopped for good
	// hubHealth are the health entries of each hub (hubs: all), besides name.
	hubHealth []string
}

func newSupervisor(log *slog.Logger, h *health.Health, n *health.Notifier, cfg *config.Config) *supervisor {
	return &supervisor{
		log: log, health: h, notifier: n, alive: make(chan struct{}),
		cfg: cfg, tunnels: map[string]*running{}, stopped: map[string]bool{},
		ended: make(chan *running), pending: map[string]bool{},
	}
}

// answers tells the watchdog whether the supervisor loop takes a question
// before ctx ends: a loop stuck anywhere does not.
func (s *supervisor) answers(ctx context.Context) bool {
	select {
	case s.alive <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// sameTunnel compares two tunnel specs, ignoring where they sit in the file.
func sameTunnel(a, b config.Tunnel) bool {
	a, b = cloneTunnel(a), cloneTunnel(b) // the line fields are cleared below
	a.Line, b.Line = 0, 0
	a.Server.Line, b.Server.Line = 0, 0
	for i := range a.Forwards {
		a.Forwards[i].Line = 0
	}
	for i := range b.Forwards {
		b.Forwards[i].Line = 0
	}
	for i := range a.LocalForwards {
		a.LocalForwards[i].Line = 0
	}
	for i := range b.LocalForwards {
		b.LocalForwards[i].Line = 0
	}
	for i := range a.Jump {
		a.Jump[i].Line = 0
	}
	for i := range b.Jump {
		b.Jump[i].Line = 0
	}
	for i := range a.Hubs {
		a.Hubs[i].Line = 0
	}
	for i := range b.Hubs {
		b.Hubs[i].Line = 0
	}
	return reflect.DeepEqual(a, b)
}

func cloneTunnel(t config.Tunnel) config.Tunnel {
	t.Forwards = append([]config.Forward(nil), t.Forwards...)
	t.LocalForwards = append([]config.LocalForward(nil), t.LocalForwards...)
	t.Jump = append([]config.Endpoint(nil), t.Jump...)
	t.Hubs = append([]config.Endpoint(nil), t.Hubs...)
	return t
}

// declare makes the tunnel's series and state exist in health.
func (s *supervisor) declare(spec config.Tunnel) {
	s.health.AddTunnel(spec.Name, forwardLabels(tunnelConfig(s.cfg, spec, nil, nil)))
}

// refuse records a tunnel that cannot run with its files (key, certificate,
// known_hosts: what tunnel.Check finds) as stopped, so that the others run:
// logged at ERROR, shown as stopped on /status and /readyz and by
// rtunnel_tunnel_stopped. A reload with the files fixed starts it.
func (s *supervisor) refuse(spec config.Tunnel, problem error) {
	s.declare(spec)
	s.health.Stopped(spec.Name, problem)
	s.log.Error("tunnel not started: its files have problems; the other tunnels run. Fix the files and reload (systemctl reload rtunnel)",
		"tunnel", spec.Name, "server", spec.Server.String(), "err", problem.Error())
	done := make(chan struct{})
	close(done)
	s.tunnels[spec.Name] = &running{name: spec.Name, spec: cloneTunnel(spec), cancel: func() {}, done: done}
	s.stopped[spec.Name] = true
}

// start launches one tunnel: one reconnect loop on its server, or over its
// list of hubs (hubs.go).
func (s *supervisor) start(ctx context.Context, spec config.Tunnel) {
	tlog := s.log.With("tunnel", spec.Name, "server", spec.Server.String())
	holdAll := len(spec.Hubs) > 1 && spec.HubMode == config.HubsAll
	if !holdAll { // hubs: all declares each hub's own entry
		s.declare(spec)
	}
	name := spec.Name
	delete(s.stopped, name)
	s.mu.Lock()
	s.pending[name] = true
	s.mu.Unlock()
	rctx, cancel := context.WithCancel(ctx)
	r := &running{name: name, spec: cloneTunnel(spec), cancel: cancel, done: make(chan struct{})}
	s.tunnels[name] = r
	var run func(context.Context) error
	switch {
	case holdAll:
		run, r.kick = s.holdAll(spec, r)
	case len(spec.Hubs) > 1:
		f := s.failover(spec)
		run, r.kick = f.Run, f.Kick
	default:
		l := s.loop(spec, name)
		run, r.kick = l.Run, l.Kick
	}
	go func() {
		defer close(r.done)
		r.err = run(rctx)
		var pe *reconnect.PermanentError
		if errors.As(r.err, &pe) {
			tlog.Error("tunnel stopped: this needs an operator, retrying cannot help", "err", pe.Err.Error())
			s.health.Stopped(name, pe.Err)
		}
		s.firstAttemptDone(name)
		select {
		case s.ended <- r:
		case <-rctx.Done():
		}
	}()
}

// session is one tunnel's SSH session on spec.Server, reported to health as
// healthName.
func (s *supervisor) session(spec config.Tunnel, healthName string, tlog *slog.Logger) func(ctx context.Context, up func()) error {
	if s.sessionFor != nil {
		return s.sessionFor(spec)
	}
	tc := tunnelConfig(s.cfg, spec, s.log, s.health)
	tc.Name = healthName
	ports := newPortsFile(runtimeDir(), healthName, forwardLabels(tc), tlog)
	tc.ForwardAllocated = func(forward string, port int) {
		s.health.ForwardAllocated(healthName, forward, port)
		ports.set(forward, port)
	}
	return tunnel.New(tc).Session
}

// loop is one tunnel's reconnect loop on spec.Server, reported to health as
// healthName.
func (s *supervisor) loop(spec config.Tunnel, healthName string) *reconnect.Loop {
	name := spec.Name
	tlog := s.log.With("tunnel", healthName, "server", spec.Server.String())
	session := s.session(spec, healthName, tlog)
	failures := &failureLog{log: tlog}
	return &reconnect.Loop{
		Policy: reconnectPolicy(spec),
		Session: func(ctx context.Context, up func()) error {
			return session(ctx, func() {
				up()
				failures.recovered()
				s.firstAttemptDone(name)
			})
		},
		IsPermanent: tunnel.Permanent,
		IsFast:      tunnel.FastRetry,
		IsRefused:   tunnel.Refused,
		IsSlow:      tunnel.Slow,
		IsBusy:      tunnel.Busy,
		OnRetry: func(attempt int, err error, wait time.Duration) {
			s.health.Retrying(healthName, attempt, wait, err) // before the log line, as for reloads
			failures.failed(attempt, err, wait)
			s.firstAttemptDone(name)
		},
	}
}

// firstAttemptDone sends READY=1 once every tunnel's first attempt has
// finished, up or failed with a retry scheduled: boot must not wait for the
// network.
func (s *supervisor) firstAttemptDone(name string) {
	s.mu.Lock()
	delete(s.pending, name)
	left := len(s.pending)
	s.mu.Unlock()
	if left == 0 {
		s.readyOnce.Do(func() {
			s.log.Info("ready: every tunnel made its first attempt")
			if err := s.notifier.Ready(); err != nil {
				s.log.Warn("sd_notify READY failed", "err", err)
			}
		})
	}
}

// stopAll cancels every tunnel at once, then waits for them all: each may
// take up to shutdown_grace, and in parallel that is the whole wait.
func stopAll(rs []*running) {
	for _, r := range rs {
		r.cancel()
	}
	for _, r := range rs {
		<-r.done
	}
}

var errAllStopped = &exitError{code: exitConfig,
	err: fmt.Errorf("every tunnel stopped on a permanent error (see the log above); exiting with status %d", exitConfig)}

// run supervises until ctx ends (clean stop, nil) or no tunnel is left
// running because each stopped for good (exit 78). problems holds the
// tunnels that cannot run with their files; they are recorded as stopped.
func (s *supervisor) run(ctx context.Context, problems map[string]error, hup, usr1 <-chan struct{}, load loadFunc) error {
	for _, t := range s.cfg.Tunnels {
		if err := problems[t.Name]; err != nil {
			s.refuse(t, err)
		} else {
			s.start(ctx, t)
		}
	}
	st := statusSender{send: s.notifier.Status, health: s.health}
	defer st.stop()
	st.update()
	var draining *reload // a reload waiting for its tunnels to stop
	hupQueued := false
	for {
		var drained <-chan struct{}
		if draining != nil {
			drained = draining.stopped
		}
		select {
		case <-ctx.Done():
			_ = s.notifier.Stopping()
			_ = s.notifier.Status("stopping")
			var all []*running
			for _, r := range s.tunnels {
				all = append(all, r)
			}
			// The stop takes up to shutdown_grace; the loop goes on
			// answering the watchdog meanwhile, so that it logs no stall.
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				if draining != nil {
					<-draining.stopped
				}
				stopAll(all)
			}()
			for {
				select {
				case <-stopped:
					return nil
				case <-s.alive:
				}
			}
		case <-s.alive:
		case <-s.health.Changes():
			st.changed()
		case <-st.due():
			st.update()
		case r := <-s.ended:
			if s.tunnels[r.name] != r {
				break // stopped by a reload meanwhile
			}
			s.stopped[r.name] = true
			if draining == nil && len(s.stopped) == len(s.tunnels) {
				return errAllStopped
			}
		case <-hup:
			if draining != nil {
				hupQueued = true // applied once the running reload is done
				break
			}
			draining = s.beginReload(ctx, load)
		case <-drained:
			s.finishReload(ctx, draining)
			draining = nil
			if len(s.stopped) == len(s.tunnels) {
				return errAllStopped // tunnels that ended during the reload
			}
			if hupQueued {
				hupQueued = false
				draining = s.beginReload(ctx, load)
			}
		case <-usr1:
			s.log.Info("SIGUSR1: every tunnel reconnects now, without waiting for its backoff")
			for _, r := range s.tunnels {
				if r.kick != nil { // nil: refused at start, nothing runs
					r.kick()
				}
			}
		}
	}
}
