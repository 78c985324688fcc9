package health

import (
	"slices"
	"time"
)

// The methods below implement tunnel.Observer and the reconnect loop's
// reporting hooks. They are called on the data path: each is a lock-free
// index lookup plus atomic adds, or a short per-tunnel critical section for
// state changes. Calls naming a tunnel or forward that was not declared with
// AddTunnel (or was removed) are dropped, so a session being torn down by a
// config reload cannot resurrect its series.

// ConnectAttempt records that the tunnel is dialling its server.
func (h *Health) ConnectAttempt(tunnel string) {
	t := h.tunnel(tunnel)
	if t == nil {
		return
	}
	t.markDown() // a new attempt means the last session is over, reported or not
	t.nextRetry.Set(0)
	t.stopped.Set(0)
	t.mu.Lock()
	t.setState(StateConnecting, h.now())
	t.nextRetryAt = time.Time{}
	t.mu.Unlock()
	h.changed()
}

// ConnectResult counts a finished attempt in
// rtunnel_connect_attempts_total{result}. Results other than ok, dial,
// handshake, hostkey, auth, forward_refused and timeout count as "other".
func (h *Health) ConnectResult(tunnel, result string) {
	t := h.tunnel(tunnel)
	if t == nil {
		return
	}
	c, ok := t.attempts[result]
	if !ok {
		c = t.attempts[labelOther]
	}
	c.Inc()
}

// HubInUse records which of a tunnel's hubs (failover) holds its session:
// hub, one of hubs, goes to 1 and the others to 0.
func (h *Health) HubInUse(tunnel, hub string, hubs []string) {
	t := h.tunnel(tunnel)
	if t == nil {
		return
	}
	for _, x := range hubs {
		v := 0.0
		if x == hub {
			v = 1
		}
		h.m.hubInUse.WithLabelValues(tunnel, x).Set(v)
	}
	t.mu.Lock()
	t.hub = hub
	t.mu.Unlock()
}

// Connected records an established SSH session.
func (h *Health) Connected(tunnel string) {
	t := h.tunnel(tunnel)
	if t == nil {
		return
	}
	now := h.now()
	t.up.Set(1)
	t.connectedSince.Set(float64(now.UnixNano()) / 1e9)
	t.backoff.Set(0)
	t.nextRetry.Set(0)
	t.mu.Lock()
	t.setState(StateUp, now)
	t.nextRetryAt = time.Time{}
	t.attempt = 0
	t.mu.Unlock()
	h.changed()
}

// Disconnected records the loss of the session; every forward of the tunnel
// goes down with it. err is remembered for /status and STATUS=.
func (h *Health) Disconnected(tunnel string, err error) {
	t := h.tunnel(tunnel)
	if t == nil {
		return
	}
	h.down(t, StateRetrying, err)
}

// Stopped records that the tunnel gave up for good (a permanent error such
// as a changed host key, or a key file it could not use at start); it stays
// down, with rtunnel_tunnel_stopped 1, until a reload or restart tries it
// again.
func (h *Health) Stopped(tunnel string, err error) {
	t := h.tunnel(tunnel)
	if t == nil {
		return
	}
	t.backoff.Set(0)
	t.stopped.Set(1)
	h.down(t, StateStopped, err)
}

func (h *Health) down(t *tunnelEntry, state string, err error) {
	t.markDown()
	t.nextRetry.Set(0)
	t.mu.Lock()
	now := h.now()
	t.setState(state, now)
	t.nextRetryAt = time.Time{}
	if err != nil {
		t.lastErr, t.lastErrAt = err.Error(), now
	}
	t.mu.Unlock()
	h.changed()
}

// Retrying records that the reconnect loop will try again after wait.
func (h *Health) Retrying(tunnel string, attempt int, wait time.Duration, err error) {
	t := h.tunnel(tunnel)
	if t == nil {
		return
	}
	now := h.now()
	at := now.Add(wait)
	t.reconnects.Inc()
	t.backoff.Set(wait.Seconds())
	t.nextRetry.Set(float64(at.UnixNano()) / 1e9)
	t.mu.Lock()
	if t.state == StateUp {
		t.markDown() // Disconnected was not reported
	}
	t.setState(StateRetrying, now)
	t.nextRetryAt = at
	t.attempt = attempt
	if err != nil {
		t.lastErr, t.lastErrAt = err.Error(), now
	}
	t.mu.Unlock()
	h.changed()
}

