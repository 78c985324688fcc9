package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An idle `rtunnel up` with one tunnel and the default keepalive (15 s)
// does no periodic work of its own: no supervisor tick, no GC-goal tick.
// Measured: 4.1 wakeups/s with them; without them 0.3/s in the steady state
// (from after the first keepalive), 1.0-1.3/s over the minute right after
// the forward came up, where the Go runtime's sysmon polls every 20 us for
// the first timers after start (docs/PERFORMANCE.md, "Idle wakeups"). The
// bound here, 2/s on the steady figure, catches a periodic tick coming
// back. Each window is a minute, so the test runs only when
// RTUNNEL_MEASURE_IDLE=1.
func TestIdleWakeups(t *testing.T) {
	if os.Getenv("RTUNNEL_MEASURE_IDLE") != "1" {
		t.Skip("set RTUNNEL_MEASURE_IDLE=1 to measure an idle process for a minute")
	}
	w := newDirect(t, directOpts{})
	cfg := w.config(t, [][2]string{w.sshForward()}, "")
	// The default keepalive, not the tests' 1 s.
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "    keepalive: {interval: 1s, count_max: 3}\n", "", 1))
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d := w.up(t, cfg)
	_, upAt := waitForwardUp(t, d, 0, 20*time.Second)
	window := 60 * time.Second
	if s := os.Getenv("RTUNNEL_IDLE_WINDOW"); s != "" {
		if window, err = time.ParseDuration(s); err != nil {
			t.Fatal(err)
		}
	}
	// After start: from 3 s after the forward came up (the login's own
	// replies have arrived). Steady: from a second after the first
	// keepalive (config.DefaultKeepalive after the session came up).
	afterStartAt := upAt.Add(3 * time.Second)
	steadyAt := upAt.Add(15*time.Second + time.Second)
	type count struct {
		n  int
		at time.Time
	}
	sample := func(at time.Time) count {
		time.Sleep(time.Until(at))
		return count{contextSwitches(t, d.PID()), time.Now()}
	}
	rate := func(a, b count) float64 { return float64(b.n-a.n) / b.at.Sub(a.at).Seconds() }
	// In this order; a window shorter than 13 s makes the first one longer,
	// and each rate is over the time its two samples were actually apart.
	a0 := sample(afterStartAt)
	s0 := sample(steadyAt)
	a1 := sample(a0.at.Add(window))
	s1 := sample(s0.at.Add(window))
	afterStart, steady := rate(a0, a1), rate(s0, s1)
	t.Logf("idle rtunnel up, one tunnel, keepalive 15s: steady (from %.0f s after the forward came up) %d voluntary context switches in %.0f s = %.2f wakeups/s; right after the start (from %.0f s) %d in %.0f s = %.2f wakeups/s",
		s0.at.Sub(upAt).Seconds(), s1.n-s0.n, s1.at.Sub(s0.at).Seconds(), steady,
		a0.at.Sub(upAt).Seconds(), a1.n-a0.n, a1.at.Sub(a0.at).Seconds(), afterStart)
	if steady > 2 {
		t.Errorf("idle process wakes %.2f times a second in the steady state, want at most 2 (issue 12's target: 0.5)", steady)
	}
}

// contextSwitches sums voluntary_ctxt_switches over every thread of pid:
// /proc/PID/status alone counts only the main thread.
func contextSwitches(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of pid %d: %v", pid, err)
	}
	total := 0
	for _, p := range tasks {
		f, err := os.Open(p)
		if err != nil {
			continue // the thread ended
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "voluntary_ctxt_switches:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				total += n
			}
		}
		f.Close()
	}
	return total
}
