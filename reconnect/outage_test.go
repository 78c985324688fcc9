package reconnect

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// defaults is the policy rtunnel runs with when the config says nothing
// (config.Default*).
func defaults() Policy {
	return Policy{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 0.2,
		ResetAfter: time.Minute, FastRetry: time.Second, FastRetryFor: 2 * time.Minute}
}

func TestOutageScheduleGrowsToMax(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	calls, _ := run(t, p, func(int, func()) error { return errRetry }, 10)
	var want []time.Duration
	for _, s := range []int{1, 2, 4, 8, 16, 32, 60, 60, 60, 60} {
		want = append(want, time.Duration(s)*time.Second)
	}
	if got := waits(calls); !equal(got, want) {
		t.Fatalf("waits\n%v\nwant\n%v", got, want)
	}
}

// A hub that stays down for hours gets about one attempt a minute.
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
				return errConnRefused
			},
			IsRefused: func(err error) bool { return err == errConnRefused },
			OnRetry:   func(_ int, _ error, wait time.Duration) { last = wait },
		}
		if err := l.Run(ctx); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	// 8 while growing (0.5 s .. 32 s), then one per >= 48 s (60 s - 20 %).
	limit := 8 + int(outage/(48*time.Second))
	t.Logf("%d attempts in %v of outage (limit %d); last wait %v", attempts, outage, limit, last)
	if attempts > limit {
		t.Errorf("%d attempts in %v, want <= %d", attempts, outage, limit)
	}
	if last < 48*time.Second {
		t.Errorf("wait after %v of outage is %v, want the full backoff (>= 48s)", outage, last)
	}
}

// hubDown drives the defaults through a hub that drops a healthy session
// and refuses connects for downFor (an sshd restart or reboot on a live
// host), in fake time. It returns the connects made while the hub was down
// and how long after its return the next one came.
func hubDown(t *testing.T, downFor time.Duration) (connects int, gap time.Duration) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var killed time.Time
		l := &Loop{Policy: defaults(),
			Session: func(ctx context.Context, up func()) error {
				if killed.IsZero() {
					up()
					time.Sleep(2 * time.Minute) // healthy until the hub goes
					killed = time.Now()
					return errRetry // the session's end: EOF
				}
				if age := time.Since(killed); age >= downFor {
					gap = age - downFor
					cancel()
					<-ctx.Done()
					return nil
				}
				connects++
				return errConnRefused
			},
			IsRefused: func(err error) bool { return err == errConnRefused },
		}
		_ = l.Run(ctx)
	})
	return connects, gap
}

// An sshd restart (a few seconds at most) is noticed within about 2 s of
// sshd's return, whatever the jitter drew: connects at 1, 2, 4 s (+-20 %
// each) leave at most 2.4 s after an outage of up to 3 s.
func TestShortOutageNoticedWithinAbout2s(t *testing.T) {
	for _, downFor := range []time.Duration{300 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second} {
		var worst time.Duration
		for range 50 { // jitter differs each run
			_, gap := hubDown(t, downFor)
			worst = max(worst, gap)
		}
		t.Logf("hub back after %v: next connect at most %v later", downFor, worst)
		if worst > 2400*time.Millisecond {
			t.Errorf("hub back after %v: next connect %v later, want <= 2.4s", downFor, worst)
		}
	}
}

// A down hub costs what autossh costs it: about 4 connects (SYNs) per
// client in the first 10 s, and the wait keeps doubling after that.
func TestDownHubGetsFourConnectsIn10s(t *testing.T) {
	for range 50 {
		n, _ := hubDown(t, 10*time.Second)
		if n > 4 {
			t.Fatalf("%d connects in the hub's first 10 s down, want <= 4", n)
		}
	}
	n, _ := hubDown(t, time.Hour)
	if limit := 8 + int(time.Hour/(48*time.Second)); n > limit {
		t.Errorf("%d connects in an hour down, want <= %d", n, limit)
	}
}

