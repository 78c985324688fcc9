package reconnect

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// A kick during a wait starts the next attempt at once, on a fresh
// schedule; a kick during a session cancels it with ErrKick as the cause
// and starts the next attempt at once, without a retry being scheduled.
func TestKick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var starts []time.Duration // when each session started
		var waits []time.Duration  // each scheduled retry's wait
		var causes []error
		var mu sync.Mutex // the test reads what the loop's goroutine writes
		snapshot := func() ([]time.Duration, []time.Duration, []error) {
			mu.Lock()
			defer mu.Unlock()
			return append([]time.Duration(nil), starts...), append([]time.Duration(nil), waits...), append([]error(nil), causes...)
		}
		l := &Loop{
			Policy: Policy{Initial: 10 * time.Second, Max: time.Minute, Multiplier: 2, ResetAfter: time.Hour},
			Session: func(ctx context.Context, up func()) error {
				mu.Lock()
				starts = append(starts, time.Since(start))
				n := len(starts)
				mu.Unlock()
				switch n {
				case 1, 2, 3:
					return errRetry // waits 10 s, then 20 s, then 40 s
				case 4:
					up()
					<-ctx.Done() // runs until kicked
					mu.Lock()
					causes = append(causes, context.Cause(ctx))
					mu.Unlock()
					return nil
				default:
					cancel()
					<-ctx.Done()
					return nil
				}
			},
			OnRetry: func(_ int, _ error, wait time.Duration) {
				mu.Lock()
				waits = append(waits, wait)
				mu.Unlock()
			},
		}
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()

		time.Sleep(15 * time.Second) // inside the second wait (20 s, from 10 s)
		l.Kick()
		synctest.Wait()
		gotStarts, gotWaits, _ := snapshot()
		if len(gotStarts) != 3 || gotStarts[2] != 15*time.Second {
			t.Fatalf("session starts %v: want the third at 15 s, right after the kick", gotStarts)
		}
		// The third session failed after the kick: a fresh schedule, 10 s.
		if len(gotWaits) != 3 || gotWaits[2] != 10*time.Second {
			t.Fatalf("waits %v: want 10 s, 20 s, then 10 s after the kick", gotWaits)
		}
		time.Sleep(20 * time.Second) // the fourth session is up since 25 s
		l.Kick()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		gotStarts, gotWaits, gotCauses := snapshot()
		if len(gotCauses) != 1 || !errors.Is(gotCauses[0], ErrKick) {
			t.Fatalf("the kicked session's cause: %v, want ErrKick", gotCauses)
		}
		if len(gotStarts) != 5 || gotStarts[3] != 25*time.Second || gotStarts[4] != 35*time.Second {
			t.Fatalf("session starts %v: want the fifth right after the second kick", gotStarts)
		}
		if len(gotWaits) != 3 {
			t.Fatalf("waits %v: a kicked session must not schedule a retry", gotWaits)
		}
	})
}

// A kick that comes between sessions (here: while the retry is being
// scheduled, before the wait starts) ends the wait that follows: the next
// attempt starts at once, on a fresh schedule.
func TestKickBetweenSessionsEndsTheNextWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var starts, waits []time.Duration
		var l *Loop
		l = &Loop{
			Policy: Policy{Initial: 10 * time.Second, Max: time.Minute, Multiplier: 2, ResetAfter: time.Hour},
			Session: func(ctx context.Context, _ func()) error {
				starts = append(starts, time.Since(start))
				if len(starts) == 4 {
					cancel()
					return nil
				}
				return errRetry
			},
			OnRetry: func(attempt int, _ error, wait time.Duration) {
				waits = append(waits, wait)
				if attempt == 2 {
					l.Kick()
				}
			},
		}
		if err := l.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		// 10 s after the first failure; the second's 20 s wait is kicked
		// away; the third failure waits 10 s again, on a fresh schedule.
		want := []time.Duration{0, 10 * time.Second, 10 * time.Second, 20 * time.Second}
		if !slices.Equal(starts, want) {
			t.Fatalf("session starts %v, want %v", starts, want)
		}
		if wantWaits := []time.Duration{10 * time.Second, 20 * time.Second, 10 * time.Second}; !slices.Equal(waits, wantWaits) {
			t.Fatalf("waits %v, want %v", waits, wantWaits)
		}
	})
}

// A kick that comes before the session starts (here: before Run) is not
// lost: that session is cancelled with ErrKick as it starts, and the next
// one starts at once without a retry being scheduled.
func TestKickBeforeTheSessionCancelsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var starts []time.Duration
		var causes []error
		retries := 0
		l := &Loop{
			Policy: Policy{Initial: 10 * time.Second, Max: time.Minute, Multiplier: 2, ResetAfter: time.Hour},
			Session: func(ctx context.Context, _ func()) error {
				starts = append(starts, time.Since(start))
				causes = append(causes, context.Cause(ctx))
				if len(starts) == 2 {
					cancel()
				}
				<-ctx.Done()
				return nil
			},
			OnRetry: func(int, error, time.Duration) { retries++ },
		}
		l.Kick()
		if err := l.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if len(starts) != 2 || starts[1] != 0 {
			t.Fatalf("session starts %v, want two, both at once", starts)
		}
		if !errors.Is(causes[0], ErrKick) || causes[1] != nil {
			t.Fatalf("causes at the sessions' start %v, want ErrKick, then none", causes)
		}
		if retries != 0 {
			t.Fatalf("%d retries scheduled, want none", retries)
		}
	})
}

// A loop whose session is up holds no goroutine beside the one that runs
// it: a kick reaches the session through its context's cancel, not
// through a goroutine waiting for one in every tunnel (issue 12).
func TestIdleLoopHoldsOnlyItsOwnGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 10
		ctx, cancel := context.WithCancel(context.Background())
		loops := make([]*Loop, n)
		done := make(chan error, n)
		before := runtime.NumGoroutine()
		for i := range loops {
			loops[i] = &Loop{
				Policy: Policy{Initial: time.Second, Max: time.Minute, Multiplier: 2, ResetAfter: time.Minute},
				Session: func(ctx context.Context, up func()) error {
					up()
					<-ctx.Done()
					return nil
				},
			}
			go func() { done <- loops[i].Run(ctx) }()
		}
		synctest.Wait()
		if got := runtime.NumGoroutine() - before; got != n {
			t.Errorf("%d loops with their sessions up hold %d goroutines, want %d (one each)", n, got, n)
		}
		cancel()
		for range n {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	})
}
