package reconnect

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// defaults is the policy rtunnel runs with when the config says nothing
// (config.Default*), quick phase included.
func defaults() Policy {
	return Policy{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 0.2,
		ResetAfter: time.Minute, FastRetry: time.Second, FastRetryFor: 2 * time.Minute}
}

func TestQuickPhaseThenGrowth(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	calls, _ := run(t, p, func(int, func()) error { return errRetry }, 40)
	var want []time.Duration
	// Failures at 0 s .. 29 s are younger than 30 s: 1 s each.
	for range 30 {
		want = append(want, time.Second)
	}
	// From 30 s on the schedule grows from Initial to Max.
	for _, s := range []int{1, 2, 4, 8, 16, 32, 60, 60, 60, 60} {
		want = append(want, time.Duration(s)*time.Second)
	}
	if got := waits(calls); !equal(got, want) {
		t.Fatalf("waits\n%v\nwant\n%v", got, want)
	}
}

// A hub that stays down for hours gets about one attempt a minute, not one
// a second: the quick phase is bounded by the outage's age.
func TestServerDownForHoursIsNotHammered(t *testing.T) {
	const outage = 3 * time.Hour
	var attempts int
	var last time.Duration
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		start := time.Now()
		l := &Loop{Policy: defaults(),
			Session: func(ctx context.Context, _ func()) error {
				if time.Since(start) >= outage {
					cancel()
					<-ctx.Done()
					return nil
				}
				attempts++
				return errRetry
			},
			OnRetry: func(_ int, _ error, wait time.Duration) { last = wait },
		}
		if err := l.Run(ctx); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	// <= 30 s / 0.8 s in the quick phase, a few while growing, then one per
	// >= 48 s (60 s - 20 %).
	limit := 38 + 8 + int(outage/(48*time.Second))
	t.Logf("%d attempts in %v of outage (limit %d); last wait %v", attempts, outage, limit, last)
	if attempts > limit {
		t.Errorf("%d attempts in %v, want <= %d", attempts, outage, limit)
	}
	if last < 48*time.Second {
		t.Errorf("wait after %v of outage is %v, want the full backoff (>= 48s)", outage, last)
	}
}

// A server back after downFor (an sshd restart, a link drop) is retried
// within Initial (+ jitter), not after a doubled wait.
func TestRecoveryWithinInitialOfServerBack(t *testing.T) {
	for _, downFor := range []time.Duration{500 * time.Millisecond, 3 * time.Second, 7 * time.Second, 20 * time.Second, 29 * time.Second} {
		for range 20 { // jitter differs each run
			var gap time.Duration
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				start := time.Now()
				l := &Loop{Policy: defaults(),
					Session: func(ctx context.Context, up func()) error {
						if age := time.Since(start); age >= downFor {
							gap = age - downFor
							cancel()
							<-ctx.Done()
							return nil
						}
						return errRetry
					},
				}
				_ = l.Run(ctx)
			})
			if limit := 1200 * time.Millisecond; gap > limit {
				t.Errorf("server back after %v: next attempt %v later, want <= %v", downFor, gap, limit)
			}
		}
	}
}

func TestHealthySessionStartsANewQuickPhase(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	calls, _ := run(t, p, func(n int, up func()) error {
		if n == 40 {
			up()
			time.Sleep(2 * time.Minute) // longer than ResetAfter: healthy
		}
		return errRetry
	}, 43)
	got := waits(calls)
	if got[38] != 60*time.Second {
		t.Fatalf("wait before the healthy session = %v, want the grown 60s", got[38])
	}
	for i := 39; i < len(got); i++ {
		if got[i] != time.Second {
			t.Errorf("wait %d after a healthy session = %v, want 1s (a new outage is young)", i, got[i])
		}
	}
}

func TestFlappingSessionKeepsTheOutageAge(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	calls, _ := run(t, p, func(n int, up func()) error {
		if n >= 36 {
			up()
			time.Sleep(5 * time.Second) // up, but not for ResetAfter
		}
		return errRetry
	}, 40)
	got := waits(calls)
	for i := 36; i < len(got); i++ {
		if got[i] <= time.Second {
			t.Errorf("wait %d of a flapping server = %v, want the grown schedule", i, got[i])
		}
	}
}

func TestForwardRefusedFastThenQuickThenGrowth(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	p.FastRetry = 500 * time.Millisecond
	p.FastRetryFor = 2 * time.Second
	calls, _ := run(t, p, func(int, func()) error { return errFast }, 40)
	got := waits(calls)
	for i := range 4 {
		if got[i] != 500*time.Millisecond {
			t.Fatalf("waits %v: want forward_retry (500ms) while its window is open", got)
		}
	}
	// Then the quick phase until the outage is 30 s old, then growth.
	var at time.Duration
	for i, c := range calls {
		if i >= 4 && c.at < 30*time.Second && c.wait != time.Second {
			t.Errorf("wait %d at %v = %v, want 1s (quick phase)", i, c.at, c.wait)
		}
		at = c.at
	}
	if last := got[len(got)-1]; last <= time.Second {
		t.Errorf("wait at %v = %v, want grown past the quick phase", at, last)
	}
}

// A refused connect (sshd restarting on a live host) is retried every
// RefusedRetry during the quick phase, then like any other error.
func TestRefusedConnectRetriedSoonerWhileQuick(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	calls, _ := run(t, p, func(int, func()) error { return errConnRefused }, 124)
	var want []time.Duration
	for range 120 { // 0 s .. 29.75 s: 250 ms each
		want = append(want, DefaultRefusedRetry)
	}
	want = append(want, 1*time.Second, 2*time.Second, 4*time.Second, 8*time.Second)
	if got := waits(calls); !equal(got, want) {
		t.Fatalf("waits\n%v\nwant\n%v", got, want)
	}
}

func TestRefusedRetryNeverAboveInitial(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	p.Initial = 100 * time.Millisecond
	calls, _ := run(t, p, func(int, func()) error { return errConnRefused }, 3)
	for i, c := range calls {
		if c.wait != 100*time.Millisecond {
			t.Errorf("wait %d = %v, want Initial (100ms), which is below RefusedRetry", i, c.wait)
		}
	}
}