// Refused connects start the schedule at RefusedRetry and double it.
func TestRefusedConnectStartsAtRefusedRetry(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	calls, _ := run(t, p, func(int, func()) error { return errConnRefused }, 5)
	want := []time.Duration{DefaultRefusedRetry, 2 * DefaultRefusedRetry, 4 * DefaultRefusedRetry, 8 * DefaultRefusedRetry, 16 * DefaultRefusedRetry}
	if got := waits(calls); !equal(got, want) {
		t.Fatalf("waits\n%v\nwant\n%v", got, want)
	}
}

func TestRefusedRetryNeverAboveInitial(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	p.Initial = 100 * time.Millisecond
	calls, _ := run(t, p, func(int, func()) error { return errConnRefused }, 3)
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	if got := waits(calls); !equal(got, want) {
		t.Fatalf("waits %v, want %v (from Initial, which is below RefusedRetry)", got, want)
	}
}

// A busy hub's waits have their own steps (Initial doubling to busyMax),
// spread over half to one and a half times each step so that clients
// dropped together come back apart.
func TestBusyHubWaitsAreSpread(t *testing.T) {
	p := defaults()
	var lo, hi float64 = 2, 0
	for range 20 {
		calls, _ := run(t, p, func(int, func()) error { return errBusy }, 7)
		for i, c := range calls {
			step := min(p.step(p.Initial, i), busyMax)
			r := float64(c.wait) / float64(step)
			if r < 0.5 || r > 1.5 {
				t.Fatalf("wait %d = %v, want within 0.5-1.5 x %v", i, c.wait, step)
			}
			lo, hi = min(lo, r), max(hi, r)
		}
	}
	if lo > 0.65 || hi < 1.35 {
		t.Errorf("busy waits spread over %.2f-%.2f of the step, want about 0.5-1.5", lo, hi)
	}
}

// A hub that comes back from a reboot busy: its drops wait 1, 2, 4 s, not
// the outage's grown 16, 32 s; after them the outage goes on where it was.
func TestBusyAfterAnOutageStartsSmall(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	calls, _ := run(t, p, func(n int, _ func()) error {
		if n <= 5 {
			return errConnRefused
		}
		if n <= 8 {
			return errBusy
		}
		return errRetry
	}, 9)
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	got := waits(calls)
	if !equal(got[:5], want) {
		t.Fatalf("refused waits %v, want %v", got[:5], want)
	}
	for i, w := range got[5:8] {
		step := time.Second << i
		if w < step/2 || w > step*3/2 {
			t.Errorf("busy wait %d = %v, want %v +-50%%", i, w, step)
		}
	}
	if got[8] != 32*time.Second {
		t.Errorf("wait after the busy ones = %v, want the outage's next step (32s)", got[8])
	}
}

func TestHealthySessionStartsTheScheduleAgain(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	calls, _ := run(t, p, func(n int, up func()) error {
		if n == 10 {
			up()
			time.Sleep(2 * time.Minute) // longer than ResetAfter: healthy
		}
		return errRetry
	}, 13)
	got := waits(calls)
	if got[8] != 60*time.Second {
		t.Fatalf("wait before the healthy session = %v, want the grown 60s", got[8])
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	if !equal(got[9:12], want) {
		t.Errorf("waits after a healthy session = %v, want %v (a new outage)", got[9:12], want)
	}
}

func TestFlappingSessionKeepsGrowing(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	calls, _ := run(t, p, func(n int, up func()) error {
		if n >= 5 {
			up()
			time.Sleep(5 * time.Second) // up, but not for ResetAfter
		}
		return errRetry
	}, 8)
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i, w := range want {
		if got := waits(calls)[i]; got != w*time.Second {
			t.Errorf("wait %d of a flapping server = %v, want %v", i, got, w*time.Second)
		}
	}
}

func TestForwardRefusedFastThenGrowth(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	p.FastRetry = 500 * time.Millisecond
	p.FastRetryFor = 2 * time.Second
	calls, _ := run(t, p, func(int, func()) error { return errFast }, 8)
	want := []time.Duration{500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond,
		1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	if got := waits(calls); !equal(got, want) {
		t.Fatalf("waits\n%v\nwant\n%v", got, want)
	}
}
