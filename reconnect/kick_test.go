package reconnect

import (
	"context"
	"errors"
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
		kick := make(chan struct{}, 1)
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
			Kick: kick,
		}
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()

		time.Sleep(15 * time.Second) // inside the second wait (20 s, from 10 s)
		kick <- struct{}{}
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
		kick <- struct{}{}
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
