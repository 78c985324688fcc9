package health

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// RunWatchdog pings systemd's watchdog (WATCHDOG=1) every half
// WATCHDOG_USEC, but only at ticks where progress returns true: a stuck
// supervisor stops the pings and systemd restarts the service. It returns
// nil once ctx is done, or at once when the watchdog is not enabled for this
// process (WATCHDOG_USEC unset, or WATCHDOG_PID naming another process). A
// malformed WATCHDOG_USEC or WATCHDOG_PID is returned as an error.
func (n *Notifier) RunWatchdog(ctx context.Context, progress func() bool) error {
	if n == nil {
		return nil
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return err
	}
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	stalled := false
	for {
		if progress() {
			if stalled && n.Logger != nil {
				n.Logger.Info("watchdog: supervisor progressing again; resuming pings")
			}
			stalled = false
			if err := n.Watchdog(); err != nil && n.Logger != nil {
				n.Logger.Warn("watchdog: ping failed", "err", err)
			}
		} else if !stalled {
			stalled = true
			if n.Logger != nil {
				n.Logger.Warn("watchdog: supervisor made no progress; withholding pings, systemd will restart the service if this persists",
					"watchdog_usec", interval.Microseconds())
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Heartbeat is a progress source for RunWatchdog: the supervisor loop calls
// Beat each time round, and Fresh(maxAge) reports whether it did so
// recently. The zero value has never beaten. Safe for concurrent use.
type Heartbeat struct {
	last atomic.Int64 // monotonic nanoseconds since heartbeatEpoch, +1 so 0 means never
}

// heartbeatEpoch anchors Heartbeat on the monotonic clock, so a wall-clock
// step (NTP, suspend) neither fakes nor hides progress.
var heartbeatEpoch = time.Now()

// Beat records progress now.
func (b *Heartbeat) Beat() { b.last.Store(int64(time.Since(heartbeatEpoch)) + 1) }

// Fresh reports whether Beat was called within maxAge.
func (b *Heartbeat) Fresh(maxAge time.Duration) bool {
	last := b.last.Load()
	if last == 0 {
		return false
	}
	return time.Since(heartbeatEpoch)-time.Duration(last-1) <= maxAge
}