// ForwardUp records that the server accepted the remote forward.
func (h *Health) ForwardUp(tunnel, forward string) {
	if f := h.forward(tunnel, forward); f != nil {
		f.up.Store(true)
		f.upGauge.Set(1)
		h.changed()
	}
}

// ForwardDown records that the remote forward is no longer listening.
func (h *Health) ForwardDown(tunnel, forward string) {
	if f := h.forward(tunnel, forward); f != nil {
		f.up.Store(false)
		f.upGauge.Set(0)
		h.changed()
	}
}

// ForwardAllocated records the port the server bound for a port-0 forward
// (rtunnel_forward_allocated_port); 0 when the forward went down.
func (h *Health) ForwardAllocated(tunnel, forward string, port int) {
	if f := h.forward(tunnel, forward); f != nil {
		f.allocated.Store(int64(port))
		f.allocGauge.Set(float64(port))
	}
}

// ForwardRefused counts a remote forward request the server refused.
func (h *Health) ForwardRefused(tunnel, forward string) {
	if f := h.forward(tunnel, forward); f != nil {
		f.refused.Add(1)
		f.refusedCounter.Inc()
	}
}

// KeepaliveRTT observes the round-trip time of an answered keepalive.
func (h *Health) KeepaliveRTT(tunnel string, d time.Duration) {
	if t := h.tunnel(tunnel); t != nil {
		t.keepaliveRTT.Observe(d.Seconds())
	}
}

// KeepaliveMissed counts a keepalive that got no reply in time.
func (h *Health) KeepaliveMissed(tunnel string) {
	if t := h.tunnel(tunnel); t != nil {
		t.keepaliveMissed.Inc()
	}
}

// ConnOpened counts a forwarded connection that is now open.
func (h *Health) ConnOpened(tunnel, forward string) {
	if f := h.forward(tunnel, forward); f != nil {
		f.active.Add(1)
		f.connsCounter.Inc()
		f.activeGauge.Inc()
	}
}

// ConnClosed records that a connection counted by ConnOpened has ended.
func (h *Health) ConnClosed(tunnel, forward string) {
	if f := h.forward(tunnel, forward); f != nil {
		f.active.Add(-1)
		f.activeGauge.Dec()
	}
}

// ConnRejected counts a forwarded connection refused locally. Reasons other
// than max_connections, local_dial, target_refused (the server could not open a
// local forward's target) and unknown_forward count as "other". A
// forward that was never declared (the server opened a channel for an address
// we did not ask for) is labelled forward="unknown", never with the address.
func (h *Health) ConnRejected(tunnel, forward, reason string) {
	if f := h.forward(tunnel, forward); f != nil {
		c, ok := f.rejected[reason]
		if !ok {
			c = f.rejected[labelOther]
		}
		c.Inc()
		return
	}
	if h.tunnel(tunnel) == nil {
		return
	}
	if !slices.Contains(rejectReasons, reason) {
		reason = labelOther
	}
	h.m.connsRejected.WithLabelValues(tunnel, labelUnknownForward, reason).Inc()
}

// Bytes counts n bytes copied through a forward; direction is "in" (from the
// remote side toward the local service) or "out". It is called per chunk, so
// it is a map lookup and two atomic adds with no allocation. Other directions
// are dropped.
func (h *Health) Bytes(tunnel, forward, direction string, n int) {
	if n <= 0 {
		return
	}
	f := h.forward(tunnel, forward)
	if f == nil {
		return
	}
	switch direction {
	case "in":
		f.bytesIn.Add(int64(n))
		f.bytesInCounter.Add(float64(n))
	case "out":
		f.bytesOut.Add(int64(n))
		f.bytesOutCounter.Add(float64(n))
	}
}

// markDown zeroes the tunnel's and its forwards' up gauges.
func (t *tunnelEntry) markDown() {
	t.up.Set(0)
	t.connectedSince.Set(0)
	for _, f := range t.forwards.Load().list {
		f.up.Store(false)
		f.upGauge.Set(0)
		f.allocated.Store(0)
		f.allocGauge.Set(0)
	}
}
