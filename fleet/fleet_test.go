package fleet

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	flagN      = flag.Int("n", 100, "fleet: number of remotes (one client process each)")
	flagClient = flag.String("client", "", "fleet: rtunnel or autossh (default: $RTUNNEL_FLEET_CLIENT, else rtunnel)")
	flagIdle   = flag.Duration("idle", 60*time.Second, "fleet: length of each idle window (steady, and right after the start) over which wakeups and CPU are counted")
	flagOutage = flag.Duration("outage", 10*time.Second, "fleet: how long the hub stays down in the reboot phase")
	flagSilent = flag.Bool("silent", false, "fleet: the reboot sends the clients nothing (a power cut): sshd's port is blackholed while it is killed and down")
	flagOut    = flag.String("out", "../bench/results", "fleet: directory for the JSON result")
)

// TestFleet is `make fleet`: the full measurement at -n with -client, a
// table on stdout and a JSON file under bench/results/.
func TestFleet(t *testing.T) {
	if os.Getenv("RTUNNEL_FLEET") != "1" {
		t.Skip("the fleet measurement runs with `make fleet` (RTUNNEL_FLEET=1)")
	}
	kind := clientKind(*flagClient)
	if kind == "" {
		kind = clientKind(os.Getenv("RTUNNEL_FLEET_CLIENT"))
	}
	if kind == "" {
		kind = kindRtunnel
	}
	if kind != kindRtunnel && kind != kindAutossh {
		t.Fatalf("-client %q: use rtunnel or autossh", kind)
	}
	raiseFileLimit(t)
	res := runFleet(t, fleetOptions{n: *flagN, kind: kind, idle: *flagIdle, steadyIdle: true, outage: *flagOutage, silent: *flagSilent,
		upTimeout: 10 * time.Minute, oneProcess: kind == kindRtunnel})
	table := res.table()
	t.Logf("fleet result:\n%s", table)
	os.Stdout.WriteString(table)
	path := res.write(t, *flagOut)
	t.Logf("written to %s", path)
}

// TestFleetSmoke runs the same phases at N=20 in `make test`, so the
// harness cannot rot. It asserts only what must hold at any N: every
// forward came up after the start and after the reboot, and the hub forked
// no child for nothing. Its idle windows both start at once (it checks
// that /proc is read, not what it says), which saves two keepalive
// intervals of waiting.
func TestFleetSmoke(t *testing.T) {
	raiseFileLimit(t)
	const n = 20
	res := runFleet(t, fleetOptions{n: n, kind: kindRtunnel, idle: 2 * time.Second, outage: 2 * time.Second,
		upTimeout: 90 * time.Second, oneProcess: true})
	t.Logf("fleet smoke:\n%s", res.table())
	for _, p := range []struct {
		name string
		ph   *phase
	}{{"cold start", &res.Cold}, {"reboot", &res.Reboot}, {"one process", &res.OneProcess.Cold}} {
		if p.ph.Ramp.Up != n {
			t.Errorf("%s: %d of %d forwards passed a round trip", p.name, p.ph.Ramp.Up, n)
		}
		if p.ph.Hub.Wasted != 0 {
			t.Errorf("%s: sshd forked %d children that never became a session (%+v)", p.name, p.ph.Hub.Wasted, p.ph.Hub)
		}
	}
	for _, c := range []idleCost{res.Idle, res.IdleAfterStart} {
		if c.Procs != n || c.PSSMiB <= 0 || c.Threads < 1 {
			t.Errorf("idle cost measured %d processes, PSS %.2f MiB, %.1f threads: /proc was not read", c.Procs, c.PSSMiB, c.Threads)
		}
	}
}

type fleetOptions struct {
	n          int
	kind       clientKind
	idle       time.Duration
	steadyIdle bool // start the steady idle window a keepalive interval after the last forward came up
	outage     time.Duration
	silent     bool // the reboot is a power cut: the clients hear nothing of it
	upTimeout  time.Duration
	oneProcess bool // also N tunnels in one rtunnel process
}

