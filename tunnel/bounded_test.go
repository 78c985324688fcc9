package tunnel

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// When the work finishes at the moment its time runs out, exactly one of
// the two wins: either bounded reports success and the abort never runs
// (it would close a fresh hop or kill a session whose forward was just
// granted), or the abort runs and bounded reports the timeout.
func TestBoundedAbortAndSuccessAreExclusive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const d = time.Second
		var won, timedOutRuns int
		for i := range 2000 {
			var aborted atomic.Bool
			err, timedOut := bounded(context.Background(), d, func() { aborted.Store(true) }, func() error {
				time.Sleep(d) // done just as the timer fires
				return nil
			})
			synctest.Wait() // an abort still on its way runs now
			switch {
			case err != nil:
				t.Fatalf("run %d: err %v from work that returned nil", i, err)
			case timedOut && !aborted.Load():
				t.Fatalf("run %d: timed out, but the abort never ran", i)
			case !timedOut && aborted.Load():
				t.Fatalf("run %d: reported success, and the abort ran after all", i)
			case timedOut:
				timedOutRuns++
			default:
				won++
			}
		}
		t.Logf("2000 races: work won %d, the timer won %d", won, timedOutRuns)
	})
}

// The same for the context ending as the work finishes: an abort that ran
// is never reported as success.
func TestBoundedContextEndIsNeverSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const d = time.Second
		for i := range 2000 {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			var aborted atomic.Bool
			err, timedOut := bounded(ctx, time.Hour, func() { aborted.Store(true) }, func() error {
				time.Sleep(d)
				return nil
			})
			synctest.Wait()
			cancel()
			if timedOut {
				t.Fatalf("run %d: the context ended, but bounded reports its own timeout", i)
			}
			if aborted.Load() && err == nil {
				t.Fatalf("run %d: reported success, and the abort ran after all", i)
			}
		}
	})
}

// A timer that fires while the work is still running aborts it and is
// reported as a timeout, whatever the work then returns.
func TestBoundedTimesOutSlowWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		unblock := make(chan struct{})
		start := time.Now()
		err, timedOut := bounded(context.Background(), time.Second, func() { close(unblock) }, func() error {
			<-unblock
			return nil
		})
		if !timedOut || err != nil {
			t.Errorf("bounded = %v, %v; want nil, timed out", err, timedOut)
		}
		if took := time.Since(start); took != time.Second {
			t.Errorf("aborted after %v, want 1s", took)
		}
	})
}
