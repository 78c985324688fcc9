package tunnel

import (
	"sync/atomic"
	"time"
)

// keepalive sends keepalive@openssh.com every interval and declares the link
// dead once nothing at all was heard from the hop for interval x count_max.
// Counting from the last packet (not from missed replies) meets that bound
// exactly; OpenSSH's ServerAlive can take one interval longer.
func (s *session) keepalive(h *hop) {
	defer s.wg.Done()
	interval := s.t.cfg.KeepaliveInterval
	limit := interval * time.Duration(s.t.cfg.KeepaliveCountMax)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	check := time.NewTimer(limit)
	defer check.Stop()
	var inflight atomic.Bool
	for {
		select {
		case <-s.dead:
			return
		case <-tick.C:
			if inflight.Load() {
				s.t.obs.KeepaliveMissed(s.t.cfg.Name)
				continue
			}
			inflight.Store(true)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				sent := time.Now()
				// Blocks until the reply or until the connection is closed.
				_, _, err := h.client.SendRequest("keepalive@openssh.com", true, nil)
				if err == nil {
					s.t.obs.KeepaliveRTT(s.t.cfg.Name, time.Since(sent))
				}
				inflight.Store(false)
			}()
		case <-check.C:
			silent := time.Since(h.conn.lastHeard())
			if silent >= limit {
				s.kill(&LinkDeadError{Hop: h.ep.String(), Silent: silent})
				return
			}
			check.Reset(limit - silent)
		}
	}
}
