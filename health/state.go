package health

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Tunnel states reported by Snapshot.
const (
	StateConnecting = "connecting" // declared, or dialling the server
	StateUp         = "up"         // SSH session established
	StateRetrying   = "retrying"   // down; the reconnect loop will try again
	StateStopped    = "stopped"    // down for good after a permanent error
)

// TunnelStatus is one tunnel's state as served on /status.
type TunnelStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Since is when the tunnel last came up, went down, or stopped (or was
	// declared); alternating between connecting and retrying does not move it.
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened; a tunnel that is up and
	// came up after it has recovered since.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// NextRetry is when the next attempt is due; zero when none is pending.
	NextRetry time.Time `json:"next_retry,omitzero"`
	// Attempt is the reconnect loop's attempt number since the last success.
	Attempt int `json:"attempt,omitempty"`
	// Hub is the hub the session is (or was last) held on, for a tunnel
	// with a list of hubs in failover mode.
	Hub      string          `json:"hub,omitempty"`
	Forwards []ForwardStatus `json:"forwards"`
}

// ForwardStatus is one forward's state and counters as served on /status.
type ForwardStatus struct {
	Name     string `json:"name"`
	Up       bool   `json:"up"`
	Refused  int64  `json:"refused"`
	Active   int    `json:"active"`
	BytesIn  int64  `json:"bytes_in"`
	BytesOut int64  `json:"bytes_out"`
	// AllocatedPort is the port the server picked for a port-0 forward
	// while it is up.
	AllocatedPort int `json:"allocated_port,omitempty"`
}

// setState moves the tunnel to state s; Since changes only when the tunnel
// comes up, goes down or stops. The caller holds t.mu.
func (t *tunnelEntry) setState(s string, now time.Time) {
	if (s == StateUp) != (t.state == StateUp) || (s == StateStopped && t.state != StateStopped) {
		t.since = now
	}
	t.state = s
}

// Snapshot returns every declared tunnel in the order AddTunnel first saw
// them, with their forwards in declaration order.
func (h *Health) Snapshot() []TunnelStatus {
	idx := h.idx.Load()
	out := make([]TunnelStatus, 0, len(idx.order))
	for _, t := range idx.order {
		t.mu.Lock()
		ts := TunnelStatus{
			Name:        t.name,
			State:       t.state,
			Since:       t.since.Round(0),
			LastError:   t.lastErr,
			LastErrorAt: t.lastErrAt.Round(0),
			NextRetry:   t.nextRetryAt.Round(0),
			Attempt:     t.attempt,
			Hub:         t.hub,
		}
		t.mu.Unlock()
		fl := t.forwards.Load().list
		ts.Forwards = make([]ForwardStatus, 0, len(fl))
		for _, f := range fl {
			ts.Forwards = append(ts.Forwards, ForwardStatus{
				Name:     f.name,
				Up:       f.up.Load(),
				Refused:  f.refused.Load(),
				Active:   int(f.active.Load()),
				BytesIn:  f.bytesIn.Load(),
				BytesOut: f.bytesOut.Load(),

				AllocatedPort: int(f.allocated.Load()),
			})
		}
		out = append(out, ts)
	}
	return out
}

// Ready reports whether every declared tunnel is up with all its forwards.
// notReady has one line per tunnel that is not up, or, for a tunnel that is
// up, per forward that is not.
func (h *Health) Ready() (ok bool, notReady []string) {
	for _, t := range h.Snapshot() {
		if t.State != StateUp {
			// No error text: /readyz is public (see Handler).
			notReady = append(notReady, t.Name+": "+t.State)
			continue
		}
		for _, f := range t.Forwards {
			if !f.Up {
				notReady = append(notReady, t.Name+": forward "+f.Name+" down")
			}
		}
	}
	return len(notReady) == 0, notReady
}

// Bounds of StatusLine: systemd ignores a notify datagram of 4096 bytes or
// more, so the line names only the first few tunnels that need attention,
// each cut to a bounded length, and counts the rest.
const (
	statusMaxDetails = 5
	statusMaxName    = 64
	statusMaxErr     = 160
)

// StatusLine summarises the tunnels for systemd's STATUS=, e.g.
// "2/2 tunnels up" or
// "1/2 tunnels up; hub: down (dial tcp 10.0.0.1:22: connection refused), retry at 13:02:05".
// It names at most statusMaxDetails tunnels or forwards that are not up and
// ends with "and N more" when there are others, so it stays short however
// many tunnels are down. The retry time is absolute because the line is
// sent when something changes, not on a clock.
func (h *Health) StatusLine() string {
	snap := h.Snapshot()
	up := 0
	var details []string
	more := 0
	add := func(d string) {
		if len(details) < statusMaxDetails {
			details = append(details, d)
		} else {
			more++
		}
	}
	for _, t := range snap {
		name := clip(t.Name, statusMaxName)
		switch t.State {
		case StateUp:
			up++
			for _, f := range t.Forwards {
				if !f.Up {
					add(name + ": forward " + clip(f.Name, statusMaxName) + " down")
				}
			}
		case StateStopped:
			add(name + ": stopped" + errSuffix(t.LastError))
		case StateRetrying:
			d := name + ": down" + errSuffix(t.LastError)
			if !t.NextRetry.IsZero() {
				d += ", retry at " + t.NextRetry.Format(time.TimeOnly)
			}
			add(d)
		default:
			if t.LastError == "" {
				add(name + ": connecting")
			} else {
				add(name + ": down" + errSuffix(t.LastError) + ", connecting")
			}
		}
	}
	line := fmt.Sprintf("%d/%d tunnels up", up, len(snap))
	if len(details) > 0 {
		line += "; " + strings.Join(details, "; ")
	}
	if more > 0 {
		line += fmt.Sprintf("; and %d more", more)
	}
	return line
}

func errSuffix(err string) string {
	if err == "" {
		return ""
	}
	return " (" + clip(oneLine(err), statusMaxErr) + ")"
}

// clip cuts s to at most max bytes, on a rune boundary, marking the cut.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "..."
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// oneLine keeps multi-line errors from breaking line-oriented output
// (/readyz, and STATUS= in a newline-separated notify datagram).
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
