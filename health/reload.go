package health

import (
	"sync"
	"time"
)

// ReloadStatus is the outcome of the last config load, for /status and
// `rtunnel status`: after a refused reload the previous config stays in
// force, and this says that the file on disk was refused and why.
type ReloadStatus struct {
	// At is when the last load (start or SIGHUP) finished.
	At time.Time `json:"at"`
	// OK is false when the last load was refused.
	OK bool `json:"ok"`
	// Error is why it was refused; empty when OK.
	Error string `json:"error,omitempty"`
	// LastSuccess is when a load was last applied.
	LastSuccess time.Time `json:"last_success"`
}

type reloadState struct {
	mu   sync.Mutex
	last ReloadStatus
}

// ReloadResult records the outcome of a config load: nil when the config
// was applied, or why it was refused. Call it for the load at start too
// (as Prometheus and blackbox_exporter do), so that
// rtunnel_config_last_reload_successful is 1 and its timestamp set from the
// start on.
func (h *Health) ReloadResult(err error) {
	now := h.now()
	h.reload.mu.Lock()
	defer h.reload.mu.Unlock()
	r := &h.reload.last
	r.At = now
	r.OK = err == nil
	r.Error = ""
	if err != nil {
		r.Error = err.Error()
		h.m.reloadSuccessful.Set(0)
		return
	}
	r.LastSuccess = now
	h.m.reloadSuccessful.Set(1)
	h.m.reloadSuccessTime.Set(float64(now.UnixNano()) / 1e9)
}

// LastReload returns the outcome recorded by the last ReloadResult; the
// zero value before the first.
func (h *Health) LastReload() ReloadStatus {
	h.reload.mu.Lock()
	defer h.reload.mu.Unlock()
	r := h.reload.last
	r.At, r.LastSuccess = r.At.Round(0), r.LastSuccess.Round(0)
	return r
}
