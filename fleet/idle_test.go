package fleet

import (
	"os/exec"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/config"
)

// An idle client is measured over two windows of the same length. The
// steady one is the idle cost: it starts once every process has been up
// for a keepalive interval, so that each has sent its first keepalive. A Go
// process's first timers after start cost it more wakeups than the later
// ones (docs/PERFORMANCE.md, "Idle wakeups"), so the window that starts
// right after the start is reported too, not left out.

// keepaliveInterval is rtunnel's default and the autossh unit's
// ServerAliveInterval.
const keepaliveInterval = config.DefaultKeepalive

// keepaliveSettles is how long after its first keepalive a process may
// still be busy with it (the reply, the runtime's polling after a timer).
const keepaliveSettles = time.Second

// idleWindows is what measureIdle reports.
type idleWindows struct {
	steady     idleCost // from steadyFrom on
	afterStart idleCost // from the call on
}

// steadyFrom is the moment from which every process of a phase has been
// up for a keepalive interval: the phase started at released and its
// last forward came up lastUpS seconds later (-1: not every one did, so
// count from now).
func steadyFrom(released time.Time, lastUpS float64) time.Time {
	up := time.Now()
	if lastUpS >= 0 {
		up = released.Add(time.Duration(lastUpS * float64(time.Second)))
	}
	return up.Add(keepaliveInterval + keepaliveSettles)
}

// measureIdle samples the trees of roots over window from now and over
// window from steady on (at once if that has passed), and reports both per
// process. released is when the clients started.
func measureIdle(roots []int, released, steady time.Time, window time.Duration) idleWindows {
	first := sampleTrees(roots)
	firstEnd := first.at[0].Add(window)
	if !steady.After(first.at[0]) {
		last := sampleTreesAt(roots, firstEnd)
		c := costBetween(first, last, released)
		return idleWindows{steady: c, afterStart: c}
	}
	var from, firstLast treeSample
	if steady.Before(firstEnd) {
		from = sampleTreesAt(roots, steady)
		firstLast = sampleTreesAt(roots, firstEnd)
	} else {
		firstLast = sampleTreesAt(roots, firstEnd)
		from = sampleTreesAt(roots, steady)
	}
	last := sampleTreesAt(roots, from.at[0].Add(window))
	return idleWindows{steady: costBetween(from, last, released), afterStart: costBetween(first, firstLast, released)}
}

// sampleTreesAt sleeps until at (the idle window itself: nothing is
// done to the clients meanwhile) and samples them.
func sampleTreesAt(roots []int, at time.Time) treeSample {
	time.Sleep(time.Until(at))
	return sampleTrees(roots)
}

func TestMeasureIdleWindows(t *testing.T) {
	const window = 300 * time.Millisecond
	// A client of its own, without children: this test process's tree
	// may still hold what an earlier test started.
	idler := exec.Command("sleep", "60")
	if err := idler.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = idler.Process.Kill()
		_ = idler.Wait()
	})
	for _, tc := range []struct {
		name          string
		steadyIn      time.Duration // after the call
		wantSteadyAtS float64       // after released
	}{
		{"steady window overlaps the first", 100 * time.Millisecond, 1.1},
		{"steady window after the first", 500 * time.Millisecond, 1.5},
		{"steady window at once", -time.Second, 1.0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			released := time.Now().Add(-time.Second) // the clients started a second ago
			w := measureIdle([]int{idler.Process.Pid}, released, time.Now().Add(tc.steadyIn), window)
			// A sample pass reads every process's stat: on a machine
			// running other fleets that takes a while, and a window can
			// start or end that much late.
			passStart := time.Now()
			sampleTrees([]int{idler.Process.Pid})
			pass := time.Since(passStart).Seconds()
			near := func(what string, got, want float64) {
				if got < want-0.05 || got > want+0.1+3*pass {
					t.Errorf("%s = %.3f s, want %.3f s", what, got, want)
				}
			}
			near("after-start window start", w.afterStart.StartS, 1.0)
			near("steady window start", w.steady.StartS, tc.wantSteadyAtS)
			near("after-start window", w.afterStart.WindowS, window.Seconds())
			near("steady window", w.steady.WindowS, window.Seconds())
			if w.steady.Procs != 1 || w.steady.Threads < 1 || w.steady.RSSMiB <= 0 {
				t.Errorf("steady window read nothing from /proc: %+v", w.steady)
			}
		})
	}
}