// runFleet runs the phases: cold start, idle, hub reboot, then (rtunnel)
// the same N tunnels in one process.
func runFleet(t *testing.T, o fleetOptions) *result {
	t.Helper()
	dir := t.TempDir()
	h := newHub(t, dir)
	res := newResult(t, o)
	rs := newRemotes(t, h, dir, o.n, false)
	ports := make([]int, len(rs))
	for i, r := range rs {
		ports[i] = r.port
	}

	cs, release := startFleet(t, h, dir, o.kind, rs)
	mark := len(h.srv.Log())
	h.resetSYNs(t)
	kernel := h.kernelCounts(t)
	logs := logSizes(cs)
	t0 := release()
	res.Cold = h.phase(t, "cold start", ports, t0, o.upTimeout, mark, kernel, cs)
	res.Cold.ClientErrors = clientErrors(cs, logs)
	if res.Cold.Ramp.Up == 0 {
		t.FailNow() // nothing else can be measured
	}

	roots := make([]int, len(cs))
	for i, c := range cs {
		roots[i] = c.pid
	}
	idle := measureIdle(roots, t0, o.steadyFrom(t0, res.Cold.Ramp), o.idle)
	res.Idle, res.IdleAfterStart = idle.steady, idle.afterStart
	res.Idle.TunnelsPerProc, res.IdleAfterStart.TunnelsPerProc = 1, 1
	if o.kind == kindRtunnel {
		if g, err := metricValue(h.ns, rs[0].metricsPort, "go_goroutines"); err == nil {
			res.Idle.Goroutines = g
		} else {
			t.Logf("goroutines of %s: %v", rs[0].name, err)
		}
	}
	res.Hub = h.cost()

	// The clients' own counts, read once the idle windows are over (a
	// scrape wakes every process): the cold start's so far, then the
	// reboot's as the difference.
	var attempts attemptCounts
	if o.kind == kindRtunnel {
		attempts = scrapeAttempts(h.ns, rs)
		res.Cold.ClientAttempts = attempts
	}
	mark = len(h.srv.Log())
	kernel = h.kernelCounts(t)
	logs = logSizes(cs)
	syns, back := h.reboot(t, o.outage, o.silent)
	res.Reboot = h.phase(t, "reboot", ports, back, o.upTimeout, mark, kernel, cs)
	res.Reboot.ClientErrors = clientErrors(cs, logs)
	res.Reboot.SYNsWhileDown = syns
	res.Reboot.SYNsPerClient = float64(syns) / float64(o.n)
	if o.kind == kindRtunnel {
		res.Reboot.ClientAttempts = scrapeAttempts(h.ns, rs).minus(attempts)
	}
	stopClients(t, cs)

	if o.oneProcess {
		res.OneProcess = h.oneProcess(t, dir, rs, ports, o, res.Idle)
	}
	return res
}

// steadyFrom is when the steady idle window of a phase that started at
// released may start; the zero time (at once) unless o.steadyIdle.
func (o fleetOptions) steadyFrom(released time.Time, r ramp) time.Time {
	if !o.steadyIdle {
		return time.Time{}
	}
	return steadyFrom(released, r.P100)
}

// phase waits for the forwards and reads what the hub did, once its log
// has gone quiet (children forked late for abandoned connections count).
func (h *hub) phase(t *testing.T, name string, ports []int, since time.Time, timeout time.Duration, mark int, kernel kernelCounts, cs []*client) phase {
	t.Helper()
	up := watchForwards(h, ports, since, timeout)
	p := phase{Ramp: rampOf(up)}
	if p.Ramp.Up < len(ports) {
		var missing []string
		for i, d := range up {
			if d < 0 && len(missing) < 3 {
				missing = append(missing, cs[min(i, len(cs)-1)].log)
			}
		}
		t.Errorf("%s: only %d of %d forwards passed a round trip within %v; logs of some that did not: %s",
			name, p.Ramp.Up, len(ports), timeout, strings.Join(missing, " "))
		for _, l := range missing {
			if b, err := os.ReadFile(l); err == nil {
				t.Logf("%s:\n%s", filepath.Base(l), tail(string(b), 20))
			}
		}
	}
	h.waitQuiet(3*time.Second, time.Minute)
	p.Hub = countHubLog(h.srv.Log()[mark:])
	p.SessionsLive, _ = h.sessionProcs()
	p.Kernel = h.kernelCounts(t).minus(kernel)
	return p
}

