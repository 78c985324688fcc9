package tunnel

import (
	"sync/atomic"
	"time"
)

// keepalive sends keepalive@openssh.com every interval and declares the link
// dead once nothing at all was heard from the hop for interval x count_max.
// Counting from the last packet (not from missed replies) meets that bound
// exactly; OpenSSH's ServerAlive can take one interval longer.
//
// It runs on timers, not on a goroutine of its own: an idle tunnel then
// holds no goroutine for it between ticks (a process may hold many
// tunnels). A goroutine exists only while a callback runs or a request
// waits for its reply. Each tick first checks the silence; the check timer
// is armed only when the silence would reach the limit before the next
// tick, which on a live link it never does (count_max >= 2): an idle
// tunnel wakes once per interval, not also once per limit for a check that
// found the link alive (issue 12).
type keepalive struct {
	s        *session
	h        *hop
	interval time.Duration
	limit    time.Duration
	inflight atomic.Bool
	tick     *time.Timer  // checks the silence, then sends the next request
	tickDue  atomic.Int64 // when tick fires next, unix nanoseconds
	check    *time.Timer  // fires when the silence reaches limit before the next tick
}

// startKeepalive arms h's keepalive tick; finish stops its timers.
func (s *session) startKeepalive(h *hop) {
	interval := s.t.cfg.KeepaliveInterval
	k := &keepalive{s: s, h: h, interval: interval, limit: interval * time.Duration(s.t.cfg.KeepaliveCountMax)}
	s.mu.Lock()
	defer s.mu.Unlock()
	k.tickDue.Store(time.Now().Add(k.interval).UnixNano())
	k.tick = time.AfterFunc(k.interval, s.onTimer(k.send))
	k.check = time.AfterFunc(k.limit, s.onTimer(k.checkOnly))
	k.check.Stop() // armed by checkSilence when needed
	s.timers = append(s.timers, k.tick, k.check)
}

// send asks the hop for a reply; one request at most is in flight, and a
// tick that finds one still waiting is counted as missed.
func (k *keepalive) send() {
	k.tickDue.Store(time.Now().Add(k.interval).UnixNano())
	k.s.rearm(k.tick, k.interval)
	if !k.checkSilence() {
		return
	}
	if k.inflight.Load() {
		k.s.t.obs.KeepaliveMissed(k.s.t.cfg.Name)
		return
	}
	k.inflight.Store(true)
	defer k.inflight.Store(false)
	sent := time.Now()
	// Blocks until the reply or until the connection is closed.
	_, _, err := k.h.client.SendRequest("keepalive@openssh.com", true, nil)
	if err == nil {
		k.s.t.obs.KeepaliveRTT(k.s.t.cfg.Name, time.Since(sent))
	}
}

// checkOnly is the check timer's callback.
func (k *keepalive) checkOnly() { k.checkSilence() }

// checkSilence kills the session once the hop has been silent for limit
// and reports false; else it arms the check timer if the silence could
// reach limit before the next tick (which checks again).
func (k *keepalive) checkSilence() (alive bool) {
	h := k.h
	silent := time.Since(h.conn.lastHeard())
	if h.tcp != nil {
		// Data the kernel took from the server counts, read or not:
		// x/crypto's read loop stops reading while it waits to write (it
		// answers a channel close from there), and the server is alive all
		// the while.
		if age, ok := lastDataAge(h.tcp); ok && age < silent {
			silent = age
		}
	}
	if silent < k.limit {
		if left, arm := checkAfter(time.Now(), silent, k.limit, time.Unix(0, k.tickDue.Load())); arm {
			k.s.rearm(k.check, left)
		}
		return true
	}
	if h.tcp != nil {
		data, _ := lastDataAge(h.tcp)
		ack, _ := lastAckAge(h.tcp)
		// ACKs without data: the server's kernel is there, its sshd is
		// not (stopped, or busy for longer than the limit).
		k.s.t.log.Debug("keepalive: the server is silent", "hop", h.ep.String(),
			"read_ago", time.Since(h.conn.lastHeard()).Round(time.Millisecond).String(),
			"kernel_data_ago", data.String(), "kernel_ack_ago", ack.String())
	}
	k.s.kill(&LinkDeadError{Hop: h.ep.String(), Silent: silent})
	return false
}

// checkAfter is when the silence, silent at now, reaches limit, and
// whether that comes before the next tick (due at tickDue), which would
// check it anyway.
func checkAfter(now time.Time, silent, limit time.Duration, tickDue time.Time) (left time.Duration, arm bool) {
	left = limit - silent
	return left, now.Add(left).Before(tickDue)
}

// onTimer wraps a timer callback so that it counts as one of the session's
// goroutines while it runs, and does nothing once the session is dead:
// finish must not return while a callback runs, nor may one start after
// finish began to wait (sync.WaitGroup forbids an Add from zero then).
func (s *session) onTimer(f func()) func() {
	return func() {
		select {
		case <-s.dead:
			return
		default:
		}
		s.mu.Lock()
		if s.finishing {
			s.mu.Unlock()
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		f()
	}
}

// rearm resets t from its own callback unless finish has stopped the
// timers meanwhile.
func (s *session) rearm(t *time.Timer, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.finishing {
		t.Reset(d)
	}
}

// stopTimers keeps every timer callback from starting from now on.
func (s *session) stopTimers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishing = true
	for _, t := range s.timers {
		t.Stop()
	}
	if s.stopOnCancel != nil {
		s.stopOnCancel()
	}
}
