package health

import (
	"context"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// RunWatchdog pings systemd's watchdog (WATCHDOG=1) every half
// WATCHDOG_USEC, but only when alive reports true: at each tick it asks
// alive, with a context that ends after a quarter of WATCHDOG_USEC, whether
// the supervisor still answers. A stuck supervisor stops the pings and
// systemd restarts the service. Asking on demand, instead of the supervisor
// beating on a clock, keeps an idle process asleep between pings.
//
// It returns nil once ctx is done, or at once when the watchdog is not
// enabled for this process (WATCHDOG_USEC unset, or WATCHDOG_PID naming
// another process). A malformed WATCHDOG_USEC or WATCHDOG_PID is returned as
// an error.
func (n *Notifier) RunWatchdog(ctx context.Context, alive func(context.Context) bool) error {
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
		actx, cancel := context.WithTimeout(ctx, interval/4)
		ok := alive(actx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if ok {
			if stalled && n.Logger != nil {
				n.Logger.Info("watchdog: supervisor answers again; resuming pings")
			}
			stalled = false
			if err := n.Watchdog(); err != nil && n.Logger != nil {
				n.Logger.Warn("watchdog: ping failed", "err", err)
			}
		} else if !stalled {
			stalled = true
			if n.Logger != nil {
				n.Logger.Warn("watchdog: supervisor did not answer; withholding pings, systemd will restart the service if this persists",
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
