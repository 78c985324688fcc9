package health

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Connect results and rejection reasons the tunnel package reports. Any other
// value is counted as "other" so a careless caller cannot blow up cardinality.
var (
	connectResults = []string{"ok", "dial", "handshake", "hostkey", "auth", "forward_refused", "timeout", "closed", "busy", labelOther}
	rejectReasons  = []string{"max_connections", "local_dial", "target_refused", "unknown_forward", labelOther}
)

const (
	labelOther = "other"
	// labelUnknownForward stands in for a forward that was never declared, so a
	// server-chosen address never becomes a label value.
	labelUnknownForward = "unknown"
)

// keepaliveBuckets spans loopback (sub-millisecond) to a congested uplink.
var keepaliveBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// metrics holds every rtunnel_* vector registered on the Health registry.
type metrics struct {
	tunnelUp        *family[gauge]
	hubInUse        *family[gauge]
	connectedSince  *family[gauge]
	connectAttempts *family[counter]
	reconnects      *family[counter]
	backoff         *family[gauge]
	nextRetry       *family[gauge]
	keepaliveRTT    *family[histogram]
	keepaliveMissed *family[counter]

	forwardUp        *family[gauge]
	forwardAllocated *family[gauge]
	forwardRefused   *family[counter]
	connsTotal       *family[counter]
	connsActive      *family[gauge]
	connsRejected    *family[counter]
	bytes            *family[counter]

	tunnelStopped *family[gauge]

	reloadSuccessful  *gauge
	reloadSuccessTime *gauge
}

func newMetrics(reg *registry, version string) *metrics {
	t := []string{"tunnel"}
	tf := []string{"tunnel", "forward"}

	register(reg, newGaugeFamily("rtunnel_build_info",
		"Always 1; labels carry the rtunnel version and the Go version it was built with.",
		"version", "goversion")).WithLabelValues(version, runtime.Version()).Set(1)

	return &metrics{
		hubInUse: register(reg, newGaugeFamily("rtunnel_hub_in_use",
			"1 for the hub a tunnel with a list of hubs (failover) holds its session on, 0 for the others.",
			"tunnel", "hub")),
		tunnelUp: register(reg, newGaugeFamily("rtunnel_tunnel_up",
			"1 while the tunnel's SSH session is established, else 0.",
			t...)),
		connectedSince: register(reg, newGaugeFamily("rtunnel_connected_since_seconds",
			"Unix time the current SSH session was established; 0 while down.",
			t...)),
		connectAttempts: register(reg, newCounterFamily("rtunnel_connect_attempts_total",
			"Connection attempts by outcome (ok, dial, handshake, hostkey, auth, forward_refused, timeout, closed, other).",
			"tunnel", "result")),
		reconnects: register(reg, newCounterFamily("rtunnel_reconnects_total",
			"Times the reconnect loop scheduled another attempt after a failure or disconnect.",
			t...)),
		backoff: register(reg, newGaugeFamily("rtunnel_backoff_seconds",
			"Wait before the next reconnect attempt, as last scheduled; 0 once connected.",
			t...)),
		nextRetry: register(reg, newGaugeFamily("rtunnel_next_retry_timestamp_seconds",
			"Unix time of the next scheduled reconnect attempt; 0 when none is pending.",
			t...)),
		keepaliveRTT: register(reg, newHistogramFamily("rtunnel_keepalive_rtt_seconds",
			"Round-trip time of answered SSH keepalive requests.",
			keepaliveBuckets, t...)),
		keepaliveMissed: register(reg, newCounterFamily("rtunnel_keepalive_missed_total",
			"SSH keepalive requests that got no reply in time.",
			t...)),

		forwardUp: register(reg, newGaugeFamily("rtunnel_forward_up",
			"1 while the server accepted the remote forward, else 0.",
			tf...)),
		forwardAllocated: register(reg, newGaugeFamily("rtunnel_forward_allocated_port",
			"The port the server bound for a forward that asked for port 0 (remote: host:0) while it is up, else 0.",
			tf...)),
		forwardRefused: register(reg, newCounterFamily("rtunnel_forward_refused_total",
			"Remote forward requests the server refused (port held by a stale session, or permitlisten mismatch).",
			tf...)),
		connsTotal: register(reg, newCounterFamily("rtunnel_connections_total",
			"Connections forwarded through the tunnel.",
			tf...)),
		connsActive: register(reg, newGaugeFamily("rtunnel_connections_active",
			"Connections currently open through the forward.",
			tf...)),
		connsRejected: register(reg, newCounterFamily("rtunnel_connections_rejected_total",
			"Forwarded connections refused locally, by reason (max_connections, local_dial, target_refused, unknown_forward, other).",
			"tunnel", "forward", "reason")),
		bytes: register(reg, newCounterFamily("rtunnel_bytes_total",
			"Bytes copied through the forward; direction in is from the remote side toward the local service, out is back.",
			"tunnel", "forward", "direction")),

		tunnelStopped: register(reg, newGaugeFamily("rtunnel_tunnel_stopped",
			"1 while the tunnel is stopped for good (a problem with its key, known_hosts or host key that needs an operator; a reload or restart retries it), else 0.",
			t...)),

		reloadSuccessful: register(reg, newGaugeFamily("rtunnel_config_last_reload_successful",
			"1 if the last config load (start or SIGHUP) was applied, 0 if it was refused and the previous config stays in force.",
		)).WithLabelValues(),
		reloadSuccessTime: register(reg, newGaugeFamily("rtunnel_config_last_reload_success_timestamp_seconds",
			"Unix time of the last config load (start or SIGHUP) that was applied.",
		)).WithLabelValues(),
	}
}

