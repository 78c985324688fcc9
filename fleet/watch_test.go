package fleet

import (
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

const (
	watchTick    = 100 * time.Millisecond // how often the hub's listeners are read: the timing resolution
	probeWorkers = 16                     // round trips in flight at once
	probeTimeout = 3 * time.Second
)

// watchForwards waits until a byte makes the round trip through each of
// ports, or until timeout, and returns for each port how long after since
// its first round trip succeeded (-1: never). It probes a port only once the
// hub lists it as listening, so a thousand waiting forwards cost one read of
// /proc/PID/net/tcp per tick rather than a thousand connection attempts.
func watchForwards(h *hub, ports []int, since time.Time, timeout time.Duration) []time.Duration {
	up := make([]time.Duration, len(ports))
	for i := range up {
		up[i] = -1
	}
	var mu sync.Mutex
	pending := len(ports)
	inFlight := map[int]bool{} // a port is probed by one worker at a time
	work := make(chan int)
	var wg sync.WaitGroup
	for range probeWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				err := roundTrip(h.ns, net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])), probeTimeout)
				mu.Lock()
				if err == nil {
					up[i] = time.Since(since)
					pending--
				}
				delete(inFlight, i)
				mu.Unlock()
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(watchTick)
	defer tick.Stop()
	for {
		mu.Lock()
		left := pending
		var todo []int
		listening := h.listening()
		for i, p := range ports {
			if up[i] < 0 && listening[p] && !inFlight[i] {
				inFlight[i] = true
				todo = append(todo, i)
			}
		}
		mu.Unlock()
		if left == 0 || time.Now().After(deadline) {
			return snapshot(&mu, up)
		}
		for _, i := range todo {
			work <- i
		}
		<-tick.C
	}
}

func snapshot(mu *sync.Mutex, up []time.Duration) []time.Duration {
	mu.Lock()
	defer mu.Unlock()
	return append([]time.Duration(nil), up...)
}

// ramp is how long it took for 50, 90 and 100 % of the forwards to pass
// a round trip, in seconds; -1 where that share was never reached.
type ramp struct {
	Up   int     `json:"up"`
	Of   int     `json:"of"`
	P50  float64 `json:"p50_s"`
	P90  float64 `json:"p90_s"`
	P100 float64 `json:"p100_s"`
}

func rampOf(up []time.Duration) ramp {
	var got []time.Duration
	for _, d := range up {
		if d >= 0 {
			got = append(got, d)
		}
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	r := ramp{Up: len(got), Of: len(up)}
	at := func(share float64) float64 {
		need := int(share*float64(len(up))+0.999999) - 1 // index of the forward that completes the share
		if need < 0 {
			need = 0
		}
		if need >= len(got) {
			return -1
		}
		return got[need].Seconds()
	}
	r.P50, r.P90, r.P100 = at(0.5), at(0.9), at(1)
	return r
}

func TestRampOf(t *testing.T) {
	s := time.Second
	got := rampOf([]time.Duration{4 * s, 1 * s, 3 * s, 2 * s, -1, 5 * s, 6 * s, 7 * s, 8 * s, 9 * s})
	want := ramp{Up: 9, Of: 10, P50: 5, P90: 9, P100: -1}
	if got != want {
		t.Errorf("rampOf = %+v, want %+v", got, want)
	}
	if got := rampOf([]time.Duration{2 * s, s}); got != (ramp{Up: 2, Of: 2, P50: 1, P90: 2, P100: 2}) {
		t.Errorf("rampOf of 2 = %+v", got)
	}
}
