package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/rtunnel/rtunnel/config"
)

// loadFunc reads the config for a reload: a config that cannot be used at
// all (syntax, schema) is an error; problems holds the tunnels whose files
// (key, certificate, known_hosts) stop them from running.
type loadFunc func() (cfg *config.Config, problems map[string]error, err error)

// reload is a SIGHUP in progress: the tunnels it stops are stopping (in
// parallel, each within shutdown_grace) while the supervisor loop goes on
// answering the watchdog; once stopped is closed, finishReload starts what
// replaces them.
type reload struct {
	stopped                         chan struct{}
	start                           []string // tunnels to start, in file order
	problems                        map[string]error
	kept, restarted, added, removed int
}

// beginReload loads the config and stops the tunnels it removes or
// changes. It returns nil when the config is refused: the running one
// stays, and the refusal is logged and recorded for /status and the
// rtunnel_config_last_reload_* metrics.
func (s *supervisor) beginReload(ctx context.Context, load loadFunc) *reload {
	_ = s.notifier.Reloading()
	next, problems, err := load()
	if err == nil && len(next.Tunnels) > 0 && len(problems) == len(next.Tunnels) {
		var all []error
		for _, t := range next.Tunnels {
			all = append(all, problems[t.Name])
		}
		err = fmt.Errorf("no tunnel of the new config could run: %w", errors.Join(all...))
	}
	if err == nil && s.applyLog != nil {
		if lerr := s.applyLog(next.Log); lerr != nil {
			err = fmt.Errorf("%s: log: %w", next.Path, lerr)
		}
	}
	if err != nil {
		// Recorded before it is logged: whoever reads the log line finds
		// the metrics and /status already saying so.
		s.health.ReloadResult(err)
		s.log.Error("reload refused: the new config has problems; the running config stays", "err", err.Error())
		_ = s.notifier.Ready()
		return nil
	}
	if next.Metrics != nil && (s.cfg.Metrics == nil || *next.Metrics != *s.cfg.Metrics) || next.Metrics == nil && s.cfg.Metrics != nil {
		s.log.Warn("metrics settings changed: they take effect on restart")
	}
	old := s.cfg
	s.cfg = next
	rl := &reload{stopped: make(chan struct{}), problems: problems}
	want := map[string]config.Tunnel{}
	for _, t := range next.Tunnels {
		want[t.Name] = t
	}
	var stopping []*running
	for name, r := range s.tunnels {
		spec, ok := want[name]
		switch {
		case !ok:
			rl.removed++
		case !sameTunnel(r.spec, spec) || old.ShutdownGrace != next.ShutdownGrace || s.stopped[name]:
			rl.restarted++
		default:
			rl.kept++
			if err := problems[name]; err != nil {
				s.log.Warn("tunnel kept: its settings did not change, but its files now have problems; its next connect will fail",
					"tunnel", name, "err", err.Error())
			}
			continue
		}
		stopping = append(stopping, r)
		delete(s.tunnels, name)
		delete(s.stopped, name)
		for _, hub := range r.hubHealth { // hubs: all; start declares them again
			s.health.RemoveTunnel(hub)
		}
		if !ok {
			s.health.RemoveTunnel(name)
		}
	}
	for _, t := range next.Tunnels {
		if _, running := s.tunnels[t.Name]; !running {
			rl.start = append(rl.start, t.Name)
		}
	}
	rl.added = len(rl.start) - rl.restarted
	// New and changed tunnels start only after the old ones have let go of
	// their remote ports, so that a renamed tunnel is not refused its own.
	for _, r := range stopping {
		r.cancel()
	}
	go func() {
		defer close(rl.stopped)
		stopAll(stopping)
	}()
	return rl
}

// finishReload starts the reload's new and changed tunnels, once the ones
// they replace have stopped, and reports the reload done.
func (s *supervisor) finishReload(ctx context.Context, rl *reload) {
	notStarted := 0
	for _, t := range s.cfg.Tunnels {
		if !contains(rl.start, t.Name) {
			continue
		}
		if err := rl.problems[t.Name]; err != nil {
			s.refuse(t, err)
			notStarted++
		} else {
			s.start(ctx, t)
		}
	}
	s.health.ReloadResult(nil)
	s.log.Info("reloaded", "config", s.cfg.Path, "kept", rl.kept, "restarted", rl.restarted, "added", rl.added,
		"removed", rl.removed, "not_started", notStarted)
	_ = s.notifier.Ready()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
