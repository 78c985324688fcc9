package health

import "time"

// Report is the daemon's state as `rtunnel status` shows it. The public
// HTTP /status fills only Tunnels, and those with public fields only; the
// control socket fills every field.
type Report struct {
	// Detailed is true on the control socket: error texts are included.
	Detailed   bool           `json:"detailed"`
	Version    string         `json:"version,omitempty"`
	PID        int            `json:"pid,omitempty"`
	Config     string         `json:"config,omitempty"` // the file the running config came from
	Started    time.Time      `json:"started,omitzero"`
	LastReload *ReloadStatus  `json:"last_reload,omitempty"`
	Tunnels    []TunnelStatus `json:"tunnels"`
}

// PublicReport is the state any local user may read: names, states, times
// and counters, as the metrics already show them. Fields are copied one by
// one so that a field added to TunnelStatus later stays private until it is
// added here on purpose.
func (h *Health) PublicReport() Report {
	snap := h.Snapshot()
	out := make([]TunnelStatus, len(snap))
	for i, t := range snap {
		out[i] = TunnelStatus{
			Name:      t.Name,
			State:     t.State,
			Since:     t.Since,
			NextRetry: t.NextRetry,
			Attempt:   t.Attempt,
			Hub:       t.Hub, // as public as rtunnel_hub_in_use
			Forwards:  t.Forwards,
		}
	}
	return Report{Tunnels: out}
}

// ControlInfo is what the control socket reports about the process itself.
type ControlInfo struct {
	Version string
	PID     int
	Config  string
	Started time.Time
}

// DetailedReport is the full state, for the control socket.
func (h *Health) DetailedReport(info ControlInfo) Report {
	r := Report{
		Detailed: true,
		Version:  info.Version,
		PID:      info.PID,
		Config:   info.Config,
		Started:  info.Started,
		Tunnels:  h.Snapshot(),
	}
	if last := h.LastReload(); !last.At.IsZero() {
		r.LastReload = &last
	}
	return r
}
