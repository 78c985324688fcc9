package health

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
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
	tunnelUp        *prometheus.GaugeVec
	hubInUse        *prometheus.GaugeVec
	connectedSince  *prometheus.GaugeVec
	connectAttempts *prometheus.CounterVec
	reconnects      *prometheus.CounterVec
	backoff         *prometheus.GaugeVec
	nextRetry       *prometheus.GaugeVec
	keepaliveRTT    *prometheus.HistogramVec
	keepaliveMissed *prometheus.CounterVec

	forwardUp        *prometheus.GaugeVec
	forwardAllocated *prometheus.GaugeVec
	forwardRefused   *prometheus.CounterVec
	connsTotal       *prometheus.CounterVec
	connsActive      *prometheus.GaugeVec
	connsRejected    *prometheus.CounterVec
	bytes            *prometheus.CounterVec

	tunnelStopped *prometheus.GaugeVec

	reloadSuccessful  prometheus.Gauge
	reloadSuccessTime prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, version string) *metrics {
	f := promauto.With(reg)
	t := []string{"tunnel"}
	tf := []string{"tunnel", "forward"}

	f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rtunnel_build_info",
		Help: "Always 1; labels carry the rtunnel version and the Go version it was built with.",
	}, []string{"version", "goversion"}).WithLabelValues(version, runtime.Version()).Set(1)

	return &metrics{
		hubInUse: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rtunnel_hub_in_use",
			Help: "1 for the hub a tunnel with a list of hubs (failover) holds its session on, 0 for the others.",
		}, []string{"tunnel", "hub"}),
		tunnelUp: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rtunnel_tunnel_up",
			Help: "1 while the tunnel's SSH session is established, else 0.",
		}, t),
		connectedSince: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rtunnel_connected_since_seconds",
			Help: "Unix time the current SSH session was established; 0 while down.",
		}, t),
		connectAttempts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "rtunnel_connect_attempts_total",
			Help: "Connection attempts by outcome (ok, dial, handshake, hostkey, auth, forward_refused, timeout, closed, other).",
		}, []string{"tunnel", "result"}),
		reconnects: f.NewCounterVec(prometheus.CounterOpts{
			Name: "rtunnel_reconnects_total",
			Help: "Times the reconnect loop scheduled another attempt after a failure or disconnect.",
		}, t),
		backoff: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rtunnel_backoff_seconds",
			Help: "Wait before the next reconnect attempt, as last scheduled; 0 once connected.",
		}, t),
		nextRetry: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rtunnel_next_retry_timestamp_seconds",
			Help: "Unix time of the next scheduled reconnect attempt; 0 when none is pending.",
		}, t),
		keepaliveRTT: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rtunnel_keepalive_rtt_seconds",
			Help:    "Round-trip time of answered SSH keepalive requests.",
			Buckets: keepaliveBuckets,
		}, t),
		keepaliveMissed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "rtunnel_keepalive_missed_total",
			Help: "SSH keepalive requests that got no reply in time.",
		}, t),

		forwardUp: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rtunnel_forward_up",
			Help: "1 while the server accepted the remote forward, else 0.",
		}, tf),
		forwardAllocated: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rtunnel_forward_allocated_port",
			Help: "The port the server bound for a forward that asked for port 0 (remote: host:0) while it is up, else 0.",
		}, tf),
		forwardRefused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "rtunnel_forward_refused_total",
			Help: "Remote forward requests the server refused (port held by a stale session, or permitlisten mismatch).",
		}, tf),
		connsTotal: f.NewCounterVec(prometheus.CounterOpts{
			Name: "rtunnel_connections_total",
			Help: "Connections forwarded through the tunnel.",
		}, tf),
		connsActive: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rtunnel_connections_active",
			Help: "Connections currently open through the forward.",
		}, tf),
		connsRejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "rtunnel_connections_rejected_total",
			Help: "Forwarded connections refused locally, by reason (max_connections, local_dial, target_refused, unknown_forward, other).",
		}, []string{"tunnel", "forward", "reason"}),
		bytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "rtunnel_bytes_total",
			Help: "Bytes copied through the forward; direction in is from the remote side toward the local service, out is back.",
		}, []string{"tunnel", "forward", "direction"}),

		tunnelStopped: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rtunnel_tunnel_stopped",
			Help: "1 while the tunnel is stopped for good (a problem with its key, known_hosts or host key that needs an operator; a reload or restart retries it), else 0.",
		}, t),

		reloadSuccessful: f.NewGauge(prometheus.GaugeOpts{
			Name: "rtunnel_config_last_reload_successful",
			Help: "1 if the last config load (start or SIGHUP) was applied, 0 if it was refused and the previous config stays in force.",
		}),
		reloadSuccessTime: f.NewGauge(prometheus.GaugeOpts{
			Name: "rtunnel_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last config load (start or SIGHUP) that was applied.",
		}),
	}
}

// Health collects tunnel metrics and state. The zero value is not usable;
// create one with New. All methods are safe for concurrent use.
type Health struct {
	reg *prometheus.Registry
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
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

	sel := prometheus.Labels{"tunnel": name}
	m := h.m
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.tunnelUp, m.hubInUse, m.connectedSince, m.connectAttempts, m.reconnects, m.backoff,
		m.nextRetry, m.keepaliveRTT, m.keepaliveMissed, m.forwardUp, m.forwardAllocated, m.forwardRefused,
		m.connsTotal, m.connsActive, m.connsRejected, m.bytes, m.tunnelStopped,
	} {
		v.DeletePartialMatch(sel)
	}
	h.changed()
}

func (h *Health) deleteForwardSeries(tunnel, forward string) {
	sel := prometheus.Labels{"tunnel": tunnel, "forward": forward}
	m := h.m
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
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

	up, connectedSince, backoff, nextRetry prometheus.Gauge
	stopped                                prometheus.Gauge
	reconnects, keepaliveMissed            prometheus.Counter
	keepaliveRTT                           prometheus.Observer
	attempts                               map[string]prometheus.Counter // by result; read-only after creation

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
		attempts:        make(map[string]prometheus.Counter, len(connectResults)),
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

	upGauge, activeGauge, allocGauge   prometheus.Gauge
	refusedCounter, connsCounter       prometheus.Counter
	bytesInCounter, bytesOutCounter    prometheus.Counter
	rejected                           map[string]prometheus.Counter // by reason; read-only after creation
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
		rejected:        make(map[string]prometheus.Counter, len(rejectReasons)),
	}
	for _, r := range rejectReasons {
		f.rejected[r] = m.connsRejected.WithLabelValues(tunnel, name, r)
	}
	return f
}
