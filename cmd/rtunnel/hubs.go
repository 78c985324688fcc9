package main

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/hubs"
	"github.com/rtunnel/rtunnel/reconnect"
	"github.com/rtunnel/rtunnel/tunnel"
)

// A tunnel whose server: is a list of hubs runs in one of two ways:
// failover (hubs.Failover, one session at a time, reported under the
// tunnel's name with rtunnel_hub_in_use saying where), or all (one
// reconnect loop per hub, each reported as its own tunnel NAME@HOST:PORT, so
// that metrics and status show every hub's session).

// In failover mode a preferred hub gets the session back once it has
// answered every check for backoff.reset_after (the span after which a
// session counts as healthy, 60 s by default), checked every
// keepalive.interval (15 s): a flapping hub never gets it. A check is one TCP
// connect, reset at once; the hub's sshd still forks for it, so about one
// pre-auth child per remote per keepalive interval while a fleet is away.

// hubSpec is spec with hub as its only server.
func hubSpec(spec config.Tunnel, hub config.Endpoint) config.Tunnel {
	one := cloneTunnel(spec)
	one.Server, one.Hubs, one.HubMode = hub, nil, ""
	return one
}

// hubName is how logs and metrics name a hub: host:port as configured.
func hubName(hub config.Endpoint) string {
	return net.JoinHostPort(hub.Host, strconv.Itoa(hub.Port))
}

func (s *supervisor) failover(spec config.Tunnel) *hubs.Failover {
	name := spec.Name
	tlog := s.log.With("tunnel", name)
	var names []string
	f := &hubs.Failover{
		Policy:      reconnectPolicy(spec),
		IsPermanent: tunnel.Permanent, IsFast: tunnel.FastRetry, IsRefused: tunnel.Refused, IsSlow: tunnel.Slow, IsBusy: tunnel.Busy,
		FailbackAfter: spec.Backoff.ResetAfter,
		CheckEvery:    spec.Keepalive.Interval,
	}
	failures := map[string]*failureLog{}
	for _, hub := range spec.Hubs {
		hn := hubName(hub)
		names = append(names, hn)
		hlog := tlog.With("hub", hn)
		session := s.session(hubSpec(spec, hub), name, hlog)
		failed := &failureLog{log: hlog}
		failures[hn] = failed
		target := hubName(hub)
		timeout := hub.ConnectTimeout
		f.Hubs = append(f.Hubs, hubs.Hub{
			Name: hn,
			Session: func(ctx context.Context, up func()) error {
				return session(ctx, func() {
					up()
					failed.recovered()
					s.firstAttemptDone(name)
				})
			},
			Reachable: func(ctx context.Context) bool { return reachable(ctx, target, timeout) },
		})
	}
	s.health.HubInUse(name, "", names)
	f.OnUse = func(hub string) {
		tlog.Info("holding the tunnel on hub "+hub, "hub", hub)
		s.health.HubInUse(name, hub, names)
	}
	f.OnRetry = func(hub string, attempt int, err error, wait time.Duration) {
		s.health.Retrying(name, attempt, wait, err)
		failures[hub].failed(attempt, err, wait)
		s.firstAttemptDone(name)
	}
	f.OnFailback = func(from, to string) {
		tlog.Info("hub "+to+" answered for "+spec.Backoff.ResetAfter.String()+": moving the tunnel back to it from "+from, "hub", to, "from", from)
	}
	f.OnHubStopped = func(hub string, err error) {
		tlog.Error("hub "+hub+" left out: this needs an operator, retrying cannot help; the other hubs go on", "hub", hub, "err", err.Error())
	}
	return f
}

// reachable is the failback check: does the hub accept a TCP connection?
// The connection is reset at once, before the hub's sshd says anything.
func reachable(ctx context.Context, addr string, timeout time.Duration) bool {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
	return true
}

// holdAll runs one reconnect loop per hub at once; its kick (SIGUSR1)
// goes to every loop. run returns when ctx ends, or when every hub stopped
// on a permanent error (the first one's).
func (s *supervisor) holdAll(spec config.Tunnel, r *running) (run func(context.Context) error, kick func()) {
	var loops []*reconnect.Loop
	names := r.hubHealth[:0]
	for _, hub := range spec.Hubs {
		hn := spec.Name + "@" + hubName(hub)
		names = append(names, hn)
		s.health.AddTunnel(hn, forwardLabels(tunnelConfig(s.cfg, spec, nil, nil)))
		loops = append(loops, s.loop(hubSpec(spec, hub), hn))
	}
	r.hubHealth = names
	kick = func() {
		for _, l := range loops {
			l.Kick()
		}
	}
	run = func(ctx context.Context) error {
		var wg sync.WaitGroup
		errs := make([]error, len(loops))
		for i, l := range loops {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = l.Run(ctx)
				var pe *reconnect.PermanentError
				if errors.As(errs[i], &pe) {
					s.log.Error("hub left out: this needs an operator, retrying cannot help; the other hubs go on",
						"tunnel", names[i], "server", spec.Hubs[i].String(), "err", pe.Err.Error())
					s.health.Stopped(names[i], pe.Err)
				}
			}()
		}
		wg.Wait()
		var pe *reconnect.PermanentError
		for _, err := range errs {
			if !errors.As(err, &pe) {
				return nil // ctx ended
			}
		}
		return errs[0]
	}
	return run, kick
}