// register adds f to reg and returns it.
func register[M any](reg *registry, f *family[M]) *family[M] {
	reg.add(f)
	return f
}

// Health collects tunnel metrics and state. The zero value is not usable;
// create one with New. All methods are safe for concurrent use.
type Health struct {
	reg *registry
	m   *metrics
	now func() time.Time // injected in tests

	mu  sync.Mutex            // serialises AddTunnel and RemoveTunnel
	idx atomic.Pointer[index] // read lock-free on the data path

	changes chan struct{} // see Changes
	reload  reloadState
}

// index is an immutable lookup table, replaced whole by AddTunnel and
// RemoveTunnel so observer calls need neither a lock nor an allocation.
type index struct {
	order    []*tunnelEntry
	tunnels  map[string]*tunnelEntry
	forwards map[forwardKey]*forwardEntry
}

type forwardKey struct{ tunnel, forward string }

// New returns a Health with its own registry holding the Go and process
// collectors and rtunnel_build_info{version,goversion} = 1.
func New(version string) *Health {
	reg := &registry{}
	reg.add(runtimeSeries()...)
	h := &Health{reg: reg, m: newMetrics(reg, version), now: time.Now, changes: make(chan struct{}, 1)}
	h.idx.Store(&index{
		tunnels:  map[string]*tunnelEntry{},
		forwards: map[forwardKey]*forwardEntry{},
	})
	return h
}

// AddTunnel declares a tunnel and its forwards (labels such as
// "localhost:2220->localhost:22") so their series exist at 0 before the first
// connect. Observer calls for tunnels or forwards not declared here are
// dropped. Declaring an existing tunnel again keeps its state and counters,
// adds new forwards and deletes the series of forwards no longer listed.
func (h *Health) AddTunnel(name string, forwards []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.idx.Load()
	next := cur.clone()

	t := cur.tunnels[name]
	if t == nil {
		t = h.newTunnelEntry(name)
		next.order = append(next.order, t)
		next.tunnels[name] = t
	}

	var fwds []*forwardEntry
	for _, fw := range forwards {
		if slices.ContainsFunc(fwds, func(f *forwardEntry) bool { return f.name == fw }) {
			continue // listed twice
		}
		k := forwardKey{name, fw}
		f := cur.forwards[k]
		if f == nil {
			f = h.newForwardEntry(name, fw)
		}
		next.forwards[k] = f
		fwds = append(fwds, f)
	}
	for _, old := range t.forwards.Load().list {
		if !slices.Contains(fwds, old) {
			delete(next.forwards, forwardKey{name, old.name})
			h.deleteForwardSeries(name, old.name)
		}
	}
	t.forwards.Store(&forwardList{list: fwds})
	h.idx.Store(next)
	h.changed()
}

// RemoveTunnel forgets a tunnel and deletes all its series, for a config
// reload that dropped it. Later observer calls for it are dropped.
func (h *Health) RemoveTunnel(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.idx.Load()
	t := cur.tunnels[name]
	if t == nil {
		return
	}
	next := cur.clone()
	delete(next.tunnels, name)
	next.order = slices.DeleteFunc(next.order, func(e *tunnelEntry) bool { return e == t })
	for _, f := range t.forwards.Load().list {
		delete(next.forwards, forwardKey{name, f.name})
	}
	h.idx.Store(next)

	sel := map[string]string{"tunnel": name}
	m := h.m
	for _, v := range []interface{ DeletePartialMatch(map[string]string) int }{
		m.tunnelUp, m.hubInUse, m.connectedSince, m.connectAttempts, m.reconnects, m.backoff,
		m.nextRetry, m.keepaliveRTT, m.keepaliveMissed, m.forwardUp, m.forwardAllocated, m.forwardRefused,
		m.connsTotal, m.connsActive, m.connsRejected, m.bytes, m.tunnelStopped,
	} {
		v.DeletePartialMatch(sel)
	}
	h.changed()
}

