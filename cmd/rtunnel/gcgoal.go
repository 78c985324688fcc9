package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// gcGoal raises the garbage collector's heap goal while bytes stream
// through the tunnels and puts it back when they stop.
//
// x/crypto allocates a fresh buffer for every SSH packet it receives, so a
// transfer makes a GiB of garbage per GiB moved. rtunnel's live heap is a few
// MB, and with Go's default (GOGC=100, a 4 MB floor) that meant a GC cycle
// every few MB. A fixed GOGC=400 cut the CPU per GiB received by a fifth to
// a third on the benchmark, but left the heap five times the live size for
// good, which a soak of 200 reconnects showed as 29 MiB RSS instead of 18.
//
// So the goal is at least busyFloor while the heap grows faster than
// busyRate, and Go's default otherwise. The rise is decided after each GC
// cycle (a transfer runs dozens a second, so it is seen within
// milliseconds, and an idle daemon runs none, so watching costs nothing);
// the fall on a one-second tick that runs only while the goal is raised, so
// that an idle daemon has no timer to wake for.
type gcGoal struct {
	read    func() (allocs, live uint64) // cumulative heap allocation, live heap after the last GC
	set     func(percent int)
	release func() // a GC now, and the free pages back to the kernel
	now     func() time.Time
	// after runs f once d has passed and returns what cancels it
	// (time.AfterFunc's Stop).
	after func(d time.Duration, f func()) (cancel func() bool)

	mu       sync.Mutex
	ticking  func() bool // cancels the armed tick; nil while none is armed
	percent  int         // the GOGC in force
	tickAt   uint64      // allocs at the previous tick
	gcAt     time.Time   // when the previous GC cycle was seen
	gcAllocs uint64      // allocs then
	stopped  atomic.Bool
}

const (
	busyRate  = 8 << 20  // bytes allocated per second that mean a transfer is running
	busyFloor = 16 << 20 // heap goal while busy (GOGC=400 at a 3 MB live heap measured best)
	maxGOGC   = 1000
)

func newGCGoal() *gcGoal {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	g := &gcGoal{
		read: func() (uint64, uint64) {
			metrics.Read(samples)
			return samples[0].Value.Uint64(), samples[1].Value.Uint64()
		},
		set:     func(p int) { debug.SetGCPercent(p) },
		release: debug.FreeOSMemory,
		now:     time.Now,
		after:   func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop },
		percent: 100,
	}
	g.tickAt, _ = g.read()
	g.gcAt, g.gcAllocs = g.now(), g.tickAt
	return g
}

// gcSentinel is garbage whose cleanup tells gcGoal a GC cycle has run. It
// holds a pointer so that it is not packed into a tiny-object block, which
// would delay its collection.
type gcSentinel struct{ _ *int }

// watch calls afterGC after every GC cycle until stop: each cleanup arms
// the next one. It runs on the runtime's cleanup goroutine, which needs no
// owner of ours.
func (g *gcGoal) watch() {
	runtime.AddCleanup(&gcSentinel{}, func(g *gcGoal) {
		if !g.stopped.Load() {
			g.afterGC()
			g.watch()
		}
	}, g)
}

// gcTickEvery is the tick of a raised goal: a second without a transfer's
// allocation rate puts the goal back.
const gcTickEvery = time.Second

// stop ends the watching and the tick.
func (g *gcGoal) stop() {
	g.stopped.Store(true)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ticking != nil {
		g.ticking()
		g.ticking = nil
	}
}

// afterGC raises the goal when the cycle just seen came fast, with at
// least a MB allocated since the previous one: a forced cycle after an idle
// spell (release's own) does not count.
func (g *gcGoal) afterGC() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	allocs, live := g.read()
	since, took := allocs-g.gcAllocs, now.Sub(g.gcAt)
	g.gcAt, g.gcAllocs = now, allocs
	if since >= 1<<20 && took > 0 && float64(since)/took.Seconds() >= busyRate {
		g.raise(live)
	}
}

// raise sets the GOGC that gives busyFloor, unless a higher one is in
// force, and arms the tick that will put it back. The caller holds mu.
func (g *gcGoal) raise(live uint64) {
	if want := percentForFloor(live, busyFloor); want > g.percent {
		g.set(want)
		g.percent = want
	}
	if g.ticking == nil {
		g.tickAt, _ = g.read() // the first tick measures from now
	}
	g.armTick()
}

// armTick schedules the next tick while the goal is raised. The caller
// holds mu.
func (g *gcGoal) armTick() {
	if g.ticking != nil || g.percent == 100 || g.stopped.Load() {
		return
	}
	g.ticking = g.after(gcTickEvery, func() {
		g.mu.Lock()
		g.ticking = nil
		g.mu.Unlock()
		g.tick()
	})
}

// tick looks at the last second's allocation: busy keeps the goal raised
// (for a rate that fills the heap too slowly for afterGC to see it), quiet
// puts it back to 100 and collects at once, since an idle heap reaches no
// goal and the transfer's garbage would otherwise stay resident until the
// runtime's two-minute forced GC.
func (g *gcGoal) tick() {
	g.mu.Lock()
	defer g.mu.Unlock()
	allocs, live := g.read()
	busy := allocs-g.tickAt >= busyRate
	g.tickAt = allocs
	switch {
	case busy:
		g.raise(live)
	case g.percent != 100:
		g.set(100)
		g.percent = 100
		g.release()
		g.gcAt, g.gcAllocs = g.now(), allocs
	}
	g.armTick()
}

// percentForFloor is the GOGC that puts the heap goal, live x (1 + GOGC/100),
// at floor, rounded up to a multiple of 50 so that small changes of the live
// heap do not reset it; never below Go's default of 100, never above
// maxGOGC.
func percentForFloor(live, floor uint64) int {
	if live == 0 {
		return maxGOGC
	}
	if 2*live >= floor {
		return 100
	}
	p := (floor - live) * 100 / live
	p = (p + 49) / 50 * 50
	return int(min(p, maxGOGC))
}
