package reconnect

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	errRetry       = errors.New("connection refused")
	errFatal       = errors.New("host key changed")
	errFast        = errors.New("forward refused")
	errConnRefused = errors.New("connection refused by the server's host")
	errSlow        = errors.New("key file missing")
	errBusy        = errors.New("closed before the banner")
)

type call struct {
	at   time.Duration
	wait time.Duration
}

// run drives a Loop whose sessions return errs in turn (and then errRetry
// forever), until stopAfter sessions; it records when each retry was
// scheduled and how long it waits, in the bubble's fake time.
func run(t *testing.T, p Policy, sessions func(n int, up func()) error, stopAfter int) ([]call, error) {
	t.Helper()
	var calls []call
	var err error
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 0
		l := &Loop{
			Policy: p,
			Session: func(ctx context.Context, up func()) error {
				n++
				if n > stopAfter {
					cancel()
					<-ctx.Done()
					return nil
				}
				return sessions(n, up)
			},
			IsPermanent: func(err error) bool { return errors.Is(err, errFatal) },
			IsFast:      func(err error) bool { return errors.Is(err, errFast) },
			IsRefused:   func(err error) bool { return errors.Is(err, errConnRefused) },
			IsSlow:      func(err error) bool { return errors.Is(err, errSlow) },
			IsBusy:      func(err error) bool { return errors.Is(err, errBusy) },
			OnRetry: func(attempt int, err error, wait time.Duration) {
				calls = append(calls, call{at: time.Since(start), wait: wait})
			},
		}
		err = l.Run(ctx)
	})
	return calls, err
}

// noJitter is the exponential schedule with a small Max (outage_test.go
// covers the defaults).
func noJitter() Policy {
	return Policy{Initial: time.Second, Max: 8 * time.Second, Multiplier: 2, Jitter: 0,
		ResetAfter: time.Minute, FastRetry: 500 * time.Millisecond, FastRetryFor: 2 * time.Second}
}

func waits(cs []call) []time.Duration {
	out := make([]time.Duration, len(cs))
	for i, c := range cs {
		out[i] = c.wait
	}
	return out
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExponentialScheduleCappedAtMax(t *testing.T) {
	calls, err := run(t, noJitter(), func(int, func()) error { return errRetry }, 6)
	if err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	if got := waits(calls); !equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	// The loop really waits: retry k is scheduled after the sum of the
	// earlier waits (sessions take no time in the bubble).
	var sum time.Duration
	for i, c := range calls {
		if c.at != sum {
			t.Errorf("retry %d scheduled at %v, want %v", i, c.at, sum)
		}
		sum += c.wait
	}
}

func TestJitterStaysInBounds(t *testing.T) {
	p := noJitter()
	p.Jitter = 0.2
	calls, _ := run(t, p, func(int, func()) error { return errRetry }, 40)
	base := []time.Duration{1, 2, 4, 8}
	for i, c := range calls {
		b := 8 * time.Second
		if i < len(base) {
			b = base[i] * time.Second
		}
		lo, hi := time.Duration(float64(b)*0.8), time.Duration(float64(b)*1.2)
		if c.wait < lo || c.wait > hi {
			t.Errorf("wait %d = %v, want within +-20%% of %v", i, c.wait, b)
		}
	}
}

func TestPermanentErrorStopsTheLoop(t *testing.T) {
	calls, err := run(t, noJitter(), func(n int, _ func()) error {
		if n == 3 {
			return errFatal
		}
		return errRetry
	}, 10)
	var pe *PermanentError
	if !errors.As(err, &pe) || !errors.Is(err, errFatal) {
		t.Fatalf("Run = %v, want a PermanentError wrapping the cause", err)
	}
	if len(calls) != 2 {
		t.Fatalf("%d retries before the permanent error, want 2", len(calls))
	}
}

func TestFastRetryWindowThenBackoff(t *testing.T) {
	calls, _ := run(t, noJitter(), func(int, func()) error { return errFast }, 8)
	// 500 ms while the window (2 s) is open: at 0, .5, 1, 1.5; then the
	// normal schedule from its start.
	want := []time.Duration{500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond,
		1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	if got := waits(calls); !equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
}

func TestLongSessionResetsTheSchedule(t *testing.T) {
	calls, _ := run(t, noJitter(), func(n int, up func()) error {
		if n == 4 {
			up()
			time.Sleep(2 * time.Minute) // fake time: the session stayed up
		}
		return errRetry
	}, 6)
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 1 * time.Second, 2 * time.Second, 4 * time.Second}
	if got := waits(calls); !equal(got, want) {
		t.Fatalf("waits %v, want %v (reset after a session up for > reset_after)", got, want)
	}
}

func TestShortSessionDoesNotReset(t *testing.T) {
	calls, _ := run(t, noJitter(), func(n int, up func()) error {
		if n == 3 {
			up()
			time.Sleep(10 * time.Second) // shorter than reset_after
		}
		return errRetry
	}, 5)
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	if got := waits(calls); !equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
}

func TestCancelDuringWaitReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		l := &Loop{Policy: Policy{Initial: time.Hour, Max: time.Hour, Multiplier: 2},
			Session: func(context.Context, func()) error { return errRetry }}
		done := make(chan error)
		start := time.Now()
		go func() { done <- l.Run(ctx) }()
		synctest.Wait() // the loop is now waiting its hour
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v after cancel, want nil", err)
		}
		if took := time.Since(start); took != 0 {
			t.Fatalf("Run took %v of fake time after cancel, want 0", took)
		}
	})
}
