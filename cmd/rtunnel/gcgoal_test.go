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
	armed    func() // the tick armed by the goal; nil when none
}

func newFakeGC() *fakeGC {
	f := &fakeGC{live: 3 << 20, clock: time.Unix(1000, 0)}
	f.g = &gcGoal{
		read:    func() (uint64, uint64) { return f.allocs, f.live },
		set:     func(p int) { f.sets = append(f.sets, p) },
		release: func() { f.releases++ },
		now:     func() time.Time { return f.clock },
		after: func(d time.Duration, fn func()) func() bool {
			if d != gcTickEvery || f.armed != nil {
				panic("tick armed twice or with the wrong interval")
			}
			f.armed = fn
			return func() bool { f.armed = nil; return true }
		},
		percent: 100,
		gcAt:    f.clock,
	}
	return f
}

// tick runs the armed tick, as the timer would after a second; false when
// none is armed.
func (f *fakeGC) tick() bool {
	fn := f.armed
	if fn == nil {
		return false
	}
	f.armed = nil
	f.clock = f.clock.Add(gcTickEvery)
	fn()
	return true
}

// gc is one GC cycle after alloc bytes and d of time.
func (f *fakeGC) gc(alloc uint64, d time.Duration) {
	f.allocs += alloc
	f.clock = f.clock.Add(d)
	f.g.afterGC()
}

// The goal rises on the first fast GC cycle of a transfer, stays while the
// traffic lasts (never re-set to the same value), and falls back to 100 on
// the first quiet tick, which also releases the garbage once. The tick runs
// only while the goal is raised: an idle process has no timer.
func TestGCGoalRisesAfterFastCyclesFallsOnQuietTick(t *testing.T) {
	f := newFakeGC()
	f.gc(3<<20, 2*time.Second) // an interactive session: 1.5 MB/s
	if len(f.sets) != 0 || f.armed != nil {
		t.Fatalf("a slow heap raised the goal (%v) or armed a tick", f.sets)
	}
	f.gc(3<<20, 5*time.Millisecond) // a transfer: 600 MB/s
	if f.armed == nil {
		t.Fatal("a raised goal armed no tick")
	}
	f.gc(3<<20, 5*time.Millisecond)
	f.live = 3<<20 + 100<<10 // the live heap moves a little: same goal
	f.gc(3<<20, 5*time.Millisecond)
	f.allocs += busyRate
	f.tick() // busy second
	if want := []int{450}; !slices.Equal(f.sets, want) || f.releases != 0 {
		t.Fatalf("during the transfer: SetGCPercent %v, releases %d; want %v, 0", f.sets, f.releases, want)
	}
	if !f.tick() { // quiet second: back to 100, garbage released
		t.Fatal("a raised goal armed no further tick")
	}
	if f.tick() {
		t.Fatal("the goal is back to 100 and a tick is still armed")
	}
	f.gc(0, 10*time.Millisecond) // release's own cycle, right after
	if want := []int{450, 100}; !slices.Equal(f.sets, want) || f.releases != 1 {
		t.Fatalf("after the transfer: SetGCPercent %v, releases %d; want %v, 1", f.sets, f.releases, want)
	}
}

// A forced cycle with little allocated never raises the goal, and a rate
// that fills the heap too slowly for afterGC still keeps a raised goal up
// on the tick. stop cancels an armed tick.
func TestGCGoalTickAndForcedCycles(t *testing.T) {
	f := newFakeGC()
	f.gc(100<<10, time.Millisecond) // fast but tiny: a forced GC
	if len(f.sets) != 0 || f.armed != nil {
		t.Fatalf("a forced cycle raised the goal (%v) or armed a tick", f.sets)
	}
	f.gc(3<<20, 5*time.Millisecond)
	f.allocs += busyRate // 8 MB in a second, between GC cycles
	f.tick()
	if want := []int{450}; !slices.Equal(f.sets, want) || f.armed == nil {
		t.Fatalf("SetGCPercent %v, armed %v; want %v, armed", f.sets, f.armed != nil, want)
	}
	f.g.stop()
	if f.armed != nil {
		t.Fatal("stop left the tick armed")
	}
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
	// The goal's own tick puts it back within a few quiet seconds.
	for {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("the GC goal did not fall within seconds of the garbage stopping")
		}
		time.Sleep(100 * time.Millisecond) // a measurement: the tick is the runtime's timer
		g.mu.Lock()
		percent, ticking := g.percent, g.ticking != nil
		g.mu.Unlock()
		if percent == 100 {
			if ticking {
				t.Error("the goal is back to 100 and its tick still armed")
			}
			break
		}
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("after quiet ticks: runtime GOGC %d, want 100", got)
	}
}