func (h *Health) deleteForwardSeries(tunnel, forward string) {
	sel := map[string]string{"tunnel": tunnel, "forward": forward}
	m := h.m
	for _, v := range []interface{ DeletePartialMatch(map[string]string) int }{
		m.forwardUp, m.forwardAllocated, m.forwardRefused, m.connsTotal, m.connsActive, m.connsRejected, m.bytes,
	} {
		v.DeletePartialMatch(sel)
	}
}

func (x *index) clone() *index {
	n := &index{
		order:    slices.Clone(x.order),
		tunnels:  make(map[string]*tunnelEntry, len(x.tunnels)+1),
		forwards: make(map[forwardKey]*forwardEntry, len(x.forwards)+4),
	}
	for k, v := range x.tunnels {
		n.tunnels[k] = v
	}
	for k, v := range x.forwards {
		n.forwards[k] = v
	}
	return n
}

// tunnel and forward look up declared entries; nil when undeclared.
func (h *Health) tunnel(name string) *tunnelEntry { return h.idx.Load().tunnels[name] }

func (h *Health) forward(tunnel, forward string) *forwardEntry {
	return h.idx.Load().forwards[forwardKey{tunnel, forward}]
}

// tunnelEntry caches a tunnel's series and holds its state.
type tunnelEntry struct {
	name string

	up, connectedSince, backoff, nextRetry *gauge
	stopped                                *gauge
	reconnects, keepaliveMissed            *counter
	keepaliveRTT                           *histogram
	attempts                               map[string]*counter // by result; read-only after creation

	forwards atomic.Pointer[forwardList]

	mu          sync.Mutex
	state       string
	since       time.Time
	lastErr     string
	lastErrAt   time.Time
	nextRetryAt time.Time
	attempt     int
	hub         string // the hub in use (failover); empty for one server
}

type forwardList struct{ list []*forwardEntry }

func (h *Health) newTunnelEntry(name string) *tunnelEntry {
	m := h.m
	t := &tunnelEntry{
		name:            name,
		up:              m.tunnelUp.WithLabelValues(name),
		connectedSince:  m.connectedSince.WithLabelValues(name),
		backoff:         m.backoff.WithLabelValues(name),
		nextRetry:       m.nextRetry.WithLabelValues(name),
		stopped:         m.tunnelStopped.WithLabelValues(name),
		reconnects:      m.reconnects.WithLabelValues(name),
		keepaliveMissed: m.keepaliveMissed.WithLabelValues(name),
		keepaliveRTT:    m.keepaliveRTT.WithLabelValues(name),
		attempts:        make(map[string]*counter, len(connectResults)),
		state:           StateConnecting,
		since:           h.now(),
	}
	for _, r := range connectResults {
		t.attempts[r] = m.connectAttempts.WithLabelValues(name, r)
	}
	t.forwards.Store(&forwardList{})
	return t
}

// forwardEntry caches a forward's series so the data path is one atomic add,
// and mirrors the counts /status reports (a Counter cannot be read back).
type forwardEntry struct {
	name string

	upGauge, activeGauge, allocGauge   *gauge
	refusedCounter, connsCounter       *counter
	bytesInCounter, bytesOutCounter    *counter
	rejected                           map[string]*counter // by reason; read-only after creation
	up                                 atomic.Bool
	refused, active, bytesIn, bytesOut atomic.Int64
	allocated                          atomic.Int64 // the port-0 forward's port, 0 when none
}

func (h *Health) newForwardEntry(tunnel, name string) *forwardEntry {
	m := h.m
	f := &forwardEntry{
		name:            name,
		upGauge:         m.forwardUp.WithLabelValues(tunnel, name),
		activeGauge:     m.connsActive.WithLabelValues(tunnel, name),
		allocGauge:      m.forwardAllocated.WithLabelValues(tunnel, name),
		refusedCounter:  m.forwardRefused.WithLabelValues(tunnel, name),
		connsCounter:    m.connsTotal.WithLabelValues(tunnel, name),
		bytesInCounter:  m.bytes.WithLabelValues(tunnel, name, "in"),
		bytesOutCounter: m.bytes.WithLabelValues(tunnel, name, "out"),
		rejected:        make(map[string]*counter, len(rejectReasons)),
	}
	for _, r := range rejectReasons {
		f.rejected[r] = m.connsRejected.WithLabelValues(tunnel, name, r)
	}
	return f
}
