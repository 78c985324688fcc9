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

// supervisor owns the running tunnels: it starts them, restarts changed ones
// on reload, keeps systemd informed and tells when none is left running.
type supervisor struct {
	log      *slog.Logger
	health   *health.Health
	notifier *health.Notifier
	beat     *health.Heartbeat
	gc       *gcGoal // nil when the operator set GOGC

	cfg     *config.Config
	tunnels map[string]*running
	ended   chan *running // a tunnel's loop returned

	readyOnce sync.Once
	pending   map[string]bool // tunnels whose first attempt has not finished
	mu        sync.Mutex
}

// running is one tunnel's reconnect loop.
type running struct {
	name   string
	spec   config.Tunnel
	cancel context.CancelFunc
	kick   chan struct{} // reconnect now (SIGUSR1)
	done   chan struct{}
	err    error // *reconnect.PermanentError when it stopped for good
}

func newSupervisor(log *slog.Logger, h *health.Health, n *health.Notifier, cfg *config.Config) *supervisor {
	return &supervisor{
		log: log, health: h, notifier: n, beat: &health.Heartbeat{},
		cfg: cfg, tunnels: map[string]*running{}, ended: make(chan *running),
		pending: map[string]bool{},
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
	return reflect.DeepEqual(a, b)
}

func cloneTunnel(t config.Tunnel) config.Tunnel {
	t.Forwards = append([]config.Forward(nil), t.Forwards...)
	t.LocalForwards = append([]config.LocalForward(nil), t.LocalForwards...)
	t.Jump = append([]config.Endpoint(nil), t.Jump...)
	return t
}

// start launches one tunnel's loop.
func (s *supervisor) start(ctx context.Context, spec config.Tunnel) {
	tlog := s.log.With("tunnel", spec.Name, "server", spec.Server.String())
	tc := tunnelConfig(s.cfg, spec, s.log, s.health)
	labels := forwardLabels(tc)
	s.health.AddTunnel(spec.Name, labels)
	ports := newPortsFile(runtimeDir(), spec.Name, labels, tlog)
	tc.ForwardAllocated = func(forward string, port int) {
		s.health.ForwardAllocated(spec.Name, forward, port)
		ports.set(forward, port)
	}
	t := tunnel.New(tc)
	name := spec.Name
	s.mu.Lock()
	s.pending[name] = true
	s.mu.Unlock()
	loop := &reconnect.Loop{
		Policy: reconnectPolicy(spec),
		Session: func(ctx context.Context, up func()) error {
			return t.Session(ctx, func() {
				up()
				s.firstAttemptDone(name)
			})
		},
		IsPermanent: tunnel.Permanent,
		IsFast:      tunnel.FastRetry,
		IsRefused:   tunnel.Refused,
		IsSlow:      tunnel.Slow,
		OnRetry: func(attempt int, err error, wait time.Duration) {
			retryLog(tlog, attempt, err, wait)
			s.health.Retrying(name, attempt, wait, err)
			s.firstAttemptDone(name)
		},
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &running{name: name, spec: cloneTunnel(spec), cancel: cancel, kick: make(chan struct{}, 1), done: make(chan struct{})}
	loop.Kick = r.kick
	s.tunnels[name] = r
	go func() {
		defer close(r.done)
		r.err = loop.Run(rctx)
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

// stop cancels one tunnel and waits for it.
func (s *supervisor) stop(r *running) {
	r.cancel()
	<-r.done
	delete(s.tunnels, r.name)
}

// run supervises until ctx ends (clean stop, nil) or no tunnel is left
// running because each stopped for good (exit 78).
func (s *supervisor) run(ctx context.Context, hup, usr1 <-chan struct{}, reload func() (*config.Config, error)) error {
	for _, t := range s.cfg.Tunnels {
		s.start(ctx, t)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastStatus := ""
	stopped := map[string]bool{}
	for {
		s.beat.Beat()
		if st := s.health.StatusLine(); st != lastStatus {
			lastStatus = st
			_ = s.notifier.Status(st)
		}
		select {
		case <-ctx.Done():
			_ = s.notifier.Stopping()
			_ = s.notifier.Status("stopping")
			for _, r := range s.tunnels {
				r.cancel()
			}
			for _, r := range s.tunnels {
				<-r.done
			}
			return nil
		case <-tick.C:
			s.gc.tick()
		case r := <-s.ended:
			stopped[r.name] = true
			if len(stopped) == len(s.tunnels) {
				return &exitError{code: exitConfig, err: fmt.Errorf("every tunnel stopped on a permanent error (see the log above); exiting with status %d", exitConfig)}
			}
		case <-hup:
			s.reload(ctx, reload, stopped)
		case <-usr1:
			s.log.Info("SIGUSR1: every tunnel reconnects now, without waiting for its backoff")
			for _, r := range s.tunnels {
				select {
				case r.kick <- struct{}{}:
				default: // a kick is already pending
				}
			}
		}
	}
}

// reload applies a new config: unchanged tunnels keep their connections,
// changed ones restart, removed ones stop, new ones start. A bad config is
// refused and the running one stays.
func (s *supervisor) reload(ctx context.Context, load func() (*config.Config, error), stopped map[string]bool) {
	_ = s.notifier.Reloading()
	defer func() { _ = s.notifier.Ready() }()
	next, err := load()
	if err != nil {
		s.log.Error("reload refused: the new config has problems; the running config stays", "err", err.Error())
		return
	}
	if next.Metrics != nil && (s.cfg.Metrics == nil || *next.Metrics != *s.cfg.Metrics) || next.Metrics == nil && s.cfg.Metrics != nil {
		s.log.Warn("metrics settings changed: they take effect on restart")
	}
	old := s.cfg
	s.cfg = next
	want := map[string]config.Tunnel{}
	for _, t := range next.Tunnels {
		want[t.Name] = t
	}
	var kept, restarted, added, removed int
	for name, r := range s.tunnels {
		spec, ok := want[name]
		switch {
		case !ok:
			s.stop(r)
			s.health.RemoveTunnel(name)
			delete(stopped, name)
			removed++
		case !sameTunnel(r.spec, spec) || old.ShutdownGrace != next.ShutdownGrace || stopped[name]:
			s.stop(r)
			delete(stopped, name)
			s.start(ctx, spec)
			restarted++
		default:
			kept++
		}
	}
	for _, t := range next.Tunnels {
		if _, ok := s.tunnels[t.Name]; !ok {
			s.start(ctx, t)
			added++
		}
	}
	s.log.Info("reloaded", "config", next.Path, "kept", kept, "restarted", restarted, "added", added, "removed", removed)
}
