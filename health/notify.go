package health

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier speaks the sd_notify protocol to systemd over NOTIFY_SOCKET. When
// the variable is unset (not run by systemd, or not Type=notify) every method
// is a no-op returning nil; so is every method on a nil *Notifier. Callers
// only log the errors: a failed notification must not stop the tunnels.
type Notifier struct {
	// Logger, if set, receives watchdog warnings (a withheld ping, a failed
	// send) so the journal says why systemd killed the service.
	Logger *slog.Logger
}

// NewNotifier returns a Notifier for the NOTIFY_SOCKET (and WATCHDOG_USEC)
// of this process's environment, read by go-systemd's daemon package at
// each send.
func NewNotifier() *Notifier { return &Notifier{} }

// Ready sends READY=1: startup (or a reload) is complete.
func (n *Notifier) Ready() error { return n.send(daemon.SdNotifyReady) }

// notifyMaxStatus bounds a STATUS= text: systemd drops a whole notify
// datagram of 4096 bytes or more, which would leave the old status showing.
// StatusLine stays far below it; this is the backstop for any caller.
const notifyMaxStatus = 2048

// Status sends STATUS=s, shown by systemctl status. Line breaks in s are
// folded into spaces because they would end the assignment, and a text
// longer than notifyMaxStatus bytes is cut.
func (n *Notifier) Status(s string) error {
	return n.send("STATUS=" + clip(oneLine(s), notifyMaxStatus))
}

// Stopping sends STOPPING=1: shutdown has begun.
func (n *Notifier) Stopping() error { return n.send(daemon.SdNotifyStopping) }

// Reloading sends RELOADING=1 with MONOTONIC_USEC, which systemd >= 253
// requires for Type=notify-reload to match the reload to its request. Send
// Ready when the reload is done.
func (n *Notifier) Reloading() error {
	msg := daemon.SdNotifyReloading
	if mono := strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n"); mono != "" {
		msg += "\n" + mono
	}
	return n.send(msg)
}

// Watchdog sends WATCHDOG=1. Prefer RunWatchdog, which pings only while the
// supervisor makes progress.
func (n *Notifier) Watchdog() error { return n.send(daemon.SdNotifyWatchdog) }

func (n *Notifier) send(state string) error {
	if n == nil {
		return nil
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		name, _, _ := strings.Cut(state, "=")
		return fmt.Errorf("sd_notify %s: %w", name, err)
	}
	return nil
}
