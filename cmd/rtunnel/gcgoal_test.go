package main

import (
	"runtime"
	"runtime/debug"
	"slices"
	"testing"
	"time"
)

func TestPercentForFloor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{3 << 20, 450},  // (16-3)/3 = 433 %, rounded up to 450: goal 16.5 MB
		{4 << 20, 300},  // exactly 300 %
		{5 << 20, 250},  // 220 % rounded up
		{8 << 20, 100},  // twice the live heap already reaches the floor
		{64 << 20, 100}, // a big live heap: Go's default, never lower
		{1 << 20, 1000}, // 1500 % capped
		{0, 1000},       // no GC has run yet
		{(16 << 20) - 1, 100},
	} {
		if got := percentForFloor(c.live, 16<<20); got != c.want {
			t.Errorf("percentForFloor(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// fakeGC drives a gcGoal with a clock and counters the test moves.
type fakeGC struct {
	g        *gcGoal
	allocs   uint64
	live     uint64
	clock    time.Time
	sets     []int
	releases int
}

func newFakeGC() *fakeGC {
	f := &fakeGC{live: 3 << 20, clock: time.Unix(1000, 0)}
	f.g = &gcGoal{
		read:    func() (uint64, uint64) { return f.allocs, f.live },
		set:     func(p int) { f.sets = append(f.sets, p) },
		release: func() { f.releases++ },
		now:     func() time.Time { return f.clock },
		percent: 100,
		gcAt:    f.clock,
	}
	return f
}

// gc is one GC cycle after alloc bytes and d of time.
func (f *fakeGC) gc(alloc uint64, d time.Duration) {
	f.allocs += alloc
	f.clock = f.clock.Add(d)
	f.g.afterGC()
}

// The goal rises on the first fast GC cycle of a transfer, stays while the
// traffic lasts (never re-set to the same value), and falls back to 100 on
// the first quiet tick, which also releases the garbage once.
func TestGCGoalRisesAfterFastCyclesFallsOnQuietTick(t *testing.T) {
	f := newFakeGC()
	f.gc(3<<20, 2*time.Second) // an interactive session: 1.5 MB/s
	f.g.tick()
	if len(f.sets) != 0 {
		t.Fatalf("a slow heap raised the goal: %v", f.sets)
	}
	f.gc(3<<20, 5*time.Millisecond) // a transfer: 600 MB/s
	f.gc(3<<20, 5*time.Millisecond)
	f.live = 3<<20 + 100<<10 // the live heap moves a little: same goal
	f.gc(3<<20, 5*time.Millisecond)
	f.g.tick() // busy second
	if want := []int{450}; !slices.Equal(f.sets, want) || f.releases != 0 {
		t.Fatalf("during the transfer: SetGCPercent %v, releases %d; want %v, 0", f.sets, f.releases, want)
	}
	f.g.tick() // quiet second: back to 100, garbage released
	f.g.tick()
	f.gc(0, 10*time.Millisecond) // release's own cycle, right after
	if want := []int{450, 100}; !slices.Equal(f.sets, want) || f.releases != 1 {
		t.Fatalf("after the transfer: SetGCPercent %v, releases %d; want %v, 1", f.sets, f.releases, want)
	}
}

// A rate too slow to fill the heap within a second still counts as busy on
// the tick, and a forced cycle with little allocated never raises the goal.
func TestGCGoalTickAndForcedCycles(t *testing.T) {
	f := newFakeGC()
	f.gc(100<<10, time.Millisecond) // fast but tiny: a forced GC
	if len(f.sets) != 0 {
		t.Fatalf("a forced cycle raised the goal: %v", f.sets)
	}
	f.allocs += busyRate // 8 MB in a second, between GC cycles
	f.g.tick()
	if want := []int{450}; !slices.Equal(f.sets, want) {
		t.Fatalf("SetGCPercent %v, want %v", f.sets, want)
	}
	var nilGoal *gcGoal
	nilGoal.tick() // GOGC set by the operator: nothing to do
}

var sink []byte

// The real thing: the runtime's counters, GC cycles seen through cleanups,
// and the runtime's own GOGC.
func TestGCGoalRuntime(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	g := newGCGoal()
	g.watch()
	defer g.stop()
	runtime.GC() // a small live heap to start from
	deadline := time.Now().Add(10 * time.Second)
	for raised := false; !raised; {
		if time.Now().After(deadline) {
			t.Fatal("the GC goal did not rise while garbage was made at full speed for 10 s")
		}
		for range 64 { // 32 MiB of garbage, as a transfer makes
			sink = make([]byte, 512<<10)
		}
		g.mu.Lock()
		raised = g.percent > 100
		g.mu.Unlock()
	}
	sink = nil
	g.mu.Lock()
	percent := g.percent
	g.mu.Unlock()
	if got := debug.SetGCPercent(percent); got != percent {
		t.Fatalf("runtime GOGC %d, gcGoal says %d", got, percent)
	}
	g.tick() // the garbage above counts as this second's
	g.tick() // quiet
	g.mu.Lock()
	percent = g.percent
	g.mu.Unlock()
	if got := debug.SetGCPercent(100); percent != 100 || got != 100 {
		t.Fatalf("after a quiet tick: gcGoal %d, runtime %d, want 100", percent, got)
	}
}
