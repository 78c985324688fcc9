package reconnect

import (
	"testing"
	"time"
)

// A slow error (a key file being rewritten) waits Max each time, however
// young the outage; the errors after it follow the schedule where it was.
func TestSlowErrorWaitsMax(t *testing.T) {
	p := defaults()
	p.Jitter = 0
	calls, _ := run(t, p, func(n int, _ func()) error {
		switch n {
		case 1:
			return errRetry
		case 2, 3, 4:
			return errSlow
		}
		return errRetry
	}, 6)
	// 1 s, three slow waits of Max, then the schedule goes on from 2 s.
	want := []time.Duration{time.Second, time.Minute, time.Minute, time.Minute, 2 * time.Second, 4 * time.Second}
	if got := waits(calls); !equal(got, want) {
		t.Fatalf("waits\n%v\nwant\n%v", got, want)
	}
}

// A slow error is not permanent: the loop keeps going through it.
func TestSlowErrorNeverEndsTheLoop(t *testing.T) {
	calls, err := run(t, defaults(), func(int, func()) error { return errSlow }, 30)
	if err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	if len(calls) != 30 {
		t.Fatalf("%d retries, want 30", len(calls))
	}
	for i, c := range calls {
		if c.wait < 48*time.Second || c.wait > 72*time.Second {
			t.Errorf("wait %d = %v, want Max (60s) +-20%%", i, c.wait)
		}
	}
}
