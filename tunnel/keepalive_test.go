package tunnel

import (
	"testing"
	"time"
)

// TestCheckTimerOnlyWhenTheLimitComesBeforeTheNextTick: on a live link
// (each reply heard a few milliseconds after its tick) the tick alone
// checks the silence and no check timer is armed; once replies stop, the
// check fires exactly when the silence reaches the limit.
func TestCheckTimerOnlyWhenTheLimitComesBeforeTheNextTick(t *testing.T) {
	now := time.Unix(1000, 0)
	const interval = 15 * time.Second
	next := now.Add(interval)
	cases := []struct {
		name   string
		silent time.Duration
		limit  time.Duration
		left   time.Duration
		arm    bool
	}{
		{"live link, count_max 3", interval - 5*time.Millisecond, 3 * interval, 30*time.Second + 5*time.Millisecond, false},
		{"live link, count_max 2", interval - 5*time.Millisecond, 2 * interval, 15*time.Second + 5*time.Millisecond, false},
		{"one reply missed, count_max 3", 2*interval - 5*time.Millisecond, 3 * interval, 15*time.Second + 5*time.Millisecond, false},
		{"two replies missed, count_max 3", 3*interval - 5*time.Millisecond, 3 * interval, 5 * time.Millisecond, true},
		{"count_max 1: every reply is checked for", interval - 5*time.Millisecond, interval, 5 * time.Millisecond, true},
	}
	for _, c := range cases {
		left, arm := checkAfter(now, c.silent, c.limit, next)
		if left != c.left || arm != c.arm {
			t.Errorf("%s: checkAfter = %v, %v; want %v, %v", c.name, left, arm, c.left, c.arm)
		}
	}
}
