package health

// Changes delivers a signal after a tunnel's state changed (declared,
// removed, connecting, up, down, stopped, a forward up or down), so that
// the caller can refresh systemd's STATUS= when something happened instead
// of polling on a clock. Signals coalesce: one pending signal stands for
// any number of changes, and the receiver reads the state itself.
func (h *Health) Changes() <-chan struct{} { return h.changes }

// changed signals Changes without blocking: a signal already pending
// covers this change too.
func (h *Health) changed() {
	select {
	case h.changes <- struct{}{}:
	default:
	}
}