// kernelCounts reads the hub namespace's TcpExt counters.
func (h *hub) kernelCounts(t *testing.T) kernelCounts {
	t.Helper()
	k, err := readKernelCounts(h.anchor)
	if err != nil {
		t.Fatalf("the hub's kernel counters: %v", err)
	}
	return k
}

// waitQuiet waits until sshd has logged nothing for quiet (bounded by
// limit): the late children of abandoned connections have shown up.
func (h *hub) waitQuiet(quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last, since := len(h.srv.Log()), time.Now()
	for time.Since(since) < quiet && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if n := len(h.srv.Log()); n != last {
			last, since = n, time.Now()
		}
	}
}

// cost is the hub's memory per process and per session while the fleet idles.
func (h *hub) cost() hubCost {
	sessions, pids := h.sessionProcs()
	var pss uint64
	for _, pid := range pids {
		pss += treeUsageOne(pid).pss
	}
	c := hubCost{Processes: len(pids), Sessions: sessions}
	if len(pids) > 0 {
		c.PSSPerProcessMiB = float64(pss) / float64(len(pids)) / (1 << 20)
	}
	if sessions > 0 {
		c.PSSPerSessionMiB = float64(pss) / float64(sessions) / (1 << 20)
	}
	return c
}

// treeUsageOne is the memory of one process, without its children.
func treeUsageOne(pid int) usage {
	dir := "/proc/" + itoa(pid)
	return usage{pss: statusField(dir+"/smaps_rollup", "Pss") * 1024, rss: statusField(dir+"/smaps_rollup", "Rss") * 1024}
}

// oneProcess runs the same N tunnels in one rtunnel process after the
// per-remote clients are gone: its start and its idle cost, and what each
// added tunnel costs beside a process with one.
func (h *hub) oneProcess(t *testing.T, dir string, rs []*remote, ports []int, o fleetOptions, single idleCost) *onePhase {
	t.Helper()
	h.waitReleased(ports, 30*time.Second)
	cfg := filepath.Join(dir, "one-process.yaml")
	writeConfig(t, h, cfg, oneProcessMetrics, rs...)
	logs := filepath.Join(dir, "logs")
	mark := len(h.srv.Log())
	kernel := h.kernelCounts(t)
	c := startClient(t, logs, "one-process", []string{"ip", "netns", "exec", h.ns, rtunnelBinary(t), "up", "--config", cfg}, nil)
	t.Cleanup(func() { stopClients(t, []*client{c}) })
	released := time.Now()
	one := &onePhase{Cold: h.phase(t, "one process", ports, released, o.upTimeout, mark, kernel, []*client{c})}
	idle := measureIdle([]int{c.pid}, released, o.steadyFrom(released, one.Cold.Ramp), o.idle)
	one.Idle, one.IdleAfterStart = idle.steady, idle.afterStart
	one.Idle.TunnelsPerProc, one.IdleAfterStart.TunnelsPerProc = len(rs), len(rs)
	if g, err := metricValue(h.ns, oneProcessMetrics, "go_goroutines"); err == nil {
		one.Idle.Goroutines = g
	} else {
		t.Logf("goroutines of the one process: %v", err)
	}
	if n := float64(len(rs)); n > 1 {
		one.RSSPerTunnelKiB = (one.Idle.RSSMiB - single.RSSMiB) * 1024 / (n - 1)
		if single.Goroutines > 0 && one.Idle.Goroutines > 0 {
			one.GoroutinesPerTunnel = (one.Idle.Goroutines - single.Goroutines) / (n - 1)
		}
	}
	stopClients(t, []*client{c})
	return one
}

// waitReleased waits (bounded) until the hub no longer listens on any of
// ports: the sessions of stopped clients are gone.
func (h *hub) waitReleased(ports []int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		l := h.listening()
		held := false
		for _, p := range ports {
			if l[p] {
				held = true
				break
			}
		}
		if !held {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
