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
			if h.tcp != nil {
				// Data the kernel took from the server counts, read or not:
				// x/crypto's read loop stops reading while it waits to
				// write (it answers a channel close from there), and the
				// server is alive all the while.
				if age, ok := lastDataAge(h.tcp); ok && age < silent {
					silent = age
				}
			}
			if silent >= limit {
				if h.tcp != nil {
					data, _ := lastDataAge(h.tcp)
					ack, _ := lastAckAge(h.tcp)
					// ACKs without data: the server's kernel is there, its
					// sshd is not (stopped, or busy for longer than the limit).
					s.t.log.Debug("keepalive: the server is silent", "hop", h.ep.String(),
						"read_ago", time.Since(h.conn.lastHeard()).Round(time.Millisecond).String(),
						"kernel_data_ago", data.String(), "kernel_ack_ago", ack.String())
				}
				s.kill(&LinkDeadError{Hop: h.ep.String(), Silent: silent})
				return
			}
			check.Reset(limit - silent)
		}
	}
}
