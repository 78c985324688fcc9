package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rtunnel/rtunnel/tunnel"
)

// failureSummaryEvery is how often a tunnel that keeps failing for the same
// reason is logged. 500 tunnels retrying a refused port every 250 ms would
// otherwise write 2000 lines a second and exceed journald's rate limit
// (10 000 per 30 s by default), which then drops messages of every service.
const failureSummaryEvery = time.Minute

// busyMessage is the line for a hub that drops connections before its SSH
// banner, said once like any other cause: a fleet reconnecting to a hub past
// MaxStartups would otherwise log every drop, and the operator needs to know
// once, with what to change.
const busyMessage = "hub busy (MaxStartups?): it dropped the connection before the SSH banner; retrying after a spread-out wait. " +
	"If this hub serves a fleet, raise its MaxStartups (docs/FLEET.md)"

// failureLog decides which of one tunnel's failed attempts reach the log:
// the first of an outage, the first after its cause changed, then a
// summary at most once per failureSummaryEvery; the recovery once, with
// the outage's length. The others go to debug level. Metrics count every
// attempt regardless (health.Retrying).
type failureLog struct {
	log *slog.Logger

	mu        sync.Mutex
	since     time.Time // first failure of the outage; zero while healthy
	attempts  int       // failures since then
	cause     string    // the cause last logged
	loggedAt  time.Time // when a line about this outage was last logged
	changedAt time.Time // when a cause change was last logged
}

// cause is what counts as the same failure: the result class and the
// innermost reason ("connection refused"), without the addresses and
// ports around it, which change from attempt to attempt.
func failureCause(err error) (class, reason string) {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return tunnel.Result(err), msg
}

// failed is told about every failed attempt with its scheduled retry.
func (f *failureLog) failed(attempt int, err error, wait time.Duration) {
	now := time.Now()
	class, reason := failureCause(err)
	cause := class + ": " + reason
	level := slog.LevelWarn
	if class == tunnel.ResultAuth || tunnel.Slow(err) {
		// A refused key, or a key or known_hosts file gone missing, needs
		// an operator if it lasts; both are retried all the same.
		level = slog.LevelError
	}
	retry := wait.Round(time.Millisecond).String()

	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	switch {
	case f.since.IsZero():
		f.since, f.attempts, f.cause, f.loggedAt = now, 1, cause, now
		msg := "tunnel down; will retry"
		if class == tunnel.ResultBusy {
			msg = busyMessage
		}
		f.log.Log(context.Background(), level, msg, "attempt", attempt, "result", class,
			"err", err.Error(), "retry_in", retry)
	case cause != f.cause && now.Sub(f.changedAt) >= failureSummaryEvery:
		// A cause that flaps between two values is logged once a minute,
		// by the summary below.
		f.cause, f.loggedAt, f.changedAt = cause, now, now
		msg := "tunnel still down, for another reason now; will retry"
		if class == tunnel.ResultBusy {
			msg = busyMessage
		}
		f.log.Log(context.Background(), level, msg,
			"attempt", attempt, "result", class, "err", err.Error(), "retry_in", retry, "down_since", f.since.Format(time.TimeOnly))
	case now.Sub(f.loggedAt) >= failureSummaryEvery:
		f.cause, f.loggedAt = cause, now
		f.log.Log(context.Background(), level,
			fmt.Sprintf("still failing: %d attempts since %s, last: %s", f.attempts, f.since.Format("15:04"), reason),
			"attempts", f.attempts, "result", class, "err", err.Error(), "retry_in", retry, "down_since", f.since.Format(time.TimeOnly))
	default:
		f.log.Debug("tunnel down again; will retry", "attempt", attempt, "result", class, "err", err.Error(), "retry_in", retry)
	}
}

// recovered is told when a session is up; it logs the end of an outage.
func (f *failureLog) recovered() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() {
		return
	}
	f.log.Info("tunnel recovered", "down_for", time.Since(f.since).Round(time.Second).String(), "failed_attempts", f.attempts)
	f.since, f.attempts, f.cause, f.changedAt = time.Time{}, 0, "", time.Time{}
}
