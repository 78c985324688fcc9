package hubs

import (
	"context"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
)

// runKicked is run with a kick at each of kicks (fake time).
func runKicked(t *testing.T, hubs []*fakeHub, d time.Duration, kicks ...time.Duration) *world {
	t.Helper()
	w := &world{hubs: hubs, waits: map[string][]time.Duration{}}
	synctest.Test(t, func(t *testing.T) {
		w.start = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		f := w.failover(defaults())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		for _, at := range kicks {
			time.Sleep(at - w.now())
			f.Kick()
		}
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w
}

// A kick while the second hub is in use ends that session and starts
// every schedule afresh: the first hub, answering again, gets the session
// at once, without the FailbackAfter minute of checks.
func TestKickTriesThePreferredHubAtOnce(t *testing.T) {
	a := &fakeHub{name: "a", up: between(0, time.Minute)}
	b := &fakeHub{name: "b", up: always}
	w := runKicked(t, []*fakeHub{a, b}, 3*time.Minute, 70*time.Second)
	if want := []string{"b", "a"}; !equalStrings(w.log, want) {
		t.Fatalf("sessions up on %v, want %v", w.log, want)
	}
	if got := a.upTimes[0]; got != 70*time.Second {
		t.Fatalf("up on a at %v, want at the kick (70s)", got)
	}
}

// A kick while every hub is waiting out its backoff ends the wait: the
// first hub is tried at once.
func TestKickEndsTheWait(t *testing.T) {
	a := &fakeHub{name: "a", up: func(now time.Duration) bool { return now >= 100*time.Second }}
	b := &fakeHub{name: "b", up: never}
	w := runKicked(t, []*fakeHub{a, b}, 3*time.Minute, 101*time.Second)
	if len(a.upTimes) != 1 || a.upTimes[0] != 101*time.Second {
		t.Fatalf("up on a at %v, want once, at the kick (101s); sessions up on %v", a.upTimes, w.log)
	}
}

// A failover whose session is up on the preferred hub holds no goroutine
// beside the one that runs it: nothing is checked, and a kick reaches the
// session through its context's cancel (issue 12).
func TestIdleFailoverHoldsOnlyItsOwnGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 10
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, n)
		before := runtime.NumGoroutine()
		for range n {
			w := &world{start: time.Now(), hubs: []*fakeHub{{name: "a", up: always}, {name: "b", up: always}}, waits: map[string][]time.Duration{}}
			f := w.failover(defaults())
			for i := range f.Hubs {
				f.Hubs[i].Session = func(ctx context.Context, up func()) error {
					up()
					<-ctx.Done()
					return nil
				}
			}
			go func() { done <- f.Run(ctx) }()
		}
		synctest.Wait()
		if got := runtime.NumGoroutine() - before; got != n {
			t.Errorf("%d failovers with their sessions up hold %d goroutines, want %d (one each)", n, got, n)
		}
		cancel()
		for range n {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	})
}
